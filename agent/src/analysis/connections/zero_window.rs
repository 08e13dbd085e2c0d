//! Zero-window stalls: connections whose peer advertised a zero window (its application stopped
//! reading) for more than [`STALL_MIN`], per process and peer.
//!
//! No hook that every kernel allows sees a zero window cheaply (`tcp:tcp_probe` fires for every
//! segment received). The persist timer does: while the peer's window is zero, the kernel probes
//! it, and sock_diag reports that timer (`idiag_timer` 4) with the bytes waiting to be sent. A
//! connection seen probing across looks more than [`STALL_MIN`] apart is stalled. A namespace's
//! sockets are only looked at while its count of zero-window probes sent (`TCPWinProbe`, read
//! with its other counters) moves, or a stall there is being followed: a busy namespace with no
//! zero window costs no socket dump.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    time::{Duration, Instant},
};

use netlink_packet_sock_diag::inet::StateFlags;
use serde_json::{Map, json};

use super::{HostLookup, human};
use crate::{
    analysis::narrative::zero_window,
    model::{Cause, Finding, Flow, Kind, OwnerSource, Process},
};

/// A zero window that lasts longer than this is a stall, not flow control doing its job.
pub const STALL_MIN: Duration = Duration::from_secs(2);
/// How often the sockets are looked at: a stall shows within `STALL_MIN` plus this.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Stalls that ended are remembered for the report, up to this many (the oldest go first).
const ENDED_KEPT: usize = 256;

/// The states in which this side still sends.
fn sending_states() -> StateFlags {
    StateFlags::ESTABLISHED | StateFlags::CLOSE_WAIT | StateFlags::FIN_WAIT1
}

/// One connection seen probing a zero window.
#[derive(Debug, Clone)]
pub struct Stall {
    pub flow: Flow,
    pub since: Instant,
    pub last_seen: Instant,
    /// The most bytes seen waiting in the send queue.
    pub queued_max: u32,
    pub inode: u32,
    /// Looked up once, when the stall passed [`STALL_MIN`].
    pub owner: Option<Process>,
}

impl Stall {
    pub fn lasted(&self) -> Duration {
        self.last_seen.duration_since(self.since)
    }
}

#[derive(Default)]
pub struct ZeroWindowWatch {
    probing: HashMap<Flow, Stall>,
    ended: Vec<Stall>,
    looked_at: Option<Instant>,
    /// Each namespace's zero-window probe count at the last look.
    probes_sent: HashMap<u64, u64>,
}

impl ZeroWindowWatch {
    /// Looks at every namespace's sending sockets, at most every [`LOOK_EVERY`].
    pub fn look(&mut self, now: Instant, host: &dyn HostLookup) {
        if self
            .looked_at
            .is_some_and(|at| now.duration_since(at) < LOOK_EVERY)
        {
            return;
        }
        self.looked_at = Some(now);
        let mut seen = HashSet::new();
        let namespaces = host.namespaces();
        self.probes_sent
            .retain(|netns, _| namespaces.contains(netns));
        for netns in namespaces {
            if !self.probing_in(netns, host.window_probes_sent(netns)) {
                continue;
            }
            let Some(sockets) = host.sockets_in(netns, sending_states()) else {
                continue;
            };
            for socket in sockets.iter().filter(|s| s.window_probing) {
                let flow = Flow {
                    netns,
                    local: super::canonical(socket.local),
                    remote: super::canonical(socket.remote),
                };
                seen.insert(flow);
                let stall = self.probing.entry(flow).or_insert_with(|| Stall {
                    flow,
                    since: now,
                    last_seen: now,
                    queued_max: 0,
                    inode: socket.inode,
                    owner: None,
                });
                stall.last_seen = now;
                stall.queued_max = stall.queued_max.max(socket.send_queue);
            }
        }
        let (ongoing, over): (HashMap<Flow, Stall>, HashMap<Flow, Stall>) =
            std::mem::take(&mut self.probing)
                .into_iter()
                .partition(|(flow, _)| seen.contains(flow));
        self.probing = ongoing;
        self.name_owners(host);
        self.ended
            .extend(over.into_values().filter(|s| s.lasted() >= STALL_MIN));
        let excess = self.ended.len().saturating_sub(ENDED_KEPT);
        self.ended.drain(..excess);
    }

