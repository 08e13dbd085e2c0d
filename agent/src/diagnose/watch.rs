//! The watch window: collect resets and listen-queue drops until the duration ends or the user
//! interrupts.

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};

use super::report::{Observations, Report};
use crate::{
    connections::{self, connects::FailedConnects, summary::ConnectionSummary},
    events::reset::Process,
    explain::classifier::Classifier,
    findings::group::{Groups, ResetGroup},
    probes::attach::attached_count,
    queues::{kernel_view::ListenerProbes, watch::QueueWatch},
    session::{Observed, Session},
};

/// How often listen queues and namespace counters are sampled. A queue that fills and drains
/// faster than this is still counted (by the counters), only its listener may go unnamed.
const QUEUE_SAMPLE_EVERY: Duration = Duration::from_millis(100);

pub struct WatchOptions {
    /// None: until interrupted.
    pub duration: Option<Duration>,
}

/// Watches and builds the report. SIGINT (Ctrl-C) and SIGTERM end the window early; the
/// report is still produced from what was seen.
pub async fn watch(mut session: Session, options: &WatchOptions) -> Result<Report> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let window = match options.duration {
        Some(d) => format!("for {} s", d.as_secs_f64()),
        None => "until Ctrl-C".to_string(),
    };
    let mut queues = QueueWatch::default();
    queues.tick(Instant::now(), &session);
    let listeners_at_start = queues.snapshot(&session);
    // Scripts wait for this line before reproducing the problem.
    eprintln!(
        "attached {} probes, watching {window}",
        attached_count(&session.probes)
    );

    let started = Instant::now();
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut groups = Groups::default();
    let mut failed = FailedConnects::default();
    let mut sample = tokio::time::interval(QUEUE_SAMPLE_EVERY);
    let mut interrupted = false;
    loop {
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = session.next_events(|c, seen| take(c, seen, &mut groups, &mut failed)) => result?,
            _ = sample.tick() => {
                // The programs wake the reader only when a ring fills: drain on every tick.
                session.remaining_events(|c, seen| take(c, seen, &mut groups, &mut failed));
                queues.tick(Instant::now(), &session);
            }
            _ = sleep => break,
            _ = interrupt.recv() => { interrupted = true; break }
            _ = terminate.recv() => { interrupted = true; break }
        }
    }
    session.remaining_events(|c, seen| take(c, seen, &mut groups, &mut failed));
    queues.tick(Instant::now(), &session);
    let listeners_at_end = queues.snapshot(&session);
    let mut resets = groups.into_sorted();
    name_owners_from_listeners(&mut resets, &mut queues, &session);
    let counters = session.counters()?;
    let connection_findings = connections::findings(&session, &queues, &failed, started.elapsed());
    let summary = ConnectionSummary::new(&session.state_transitions()?, &session.lifetimes()?);
    Ok(Report::new(
        &session,
        Observations {
            resets,
            connection_findings,
            summary,
            queue_problems: queues.problems.clone(),
            queue_drops: queues.into_drops(),
            listeners_at_start,
            listeners_at_end,
        },
        counters,
        started.elapsed(),
        interrupted,
    ))
}

fn take(classifier: &Classifier, seen: Observed, resets: &mut Groups, failed: &mut FailedConnects) {
    match seen {
        Observed::Reset(reset) => resets.add(classifier.classify(&reset)),
        Observed::ConnectFailed(connect) => failed.add(connect),
    }
}

/// Sockets that changed state before tcpwhy started have no recorded owner; the listener their
/// port belongs to (found through sock_diag) does.
fn name_owners_from_listeners(
    resets: &mut [ResetGroup],
    queues: &mut QueueWatch,
    probes: &dyn ListenerProbes,
) {
    for group in resets
        .iter_mut()
        .filter(|g| g.process.is_none() && g.state.is_some())
    {
        let Some(netns) = group.netns else { continue };
        if let Some(owner) = queues.listener_owner(u64::from(netns), group.local, probes) {
            group.process = Some(Process {
                pid: owner.pid,
                comm: owner.comm,
                learned_from: "listener_socket",
            });
            group.owner_learned_from = Some("listener_socket");
        }
    }
}
