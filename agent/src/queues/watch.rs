//! Samples every namespace's queue counters and listeners, and credits counter growth to the
//! listeners that were full when it happened.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context;
use tcpwhy_common::listen_overflow::ListenOverflows;

use super::{
    drops::{Certainty, ListenerDrops},
    kernel_view::{ListenerProbes, SynAckSeen},
};
use crate::{
    explain::cause::Cause,
    listeners::{
        owner::{ProcessFacts, find_socket_owner},
        snapshot::{ListenerNow, NamespaceProbe},
    },
    netns::{
        self, Namespace,
        netstat::{CounterGrowth, TcpExt},
    },
};

/// How often namespaces are looked for again (containers come and go) and sysctls re-read.
const RESCAN_EVERY: Duration = Duration::from_secs(1);
/// A listener that re-sent a SYN-ACK this recently may be the one whose final ACKs were dropped
/// (the SYN-ACK timer starts at 1 s and doubles).
const RECENT_SYNACK: Duration = Duration::from_secs(3);
/// A listener seen full this recently is a candidate for drops counted now: the queue can drain
/// between the drop and the sample.
const RECENTLY_FULL: Duration = Duration::from_secs(1);

/// The owner of a listener, with the backlog its listen() asked for when tcpwhy saw the call.
#[derive(Debug, Clone)]
pub struct ListenerOwner {
    pub process: ProcessFacts,
    pub requested_backlog: Option<i32>,
}

/// What the samples saw of one listener over the window.
#[derive(Default)]
struct FullSpell {
    full_now: bool,
    last_full: Option<Instant>,
    total: Duration,
    /// SYN-ACK retransmits counted by the kernel since the probes attached.
    synack_retransmits: u64,
    synack_remote: Option<SocketAddr>,
    last_synack: Option<Instant>,
}

impl Watched {
    /// Listeners whose samples saw something (`when`) no longer than `window` ago.
    fn seen_within(
        &self,
        now: Instant,
        window: Duration,
        when: fn(&FullSpell) -> Option<Instant>,
    ) -> Vec<ListenerNow> {
        self.listeners
            .iter()
            .filter(|l| {
                self.spells
                    .get(&l.local)
                    .and_then(when)
                    .is_some_and(|at| now.duration_since(at) <= window)
            })
            .cloned()
            .collect()
    }
}

/// What the probes in the kernel counted, read once per tick for every namespace.
struct KernelSamples {
    synacks: HashMap<(u64, SocketAddr), SynAckSeen>,
    exact: Option<HashMap<(u64, SocketAddr), ListenOverflows>>,
}

fn overflow_growth(now: &ListenOverflows, earlier: &ListenOverflows) -> ListenOverflows {
    ListenOverflows {
        syn_accept_queue_full: now
            .syn_accept_queue_full
            .saturating_sub(earlier.syn_accept_queue_full),
        ack_accept_queue_full: now
            .ack_accept_queue_full
            .saturating_sub(earlier.ack_accept_queue_full),
        syn_queue_full: now.syn_queue_full.saturating_sub(earlier.syn_queue_full),
        ..*now
    }
}

struct Watched {
    probe: NamespaceProbe,
    /// The namespace's counters when watching began.
    baseline: TcpExt,
    /// Function-probe totals per listener at the previous sample.
    exact_seen: HashMap<SocketAddr, ListenOverflows>,
    /// When the function probes last saw each listener's SYN queue at its limit.
    syn_limit_seen: HashMap<SocketAddr, Instant>,
    counters: TcpExt,
    listeners: Vec<ListenerNow>,
    spells: HashMap<SocketAddr, FullSpell>,
    sampled_at: Instant,
}

#[derive(Default)]
pub struct QueueWatch {
    namespaces: BTreeMap<u64, Watched>,
    rescanned_at: Option<Instant>,
    drops: BTreeMap<(u64, Option<SocketAddr>, Cause), ListenerDrops>,
    owners: HashMap<(u64, u32), Option<ListenerOwner>>,
    /// For `take_new_drops`: how much of each record was already handed out.
    reported: HashMap<(u64, Option<SocketAddr>, Cause), u64>,
    /// Problems met while sampling, each said once.
    pub problems: Vec<String>,
}

