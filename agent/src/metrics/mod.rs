//! The Prometheus metrics. Labels are bounded: cause, kind, direction, state, listener (capped,
//! see [`listener_labels`]), namespace, probe, method, program. Never a per-connection label:
//! 5-tuples go to the event stream.

pub mod connect_duration;
pub mod listener_labels;

use std::{collections::HashMap, time::Instant};

use anyhow::Result;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
    core::{AtomicF64, GenericCounterVec},
};

use self::{connect_duration::ConnectDurations, listener_labels::ListenerLabels};
use crate::{
    engine::{Evictions, session::Session},
    model::{Cause, Direction, Process, tcp_state},
    probes::report::ProbeReport,
};

type CounterVec = GenericCounterVec<AtomicF64>;

/// The causes of `tcpwhy_queue_drops_total`.
const QUEUE_DROP_CAUSES: [Cause; 3] = [
    Cause::AcceptQueueOverflow,
    Cause::SynQueueOverflow,
    Cause::SynFloodCookies,
];

pub struct Metrics {
    registry: Registry,
    resets: IntCounterVec,
    queue_drops: IntCounterVec,
    queue_length: IntGaugeVec,
    queue_limit: IntGaugeVec,
    retransmits: IntCounterVec,
    drops: IntCounterVec,
    connect_failures: IntCounterVec,
    transitions: IntCounterVec,
    connections: IntGaugeVec,
    probe_attached: IntGaugeVec,
    coverage: IntGaugeVec,
    events_lost: IntCounter,
    events_suppressed: IntCounterVec,
    events_dropped: IntCounterVec,
    bpf_run_seconds: CounterVec,
    bpf_runs: IntCounterVec,
    evictions: IntCounterVec,
    listener_info: IntGaugeVec,
    pub connect_durations: ConnectDurations,
    /// The `tcpwhy_listener_info` labels of each listener that has a series, to replace it when
    /// the owner changes and remove it with the listener's label.
    described: HashMap<listener_labels::Labels, [String; 4]>,
    listeners: ListenerLabels,
    /// Kernel totals already folded into the counters, so that each scrape adds only the delta.
    folded: HashMap<String, u64>,
}

fn info_labels<'a>(listener: &'a str, namespace: &'a str, info: &'a [String; 4]) -> [&'a str; 6] {
    [listener, namespace, &info[0], &info[1], &info[2], &info[3]]
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
    let family = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec> {
    let family = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

/// The `result` label of `tcpwhy_connect_failures_total`.
#[derive(Debug, Clone, Copy)]
enum ConnectResult {
    /// An RST answered the SYN.
    Refused,
    /// Nothing answered.
    Timeout,
}

impl ConnectResult {
    const ALL: [ConnectResult; 2] = [ConnectResult::Refused, ConnectResult::Timeout];

    fn label(self) -> &'static str {
        match self {
            ConnectResult::Refused => "refused",
            ConnectResult::Timeout => "timeout",
        }
    }
}

/// The `reason` label of `tcpwhy_events_dropped_total`.
#[derive(Debug, Clone, Copy)]
pub enum DropReason {
    /// The writer's queue was full (a stalled reader or a slow disk).
    WriterBehind,
    /// The write itself failed (disk full, the reader went away).
    WriteFailed,
}

impl DropReason {
    const ALL: [DropReason; 2] = [DropReason::WriterBehind, DropReason::WriteFailed];

    fn label(self) -> &'static str {
        match self {
            DropReason::WriterBehind => "writer_behind",
            DropReason::WriteFailed => "write_failed",
        }
    }
}

/// The `map` label of `tcpwhy_state_evictions_total`: the daemon's per-key state.
#[derive(Debug, Clone, Copy)]
pub enum StateMap {
    /// Listeners with a `listener` label of their own (freed when gone for a while).
    ListenerLabels,
    /// What the event stream already said of each retransmit and state finding.
    ReportedFindings,
    /// Which process holds each listener.
    ListenerOwners,
    /// Each process's cgroup, container and pod.
    Workloads,
    /// Queue-drop records per listener and cause.
    QueueDrops,
    /// What the samples saw of each listener (time full, SYN-ACK retransmits).
    QueueHistory,
    /// Failed connects per destination, between two rounds of connection findings.
    FailedConnects,
}

impl StateMap {
    const ALL: [StateMap; 7] = [
        StateMap::ListenerLabels,
        StateMap::ReportedFindings,
        StateMap::ListenerOwners,
        StateMap::Workloads,
        StateMap::QueueDrops,
        StateMap::QueueHistory,
        StateMap::FailedConnects,
    ];

