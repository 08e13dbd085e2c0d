//! `tcpwhy daemon`: the probes of `diagnose`, running until stopped, with Prometheus metrics,
//! a JSON event stream and systemd integration.

pub mod config;
pub mod events;
pub mod http;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};

use self::{
    config::Config,
    events::{Emitted, EventStream},
};
use crate::{
    connections::{self, connects::FailedConnects},
    events::reset::Process,
    explain::classifier::Classifier,
    findings::{
        finding::{Finding, Kind},
        group::ResetGroup,
    },
    metrics::Metrics,
    probes::{attach::attached_count, coverage::coverage},
    queues::{kernel_view::ListenerProbes, watch::QueueWatch},
    session::{Observed, Session, StartError},
};

/// Listen queues and namespace counters: as in `diagnose`.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Kernel totals (transitions, retransmits, BPF run time) folded into the metrics.
const FOLD_EVERY: Duration = Duration::from_secs(1);
/// Sockets by state: a dump of every socket of every namespace, so not often.
const COUNT_CONNECTIONS_EVERY: Duration = Duration::from_secs(10);

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

pub async fn run(config: Config) -> Result<(), DaemonError> {
    let listener = http::bind(config.listen)
        .await
        .map_err(DaemonError::Config)?;
    let mut events = EventStream::open(&config.events, config.events_per_second)
        .map_err(|e| DaemonError::Config(format!("{e:#}")))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(anyhow::Error::from)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;

    let mut session = Session::start(&config.probe_methods, config.ring_buffer_bytes)?;
    // Held for the daemon's lifetime: the kernel measures BPF run time while it is open.
    let _stats = config
        .bpf_stats
        .then(|| aya::sys::enable_stats(aya::sys::Stats::RunTime))
        .transpose()
        .map_err(|e| DaemonError::Runtime(anyhow::anyhow!("enabling BPF statistics: {e}")))?;
    for warning in &session.warnings {
        tracing::warn!("{warning}");
    }
    for probe in session.probes.iter().filter(|p| !p.attached) {
        tracing::info!(probe = %probe.name, reason = probe.error.as_deref().unwrap_or(""), "probe not attached");
    }
    let metrics = Arc::new(Mutex::new(Metrics::new(config.listener_label_limit)?));
    lock(&metrics).set_probes(&session.probes);
    lock(&metrics).set_coverage(&coverage(&session.probes));
    let server = http::serve(listener, metrics.clone());
    let attached = attached_count(&session.probes);
    tracing::info!(probes = attached, listen = %config.listen, "attached, serving /metrics and /healthz");
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("{attached} probes attached")),
    ]);

    let mut queues = QueueWatch::default();
    let mut sample = tokio::time::interval(SAMPLE_EVERY);
    let mut fold = tokio::time::interval(FOLD_EVERY);
    let mut connections = tokio::time::interval(COUNT_CONNECTIONS_EVERY);
    let mut fresh: Vec<ResetGroup> = Vec::new();
    let mut timeouts = FailedConnects::default();
    let mut reported = Reported::default();
    let started = Instant::now();
    loop {
        tokio::select! {
            result = session.next_events(|c, seen| take(c, seen, &mut fresh, &mut timeouts, &metrics)) => {
                result?;
                for group in fresh.drain(..) {
                    report_reset(group, &mut queues, &session, &metrics, events.as_mut())?;
                }
            }
            _ = sample.tick() => {
                // The programs wake the reader only when a ring fills: drain on every tick.
                session.remaining_events(|c, seen| take(c, seen, &mut fresh, &mut timeouts, &metrics));
                for group in fresh.drain(..) {
                    report_reset(group, &mut queues, &session, &metrics, events.as_mut())?;
                }
                queues.tick(Instant::now(), &session);
                report_queues(&mut queues, &metrics, events.as_mut())?;
            }
            _ = fold.tick() => {
                fold_kernel_totals(&session, &metrics)?;
                if let Some(events) = events.as_mut() {
                    events.report_suppressed()?;
                }
            }
            _ = connections.tick() => {
                lock(&metrics).set_connections(&queues.connections_by_state());
                let found = connections::findings(&session, &queues, &std::mem::take(&mut timeouts), started.elapsed());
                for finding in reported.changed(found) {
                    emit(events.as_mut(), &finding, &metrics)?;
                }
            }
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping: detaching every probe");
    server.abort();
    // Dropping the session closes every link, program and map: nothing is pinned.
    drop(session);
    Ok(())
}

/// Takes one event in: resets become single-reset groups, failed connects are counted and the
/// timed-out ones kept for the next report.
fn take(
    classifier: &Classifier,
    seen: Observed,
    fresh: &mut Vec<ResetGroup>,
    timeouts: &mut FailedConnects,
    metrics: &Mutex<Metrics>,
) {
    match seen {
        Observed::Reset(reset) => fresh.push(ResetGroup::single(&classifier.classify(&reset))),
        Observed::ConnectFailed(failed) => {
            lock(metrics).count_connect_failure(failed.refused);
            if !failed.refused {
                timeouts.add(failed);
            }
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

fn report_reset(
    mut group: ResetGroup,
    queues: &mut QueueWatch,
    probes: &dyn ListenerProbes,
    metrics: &Mutex<Metrics>,
    events: Option<&mut EventStream>,
) -> Result<()> {
    if group.process.is_none() && group.state.is_some() {
        // A socket older than the agent: its listener names the owner.
        if let Some(owner) = group
            .netns
            .and_then(|ns| queues.listener_owner(u64::from(ns), group.local, probes))
        {
            group.process = Some(Process {
                pid: owner.pid,
                comm: owner.comm,
                learned_from: "listener_socket",
            });
            group.owner_learned_from = Some("listener_socket");
        }
    }
    let finding = Finding::from_group(&group);
    lock(metrics).count_reset(direction(&finding), finding.cause);
    emit(events, &finding, metrics)
}

fn direction(finding: &Finding) -> &'static str {
    match finding.kind.as_str() {
        "rst_received" => "received",
        _ => "sent",
    }
}

fn report_queues(
    queues: &mut QueueWatch,
    metrics: &Mutex<Metrics>,
    mut events: Option<&mut EventStream>,
) -> Result<()> {
    for (drops, new) in queues.take_new_drops() {
        let listener = drops
            .listener
            .map(|l| l.to_string())
            .unwrap_or_else(|| "unidentified".to_string());
        lock(metrics).count_queue_drops(
            drops.cause.id(),
            &listener,
            &drops.namespace.to_string(),
            new,
        );
        let mut finding = Finding::from_queue_drops(&drops);
        finding.count = new;
        emit(events.as_deref_mut(), &finding, metrics)?;
    }
    let mut metrics = lock(metrics);
    for (namespace, listener) in queues.listeners_now() {
        metrics.set_listener_queue(
            &listener.local.to_string(),
            &namespace.to_string(),
            listener.queue_len,
            listener.queue_limit,
        );
    }
    Ok(())
}

fn emit(
    events: Option<&mut EventStream>,
    finding: &Finding,
    metrics: &Mutex<Metrics>,
) -> Result<()> {
    if let Some(events) = events {
        if events.emit(Instant::now(), finding)? == Emitted::Suppressed {
            lock(metrics).count_suppressed(finding.kind.as_str());
        }
    }
    Ok(())
}

fn fold_kernel_totals(session: &Session, metrics: &Mutex<Metrics>) -> Result<()> {
    let transitions = session.state_transitions()?;
    let retransmits: Vec<(&str, u64)> = session
        .retransmits()?
        .into_iter()
        .map(|(kind, count)| (kind.label(), count))
        .collect();
    let lost = session.counters()?.events_lost;
    let programs = session.program_stats();
    let mut metrics = lock(metrics);
    metrics.fold_transitions(&transitions);
    metrics.fold_retransmits(&retransmits);
    metrics.fold_events_lost(lost);
    metrics.fold_program_stats(&programs);
    Ok(())
}

/// What the event stream already said about retransmits and states, so that each report says
/// only what changed: retransmits as the growth since the last report, states as they are now.
#[derive(Default)]
struct Reported {
    counts: HashMap<(&'static str, Option<String>, Option<String>), u64>,
}

impl Reported {
    fn changed(&mut self, found: Vec<Finding>) -> Vec<Finding> {
        found
            .into_iter()
            .filter_map(|mut finding| {
                let key = (finding.cause, finding.local.clone(), finding.remote.clone());
                let before = self.counts.insert(key, finding.count).unwrap_or(0);
                if finding.count == before {
                    return None;
                }
                if finding.kind == Kind::Retransmit {
                    finding.count = finding.count.saturating_sub(before);
                }
                Some(finding)
            })
            .collect()
    }
}
