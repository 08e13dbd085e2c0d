//! `tcpwhy daemon`: the engine running until stopped, as Prometheus metrics, a JSON event
//! stream and systemd notifications.

pub mod events;
pub mod http;
mod signals;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Result;

use self::{
    events::{Emitted, EventStream},
    http::Health,
};
use crate::{
    analysis::{
        classify::Classified, connections::connects::FailedConnects, filter::Filter, findings,
        grouping::ResetGroup, reported::Reported,
    },
    engine::{Engine, Output, QUIET_SAMPLE_EVERY, due, session::StartError},
    events::flow::ConnectFailed,
    metrics::{DropReason, Metrics, StateMap, connect_duration::DIRECTIONS},
    model::Finding,
    probes::{attach::attached_count, coverage::coverage, load::EventFlow},
    settings::Settings,
};

/// Kernel totals (transitions, retransmits, BPF run time) folded into the metrics.
const FOLD_EVERY: Duration = Duration::from_secs(1);
/// Sockets by state and the connection findings: a dump of every socket of every namespace, so
/// not often.
const COUNT_CONNECTIONS_EVERY: Duration = Duration::from_secs(10);

/// How long the exit waits for the event writer to write what is queued.
const CLOSE_PATIENCE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration cannot work (bad value, port in use): exit code 2.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

pub async fn run(settings: Settings, filter: Filter) -> Result<(), DaemonError> {
    let listener = http::bind(settings.listen())
        .await
        .map_err(DaemonError::Config)?;
    let events = EventStream::open(&settings.events(), settings.events_per_second())
        .map_err(DaemonError::Config)?;
    // Before the probes load (which takes a while): a SIGHUP meanwhile must not kill us.
    let signals = signals::handle(events.as_ref().map(EventStream::reopen))
        .map_err(|e| DaemonError::Runtime(anyhow::anyhow!("installing signal handlers: {e}")))?;

    let flow = EventFlow {
        ring_buffer_bytes: settings.ring_buffer_bytes(),
        port: None,
        records_per_window: settings.reset_records_per_second(),
    };
    let mut engine = Engine::start(&settings.probe_methods(), flow)?;
    // Held for the daemon's lifetime: the kernel measures BPF run time while it is open.
    let _stats = settings
        .bpf_stats()
        .then(|| aya::sys::enable_stats(aya::sys::Stats::RunTime))
        .transpose()
        .map_err(|e| DaemonError::Runtime(anyhow::anyhow!("enabling BPF statistics: {e}")))?;
    let session = &engine.session;
    for warning in &session.warnings {
        tracing::warn!("{warning}");
    }
    for probe in session.probes.iter().filter(|p| !p.attached && !p.standby) {
        tracing::info!(probe = %probe.name, reason = probe.error.as_deref().unwrap_or(""), "probe not attached");
    }
    let metrics = Arc::new(Mutex::new(Metrics::new(settings.listener_label_limit())?));
    lock(&metrics).set_probes(&session.probes);
    let coverage = coverage(&session.probes);
    lock(&metrics).set_coverage(&coverage);
    let bound = listener.local_addr().map_err(anyhow::Error::from)?;
    http::serve_on_own_thread(listener, metrics.clone(), Health::from_coverage(&coverage))
        .map_err(|e| DaemonError::Runtime(anyhow::anyhow!("starting the HTTP server: {e}")))?;
    let attached = attached_count(&session.probes);
    tracing::info!(probes = attached, listen = %bound, "attached, serving /metrics and /healthz");
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("{attached} probes attached")),
    ]);

    let mut published = Published {
        metrics,
        events,
        timeouts: FailedConnects::default(),
        reported: Reported::default(),
        reported_drops: Reported::default(),
        folded_at: Instant::now(),
        connections_counted_at: Instant::now(),
        filter,
    };
    engine.run(&mut published, None).await?;
    notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping: detaching every probe");
    signals.abort();
    if let Some(events) = published.events.take() {
        events.close(CLOSE_PATIENCE);
    }
    // Dropping the engine closes every link, program and map: nothing is pinned.
    drop(engine);
    Ok(())
}

/// The daemon's output: every reset and queue drop counted and streamed as it comes; kernel
/// totals, retransmits and states folded in periodically.
struct Published {
    metrics: Arc<Mutex<Metrics>>,
    events: Option<EventStream>,
    /// Timed-out connects since the last connection findings.
    timeouts: FailedConnects,
    reported: Reported,
    /// The same for drop findings, said every second rather than with the socket dumps.
    reported_drops: Reported,
    folded_at: Instant,
    connections_counted_at: Instant,
    /// What the event stream shows (`--port`, `--pid`...); metrics are never filtered.
    filter: Filter,
}

impl Output for Published {
    /// Scraped every few seconds at most, running for days on mostly idle hosts.
    const SAMPLE_EVERY_WHEN_QUIET: Duration = QUIET_SAMPLE_EVERY;

