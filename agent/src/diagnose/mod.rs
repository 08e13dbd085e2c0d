//! `tcpwhy diagnose`: watch for a while, then explain what was seen. An output of the engine
//! that collects everything into one report.

pub mod report;
pub mod text;

use std::time::Duration;

use anyhow::Result;

use self::report::{Observations, Report};
use crate::{
    analysis::{
        classify::Classified, connections::connects::FailedConnects,
        connections::summary::ConnectionSummary, grouping::Groups,
    },
    engine::{Ended, Engine, Output},
    events::flow::ConnectFailed,
    probes::attach::attached_count,
};

/// Everything seen in the window, grouped.
#[derive(Default)]
struct Collected {
    resets: Groups,
    failed: FailedConnects,
}

impl Output for Collected {
    fn reset(&mut self, reset: &Classified) -> Result<()> {
        self.resets.add(reset);
        Ok(())
    }

    fn connect_failed(&mut self, failed: ConnectFailed) -> Result<()> {
        self.failed.add(failed);
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
    let mut seen = Collected::default();
    let ended = engine.run(&mut seen, duration).await?;
    let elapsed = engine.watched_for();
    let listeners_at_end = engine.listeners_in_trouble();
    let counters = engine.session.counters()?;
    let connection_findings = engine.connection_findings(&seen.failed);
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
            summary,
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
