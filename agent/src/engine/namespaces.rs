//! Every network namespace of the host, sampled: its listeners, its queue counters, its
//! sysctls, and the owners of its listeners. The reading is here; deciding which listener a drop
//! belongs to is `analysis::queues`.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use netlink_packet_sock_diag::inet::StateFlags;
use tcpwhy_common::{listen_overflow::ListenOverflows, tcp_state};

use super::{
    SAMPLE_EVERY,
    kernel_view::{ListenerProbes, StateChanges},
    owner_cache::OwnerCache,
};
use crate::{
    analysis::queues::{
        attribution::{History, Sample, SynAckSeen},
        conditions::{self, ListenerCondition},
        drops::{Ledger, ListenerDrops, ListenerOwner},
    },
    host::{
        namespace::{ListenerNow, NamespaceProbe, QueueSysctls},
        netns::{self, Namespace},
        netstat::TcpExt,
        owners::{ProcessFacts, find_socket_owner},
        sock_diag::DiagSocket,
    },
};

/// How often the sysctls of namespaces that received packets are re-read, and how often
/// namespaces may be looked for again when a listen() happened somewhere: a container's
/// namespace matters here once something in it listens.
const RESCAN_EVERY: Duration = Duration::from_secs(1);
/// How often namespaces are looked for again regardless (a readlink per process): namespaces
/// with no new listener (clients only, or listeners from before tcpwhy started) and those gone.
/// Where the probes count state changes, only once some socket changed state since the last
/// look: a namespace that holds no socket has nothing to show.
const FULL_RESCAN_EVERY: Duration = Duration::from_secs(10);
/// A namespace that received nothing has nothing new to show but listeners that came or went
/// (and changed sysctls): its sysctls are re-read this often, and it is sampled this often
/// where the probes do not count listen() and close() of listeners.
const QUIET_RESAMPLE_EVERY: Duration = Duration::from_secs(10);

/// How long a namespace's sockets are trusted not to have changed when it received nothing:
/// timers move sockets without any packet arriving (TIME_WAIT ends, a connect() gives up), but
/// not sockets that are listening, established or waiting for their application to close.
/// Where the probes count state changes, they are trusted for as long as no socket anywhere
/// changed state.
const UNTIMED_SOCKETS_KEPT_FOR: Duration = Duration::from_secs(60);

/// Every TCP socket of a namespace as last dumped, kept since each dump walks the kernel's whole
/// connection table (on a busy host, tens of thousands of TIME_WAIT sockets).
struct SocketsDumped {
    at: Instant,
    /// The namespace's received packets when dumped.
    received: u64,
    /// The probes' count of state changes (over every namespace) when dumped.
    state_changes: Option<u64>,
    sockets: Vec<DiagSocket>,
}

impl SocketsDumped {
    /// Only sockets that no timer moves.
    fn untimed(&self) -> bool {
        self.sockets.iter().all(|s| {
            matches!(
                s.state,
                tcp_state::LISTEN | tcp_state::ESTABLISHED | tcp_state::CLOSE_WAIT
            )
        })
    }

    /// Worth keeping. Where the probes count state changes, every timer that moves a full
    /// socket is seen as a state change, and a timewait socket's end is known from its timer
    /// ([`Self::current`]); only a request socket (SYN_RECV) ends unseen at a time its timer
    /// does not tell. Elsewhere, only sockets no timer moves are kept.
    fn keepable(&self) -> bool {
        if self.state_changes.is_some() {
            self.sockets.iter().all(|s| s.state != tcp_state::SYN_RECV)
        } else {
            self.untimed()
        }
    }

    fn still_true(&self, received: u64, state_changes: Option<u64>) -> bool {
        let unchanged = state_changes.is_some() && state_changes == self.state_changes;
        self.received == received
            && (unchanged || (self.untimed() && self.at.elapsed() < UNTIMED_SOCKETS_KEPT_FOR))
    }

    /// The sockets as they are now: without the timewait sockets whose timer has ended them.
    fn current(&self) -> impl Iterator<Item = &DiagSocket> {
        let age = self.at.elapsed();
        self.sockets
            .iter()
            .filter(move |s| s.time_wait_left.is_none_or(|left| left > age))
    }

