//! `tcpwhy watch`: each finding as it happens, one line each (or JSON lines), until Ctrl-C. An
//! output of the engine, like the daemon's event stream but for a person at a terminal.

use std::io::Write;

use anyhow::Result;

use crate::{
    analysis::{
        classify::Classified, connections::connects::FailedConnects, filter::Filter, findings,
        grouping::ResetGroup, reported::Reported,
    },
    cli::Format,
    diagnose::text,
    engine::{Engine, Output, SAMPLE_EVERY},
    events::flow::ConnectFailed,
    model::Finding,
};

/// Retransmit and state findings need socket dumps: asked for this often.
const CONNECTIONS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Drops are counted in the kernel and read from one map: asked for every second.
const DROPS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn watch(mut engine: Engine, format: Format, filter: Filter) -> Result<()> {
    eprintln!(
        "attached {} probes, watching until Ctrl-C",
        crate::probes::attach::attached_count(&engine.session.probes)
    );
    let mut printer = Printer {
        format,
        filter,
        timeouts: FailedConnects::default(),
        reported: Reported::default(),
        reported_drops: Reported::default(),
        samples: 0,
    };
    match engine.run(&mut printer, None).await {
        // The reader went away (`tcpwhy watch | head -3`): nobody is left to tell.
        Err(err) if is_broken_pipe(&err) => Ok(()),
        ended => ended.map(drop),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

struct Printer {
    format: Format,
    filter: Filter,
    timeouts: FailedConnects,
    reported: Reported,
    reported_drops: Reported,
    samples: u32,
}

impl Printer {
    fn print(&self, finding: &Finding) -> Result<()> {
        if !self.filter.matches(finding) {
            return Ok(());
        }
        let line = match self.format {
            Format::Text => text::headline(finding),
            Format::Json => serde_json::to_string(finding)?,
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    }
}

impl Output for Printer {
    fn reset(&mut self, reset: &Classified) -> Result<()> {
        self.print(&findings::of_resets(&ResetGroup::single(reset)))
    }

    fn connect_failed(&mut self, failed: ConnectFailed) -> Result<()> {
        self.timeouts.add(failed);
        Ok(())
    }

    fn sampled(&mut self, engine: &mut Engine) -> Result<()> {
        for (_, finding) in engine.new_queue_findings() {
            self.print(&finding)?;
        }
        self.samples = self.samples.wrapping_add(1);
        let samples_in =
            |period: std::time::Duration| (period.as_millis() / SAMPLE_EVERY.as_millis()) as u32;
        if self.samples.is_multiple_of(samples_in(DROPS_EVERY)) {
            for finding in self.reported_drops.changed(engine.drop_findings()) {
                self.print(&finding)?;
            }
        }
        if self.samples.is_multiple_of(samples_in(CONNECTIONS_EVERY)) {
            let found = engine.connection_findings(&std::mem::take(&mut self.timeouts));
            for finding in self.reported.changed(found) {
                self.print(&finding)?;
            }
        }
        Ok(())
    }
}