    fn reset(&mut self, reset: &Classified) -> Result<()> {
        let finding = findings::of_resets(&ResetGroup::single(reset));
        lock(&self.metrics).count_resets(
            reset.reset.direction.as_str(),
            finding.cause.id(),
            reset.reset.count(),
        );
        self.emit(&finding);
        Ok(())
    }

    fn connect_failed(&mut self, failed: ConnectFailed) -> Result<()> {
        lock(&self.metrics).count_connect_timeout();
        self.timeouts.add(failed);
        Ok(())
    }

    fn sampled(&mut self, engine: &mut Engine) -> Result<()> {
        let now = Instant::now();
        if let Some(events) = &self.events {
            lock(&self.metrics)
                .count_dropped(DropReason::WriteFailed, events.take_write_failures());
        }
        self.publish_queues(engine)?;
        lock(&self.metrics).count_engine_evictions(&engine.take_evictions());
        if due(&mut self.folded_at, now, FOLD_EVERY) {
            fold_kernel_totals(engine, &self.metrics)?;
            for finding in self.reported_drops.changed(engine.drop_findings()) {
                self.emit(&finding);
            }
            lock(&self.metrics).count_evictions(
                StateMap::ReportedFindings,
                self.reported_drops.take_forgotten(),
            );
            if let Some(events) = self.events.as_mut() {
                events.report_suppressed();
            }
        }
        if due(
            &mut self.connections_counted_at,
            now,
            COUNT_CONNECTIONS_EVERY,
        ) {
            // Dumped before taking the lock: a dump of every namespace must not hold up scrapes.
            let by_state = engine.namespaces.connections_by_state();
            lock(&self.metrics).set_connections(&by_state);
            let mut timeouts = std::mem::take(&mut self.timeouts);
            lock(&self.metrics).count_evictions(StateMap::FailedConnects, timeouts.take_evicted());
            let found = engine.connection_findings(&timeouts);
            for finding in self.reported.changed(found) {
                self.emit(&finding);
            }
            lock(&self.metrics)
                .count_evictions(StateMap::ReportedFindings, self.reported.take_forgotten());
        }
        Ok(())
    }
}

impl Published {
    fn publish_queues(&mut self, engine: &mut Engine) -> Result<()> {
        let now = Instant::now();
        for (drops, finding) in engine.new_queue_findings() {
            let listener = drops
                .listener
                .map(|l| l.to_string())
                .unwrap_or_else(|| "unidentified".to_string());
            let namespace = drops.namespace.to_string();
            let mut metrics = lock(&self.metrics);
            metrics.count_queue_drops(drops.cause.id(), &listener, &namespace, finding.count, now);
            if let Some(owner) = &finding.process {
                metrics.describe_listener(&listener, &namespace, owner);
            }
            drop(metrics);
            self.emit(&finding);
        }
        let mut metrics = lock(&self.metrics);
        for (namespace, listener) in engine.namespaces.listeners_now() {
            metrics.set_listener_queue(
                &listener.local.to_string(),
                &namespace.to_string(),
                listener.queue_len,
                listener.queue_limit,
                now,
            );
        }
        metrics.free_idle_listeners(now);
        Ok(())
    }

    /// Streams a finding the metrics have already counted; the stream may cut or drop it.
    fn emit(&mut self, finding: &Finding) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        if !self.filter.matches(finding) {
            return;
        }
        match events.emit(Instant::now(), finding) {
            Emitted::Queued => {}
            Emitted::Suppressed => lock(&self.metrics).count_suppressed(finding.kind.as_str()),
            Emitted::Dropped => lock(&self.metrics).count_dropped(DropReason::WriterBehind, 1),
        }
    }
}

fn lock(metrics: &Mutex<Metrics>) -> std::sync::MutexGuard<'_, Metrics> {
    // A panic while holding the lock leaves numbers that are still worth serving.
    metrics
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(err) = sd_notify::notify(false, states) {
        tracing::debug!(%err, "sd_notify failed (not running under systemd?)");
    }
}

fn fold_kernel_totals(engine: &Engine, metrics: &Mutex<Metrics>) -> Result<()> {
    let session = &engine.session;
    let transitions = session.state_transitions()?;
    let retransmits: Vec<(&str, u64)> = session
        .retransmits()?
        .into_iter()
        .map(|(kind, count)| (kind.label(), count))
        .collect();
    let drops = engine.drops_by_reason()?;
    let counters = session.counters()?;
    let programs = session.program_stats();
    let handshakes = DIRECTIONS
        .iter()
        .map(|&(_, kind)| Ok((kind, session.latency_totals(kind)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut metrics = lock(metrics);
    for (kind, totals) in handshakes {
        metrics.connect_durations.set(kind, totals);
    }
    metrics.fold_transitions(&transitions);
    metrics.fold_retransmits(&retransmits);
    metrics.fold_drops(&drops);
    metrics.fold_events_lost(counters.events_lost);
    metrics.fold_connects_refused(counters.connects_refused);
    metrics.fold_program_stats(&programs);
    Ok(())
}
