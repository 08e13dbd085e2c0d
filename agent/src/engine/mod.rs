//! The one pipeline: attach the probes, drain their events, classify resets, sample every
//! namespace's listeners and counters, and fill in socket owners. `diagnose` and `daemon` are
//! [`Output`]s of it, with no loop of their own.

pub mod firewall;
pub mod kernel_view;
mod map_batch;
pub mod namespaces;
mod owner_cache;
mod pace;
pub use pace::due;
mod per_cpu_sums;
pub mod ring;
pub mod session;

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use anyhow::Result;
use netlink_packet_sock_diag::inet::StateFlags;
use tcpwhy_common::tcp_state;
use tokio::signal::unix::{SignalKind, signal};

use self::{
    firewall::FirewallWatch,
    namespaces::{NamespaceEvictions, Namespaces},
    pace::Pace,
    session::{Observed, Session, StartError},
};
use crate::{
    analysis::{
        classify::{Classified, Surroundings, classify},
        connections::{
            self, HostLookup, KernelCounts, connects::FailedConnects, zero_window::ZeroWindowWatch,
        },
        drops, findings,
        firewall::FirewallEvidence,
        latency::{self, LatencyReport},
        lru::Lru,
        queues::{conditions::ListenerCondition, drops::ListenerDrops},
        service::EphemeralPorts,
    },
    events::{flow::ConnectFailed, reset::Reset},
    host::{
        namespace::ConnectionSysctls,
        netns,
        owners::{ProcessFacts, socket_owners},
        sock_diag::DiagSocket,
        workload,
    },
    model::{DropCause, Finding, OwnerSource, Process, time::monotonic_ns, workload::Workload},
    probes::{capability::Capability, coverage::covers, load::EventFlow, method::Method},
};

/// How often the rings are drained and namespaces sampled. The programs wake the reader only when
/// a ring fills, so this is also the latency of an event. A queue that fills and drains faster
/// than this is still counted (by the counters); only its listener may go unnamed.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// How far apart samples may grow once nothing has moved for a second, for an output that runs
/// for days on hosts that are mostly idle: the first event after a quiet spell waits up to this
/// long, and a queue that fills and drains within it right then goes unnamed.
pub const QUIET_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What the engine hands to an output.
pub trait Output {
    /// A reset, classified, with its owner filled in where one can be known.
    fn reset(&mut self, reset: &Classified) -> Result<()>;
    /// A connect() that ended in SYN_SENT.
    fn connect_failed(&mut self, failed: ConnectFailed) -> Result<()>;
    /// Called after each sample (every [`SAMPLE_EVERY`], or [`Output::SAMPLE_EVERY_WHEN_QUIET`]),
    /// to read what the engine knows now.
    fn sampled(&mut self, _engine: &mut Engine) -> Result<()> {
        Ok(())
    }
    /// How far apart samples may grow while nothing moves; by default they never do.
    const SAMPLE_EVERY_WHEN_QUIET: Duration = SAMPLE_EVERY;
}

/// Why [`Engine::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The requested duration passed.
    Elapsed,
    /// SIGINT (Ctrl-C) or SIGTERM.
    Interrupted,
}

/// How many entries the engine's bounded maps let go.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evictions {
    pub namespaces: NamespaceEvictions,
    /// Processes whose workload (cgroup, container, pod) was forgotten.
    pub workloads: u64,
}

pub struct Engine {
    pub session: Session,
    pub namespaces: Namespaces,
    /// Workloads by pid: a process's cgroup is read once, not once per event.
    workloads: Lru<u32, Workload>,
    firewall: FirewallWatch,
    /// Connections probing a zero window, looked at in the namespaces' socket dumps.
    zero_window: ZeroWindowWatch,
    /// Resets received that look like a firewall's, until the stack's resets of the next batch
    /// are noted.
    second_look: Vec<Reset>,
    started: Instant,
}

/// How often the heap freed by bursts of events is handed back.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// How old a reset held for a second look must be before it is judged: the stack's own reset,
/// if any, is in the ring microseconds after it.
const SECOND_LOOK_AFTER_NS: u64 = 50_000_000;

/// Processes whose workload is remembered; beyond this the least recently seen are read again
/// when they next show up.
const WORKLOADS_REMEMBERED: usize = 4096;

impl Engine {
    /// Attaches the probes and takes a first sample of every namespace. `flow.port`: only
    /// resets with this port at either end are events, filtered in the kernel (`--port` of
    /// `diagnose` and `watch`; never the daemon, whose metrics count every event).
    pub fn start(methods: &[Method], flow: EventFlow) -> Result<Self, StartError> {
        let session = Session::start(methods, flow)?;
        let mut namespaces = Namespaces::default();
        namespaces.tick(Instant::now(), &session);
        Ok(Self {
            firewall: FirewallWatch::new(&session.probes, session.kernel.reset_reasons),
            session,
            namespaces,
            workloads: Lru::new(WORKLOADS_REMEMBERED),
            zero_window: ZeroWindowWatch::default(),
            second_look: Vec::new(),
            started: Instant::now(),
        })
    }

