//! Every network namespace of the host, sampled: its listeners, its queue counters, its
//! sysctls, and the owners of its listeners. The reading is here; deciding which listener a drop
//! belongs to is `analysis::queues`.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;

use super::{kernel_view::ListenerProbes, owner_cache::OwnerCache};
use crate::{
    analysis::queues::{
        attribution::{History, Sample},
        conditions::{self, ListenerCondition},
        drops::{Ledger, ListenerDrops, ListenerOwner},
    },
    host::{
        namespace::{ListenerNow, NamespaceProbe, QueueSysctls},
        netns::{self, Namespace},
        netstat::TcpExt,
        owners::{ProcessFacts, find_socket_owner},
    },
};

/// How often namespaces are looked for again (containers come and go) and sysctls re-read.
const RESCAN_EVERY: Duration = Duration::from_secs(1);

struct Watched {
    probe: NamespaceProbe,
    /// The namespace's counters when watching began.
    baseline: TcpExt,
    counters: TcpExt,
    listeners: Vec<ListenerNow>,
    history: History,
}

/// How many entries each bounded map of the namespaces let go.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceEvictions {
    pub listener_owners: u64,
    pub queue_drops: u64,
    pub queue_history: u64,
}

#[derive(Default)]
pub struct Namespaces {
    watched: BTreeMap<u64, Watched>,
    rescanned_at: Option<Instant>,
    ledger: Ledger,
    owners: OwnerCache,
    /// Problems met while sampling, each said once.
    pub problems: Vec<String>,
}

impl Namespaces {
    /// Samples every namespace once; the engine calls this every sample period.
    pub fn tick(&mut self, now: Instant, probes: &dyn ListenerProbes) {
        if self
            .rescanned_at
            .is_none_or(|at| now.duration_since(at) >= RESCAN_EVERY)
        {
            self.rescan();
            self.rescanned_at = Some(now);
        }
        let synacks = probes.synack_retransmits();
        let exact = probes.listen_overflows();
        let inodes: Vec<u64> = self.watched.keys().copied().collect();
        for inode in inodes {
            let in_namespace = |key: &(u64, SocketAddr)| key.0 == inode;
            let sampled = self.sample(inode, now).map(|mut sample| {
                sample.synacks = synacks
                    .iter()
                    .filter(|(key, _)| in_namespace(key))
                    .map(|((_, local), seen)| (*local, *seen))
                    .collect();
                sample.exact = exact.as_ref().map(|totals| {
                    totals
                        .iter()
                        .filter(|(key, _)| in_namespace(key))
                        .map(|((_, local), counted)| (*local, *counted))
                        .collect()
                });
                sample
            });
            match sampled {
                Ok(sample) => self.attribute(inode, &sample, probes),
                Err(err) if netns::list().iter().any(|ns| ns.inode == inode) => {
                    self.problem(format!("namespace {inode}: {err:#}"));
                }
                // Its last process exited between the rescan and this sample.
                Err(_) => self.forget(inode),
            }
        }
    }

    fn problem(&mut self, text: String) {
        if !self.problems.contains(&text) {
            tracing::warn!("{text}");
            self.problems.push(text);
        }
    }

    fn rescan(&mut self) {
        let present = netns::list();
        let gone: Vec<u64> = self
            .watched
            .keys()
            .filter(|inode| !present.iter().any(|ns| ns.inode == **inode))
            .copied()
            .collect();
        for inode in gone {
            self.forget(inode);
        }
        for namespace in present {
            match self.watched.get_mut(&namespace.inode) {
                Some(watched) => {
                    let _ = watched.probe.refresh_sysctls();
                }
                None => {
                    let inode = namespace.inode;
                    match start_watching(namespace) {
                        Ok(watched) => {
                            self.watched.insert(inode, watched);
                        }
                        // Said once; the namespace is retried at each rescan.
                        Err(err) => self.problem(format!(
                            "cannot watch the listen queues of network namespace {inode}: {err:#}"
                        )),
                    }
                }
            }
        }
    }

    /// Settles a namespace's records and lets its samples go.
    fn forget(&mut self, inode: u64) {
        self.settle(inode);
        self.watched.remove(&inode);
    }