    /// Nothing but listeners: no connection that data could move on.
    fn listeners_only(&self) -> bool {
        self.sockets.iter().all(|s| s.state == tcp_state::LISTEN)
    }
}

/// What the probes counted for one namespace's listeners: SYN-ACK retransmits, and exact
/// overflows where the function probes run.
#[derive(Default, PartialEq)]
struct ProbeCounts {
    synacks: Vec<(SocketAddr, SynAckSeen)>,
    exact: Option<Vec<(SocketAddr, ListenOverflows)>>,
}

impl ProbeCounts {
    /// The namespace's share of what the probes counted over every namespace.
    fn of(
        inode: u64,
        synacks: &HashMap<(u64, SocketAddr), SynAckSeen>,
        exact: Option<&HashMap<(u64, SocketAddr), ListenOverflows>>,
    ) -> Self {
        fn ours<T: Copy>(
            inode: u64,
            counts: &HashMap<(u64, SocketAddr), T>,
        ) -> Vec<(SocketAddr, T)> {
            let mut ours: Vec<(SocketAddr, T)> = counts
                .iter()
                .filter(|((netns, _), _)| *netns == inode)
                .map(|((_, local), count)| (*local, *count))
                .collect();
            ours.sort_unstable_by_key(|(local, _)| *local);
            ours
        }
        Self {
            synacks: ours(inode, synacks),
            exact: exact.map(|totals| ours(inode, totals)),
        }
    }
}

struct Watched {
    probe: NamespaceProbe,
    /// The namespace's counters when watching began.
    baseline: TcpExt,
    counters: TcpExt,
    listeners: Vec<ListenerNow>,
    history: History,
    /// Packets its interfaces had received at the last look.
    received: u64,
    /// What the probes had counted at the last sample.
    probe_counts: ProbeCounts,
    /// When its listeners were last listed, and the probes' count of listener changes then.
    listed_at: Instant,
    listed_after: Option<u64>,
    sysctls_read_at: Instant,
    /// Whether it received packets since its sysctls were read.
    received_since_sysctls: bool,
    /// Whether it was sampled since its drops were last settled.
    unsettled: bool,
    sockets: RefCell<Option<SocketsDumped>>,
}

/// What a namespace's cheap signals say before it is sampled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signals {
    /// Nothing arrived, no queue to drain, the probes counted nothing new: no sample.
    Still,
    /// Nothing arrived, but a queue may have drained or a listener may have come or gone:
    /// sampled, though nothing shows activity.
    Due,
    /// Packets arrived or the probes counted something: sampled.
    Moved,
}

impl Watched {
    /// A sample can only differ from the last one when packets arrived (a queue grows only
    /// then), a queue was not empty (it may have drained), the probes counted something, or a
    /// listener came or went (`listener_changes`, counted over every namespace; else the
    /// namespace has been quiet for long). Reading net/dev to know costs a fraction of a
    /// netstat read and a sock_diag dump.
    fn signals(
        &mut self,
        now: Instant,
        probe_counts: &ProbeCounts,
        listener_changes: Option<u64>,
    ) -> anyhow::Result<Signals> {
        let received = self.probe.received_packets()?;
        let arrived = received != self.received;
        self.received = received;
        self.received_since_sysctls |= arrived;
        Ok(if arrived || *probe_counts != self.probe_counts {
            Signals::Moved
        } else if self.listeners.iter().any(|l| l.queue_len > 0)
            || self.listeners_may_differ(now, listener_changes)
        {
            Signals::Due
        } else {
            Signals::Still
        })
    }

    fn listeners_may_differ(&self, now: Instant, listener_changes: Option<u64>) -> bool {
        let since = now.duration_since(self.listed_at);
        match listener_changes {
            Some(_) => since >= RESCAN_EVERY && listener_changes != self.listed_after,
            None => since >= QUIET_RESAMPLE_EVERY,
        }
    }

    /// Whether nothing in it can have changed while no socket anywhere changed state and
    /// nothing reached a listener: it holds listeners only, with empty queues, as its last
    /// socket dump (still true) showed. Packets may still arrive, but none that TCP keeps.
    fn dormant(&self, state_changes: Option<u64>) -> bool {
        self.listeners.iter().all(|l| l.queue_len == 0)
            && self.sockets.borrow().as_ref().is_some_and(|dumped| {
                dumped.listeners_only() && dumped.still_true(self.received, state_changes)
            })
    }