    /// How long the probes have been watching.
    pub fn watched_for(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs until `duration` passes (None: until a signal), handing everything to `output`.
    pub async fn run<O: Output>(
        &mut self,
        output: &mut O,
        duration: Option<Duration>,
    ) -> Result<Ended> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let deadline = duration.map(|d| tokio::time::Instant::now() + d);
        let mut pace = Pace::new(Instant::now(), O::SAMPLE_EVERY_WHEN_QUIET);
        let mut trimmed_at = Instant::now();
        let ended = loop {
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let next_sample = tokio::time::Instant::from_std(pace.next_sample());
            tokio::select! {
                seen = self.session.next_events() => {
                    pace.moved(Instant::now());
                    self.deliver(seen?, output, false)?;
                }
                _ = tokio::time::sleep_until(next_sample) => {
                    let seen = self.session.remaining_events();
                    let events = !seen.is_empty() || !self.second_look.is_empty();
                    self.deliver(seen, output, false)?;
                    let now = Instant::now();
                    let namespaces_moved = self.namespaces.tick(now, &self.session);
                    self.zero_window.look(now, &self.namespaces);
                    output.sampled(self)?;
                    pace.sampled(now, events || namespaces_moved);
                    if due(&mut trimmed_at, now, TRIM_EVERY) {
                        session::release_freed_memory();
                    }
                }
                _ = sleep => break Ended::Elapsed,
                _ = interrupt.recv() => break Ended::Interrupted,
                _ = terminate.recv() => break Ended::Interrupted,
            }
        };
        let seen = self.session.last_events();
        self.deliver(seen, output, true)?;
        self.namespaces.tick(Instant::now(), &self.session);
        Ok(ended)
    }

    /// Hands a batch of events to `output`. A reset that looks like a firewall's waits for the
    /// next batch (`last`: there is none), where the stack's own reset may still turn up.
    fn deliver(&mut self, seen: Vec<Observed>, output: &mut impl Output, last: bool) -> Result<()> {
        if seen.is_empty() && self.second_look.is_empty() {
            return Ok(());
        }
        if let Ok(counters) = self.session.counters() {
            self.firewall
                .new_batch(counters.events_lost + counters.resets_aggregated);
        }
        for observed in &seen {
            if let Observed::Reset(reset) = observed {
                self.firewall.note_sent(reset);
            }
        }
        let settled_before = monotonic_ns().saturating_sub(SECOND_LOOK_AFTER_NS);
        let (due, waiting): (Vec<Reset>, Vec<Reset>) = std::mem::take(&mut self.second_look)
            .into_iter()
            .partition(|reset| last || reset.timestamp_ns <= settled_before);
        self.second_look = waiting;
        for reset in due {
            let firewall = self.firewall.judge(&reset);
            self.deliver_reset(reset, firewall, output)?;
        }
        for observed in seen {
            match observed {
                Observed::Reset(reset) => {
                    let firewall = self.firewall.judge(&reset);
                    if firewall == Some(FirewallEvidence::Inferred) && !last {
                        self.second_look.push(reset);
                    } else {
                        self.deliver_reset(reset, firewall, output)?;
                    }
                }
                Observed::ConnectFailed(mut failed) => {
                    if let Some(owner) = &mut failed.owner {
                        self.fill_workload(owner);
                    }
                    output.connect_failed(failed)?
                }
            }
        }
        Ok(())
    }

    fn deliver_reset(
        &mut self,
        mut reset: Reset,
        firewall: Option<FirewallEvidence>,
        output: &mut impl Output,
    ) -> Result<()> {
        self.name_owner_from_listener(&mut reset);
        if let Some(owner) = &mut reset.owner {
            self.fill_workload(owner);
        }
        // Only a listener's reset can be an overflow abort.
        let abort_on_overflow = (reset.state == Some(tcp_state::LISTEN))
            .then(|| self.abort_on_overflow(reset.netns))
            .flatten();
        let around = Surroundings {
            abort_on_overflow,
            ports: self.ephemeral_ports(reset.netns),
            firewall,
        };
        output.reset(&classify(&reset, &self.session.reasons, around))
    }

    /// Sockets that changed state before tcpwhy started have no recorded owner; the listener
    /// their port belongs to (found through sock_diag) does.
    fn name_owner_from_listener(&mut self, reset: &mut Reset) {
        if reset.owner.is_some() || reset.state.is_none() {
            return;
        }
        let Some(netns) = reset.netns else { return };
        if let Some(owner) =
            self.namespaces
                .listener_owner(u64::from(netns), reset.local, &self.session)
        {
            reset.owner = Some(Process {
                source: OwnerSource::ListenerSocket,
                ..owner.process
            });
        }
    }

    /// The container, pod and unit of a process the kernel side named.
    fn fill_workload(&mut self, process: &mut Process) {
        if process.workload != Workload::default() {
            return;
        }
        process.workload = self
            .workloads
            .get_or_insert_with(process.pid, || workload::of_process(process.pid))
            .clone();
    }

