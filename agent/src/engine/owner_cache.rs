//! Which process holds each listener, looked up once: finding it walks every process's fd
//! table. Bounded: listeners come and go (pods, ephemeral servers), so the ones not asked about
//! for longest are let go, and looked up again if they are asked about later.

use crate::analysis::{lru::Lru, queues::drops::ListenerOwner};

/// Listeners whose owner is remembered. Owners are looked up only for listeners with drops, in
/// trouble or named by a reset, so a few thousand covers a busy host.
const LISTENERS_REMEMBERED: usize = 2048;

/// A listener: its namespace's inode and its socket's inode.
type ListenerKey = (u64, u32);

pub struct OwnerCache {
    /// None: looked for and not found (the listener closed, or its holder is out of reach).
    owners: Lru<ListenerKey, Option<ListenerOwner>>,
}

impl Default for OwnerCache {
    fn default() -> Self {
        Self::with_capacity(LISTENERS_REMEMBERED)
    }
}

impl OwnerCache {
    fn with_capacity(listeners: usize) -> Self {
        Self {
            owners: Lru::new(listeners),
        }
    }

    /// The owner of socket `inode` in namespace `namespace`, found by `look_up` the first time.
    pub fn owner(
        &mut self,
        namespace: u64,
        inode: u32,
        look_up: impl FnOnce() -> Option<ListenerOwner>,
    ) -> Option<ListenerOwner> {
        self.owners
            .get_or_insert_with((namespace, inode), look_up)
            .clone()
    }

    /// Listeners let go since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        self.owners.take_evicted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        host::owners::ProcessFacts,
        model::{OwnerSource, Process, workload::Workload},
    };

    fn held_by(pid: u32) -> Option<ListenerOwner> {
        Some(ListenerOwner {
            process: ProcessFacts {
                process: Process {
                    pid,
                    comm: "server".to_string(),
                    source: OwnerSource::Socket,
                    workload: Workload::default(),
                },
                open_fds: 8,
                fd_limit: Some(1024),
            },
            requested_backlog: Some(128),
        })
    }

    #[test]
    fn owners_are_looked_up_once_and_the_least_recently_asked_go_first() {
        let mut cache = OwnerCache::with_capacity(2);
        assert_eq!(cache.owner(1, 10, || held_by(100)), held_by(100));
        assert_eq!(cache.owner(1, 11, || None), None);
        // Remembered: no second lookup.
        assert_eq!(
            cache.owner(1, 10, || panic!("looked up twice")),
            held_by(100)
        );
        // A third listener lets the least recently asked (1, 11) go.
        cache.owner(2, 10, || held_by(200));
        assert_eq!(cache.take_evicted(), 1);
        assert_eq!(
            cache.owner(1, 10, || panic!("still remembered")),
            held_by(100)
        );
        assert_eq!(cache.owner(1, 11, || held_by(101)), held_by(101));
        assert_eq!(cache.take_evicted(), 1);
    }
}