    /// Its TCP sockets in `states`, dumped again only when they may have changed, or (`renew`)
    /// when sockets changed state somewhere since they were dumped: a dump taken since then is
    /// trusted for as long as no socket changes state again.
    fn sockets_in(
        &self,
        states: StateFlags,
        state_changes: Option<u64>,
        renew: bool,
    ) -> anyhow::Result<Vec<DiagSocket>> {
        let mut kept = self.sockets.borrow_mut();
        let still_true = |d: &SocketsDumped| {
            d.still_true(self.received, state_changes)
                && !(renew && d.state_changes != state_changes)
        };
        let all = match kept.take().filter(still_true) {
            Some(dumped) => dumped,
            None => SocketsDumped {
                at: Instant::now(),
                received: self.received,
                state_changes,
                sockets: self.probe.sockets_in(StateFlags::all())?,
            },
        };
        let chosen = all
            .current()
            .filter(|s| states.contains(StateFlags::from_bits_truncate(1 << s.state)))
            .cloned()
            .collect();
        if all.keepable() {
            *kept = Some(all);
        }
        Ok(chosen)
    }

    fn refresh_sysctls(&mut self, now: Instant) {
        if self.received_since_sysctls
            || now.duration_since(self.sysctls_read_at) >= QUIET_RESAMPLE_EVERY
        {
            let _ = self.probe.refresh_sysctls();
            self.sysctls_read_at = now;
            self.received_since_sysctls = false;
        }
    }
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
    /// The probes' counts of state changes, at this tick and at the last rescan.
    state_changes: Option<StateChanges>,
    state_changes_at_rescan: StateChanges,
    /// The probes' counts of listener arrivals and of state changes at the last tick, where
    /// both are counted.
    moved_at_last_tick: Option<(u64, u64)>,
    /// The probes' count of state changes when sockets were last counted by state.
    state_changes_at_count: Option<u64>,
    sysctls_checked_at: Option<Instant>,
    ledger: Ledger,
    owners: OwnerCache,
    /// Problems met while sampling, each said once.
    pub problems: Vec<String>,
}