    fn ephemeral_ports(&self, netns: Option<u32>) -> EphemeralPorts {
        let range = netns.and_then(|netns| {
            self.namespaces
                .connection_sysctls(u64::from(netns))?
                .ip_local_port_range
        });
        EphemeralPorts::from_sysctl(range)
    }

    fn abort_on_overflow(&self, netns: Option<u32>) -> Option<bool> {
        let sysctls = self.namespaces.sysctls(u64::from(netns?))?;
        sysctls.tcp_abort_on_overflow.map(|v| v != 0)
    }

    /// Queue drops counted since the last call: each listener's record, and its finding whose
    /// count is the new drops.
    pub fn new_queue_findings(&mut self) -> Vec<(ListenerDrops, Finding)> {
        self.namespaces
            .take_new_drops()
            .into_iter()
            .map(|(drops, new)| {
                let finding = Finding {
                    count: new,
                    ..findings::of_queue_drops(&drops)
                };
                (drops, finding)
            })
            .collect()
    }

    /// Entries the engine's bounded maps let go since the last call.
    pub fn take_evictions(&mut self) -> Evictions {
        Evictions {
            namespaces: self.namespaces.take_evictions(),
            workloads: self.workloads.take_evicted(),
        }
    }

    /// Listeners full, nearly full or capped by somaxconn, as of the last sample.
    pub fn listeners_in_trouble(&mut self) -> Vec<ListenerCondition> {
        self.namespaces.listeners_in_trouble(&self.session)
    }

    /// Every drop finding as of now (counts since attach).
    pub fn drop_findings(&mut self) -> Vec<Finding> {
        let counted = self.session.tcp_drops();
        let groups = drops::group(&counted, |netns| {
            self.ephemeral_ports(u32::try_from(netns).ok())
        });
        let (session, namespaces) = (&self.session, &mut self.namespaces);
        let mut found = drops::findings(&groups, &session.drop_reasons, |netns, local| {
            let owner = namespaces.listener_owner(netns, local, session)?;
            Some(Process {
                source: OwnerSource::ListenerSocket,
                ..owner.process
            })
        });
        for process in found.iter_mut().filter_map(|f| f.process.as_mut()) {
            self.fill_workload(process);
        }
        found
    }

    /// TCP drops since attach by the reason's cause id (`tcpwhy_drops_total`).
    pub fn drops_by_reason(&self) -> Result<Vec<(&'static str, u64)>> {
        let reasons = &self.session.drop_reasons;
        Ok(self
            .session
            .drops_by_reason()?
            .into_iter()
            .map(|(value, count)| {
                let cause = DropCause::of_reason(&drops::reason_name(reasons, value));
                (cause.id(), count)
            })
            .collect())
    }

    /// Handshake and round-trip times since attach, per destination and listener.
    pub fn latency_report(&self) -> LatencyReport {
        let measured = self.session.latencies();
        let created = self
            .session
            .counters()
            .map(|c| c.latency_histograms)
            .unwrap_or(0);
        let set_state_attached = covers(&self.session.probes, Capability::SocketOwners);
        LatencyReport::new(
            &measured,
            created.saturating_sub(measured.len() as u64),
            latency::unmeasured(set_state_attached, self.session.srtt_readable),
        )
    }

    /// Every retransmit and state finding as of now; `failed`: connects failed since the last
    /// call.
    pub fn connection_findings(&self, failed: &FailedConnects) -> Vec<Finding> {
        use self::kernel_view::ListenerProbes;
        let flows = self.session.retransmit_flows();
        let synacks = self.session.synack_retransmits();
        let state_since = self.session.state_since();
        let timed_out = self.session.timed_out();
        let kernel = KernelCounts {
            flows: &flows,
            timed_out: &timed_out,
            synacks: &synacks,
            state_since: &state_since,
            now_ns: monotonic_ns(),
        };
        let mut found =
            connections::findings(&kernel, &self.namespaces, failed, self.watched_for());
        found.extend(self.zero_window.findings());
        found
    }
}

impl HostLookup for Namespaces {
    fn namespaces(&self) -> Vec<u64> {
        self.probes().map(|p| p.namespace.inode).collect()
    }

    fn connection_sysctls(&self, netns: u64) -> Option<&ConnectionSysctls> {
        self.probes()
            .find(|p| p.namespace.inode == netns)
            .map(|p| &p.connection_sysctls)
    }

    fn sockets_in(&self, netns: u64, states: StateFlags) -> Option<Vec<DiagSocket>> {
        Namespaces::sockets_in(self, netns, states)
    }

    fn window_probes_sent(&self, netns: u64) -> Option<u64> {
        Namespaces::window_probes_sent(self, netns)
    }

    fn socket_owners(&self, netns: u64, inodes: &HashSet<u32>) -> HashMap<u32, ProcessFacts> {
        // The namespace's processes first: they almost always hold its sockets.
        let (inside, outside): (Vec<u32>, Vec<u32>) = netns::pids()
            .into_iter()
            .partition(|&pid| netns::namespace_of(pid) == Some(netns));
        socket_owners(inodes, inside.into_iter().chain(outside))
    }
}