    fn label(self) -> &'static str {
        match self {
            StateMap::ListenerLabels => "listener_labels",
            StateMap::ReportedFindings => "reported_findings",
            StateMap::ListenerOwners => "listener_owners",
            StateMap::Workloads => "workloads",
            StateMap::QueueDrops => "queue_drops",
            StateMap::QueueHistory => "queue_history",
            StateMap::FailedConnects => "failed_connects",
        }
    }
}

impl Metrics {
    pub fn new(listener_label_limit: usize) -> Result<Self> {
        let r = Registry::new();
        let build = gauge(
            &r,
            "tcpwhy_build_info",
            "tcpwhy version; always 1.",
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let bpf_run_seconds = CounterVec::new(
            Opts::new(
                "tcpwhy_bpf_program_run_seconds_total",
                "Time the kernel spent running each tcpwhy program (needs --bpf-stats or kernel.bpf_stats_enabled=1).",
            ),
            &["program"],
        )?;
        r.register(Box::new(bpf_run_seconds.clone()))?;
        let events_lost = IntCounter::new(
            "tcpwhy_events_lost_total",
            "Events the kernel could not hand over because the ring buffer was full.",
        )?;
        r.register(Box::new(events_lost.clone()))?;
        let connect_durations = ConnectDurations::new()?;
        r.register(Box::new(connect_durations.clone()))?;
        let metrics = Self {
            resets: counter(
                &r,
                "tcpwhy_resets_total",
                "TCP resets sent or received, by cause.",
                &["direction", "cause"],
            )?,
            queue_drops: counter(
                &r,
                "tcpwhy_queue_drops_total",
                "Handshakes dropped at a listener's accept or SYN queue, by cause and listener.",
                &["cause", "listener", "namespace"],
            )?,
            queue_length: gauge(
                &r,
                "tcpwhy_listen_queue_length",
                "Connections waiting in a listener's accept queue.",
                &["listener", "namespace"],
            )?,
            queue_limit: gauge(
                &r,
                "tcpwhy_listen_queue_limit",
                "A listener's accept queue limit: min(listen() backlog, net.core.somaxconn); the queue holds one more.",
                &["listener", "namespace"],
            )?,
            retransmits: counter(
                &r,
                "tcpwhy_retransmits_total",
                "Retransmitted segments, by kind (syn, synack, data).",
                &["kind"],
            )?,
            drops: counter(
                &r,
                "tcpwhy_drops_total",
                "TCP segments the kernel dropped, by its drop reason in lower case (netfilter_drop, socket_rcvbuff, ...).",
                &["reason"],
            )?,
            connect_failures: counter(
                &r,
                "tcpwhy_connect_failures_total",
                "connect() calls that failed in SYN_SENT: refused (an RST answered) or timeout (nothing did).",
                &["result"],
            )?,
            transitions: counter(
                &r,
                "tcpwhy_state_transitions_total",
                "TCP state transitions.",
                &["from", "to"],
            )?,
            connections: gauge(
                &r,
                "tcpwhy_connections",
                "TCP sockets by state, all namespaces.",
                &["state"],
            )?,
            probe_attached: gauge(
                &r,
                "tcpwhy_probe_attached",
                "1 when a probe is attached (by the method named), else 0.",
                &["probe", "method"],
            )?,
            coverage: gauge(
                &r,
                "tcpwhy_coverage",
                "1 when some method covers the capability (resets_sent, resets_received, socket_owners, ...), else 0.",
                &["capability"],
            )?,
            events_suppressed: counter(
                &r,
                "tcpwhy_events_suppressed_total",
                "Events not written to the event stream because of its rate limit (still counted in the metrics).",
                &["kind"],
            )?,
            events_dropped: counter(
                &r,
                "tcpwhy_events_dropped_total",
                "Events the event stream could not take: its writer was behind (writer_behind) or writing failed (write_failed). Still counted in the metrics.",
                &["reason"],
            )?,
            bpf_runs: counter(
                &r,
                "tcpwhy_bpf_program_runs_total",
                "Times the kernel ran each tcpwhy program (needs --bpf-stats or kernel.bpf_stats_enabled=1).",
                &["program"],
            )?,
            evictions: counter(
                &r,
                "tcpwhy_state_evictions_total",
                "Entries the daemon let go from its per-key state (listener labels and owners, reported findings, workloads, queue-drop records and history, failed connects) so that its memory stays bounded.",
                &["map"],
            )?,
            listener_info: gauge(
                &r,
                "tcpwhy_listener_info",
                "Who owns a listener with queue drops: its process name and, where the cgroup names them, pod (namespace/name), container (short id) and systemd unit; always 1. Join on listener and namespace.",
                &["listener", "namespace", "comm", "pod", "container", "unit"],
            )?,
            described: HashMap::new(),
            connect_durations,
            events_lost,
            bpf_run_seconds,
            registry: r,
            listeners: ListenerLabels::new(listener_label_limit),
            folded: HashMap::new(),
        };
        metrics.export_fixed_series_at_zero();
        Ok(metrics)
    }

    /// Every series with a fixed label set at 0, so that `rate()` and absence alerts work from
    /// the first scrape (Prometheus' advice on missing metrics). Listener series appear on use.
    fn export_fixed_series_at_zero(&self) {
        for direction in [Direction::Sent, Direction::Received] {
            for cause in Cause::of_resets(direction) {
                self.resets
                    .with_label_values(&[direction.as_str(), cause.id()]);
            }
        }
        for kind in Session::RETRANSMIT_KINDS {
            self.retransmits.with_label_values(&[kind.label()]);
        }
        for result in ConnectResult::ALL {
            self.connect_failures.with_label_values(&[result.label()]);
        }
        for reason in DropReason::ALL {
            self.events_dropped.with_label_values(&[reason.label()]);
        }
        for map in StateMap::ALL {
            self.evictions.with_label_values(&[map.label()]);
        }
    }

    pub fn set_probes(&self, probes: &[ProbeReport]) {
        for probe in probes {
            let method = probe.method.map(|m| m.as_str()).unwrap_or("none");
            self.probe_attached
                .with_label_values(&[probe.name.as_str(), method])
                .set(i64::from(probe.attached));
        }
    }

    pub fn set_coverage(&self, coverage: &[(&str, bool)]) {
        for (capability, covered) in coverage {
            self.coverage
                .with_label_values(&[capability])
                .set(i64::from(*covered));
        }
    }

    pub fn count_resets(&self, direction: &str, cause: &str, count: u64) {
        self.resets
            .with_label_values(&[direction, cause])
            .inc_by(count);
    }

    pub fn count_queue_drops(
        &mut self,
        cause: &str,
        listener: &str,
        namespace: &str,
        count: u64,
        now: Instant,
    ) {
        let (listener, namespace) = self.listeners.admit(listener, namespace, now);
        self.queue_drops
            .with_label_values(&[cause, listener.as_str(), namespace.as_str()])
            .inc_by(count);
    }

    /// Names the owner of a listener that has labels of its own in `tcpwhy_listener_info`, so
    /// that queue series can be summed by pod, container or unit without a workload label on
    /// each (which would multiply them). Bounded by the listener labels.
    pub fn describe_listener(&mut self, listener: &str, namespace: &str, owner: &Process) {
        let labels = (listener.to_string(), namespace.to_string());
        if !self.listeners.is_admitted(&labels) {
            return;
        }
        let workload = &owner.workload;
        let info = [
            owner.comm.clone(),
            workload
                .pod
                .as_ref()
                .map(|p| p.qualified_name())
                .unwrap_or_default(),
            workload
                .container
                .as_ref()
                .map(|c| c.short_id())
                .unwrap_or_default(),
            workload.unit.clone().unwrap_or_default(),
        ];
        if self.described.get(&labels) == Some(&info) {
            return;
        }
        if let Some(previous) = self.described.insert(labels, info.clone()) {
            let _ = self
                .listener_info
                .remove_label_values(&info_labels(listener, namespace, &previous));
        }
        self.listener_info
            .with_label_values(&info_labels(listener, namespace, &info))
            .set(1);
    }

    pub fn count_connect_timeout(&self) {
        self.connect_failures
            .with_label_values(&[ConnectResult::Timeout.label()])
            .inc();
    }

    pub fn count_suppressed(&self, kind: &str) {
        self.events_suppressed.with_label_values(&[kind]).inc();
    }

    pub fn count_dropped(&self, reason: DropReason, count: u64) {
        self.events_dropped
            .with_label_values(&[reason.label()])
            .inc_by(count);
    }

    /// Sets the queue gauges of a listener seen at `now` that has labels of its own; others are
    /// not exported.
    pub fn set_listener_queue(
        &mut self,
        listener: &str,
        namespace: &str,
        length: u32,
        limit: u32,
        now: Instant,
    ) {
        if length > 0 {
            self.listeners.admit(listener, namespace, now);
        }
        if self.listeners.seen(listener, namespace, now) {
            let labels = [listener, namespace];
            self.queue_length
                .with_label_values(&labels)
                .set(i64::from(length));
            self.queue_limit
                .with_label_values(&labels)
                .set(i64::from(limit));
        }
    }

    /// Frees the labels of listeners gone for [`listener_labels::IDLE`] and removes their
    /// series: a gone listener's gauges would say "full" forever, and its counters would hold
    /// series that no longer move.
    pub fn free_idle_listeners(&mut self, now: Instant) {
        let freed = self.listeners.free_idle(now);
        self.count_evictions(StateMap::ListenerLabels, freed.len() as u64);
        for (listener, namespace) in freed {
            let labels = [listener.as_str(), namespace.as_str()];
            let _ = self.queue_length.remove_label_values(&labels);
            let _ = self.queue_limit.remove_label_values(&labels);
            for cause in QUEUE_DROP_CAUSES {
                let _ = self
                    .queue_drops
                    .remove_label_values(&[cause.id(), labels[0], labels[1]]);
            }
            if let Some(info) = self
                .described
                .remove(&(listener.clone(), namespace.clone()))
            {
                let _ = self
                    .listener_info
                    .remove_label_values(&info_labels(&listener, &namespace, &info));
            }
        }
    }

    /// What the engine's bounded maps let go.
    pub fn count_engine_evictions(&self, evicted: &Evictions) {
        let namespaces = &evicted.namespaces;
        for (map, count) in [
            (StateMap::ListenerOwners, namespaces.listener_owners),
            (StateMap::QueueDrops, namespaces.queue_drops),
            (StateMap::QueueHistory, namespaces.queue_history),
            (StateMap::Workloads, evicted.workloads),
        ] {
            self.count_evictions(map, count);
        }
    }

    pub fn count_evictions(&self, map: StateMap, count: u64) {
        self.evictions
            .with_label_values(&[map.label()])
            .inc_by(count);
    }

    pub fn set_connections(&self, by_state: &HashMap<u8, u64>) {
        self.connections.reset();
        for (state, count) in by_state {
            self.connections
                .with_label_values(&[tcp_state::name(*state)])
                .set(*count as i64);
        }
    }

    /// Adds what a kernel total grew by since it was last folded in.
    fn fold(&mut self, key: String, total: u64) -> u64 {
        let previous = self.folded.insert(key, total).unwrap_or(0);
        total.saturating_sub(previous)
    }

    pub fn fold_transitions(&mut self, transitions: &[(u8, u8, u64)]) {
        for &(from, to, total) in transitions {
            let grown = self.fold(format!("transition {from} {to}"), total);
            self.transitions
                .with_label_values(&[tcp_state::name(from), tcp_state::name(to)])
                .inc_by(grown);
        }
    }

    pub fn fold_retransmits(&mut self, totals: &[(&str, u64)]) {
        for &(kind, total) in totals {
            let grown = self.fold(format!("retransmit {kind}"), total);
            self.retransmits.with_label_values(&[kind]).inc_by(grown);
        }
    }

    /// Reasons appear on first use: the running kernel says which exist.
    pub fn fold_drops(&mut self, totals: &[(&str, u64)]) {
        for &(reason, total) in totals {
            let grown = self.fold(format!("drops {reason}"), total);
            self.drops.with_label_values(&[reason]).inc_by(grown);
        }
    }

    pub fn fold_events_lost(&mut self, total: u64) {
        let grown = self.fold("events lost".to_string(), total);
        self.events_lost.inc_by(grown);
    }

    /// Refused connects are counted in the kernel, not sent one by one.
    pub fn fold_connects_refused(&mut self, total: u64) {
        let grown = self.fold("connects refused".to_string(), total);
        self.connect_failures
            .with_label_values(&[ConnectResult::Refused.label()])
            .inc_by(grown);
    }

    /// Programs that never ran (or run while statistics are off) are not exported.
    pub fn fold_program_stats(&mut self, stats: &[(String, std::time::Duration, u64)]) {
        for (program, run_time, runs) in stats.iter().filter(|(_, _, runs)| *runs > 0) {
            let grown_ns = self.fold(format!("run_ns {program}"), run_time.as_nanos() as u64);
            let grown_runs = self.fold(format!("runs {program}"), *runs);
            self.bpf_run_seconds
                .with_label_values(&[program.as_str()])
                .inc_by(grown_ns as f64 / 1e9);
            self.bpf_runs
                .with_label_values(&[program.as_str()])
                .inc_by(grown_runs);
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> Result<String> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8(buffer)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_series_are_exported_at_zero_from_the_start() {
        let text = Metrics::new(20).unwrap().encode().unwrap();
        for line in [
            r#"tcpwhy_resets_total{cause="no_listener",direction="sent"} 0"#,
            r#"tcpwhy_resets_total{cause="unclassified",direction="received"} 0"#,
            r#"tcpwhy_resets_total{cause="peer_reset",direction="received"} 0"#,
            r#"tcpwhy_retransmits_total{kind="synack"} 0"#,
            r#"tcpwhy_connect_failures_total{result="timeout"} 0"#,
            r#"tcpwhy_state_evictions_total{map="listener_labels"} 0"#,
            r#"tcpwhy_state_evictions_total{map="reported_findings"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        // A received cause is never paired with the sent direction.
        assert!(!text.contains(r#"tcpwhy_resets_total{cause="peer_reset",direction="sent"}"#));
    }

    #[test]
    fn a_listener_owner_is_described_once_replaced_when_it_changes_and_freed_with_its_label() {
        use crate::model::{
            OwnerSource,
            workload::{Container, Pod, Runtime, Workload},
        };
        let start = Instant::now();
        let mut metrics = Metrics::new(1).unwrap();
        let mut owner = Process::from_raw(7, b"nginx\0\0\0\0\0\0\0\0\0\0\0", OwnerSource::Socket);
        owner.workload = Workload {
            pod: Some(Pod {
                namespace: "shop".into(),
                name: "web-0".into(),
                uid: "u".into(),
            }),
            container: Some(Container {
                id: "3f2a9c0d1e2b3c4d5e6f".into(),
                runtime: Runtime::Containerd,
            }),
            ..Workload::default()
        };
        metrics.count_queue_drops("accept_queue_overflow", "10.0.0.1:80", "7", 1, start);
        metrics.describe_listener("10.0.0.1:80", "7", &owner);
        // A listener under `other` gets no owner series: that would undo the label cap.
        metrics.describe_listener("10.0.0.2:80", "7", &owner);
        let text = metrics.encode().unwrap();
        assert!(text.contains(r#"tcpwhy_listener_info{comm="nginx",container="3f2a9c0d1e2b",listener="10.0.0.1:80",namespace="7",pod="shop/web-0",unit=""} 1"#), "{text}");
        assert!(!text.contains(r#"listener="10.0.0.2:80""#), "{text}");

        owner.comm = "envoy".into();
        metrics.describe_listener("10.0.0.1:80", "7", &owner);
        let text = metrics.encode().unwrap();
        assert_eq!(text.matches("tcpwhy_listener_info{").count(), 1, "{text}");
        assert!(
            text.contains(r#"tcpwhy_listener_info{comm="envoy","#),
            "{text}"
        );

        metrics.free_idle_listeners(start + listener_labels::IDLE);
        let text = metrics.encode().unwrap();
        assert!(!text.contains("tcpwhy_listener_info{"), "{text}");
    }

    #[test]
    fn a_listener_gone_for_the_idle_time_loses_its_series_and_its_label() {
        let start = Instant::now();
        let mut metrics = Metrics::new(1).unwrap();
        metrics.set_listener_queue("10.0.0.1:80", "7", 5, 4, start);
        metrics.count_queue_drops("accept_queue_overflow", "10.0.0.1:80", "7", 3, start);
        // The only label is taken: a second listener is `other`, with no gauges of its own.
        metrics.count_queue_drops("accept_queue_overflow", "10.0.0.2:80", "7", 1, start);
        metrics.set_listener_queue("10.0.0.2:80", "7", 5, 4, start);
        let text = metrics.encode().unwrap();
        for line in [
            r#"tcpwhy_listen_queue_length{listener="10.0.0.1:80",namespace="7"} 5"#,
            r#"tcpwhy_queue_drops_total{cause="accept_queue_overflow",listener="10.0.0.1:80",namespace="7"} 3"#,
            r#"tcpwhy_queue_drops_total{cause="accept_queue_overflow",listener="other",namespace="other"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(!text.contains(r#"listener="10.0.0.2:80""#), "{text}");

        // The first listener is gone (no longer sampled); the second still runs.
        let idle = start + listener_labels::IDLE;
        metrics.set_listener_queue("10.0.0.2:80", "7", 5, 4, idle);
        metrics.free_idle_listeners(idle);
        let text = metrics.encode().unwrap();
        assert!(!text.contains(r#"listener="10.0.0.1:80""#), "{text}");
        assert!(
            text.contains(r#"tcpwhy_state_evictions_total{map="listener_labels"} 1"#),
            "{text}"
        );
        // Its label went to the listener still running.
        metrics.set_listener_queue("10.0.0.2:80", "7", 6, 4, idle);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(r#"tcpwhy_listen_queue_length{listener="10.0.0.2:80",namespace="7"} 6"#),
            "{text}"
        );
    }
}