    /// Whether a namespace may hold a zero window: its probe count moved (or is unknown), or a
    /// stall there is being followed. Notes the count.
    fn probing_in(&mut self, netns: u64, probes_sent: Option<u64>) -> bool {
        let following = self.probing.keys().any(|flow| flow.netns == netns);
        let moved = match probes_sent {
            Some(count) => self.probes_sent.insert(netns, count) != Some(count),
            None => true,
        };
        following || moved
    }

    /// Finds the process of each stall that just passed [`STALL_MIN`], while its socket lives.
    fn name_owners(&mut self, host: &dyn HostLookup) {
        let mut unnamed: BTreeMap<u64, HashSet<u32>> = BTreeMap::new();
        for stall in self.probing.values() {
            if stall.owner.is_none() && stall.inode != 0 && stall.lasted() >= STALL_MIN {
                unnamed
                    .entry(stall.flow.netns)
                    .or_default()
                    .insert(stall.inode);
            }
        }
        for (netns, inodes) in unnamed {
            let owners = host.socket_owners(netns, &inodes);
            for stall in self.probing.values_mut() {
                if stall.flow.netns == netns
                    && let Some(facts) = owners.get(&stall.inode)
                {
                    stall.owner = Some(Process {
                        source: OwnerSource::Socket,
                        ..facts.process.clone()
                    });
                }
            }
        }
    }

    /// The stalls of this run that lasted more than [`STALL_MIN`], per namespace, process and
    /// peer.
    pub fn findings(&self) -> Vec<Finding> {
        let mut by_peer: BTreeMap<(u64, u32, SocketAddr), Vec<&Stall>> = BTreeMap::new();
        let lasting = self
            .probing
            .values()
            .chain(&self.ended)
            .filter(|s| s.lasted() >= STALL_MIN);
        for stall in lasting {
            let pid = stall.owner.as_ref().map_or(0, |p| p.pid);
            by_peer
                .entry((stall.flow.netns, pid, stall.flow.remote))
                .or_default()
                .push(stall);
        }
        by_peer
            .into_iter()
            .map(|((netns, _, remote), stalls)| finding(netns, remote, &stalls, &self.probing))
            .collect()
    }
}

