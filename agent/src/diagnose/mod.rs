//! `tcpwhy diagnose`: watch for a while, then explain what was seen. An output of the engine
//! that collects everything into one report.

pub mod report;
pub mod text;

use std::{io::IsTerminal, time::Duration};

use anyhow::Result;

use self::report::{Observations, Report};
use crate::{
    analysis::{
        classify::Classified, connections::connects::FailedConnects,
        connections::summary::ConnectionSummary, grouping::Groups,
    },
    engine::{Ended, Engine, Output, SAMPLE_EVERY},
    events::flow::ConnectFailed,
    model::{Cause, Direction},
    probes::attach::attached_count,
};

/// Everything seen in the window, grouped.
#[derive(Default)]
struct Collected {
    resets: Groups,
    failed: FailedConnects,
    progress: Option<Progress>,
}

/// A live one-line count on a terminal, so that a long window is not silent.
#[derive(Default)]
struct Progress {
    resets: [u64; 2],
    failed_connects: u64,
    samples: u32,
}

impl Progress {
    /// Only where a person watches: nothing is written when stderr is not a terminal.
    fn on_terminal() -> Option<Self> {
        std::io::stderr().is_terminal().then(Progress::default)
    }

    fn show(&mut self, queue_drops: u64) {
        self.samples = self.samples.wrapping_add(1);
        if self
            .samples
            .is_multiple_of(samples_in(Duration::from_secs(1)))
        {
            eprint!(
                "\r  so far: {} resets sent, {} received, {} failed connects, {} queue drops ",
                self.resets[0], self.resets[1], self.failed_connects, queue_drops
            );
        }
    }

    fn clear(&self) {
        eprint!("\r\x1b[2K");
    }
}

fn samples_in(period: Duration) -> u32 {
    (period.as_millis() / SAMPLE_EVERY.as_millis()).max(1) as u32
}

impl Output for Collected {
    fn reset(&mut self, reset: &Classified) -> Result<()> {
        self.resets.add(reset);
        if reset.cause == Cause::ConnectionRefused {
            let (netns, remote) = (reset.reset.netns.unwrap_or(0), reset.reset.remote);
            self.failed
                .add_refused(u64::from(netns), remote, reset.reset.count());
        }
        if let Some(progress) = &mut self.progress {
            progress.resets[usize::from(reset.reset.direction == Direction::Received)] +=
                reset.reset.count();
        }
        Ok(())
    }

    fn connect_failed(&mut self, failed: ConnectFailed) -> Result<()> {
        if let Some(progress) = &mut self.progress {
            progress.failed_connects += 1;
        }
        self.failed.add(failed);
        Ok(())
    }

    fn sampled(&mut self, engine: &mut Engine) -> Result<()> {
        if let Some(progress) = &mut self.progress {
            progress.show(engine.namespaces.drops_so_far());
        }
        Ok(())
    }
}

/// Watches for `duration` (None: until interrupted) and builds the report. SIGINT (Ctrl-C) and
/// SIGTERM end the window early; the report is still produced from what was seen.
pub async fn diagnose(mut engine: Engine, duration: Option<Duration>) -> Result<Report> {
    let listeners_at_start = engine.listeners_in_trouble();
    let window = match duration {
        Some(d) => format!("for {} s", d.as_secs_f64()),
        None => "until Ctrl-C".to_string(),
    };
    // Scripts wait for this line before reproducing the problem.
    eprintln!(
        "attached {} probes, watching {window}",
        attached_count(&engine.session.probes)
    );
    let mut seen = Collected {
        progress: Progress::on_terminal(),
        ..Collected::default()
    };
    let ended = engine.run(&mut seen, duration).await?;
    if let Some(progress) = &seen.progress {
        progress.clear();
    }
    let elapsed = engine.watched_for();
    let listeners_at_end = engine.listeners_in_trouble();
    let counters = engine.session.counters()?;
    let connection_findings = engine.connection_findings(&seen.failed);
    let drop_findings = engine.drop_findings();
    let latency = engine.latency_report();
    let summary = ConnectionSummary::new(
        &engine.session.state_transitions()?,
        &engine.session.lifetimes()?,
    );
    let session_warnings = engine.session.warnings.clone();
    let kernel = engine.session.kernel.clone();
    let probes = engine.session.probes.clone();
    let queue_problems = engine.namespaces.problems.clone();
    let queue_drops = std::mem::take(&mut engine.namespaces).into_drops();
    Ok(Report::new(
        kernel,
        probes,
        session_warnings,
        Observations {
            resets: seen.resets.into_sorted(),
            connection_findings,
            drop_findings,
            summary,
            latency,
            queue_problems,
            queue_drops,
            listeners_at_start,
            listeners_at_end,
        },
        counters,
        elapsed,
        ended == Ended::Interrupted,
    ))
}