    /// Reads the namespace's listeners and counters (and its half-open connections when the
    /// SYN-queue counters moved).
    fn sample(&mut self, inode: u64, now: Instant) -> anyhow::Result<Sample> {
        let watched = self
            .watched
            .get_mut(&inode)
            .expect("sampled namespaces are watched");
        let listeners = watched.probe.listeners()?;
        let counters = watched.probe.counters()?;
        let growth = counters.growth_since(&watched.counters);
        watched.counters = counters;
        watched.listeners = listeners.clone();
        let half_open = if growth.syn_queue_moved() {
            watched.probe.half_open_by_listener()?
        } else {
            HashMap::new()
        };
        Ok(Sample {
            at: now,
            listeners,
            growth,
            synacks: Vec::new(),
            exact: None,
            half_open,
        })
    }

    fn attribute(&mut self, inode: u64, sample: &Sample, probes: &dyn ListenerProbes) {
        let credits = {
            let watched = self.watched.get_mut(&inode).expect("watched");
            let credits = watched.history.observe(sample);
            if sample.exact.is_some() && !credits.is_empty() {
                tracing::debug!(inode, ?credits, growth = ?sample.growth, "exact queue overflows");
            }
            credits
        };
        for credit in credits {
            let owner = credit
                .listener
                .as_ref()
                .and_then(|l| self.owner_of(inode, l, probes));
            let sysctls = self.watched[&inode].probe.sysctls.clone();
            self.ledger
                .record(inode, &credit, owner, &sysctls, SystemTime::now());
        }
    }

    fn settle(&mut self, inode: u64) {
        if let Some(watched) = self.watched.get(&inode) {
            let window = watched.counters.growth_since(&watched.baseline);
            self.ledger.settle(inode, &window, &watched.history);
        }
    }

    fn settle_all(&mut self) {
        let inodes: Vec<u64> = self.watched.keys().copied().collect();
        for inode in inodes {
            self.settle(inode);
        }
    }

    /// Resolves (once) which process holds a listener, scanning its namespace's processes first.
    fn owner_of(
        &mut self,
        inode: u64,
        listener: &ListenerNow,
        probes: &dyn ListenerProbes,
    ) -> Option<ListenerOwner> {
        self.owners.owner(inode, listener.inode, || {
            // A socket can also be held by a process that created it from a thread that had
            // entered the namespace.
            let (inside, outside): (Vec<u32>, Vec<u32>) = netns::pids()
                .into_iter()
                .partition(|&pid| netns::namespace_of(pid) == Some(inode));
            let pids = inside.into_iter().chain(outside);
            find_socket_owner(listener.inode, pids).map(|(process, fd)| ListenerOwner {
                requested_backlog: probes.requested_backlog(process.process.pid, fd),
                process,
            })
        })
    }

    /// The process holding the listener that `local` belongs to in namespace `inode`: the
    /// listener itself, or the one an accepted connection on that port came from.
    pub fn listener_owner(
        &mut self,
        inode: u64,
        local: SocketAddr,
        probes: &dyn ListenerProbes,
    ) -> Option<ProcessFacts> {
        let listener = self
            .watched
            .get(&inode)?
            .listeners
            .iter()
            .find(|l| {
                l.local.port() == local.port()
                    && (l.local.ip() == local.ip() || l.local.ip().is_unspecified())
            })?
            .clone();
        self.owner_of(inode, &listener, probes).map(|o| o.process)
    }

    /// The queue sysctls of namespace `inode`, as last read.
    pub fn sysctls(&self, inode: u64) -> Option<&QueueSysctls> {
        self.watched.get(&inode).map(|w| &w.probe.sysctls)
    }

    /// Listeners worth a look right now: full, nearly full, or capped by somaxconn.
    pub fn listeners_in_trouble(&mut self, probes: &dyn ListenerProbes) -> Vec<ListenerCondition> {
        let mut found = Vec::new();
        let inodes: Vec<u64> = self.watched.keys().copied().collect();
        for inode in inodes {
            let (listeners, somaxconn) = {
                let w = &self.watched[&inode];
                (w.listeners.clone(), w.probe.sysctls.somaxconn)
            };
            for listener in listeners {
                if !conditions::worth_an_owner(&listener, somaxconn) {
                    continue;
                }
                let owner = self.owner_of(inode, &listener, probes);
                found.extend(conditions::condition(inode, &listener, somaxconn, owner));
            }
        }
        found
    }