impl Namespaces {
    /// Samples every namespace where something may have changed; the engine calls this every
    /// sample period. True when something moved: a socket started listening, packets arrived
    /// in a namespace, or the probes counted something for its listeners.
    pub fn tick(&mut self, now: Instant, probes: &dyn ListenerProbes) -> bool {
        let changes = probes.state_changes();
        self.state_changes = changes;
        // Where the exact queue probes run, a namespace that holds only idle listeners has
        // nothing new to show while no listener was reached and no socket changed state: it is
        // not even looked at.
        let moved_now = probes.listener_arrivals().zip(changes.map(|c| c.all));
        let still = moved_now.is_some() && moved_now == self.moved_at_last_tick;
        self.moved_at_last_tick = moved_now;
        let listened =
            changes.is_some_and(|c| c.listeners != self.state_changes_at_rescan.listeners);
        let rescan = self.rescanned_at.is_none_or(|at| {
            let since = now.duration_since(at);
            let anything_changed =
                changes.is_none_or(|c| c.all != self.state_changes_at_rescan.all);
            // Not counting listens: any namespace may have a new listener.
            (since >= FULL_RESCAN_EVERY && anything_changed)
                || (since >= RESCAN_EVERY && (listened || changes.is_none()))
        });
        if rescan {
            self.rescan(now);
            self.rescanned_at = Some(now);
            self.state_changes_at_rescan = changes.unwrap_or_default();
        }
        let check_sysctls = self
            .sysctls_checked_at
            .is_none_or(|at| now.duration_since(at) >= RESCAN_EVERY);
        if check_sysctls {
            self.sysctls_checked_at = Some(now);
        }
        let synacks = probes.synack_retransmits();
        let exact = probes.listen_overflows();
        let inodes: Vec<u64> = self.watched.keys().copied().collect();
        let listener_changes = changes.map(|c| c.listeners);
        let all_changes = changes.map(|c| c.all);
        let mut moved = listened;
        for inode in inodes {
            let probe_counts = ProbeCounts::of(inode, &synacks, exact.as_ref());
            let watched = self
                .watched
                .get_mut(&inode)
                .expect("sampled namespaces are watched");
            if still && probe_counts == watched.probe_counts && watched.dormant(all_changes) {
                continue;
            }
            let signals = watched.signals(now, &probe_counts, listener_changes);
            if check_sysctls {
                watched.refresh_sysctls(now);
            }
            moved |= matches!(signals, Ok(Signals::Moved));
            let sampled = match signals {
                Ok(Signals::Still) => Ok(None),
                Ok(_) => self.sample(inode, now, probe_counts).map(Some),
                Err(err) => Err(err),
            };
            match sampled {
                Ok(Some(sample)) => self.attribute(inode, &sample, probes),
                Ok(None) => {}
                Err(err) if netns::list().iter().any(|ns| ns.inode == inode) => {
                    self.problem(format!("namespace {inode}: {err:#}"));
                }
                // Its last process exited between the rescan and this sample.
                Err(_) => self.forget(inode),
            }
        }
        moved
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
            .watched
            .keys()
            .filter(|inode| !present.iter().any(|ns| ns.inode == **inode))
            .copied()
            .collect();
        for inode in gone {
            self.forget(inode);
        }
        for namespace in present {
            if self.watched.contains_key(&namespace.inode) {
                continue;
            }
            let inode = namespace.inode;
            let listener_changes = self.state_changes.map(|c| c.listeners);
            match start_watching(namespace, now, listener_changes) {
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

    /// Settles a namespace's records and lets its samples go.
    fn forget(&mut self, inode: u64) {
        self.settle(inode);
        self.watched.remove(&inode);
    }

    /// Reads the namespace's listeners and counters (and its half-open connections when the
    /// SYN-queue counters moved).
    fn sample(
        &mut self,
        inode: u64,
        now: Instant,
        probe_counts: ProbeCounts,
    ) -> anyhow::Result<Sample> {
        let watched = self
            .watched
            .get_mut(&inode)
            .expect("sampled namespaces are watched");
        let listeners = watched.probe.listeners()?;
        let counters = watched.probe.counters()?;
        let growth = counters.growth_since(&watched.counters);
        watched.counters = counters;
        watched.listeners = listeners.clone();
        watched.listed_at = now;
        watched.listed_after = self.state_changes.map(|c| c.listeners);
        watched.unsettled = true;
        let half_open = if growth.syn_queue_moved() {
            watched.probe.half_open_by_listener()?
        } else {
            HashMap::new()
        };
        let sample = Sample {
            at: now,
            listeners,
            growth,
            synacks: probe_counts.synacks.clone(),
            exact: probe_counts.exact.clone(),
            half_open,
        };
        watched.probe_counts = probe_counts;
        Ok(sample)
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
        if let Some(watched) = self.watched.get_mut(&inode).filter(|w| w.unsettled) {
            watched.unsettled = false;
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
        let watched = self.watched.get_mut(&inode)?;
        let listener = match listener_of(&watched.listeners, local) {
            Some(listener) => listener,
            // A quiet namespace's listeners are listed rarely: this one may be new. Listed
            // again at most once a sample period, since many resets can ask at once.
            None if watched.listed_at.elapsed() >= SAMPLE_EVERY => {
                watched.listeners = watched.probe.listeners().ok()?;
                watched.listed_at = Instant::now();
                watched.listed_after = self.state_changes.map(|c| c.listeners);
                listener_of(&watched.listeners, local)?
            }
            None => return None,
        };
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
    /// Called every so often: once no socket changed state between two calls, the namespaces
    /// whose sockets were dumped before the last change are dumped again, so that they can be
    /// left alone for as long as nothing changes (`Watched::dormant`).
    pub fn connections_by_state(&mut self) -> HashMap<u8, u64> {
        let mut total = HashMap::new();
        let changes = self.state_changes.map(|c| c.all);
        let settled = changes.is_some() && changes == self.state_changes_at_count;
        self.state_changes_at_count = changes;
        for watched in self.watched.values() {
            for socket in watched
                .sockets_in(StateFlags::all(), changes, settled)
                .unwrap_or_default()
            {
                *total.entry(socket.state).or_insert(0) += 1;
            }
        }
        total
    }

    /// Zero-window probes namespace `inode` sent, as of its last sample.
    pub fn window_probes_sent(&self, inode: u64) -> Option<u64> {
        Some(self.watched.get(&inode)?.counters.get("TCPWinProbe"))
    }

    /// The TCP sockets of namespace `inode` in `states`; None when it cannot be read.
    pub fn sockets_in(&self, inode: u64, states: StateFlags) -> Option<Vec<DiagSocket>> {
        let changes = self.state_changes.map(|c| c.all);
        self.watched
            .get(&inode)?
            .sockets_in(states, changes, false)
            .ok()
    }

    /// The drops seen over the window, most first.
    pub fn into_drops(mut self) -> Vec<ListenerDrops> {
        self.settle_all();
        self.ledger.into_sorted()
    }
}

/// The listener a connection on `local` came from.
fn listener_of(listeners: &[ListenerNow], local: SocketAddr) -> Option<ListenerNow> {
    listeners
        .iter()
        .find(|l| {
            l.local.port() == local.port()
                && (l.local.ip() == local.ip() || l.local.ip().is_unspecified())
        })
        .cloned()
}

fn start_watching(
    namespace: Namespace,
    now: Instant,
    listener_changes: Option<u64>,
) -> anyhow::Result<Watched> {
    let mut probe = NamespaceProbe::open(namespace)?;
    let received = probe.received_packets()?;
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
        received,
        probe_counts: ProbeCounts::default(),
        listed_at: now,
        listed_after: listener_changes,
        sysctls_read_at: now,
        received_since_sysctls: false,
        unsettled: true,
        sockets: RefCell::new(None),
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::analysis::queues::drops::Certainty;
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

        fn state_changes(&self) -> Option<StateChanges> {
            None
        }

        fn listener_arrivals(&self) -> Option<u64> {
            None
        }
    }

    fn dumped(ago: Duration, state_changes: Option<u64>) -> SocketsDumped {
        SocketsDumped {
            at: Instant::now() - ago,
            received: 7,
            state_changes,
            sockets: Vec::new(),
        }
    }

    #[test]
    fn sockets_are_trusted_past_a_minute_only_while_no_socket_changed_state() {
        let old = Duration::from_secs(61);
        assert!(dumped(old, Some(3)).still_true(7, Some(3)));
        assert!(!dumped(old, Some(3)).still_true(7, Some(4)));
        assert!(!dumped(old, Some(3)).still_true(8, Some(3)));
        assert!(!dumped(old, None).still_true(7, None));
        assert!(dumped(Duration::ZERO, None).still_true(7, None));
    }

    fn socket(state: u8, port: u16, time_wait_left: Option<Duration>) -> DiagSocket {
        DiagSocket {
            state,
            local: SocketAddr::from(([127, 0, 0, 1], port)),
            remote: SocketAddr::from(([127, 0, 0, 1], 80)),
            recv_queue: 0,
            send_queue: 0,
            inode: 0,
            window_probing: false,
            time_wait_left,
        }
    }

    #[test]
    fn timewait_sockets_are_kept_while_no_socket_changed_state_and_leave_with_their_timer() {
        let mut kept = dumped(Duration::from_secs(30), Some(3));
        kept.sockets = vec![
            socket(tcp_state::ESTABLISHED, 1, None),
            socket(tcp_state::TIME_WAIT, 2, Some(Duration::from_secs(20))),
            socket(tcp_state::TIME_WAIT, 3, Some(Duration::from_secs(45))),
        ];
        assert!(kept.keepable());
        assert!(kept.still_true(7, Some(3)));
        // A timer may have moved one of them since, unseen by the 60 s rule for untimed ones.
        assert!(!kept.still_true(7, Some(4)));
        let ports: Vec<u16> = kept.current().map(|s| s.local.port()).collect();
        assert_eq!(ports, [1, 3], "the first one's timer ended it 10 s ago");

        // A request socket ends unseen, at a time nothing tells.
        kept.sockets.push(socket(tcp_state::SYN_RECV, 4, None));
        assert!(!kept.keepable());
        // Without counted state changes, only sockets no timer moves are kept.
        let mut uncounted = dumped(Duration::ZERO, None);
        uncounted.sockets = vec![socket(
            tcp_state::TIME_WAIT,
            2,
            Some(Duration::from_secs(20)),
        )];
        assert!(!uncounted.keepable());
        uncounted.sockets = vec![socket(tcp_state::LISTEN, 2, None)];
        assert!(uncounted.keepable());
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