fn finding(
    netns: u64,
    remote: SocketAddr,
    stalls: &[&Stall],
    probing: &HashMap<Flow, Stall>,
) -> Finding {
    let longest = stalls
        .iter()
        .map(|s| s.lasted())
        .max()
        .expect("a group has a stall");
    let queued = stalls.iter().map(|s| u64::from(s.queued_max)).sum::<u64>();
    let ongoing = stalls
        .iter()
        .filter(|s| probing.contains_key(&s.flow))
        .count() as u64;
    let sample = stalls[0];
    let owner = stalls.iter().find_map(|s| s.owner.clone());
    let explanation = zero_window::explain(&zero_window::Stalled {
        connections: stalls.len() as u64,
        ongoing,
        local: sample.flow.local,
        remote,
        longest: human(longest),
        queued_bytes: queued,
        owner: owner.as_ref(),
    });
    let mut evidence = Map::new();
    evidence.insert("namespace".into(), json!(netns));
    evidence.insert("connections".into(), json!(stalls.len()));
    evidence.insert("ongoing".into(), json!(ongoing));
    evidence.insert("stalled_ms".into(), json!(longest.as_millis() as u64));
    evidence.insert("queued_bytes".into(), json!(queued));
    evidence.insert(
        "timer".into(),
        json!("persist (zero-window probe), sock_diag"),
    );
    Finding::observed(
        Kind::State,
        Cause::ZeroWindowStall,
        stalls.len() as u64,
        Some(sample.flow.local),
        Some(remote),
        owner,
        explanation,
        evidence,
    )
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::host::{namespace::ConnectionSysctls, owners::ProcessFacts, sock_diag::DiagSocket};

    /// One namespace whose sockets (and, when set, probe count) the test sets between looks.
    #[derive(Default)]
    struct OneNamespace {
        sockets: RefCell<Vec<DiagSocket>>,
        probes_sent: RefCell<Option<u64>>,
        dumps: RefCell<u32>,
    }

    impl HostLookup for OneNamespace {
        fn namespaces(&self) -> Vec<u64> {
            vec![7]
        }
        fn connection_sysctls(&self, _netns: u64) -> Option<&ConnectionSysctls> {
            None
        }
        fn sockets_in(&self, _netns: u64, states: StateFlags) -> Option<Vec<DiagSocket>> {
            assert_eq!(states, sending_states());
            *self.dumps.borrow_mut() += 1;
            Some(self.sockets.borrow().clone())
        }
        fn window_probes_sent(&self, _netns: u64) -> Option<u64> {
            *self.probes_sent.borrow()
        }
        fn socket_owners(&self, _netns: u64, _inodes: &HashSet<u32>) -> HashMap<u32, ProcessFacts> {
            HashMap::new()
        }
    }

    fn socket(port: u16, window_probing: bool, send_queue: u32) -> DiagSocket {
        DiagSocket {
            state: tcpwhy_common::tcp_state::ESTABLISHED,
            local: SocketAddr::from(([10, 0, 0, 2], port)),
            remote: SocketAddr::from(([10, 0, 0, 1], 8080)),
            recv_queue: 0,
            send_queue,
            inode: 0,
            window_probing,
            time_wait_left: None,
        }
    }

    #[test]
    fn only_windows_zero_across_looks_more_than_two_seconds_apart_are_stalls() {
        let host = OneNamespace::default();
        let mut watch = ZeroWindowWatch::default();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        *host.sockets.borrow_mut() = vec![socket(40000, true, 100), socket(40001, true, 5)];
        watch.look(at(0), &host);
        // Looks closer together than LOOK_EVERY are skipped.
        *host.sockets.borrow_mut() = vec![socket(40000, true, 300)];
        watch.look(at(0) + Duration::from_millis(500), &host);
        assert!(watch.findings().is_empty());
        // 40001 resumed after a second: flow control, not a stall.
        watch.look(at(1), &host);
        watch.look(at(2), &host);
        let found = watch.findings();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].local.as_deref(), Some("10.0.0.2:40000"));
        assert_eq!(found[0].evidence["queued_bytes"], 300);
        assert_eq!(found[0].evidence["ongoing"], 1);
        // Once over, it stays in the report, as ended.
        *host.sockets.borrow_mut() = vec![socket(40000, false, 0)];
        watch.look(at(3), &host);
        let found = watch.findings();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence["ongoing"], 0);
        assert_eq!(found[0].evidence["stalled_ms"], 2000);
    }

    #[test]
    fn a_namespace_is_dumped_only_while_it_probes_zero_windows_or_one_is_followed() {
        let host = OneNamespace::default();
        let mut watch = ZeroWindowWatch::default();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        *host.probes_sent.borrow_mut() = Some(10);
        watch.look(at(0), &host);
        assert_eq!(
            *host.dumps.borrow(),
            1,
            "the first look has no count to compare"
        );
        watch.look(at(1), &host);
        assert_eq!(*host.dumps.borrow(), 1, "no probe sent since: no dump");
        // A window closes: the count moves, the stall is followed even when it stops moving
        // (the persist timer backs off to minutes).
        *host.probes_sent.borrow_mut() = Some(11);
        *host.sockets.borrow_mut() = vec![socket(40000, true, 100)];
        watch.look(at(2), &host);
        watch.look(at(3), &host);
        watch.look(at(5), &host);
        assert_eq!(*host.dumps.borrow(), 4);
        assert_eq!(watch.findings().len(), 1);
        // It ended: followed no more.
        *host.sockets.borrow_mut() = Vec::new();
        watch.look(at(6), &host);
        watch.look(at(7), &host);
        assert_eq!(*host.dumps.borrow(), 5);
    }
}