    /// Every drop counted so far, over every listener.
    pub fn drops_so_far(&self) -> u64 {
        self.ledger.total()
    }

    /// Drops recorded since the last call, each with how many are new.
    pub fn take_new_drops(&mut self) -> Vec<(ListenerDrops, u64)> {
        self.settle_all();
        self.ledger.take_new()
    }

    /// Entries let go since the last call, to keep memory bounded: listener owners, drop
    /// records (after they were handed out), and what the samples saw of listeners long gone.
    pub fn take_evictions(&mut self) -> NamespaceEvictions {
        NamespaceEvictions {
            listener_owners: self.owners.take_evicted(),
            queue_drops: self.ledger.take_evicted(),
            queue_history: self
                .watched
                .values_mut()
                .map(|w| w.history.take_evicted())
                .sum(),
        }
    }

    /// The namespaces being watched (shared with the connection-state findings).
    pub fn probes(&self) -> impl Iterator<Item = &NamespaceProbe> {
        self.watched.values().map(|w| &w.probe)
    }

    /// Every listener seen at the last sample, with its namespace.
    pub fn listeners_now(&self) -> impl Iterator<Item = (u64, &ListenerNow)> {
        self.watched
            .iter()
            .flat_map(|(inode, w)| w.listeners.iter().map(move |l| (*inode, l)))
    }

    /// TCP sockets by state over every namespace.
    pub fn connections_by_state(&self) -> HashMap<u8, u64> {
        let mut total = HashMap::new();
        for watched in self.watched.values() {
            for (state, count) in watched.probe.count_by_state().unwrap_or_default() {
                *total.entry(state).or_insert(0) += count;
            }
        }
        total
    }

    /// The drops seen over the window, most first.
    pub fn into_drops(mut self) -> Vec<ListenerDrops> {
        self.settle_all();
        self.ledger.into_sorted()
    }
}

fn start_watching(namespace: Namespace) -> anyhow::Result<Watched> {
    let mut probe = NamespaceProbe::open(namespace)?;
    let counters = probe.counters()?;
    let listeners = probe
        .listeners()
        .context("listing listeners with sock_diag (is the tcp_diag module available?)")?;
    Ok(Watched {
        probe,
        baseline: counters.clone(),
        counters,
        listeners,
        history: History::default(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use tcpwhy_common::listen_overflow::ListenOverflows;

    use super::*;
    use crate::analysis::queues::{attribution::SynAckSeen, drops::Certainty};
    use crate::model::Cause;

    /// Stands in for the loaded programs: the counts the function probes would have made.
    struct CountedByFunctionProbes(HashMap<(u64, SocketAddr), ListenOverflows>);

    impl ListenerProbes for CountedByFunctionProbes {
        fn requested_backlog(&self, _pid: u32, _fd: u32) -> Option<i32> {
            None
        }
        fn synack_retransmits(&self) -> HashMap<(u64, SocketAddr), SynAckSeen> {
            HashMap::new()
        }
        fn listen_overflows(&self) -> Option<HashMap<(u64, SocketAddr), ListenOverflows>> {
            Some(self.0.clone())
        }
    }

    #[test]
    fn exact_counts_are_credited_to_their_listener_only_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let ours = netns::namespace_of(std::process::id()).unwrap();
        let mut namespaces = Namespaces::default();
        let start = Instant::now();
        namespaces.tick(start, &CountedByFunctionProbes(HashMap::new()));

        let counted = ListenOverflows {
            syn_accept_queue_full: 3,
            ack_accept_queue_full: 2,
            queue_len: 5,
            queue_limit: 4,
            ..ListenOverflows::default()
        };
        let probes = CountedByFunctionProbes(HashMap::from([((ours, local), counted)]));
        namespaces.tick(start + Duration::from_millis(100), &probes);
        // The same totals again: nothing new happened.
        namespaces.tick(start + Duration::from_millis(200), &probes);

        let drops = namespaces.into_drops();
        let ours = drops
            .iter()
            .find(|d| d.listener == Some(local))
            .expect("credited");
        assert_eq!(ours.cause, Cause::AcceptQueueOverflow);
        assert_eq!(ours.count, 5);
        assert_eq!(ours.certainty, Certainty::Exact);
        assert_eq!(ours.queue_len_max, 5);
        assert_eq!(ours.owner.as_ref().unwrap().process.pid, std::process::id());
    }
}
