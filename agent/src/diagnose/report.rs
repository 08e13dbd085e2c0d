//! The diagnose report: what was watched, with which probes, and the findings.

use std::time::Duration;

use serde::Serialize;

use crate::{
    analysis::{
        connections::summary::ConnectionSummary,
        findings,
        grouping::ResetGroup,
        latency::LatencyReport,
        queues::{conditions::ListenerCondition, drops::ListenerDrops},
        related,
    },
    engine::session::Counters,
    kernel::release::KernelInfo,
    model::Finding,
    probes::report::ProbeReport,
};

#[derive(Debug, Serialize)]
pub struct Report {
    pub kernel: KernelInfo,
    pub probes: Vec<ProbeReport>,
    pub findings: Vec<Finding>,
    /// Listeners full, nearly full or capped by somaxconn when the window started and ended.
    pub listeners: ListenerSnapshots,
    /// State transitions and connection lifetimes over the window.
    pub connections: ConnectionSummary,
    /// Handshake times per destination and listener, and round trips at close.
    pub latency: LatencyReport,
    pub window: Window,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ListenerSnapshots {
    pub start: Vec<ListenerCondition>,
    pub end: Vec<ListenerCondition>,
}

/// What the watch window collected.
pub struct Observations {
    /// Reset groups, most frequent first.
    pub resets: Vec<ResetGroup>,
    pub connection_findings: Vec<Finding>,
    pub drop_findings: Vec<Finding>,
    pub summary: ConnectionSummary,
    pub latency: LatencyReport,
    pub queue_drops: Vec<ListenerDrops>,
    pub queue_problems: Vec<String>,
    pub listeners_at_start: Vec<ListenerCondition>,
    pub listeners_at_end: Vec<ListenerCondition>,
}

#[derive(Debug, Serialize)]
pub struct Window {
    pub seconds: f64,
    /// Ended by Ctrl-C or SIGTERM before the requested duration.
    pub interrupted: bool,
    pub resets_sent: u64,
    pub resets_received: u64,
    /// Of those, resets outside `--port`: counted in the kernel, never examined.
    pub resets_filtered_out: u64,
    /// Of those, resets past the per-event rate, which the kernel counted in aggregates: in
    /// the findings' counts, each with one sample of its other end.
    pub resets_aggregated: u64,
    /// Events the kernel could not hand over (ring buffer full): counted, not explained.
    pub events_lost: u64,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kernel: KernelInfo,
        probes: Vec<ProbeReport>,
        mut warnings: Vec<String>,
        seen: Observations,
        counters: Counters,
        elapsed: Duration,
        interrupted: bool,
    ) -> Self {
        warnings.extend(seen.queue_problems);
        if counters.events_lost > 0 {
            warnings.push(format!(
                "{} events were lost (ring buffer full); counts below are lower than the truth",
                counters.events_lost
            ));
        }
        let mut findings: Vec<Finding> = seen
            .queue_drops
            .iter()
            .map(findings::of_queue_drops)
            .chain(seen.resets.iter().map(findings::of_resets))
            .chain(seen.connection_findings)
            .chain(seen.drop_findings)
            .collect();
        related::link(&mut findings);
        Self {
            kernel,
            probes,
            findings,
            connections: seen.summary,
            latency: seen.latency,
            listeners: ListenerSnapshots {
                start: seen.listeners_at_start,
                end: seen.listeners_at_end,
            },
            window: Window {
                seconds: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
                interrupted,
                resets_sent: counters.resets_sent,
                resets_received: counters.resets_received,
                resets_filtered_out: counters.resets_filtered_out,
                resets_aggregated: counters.resets_aggregated,
                events_lost: counters.events_lost,
            },
            warnings,
        }
    }
}