impl QueueWatch {
    /// Samples every namespace once; call this often (every 100 ms or so).
    pub fn tick(&mut self, now: Instant, probes: &dyn ListenerProbes) {
        if self
            .rescanned_at
            .is_none_or(|at| now.duration_since(at) >= RESCAN_EVERY)
        {
            self.rescan(now);
            self.rescanned_at = Some(now);
        }
        let kernel = KernelSamples {
            synacks: probes.synack_retransmits(),
            exact: probes.listen_overflows(),
        };
        let inodes: Vec<u64> = self.namespaces.keys().copied().collect();
        for inode in inodes {
            if let Err(err) = self.sample(inode, now, probes, &kernel) {
                if netns::list().iter().any(|ns| ns.inode == inode) {
                    self.problem(format!("namespace {inode}: {err:#}"));
                } else {
                    // Its last process exited between the rescan and this sample.
                    self.settle_listener_totals(inode);
                    self.namespaces.remove(&inode);
                }
            }
        }
    }

    fn problem(&mut self, text: String) {
        if !self.problems.contains(&text) {
            tracing::warn!("{text}");
            self.problems.push(text);
        }
    }

    fn rescan(&mut self, now: Instant) {
        let present = netns::list();
        let gone: Vec<u64> = self
            .namespaces
            .keys()
            .filter(|inode| !present.iter().any(|ns| ns.inode == **inode))
            .copied()
            .collect();
        for inode in gone {
            self.settle_listener_totals(inode);
            self.namespaces.remove(&inode);
        }
        for namespace in present {
            match self.namespaces.get_mut(&namespace.inode) {
                Some(watched) => {
                    let _ = watched.probe.refresh_sysctls();
                }
                None => {
                    let inode = namespace.inode;
                    match start_watching(namespace, now) {
                        Ok(watched) => {
                            self.namespaces.insert(inode, watched);
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

    fn sample(
        &mut self,
        inode: u64,
        now: Instant,
        probes: &dyn ListenerProbes,
        kernel: &KernelSamples,
    ) -> anyhow::Result<()> {
        let watched = self
            .namespaces
            .get_mut(&inode)
            .expect("sampled namespaces are watched");
        let elapsed = now.duration_since(watched.sampled_at);
        watched.sampled_at = now;
        let listeners = watched.probe.listeners()?;
        for listener in &listeners {
            let spell = watched.spells.entry(listener.local).or_default();
            if listener.is_full() {
                if spell.full_now {
                    spell.total += elapsed;
                }
                spell.full_now = true;
                spell.last_full = Some(now);
            } else {
                spell.full_now = false;
            }
        }
        for ((ns, local), seen) in kernel.synacks.iter().filter(|((ns, _), _)| *ns == inode) {
            let _ = ns;
            let spell = watched.spells.entry(*local).or_default();
            if seen.count > spell.synack_retransmits {
                spell.synack_retransmits = seen.count;
                spell.synack_remote = Some(seen.remote);
                spell.last_synack = Some(now);
            }
        }
        let counters = watched.probe.counters()?;
        let growth = counters.growth_since(&watched.counters);
        watched.counters = counters;
        watched.listeners = listeners;
        // Function probes, where they run, count each drop at its listener: no inference needed.
        let grown: Vec<(SocketAddr, ListenOverflows)> = kernel
            .exact
            .iter()
            .flatten()
            .filter(|((ns, _), _)| *ns == inode)
            .filter_map(|((_, local), totals)| {
                let earlier = watched
                    .exact_seen
                    .insert(*local, *totals)
                    .unwrap_or_default();
                let grown = overflow_growth(totals, &earlier);
                let counted = grown.syn_accept_queue_full
                    + grown.ack_accept_queue_full
                    + grown.syn_queue_full;
                (counted > 0).then_some((*local, grown))
            })
            .collect();
        if kernel.exact.is_some() {
            tracing::debug!(inode, ?grown, ?growth, "exact queue overflows this sample");
        }
        if kernel.exact.is_some() {
            for (local, _) in grown.iter().filter(|(_, g)| g.syn_queue_full > 0) {
                watched.syn_limit_seen.insert(*local, now);
            }
            self.attribute_exact(inode, &grown, &growth, now, probes)?;
        } else if growth.any() {
            // No function probe runs here: infer from the samples.
            self.attribute(inode, &growth, now, probes)?;
        }
        Ok(())
    }

    /// Records drops seen per listener by the function probes: accept-queue overflows as they
    /// counted them; SYN-queue overflows at the listeners they saw at their limit, with the
    /// counts the namespace's counters give (drop or cookie).
    fn attribute_exact(
        &mut self,
        inode: u64,
        grown: &[(SocketAddr, ListenOverflows)],
        counters: &CounterGrowth,
        now: Instant,
        probes: &dyn ListenerProbes,
    ) -> anyhow::Result<()> {
        let listeners: Vec<(ListenerNow, ListenOverflows)> = grown
            .iter()
            .map(|(local, g)| {
                let sampled = self.namespaces[&inode]
                    .listeners
                    .iter()
                    .find(|l| l.local == *local)
                    .cloned();
                let listener = ListenerNow {
                    local: *local,
                    queue_len: g.queue_len.max(sampled.as_ref().map_or(0, |l| l.queue_len)),
                    queue_limit: g.queue_limit,
                    // The socket inode finds the owner; a listener already closed has none.
                    inode: sampled.map_or(0, |l| l.inode),
                };
                (listener, *g)
            })
            .collect();
        let half_open: HashMap<SocketAddr, u32> = listeners
            .iter()
            .map(|(l, g)| (l.local, g.half_open))
            .collect();
        for (listener, g) in &listeners {
            let accept = g.syn_accept_queue_full + g.ack_accept_queue_full;
            if accept > 0 {
                let candidates = std::slice::from_ref(listener);
                self.record(
                    inode,
                    Cause::AcceptQueueOverflow,
                    accept,
                    (candidates, Some(Certainty::Exact)),
                    &half_open,
                    probes,
                );
            }
        }
        // SYN-queue drops and cookies are counted by the namespace; the probes name the
        // listeners that were at their limit, possibly a sample earlier than the counters moved.
        let watched = &self.namespaces[&inode];
        let named: Vec<ListenerNow> = watched
            .listeners
            .iter()
            .filter(|l| {
                watched
                    .syn_limit_seen
                    .get(&l.local)
                    .is_some_and(|at| now.duration_since(*at) <= RECENTLY_FULL)
            })
            .cloned()
            .collect();
        self.attribute_syn_queue(inode, counters, probes, &named)
    }

    /// Credits the namespace's counter growth to the listeners whose queues explain it.
    fn attribute(
        &mut self,
        inode: u64,
        growth: &CounterGrowth,
        now: Instant,
        probes: &dyn ListenerProbes,
    ) -> anyhow::Result<()> {
        let watched = &self.namespaces[&inode];
        if growth.listen_overflows > 0 {
            let full = watched.seen_within(now, RECENTLY_FULL, |s| s.last_full);
            let (full, certainty) = if full.is_empty() {
                // No sample saw a full queue; listeners re-sending SYN-ACKs just now are the ones
                // whose handshakes' final ACKs were dropped.
                let retransmitting = watched.seen_within(now, RECENT_SYNACK, |s| s.last_synack);
                let certainty = if retransmitting.is_empty() {
                    None
                } else {
                    Some(Certainty::Retransmits)
                };
                (retransmitting, certainty)
            } else {
                (full, None)
            };
            self.record(
                inode,
                Cause::AcceptQueueOverflow,
                growth.listen_overflows,
                (&full, certainty),
                &HashMap::new(),
                probes,
            );
        }
        self.attribute_syn_queue(inode, growth, probes, &[])
    }

    /// Credits SYN-queue counter growth (drops or cookies) to `named` listeners (those the
    /// function probes saw at their limit), else to those whose half-open count is at the limit
    /// now.
    fn attribute_syn_queue(
        &mut self,
        inode: u64,
        growth: &CounterGrowth,
        probes: &dyn ListenerProbes,
        named: &[ListenerNow],
    ) -> anyhow::Result<()> {
        let syn_queue_drops = growth.req_q_full_drop;
        let cookies = growth.req_q_full_do_cookies.max(growth.syncookies_sent);
        if syn_queue_drops == 0 && cookies == 0 {
            return Ok(());
        }
        let watched = &self.namespaces[&inode];
        let half_open = watched.probe.half_open_by_listener()?;
        let (full, certainty) = if named.is_empty() {
            // reqsk_queue_is_full(): half-open count at (or over) the listener's backlog limit.
            let mut full: Vec<ListenerNow> = watched
                .listeners
                .iter()
                .filter(|l| half_open.get(&l.local).is_some_and(|&n| n >= l.queue_limit))
                .cloned()
                .collect();
            if full.is_empty() {
                // The SYN queue may have drained since; the busiest one is the best guess.
                full.extend(
                    watched
                        .listeners
                        .iter()
                        .filter(|l| half_open.get(&l.local).is_some_and(|&n| n > 0))
                        .max_by_key(|l| half_open[&l.local])
                        .cloned(),
                );
            }
            (full, None)
        } else {
            let certainty = if named.len() == 1 {
                Certainty::Exact
            } else {
                Certainty::Shared
            };
            (named.to_vec(), Some(certainty))
        };
        for (cause, count) in [
            (Cause::SynQueueOverflow, syn_queue_drops),
            (Cause::SynFloodCookies, cookies),
        ] {
            if count > 0 {
                self.record(inode, cause, count, (&full, certainty), &half_open, probes);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        inode: u64,
        cause: Cause,
        count: u64,
        (candidates, known_certainty): (&[ListenerNow], Option<Certainty>),
        half_open: &HashMap<SocketAddr, u32>,
        probes: &dyn ListenerProbes,
    ) {
        let certainty = known_certainty.unwrap_or(match candidates.len() {
            0 => Certainty::Unattributed,
            1 => Certainty::High,
            _ => Certainty::Shared,
        });
        let sysctls = self.namespaces[&inode].probe.sysctls.clone();
        let targets: Vec<Option<&ListenerNow>> = if candidates.is_empty() {
            vec![None]
        } else {
            candidates.iter().map(Some).collect()
        };
        for target in targets {
            let owner = target.and_then(|l| self.owner_of(inode, l, probes));
            let local = target.map(|l| l.local);
            let entry = self
                .drops
                .entry((inode, local, cause))
                .or_insert_with(|| ListenerDrops {
                    cause,
                    namespace: inode,
                    listener: local,
                    count: 0,
                    certainty,
                    queue_len_max: 0,
                    queue_limit: 0,
                    half_open_max: 0,
                    full_for: Duration::ZERO,
                    synack_retransmits: 0,
                    sample_remote: None,
                    owner: None,
                    requested_backlog: None,
                    sysctls: sysctls.clone(),
                    counters: CounterGrowth::default(),
                    shared_with: Vec::new(),
                });
            entry.count += count;
            entry.sysctls = sysctls.clone();
            if certainty == Certainty::Shared {
                entry.certainty = Certainty::Shared;
                for other in candidates.iter().filter(|c| Some(c.local) != local) {
                    if !entry.shared_with.contains(&other.local) {
                        entry.shared_with.push(other.local);
                    }
                }
            }
            if let Some(listener) = target {
                entry.queue_len_max = entry.queue_len_max.max(listener.queue_len);
                entry.queue_limit = listener.queue_limit;
                entry.half_open_max = entry
                    .half_open_max
                    .max(half_open.get(&listener.local).copied().unwrap_or(0));
            }
            if let Some(owner) = owner {
                entry.requested_backlog = owner.requested_backlog;
                entry.owner = Some(owner.process);
            }
        }
    }

    /// Resolves (once) which process holds a listener, scanning only its namespace's processes.
    fn owner_of(
        &mut self,
        inode: u64,
        listener: &ListenerNow,
        probes: &dyn ListenerProbes,
    ) -> Option<ListenerOwner> {
        self.owners
            .entry((inode, listener.inode))
            .or_insert_with(|| {
                // Processes of the namespace first; a socket can also be held by a process that
                // created it from a thread that had entered the namespace.
                let (inside, outside): (Vec<u32>, Vec<u32>) = netns::pids()
                    .into_iter()
                    .partition(|&pid| netns::namespace_of(pid) == Some(inode));
                let pids = inside.into_iter().chain(outside);
                find_socket_owner(listener.inode, pids).map(|(process, fd)| ListenerOwner {
                    requested_backlog: probes.requested_backlog(process.pid, fd),
                    process,
                })
            })
            .clone()
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
            .namespaces
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

    /// Listeners worth a look right now: full, nearly full, or capped by somaxconn.
    pub fn snapshot(&mut self, probes: &dyn ListenerProbes) -> Vec<ListenerCondition> {
        let mut found = Vec::new();
        let inodes: Vec<u64> = self.namespaces.keys().copied().collect();
        for inode in inodes {
            let (listeners, somaxconn) = {
                let w = &self.namespaces[&inode];
                (w.listeners.clone(), w.probe.sysctls.somaxconn)
            };
            for listener in listeners {
                let at_somaxconn = somaxconn.is_some_and(|s| i64::from(listener.queue_limit) == s);
                let interesting = listener.is_full() || listener.is_nearly_full() || at_somaxconn;
                if !interesting {
                    continue;
                }
                let owner = self.owner_of(inode, &listener, probes);
                let requested = owner.as_ref().and_then(|o| o.requested_backlog);
                let capped = requested.is_some_and(|r| r < 0 || r as u32 > listener.queue_limit);
                let condition = if listener.is_full() {
                    "full"
                } else if listener.is_nearly_full() {
                    "nearly_full"
                } else if capped {
                    "backlog_capped"
                } else if requested.is_none() {
                    "limit_equals_somaxconn"
                } else {
                    continue;
                };
                found.push(ListenerCondition {
                    namespace: inode,
                    listener: listener.local.to_string(),
                    condition,
                    queue_len: listener.queue_len,
                    queue_limit: listener.queue_limit,
                    requested_backlog: requested,
                    somaxconn,
                    process: owner.map(|o| o.process),
                });
            }
        }
        found
    }

    /// Copies what the samples saw of each listener (time full, SYN-ACK retransmits) and the
    /// namespace's counter growth into its drop records, before the namespace's samples are let
    /// go.
    fn settle_listener_totals(&mut self, inode: u64) {
        let Some(watched) = self.namespaces.get(&inode) else {
            return;
        };
        for drops in self.drops.values_mut().filter(|d| d.namespace == inode) {
            // The namespace's counters over the whole window: samples and probes may see the same
            // drops in neighbouring ticks, so per-tick sums would not line up.
            drops.counters = watched.counters.growth_since(&watched.baseline);
            if let Some(spell) = drops.listener.and_then(|l| watched.spells.get(&l)) {
                drops.full_for = spell.total;
                drops.synack_retransmits = spell.synack_retransmits;
                drops.sample_remote = spell.synack_remote;
            }
        }
    }

    /// Drops recorded since the last call, each with how many are new (for counters and the
    /// event stream of a long-running agent).
    pub fn take_new_drops(&mut self) -> Vec<(ListenerDrops, u64)> {
        let inodes: Vec<u64> = self.namespaces.keys().copied().collect();
        for inode in inodes {
            self.settle_listener_totals(inode);
        }
        let mut fresh = Vec::new();
        for (key, drops) in &self.drops {
            let reported = self.reported.entry(*key).or_insert(0);
            if drops.count > *reported {
                fresh.push((drops.clone(), drops.count - *reported));
                *reported = drops.count;
            }
        }
        fresh
    }

    /// The namespaces being watched (shared with the connection-state findings).
    pub fn namespaces(&self) -> impl Iterator<Item = &NamespaceProbe> {
        self.namespaces.values().map(|w| &w.probe)
    }

    /// Every listener seen at the last sample, with its namespace.
    pub fn listeners_now(&self) -> impl Iterator<Item = (u64, &ListenerNow)> {
        self.namespaces
            .iter()
            .flat_map(|(inode, w)| w.listeners.iter().map(move |l| (*inode, l)))
    }

    /// TCP sockets by state over every namespace.
    pub fn connections_by_state(&self) -> HashMap<u8, u64> {
        let mut total = HashMap::new();
        for watched in self.namespaces.values() {
            for (state, count) in watched.probe.count_by_state().unwrap_or_default() {
                *total.entry(state).or_insert(0) += count;
            }
        }
        total
    }

    /// The drops seen, with how long each listener was full.
    pub fn into_drops(mut self) -> Vec<ListenerDrops> {
        let inodes: Vec<u64> = self.namespaces.keys().copied().collect();
        for inode in inodes {
            self.settle_listener_totals(inode);
        }
        let mut drops: Vec<ListenerDrops> = self.drops.into_values().collect();
        drops.sort_by_key(|d| std::cmp::Reverse(d.count));
        drops
    }
}

fn start_watching(namespace: Namespace, now: Instant) -> anyhow::Result<Watched> {
    let mut probe = NamespaceProbe::open(namespace)?;
    let counters = probe.counters()?;
    let listeners = probe
        .listeners()
        .context("listing listeners with sock_diag (is the tcp_diag module available?)")?;
    Ok(Watched {
        probe,
        baseline: counters.clone(),
        exact_seen: HashMap::new(),
        syn_limit_seen: HashMap::new(),
        counters,
        listeners,
        spells: HashMap::new(),
        sampled_at: now,
    })
}

/// A listener in a state worth reporting even without drops.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListenerCondition {
    pub namespace: u64,
    pub listener: String,
    /// `full`, `nearly_full`, `backlog_capped` (listen() asked for more than somaxconn allows),
    /// or `limit_equals_somaxconn` (possibly capped; the listen() call was not seen).
    pub condition: &'static str,
    pub queue_len: u32,
    pub queue_limit: u32,
    pub requested_backlog: Option<i32>,
    pub somaxconn: Option<i64>,
    pub process: Option<ProcessFacts>,
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

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
        let mut watch = QueueWatch::default();
        let start = Instant::now();
        watch.tick(start, &CountedByFunctionProbes(HashMap::new()));

        let counted = ListenOverflows {
            syn_accept_queue_full: 3,
            ack_accept_queue_full: 2,
            queue_len: 5,
            queue_limit: 4,
            ..ListenOverflows::default()
        };
        let probes = CountedByFunctionProbes(HashMap::from([((ours, local), counted)]));
        watch.tick(start + Duration::from_millis(100), &probes);
        // The same totals again: nothing new happened.
        watch.tick(start + Duration::from_millis(200), &probes);

        let drops = watch.into_drops();
        let ours = drops
            .iter()
            .find(|d| d.listener == Some(local))
            .expect("credited");
        assert_eq!(ours.cause, Cause::AcceptQueueOverflow);
        assert_eq!(ours.count, 5);
        assert_eq!(ours.certainty, Certainty::Exact);
        assert_eq!(ours.queue_len_max, 5);
        assert_eq!(ours.owner.as_ref().unwrap().pid, std::process::id());
    }
}
