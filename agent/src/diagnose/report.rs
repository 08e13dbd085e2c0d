//! The diagnose report: what was watched, with which probes, and the findings.

use std::time::Duration;

use serde::Serialize;

use crate::{
    findings::{finding::Finding, group::Groups},
    kernel::release::KernelInfo,
    probes::report::ProbeReport,
    session::{Counters, Session},
};

#[derive(Debug, Serialize)]
pub struct Report {
    pub kernel: KernelInfo,
    pub probes: Vec<ProbeReport>,
    pub findings: Vec<Finding>,
    pub window: Window,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Window {
    pub seconds: f64,
    /// Ended by Ctrl-C or SIGTERM before the requested duration.
    pub interrupted: bool,
    pub resets_sent: u64,
    pub resets_received: u64,
    /// Events the kernel could not hand over (ring buffer full): counted, not explained.
    pub events_lost: u64,
}

impl Report {
    pub fn new(
        session: &Session,
        groups: Groups,
        counters: Counters,
        elapsed: Duration,
        interrupted: bool,
    ) -> Self {
        let mut warnings = session.warnings.clone();
        if counters.events_lost > 0 {
            warnings.push(format!(
                "{} events were lost (ring buffer full); counts below are lower than the truth",
                counters.events_lost
            ));
        }
        Self {
            kernel: session.kernel.clone(),
            probes: session.probes.clone(),
            findings: groups
                .into_sorted()
                .iter()
                .map(Finding::from_group)
                .collect(),
            window: Window {
                seconds: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
                interrupted,
                resets_sent: counters.resets_sent,
                resets_received: counters.resets_received,
                events_lost: counters.events_lost,
            },
            warnings,
        }
    }
}
