//! A finding as `diagnose --format json` and the event stream publish it. The field names are a
//! public contract.

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Cause, Kind, Process, time};

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub cause: Cause,
    pub count: u64,
    /// `ip:port`; null for a queue drop whose listener could not be identified.
    pub local: Option<String>,
    /// A sample remote endpoint; null where none is known (queue drops read from counters).
    pub remote: Option<String>,
    pub process: Option<Process>,
    pub kernel_reason: Option<String>,
    /// When the first and the last of `count` happened (RFC 3339, UTC); null where the kernel
    /// gives no time (a snapshot of socket states).
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// A few more of the endpoints involved besides `remote` (resets sent) or `local` (resets
    /// received).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    pub explanation: String,
    pub advice: Vec<String>,
    pub evidence: Map<String, Value>,
    /// The findings of the other end, when both ends are on this host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related>,
}

/// A finding at the other end of the same connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Related {
    pub kind: Kind,
    pub cause: Cause,
    pub local: Option<String>,
    pub remote: Option<String>,
}

impl Related {
    pub fn of(finding: &Finding) -> Self {
        Self {
            kind: finding.kind,
            cause: finding.cause,
            local: finding.local.clone(),
            remote: finding.remote.clone(),
        }
    }
}

impl Finding {
    /// The finding, with the CLOCK_MONOTONIC times of its first and last event.
    pub fn seen_between(mut self, first_ns: u64, last_ns: u64) -> Self {
        self.first_seen = Some(time::wall_clock(first_ns));
        self.last_seen = Some(time::wall_clock(last_ns));
        self
    }

    /// A retransmit or state finding: no kernel reason, advice from the cause table.
    #[allow(clippy::too_many_arguments)]
    pub fn observed(
        kind: Kind,
        cause: Cause,
        count: u64,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
        process: Option<Process>,
        explanation: String,
        evidence: Map<String, Value>,
    ) -> Self {
        Self {
            kind,
            cause,
            count,
            local: local.map(|l| l.to_string()),
            remote: remote.map(|r| r.to_string()),
            process,
            kernel_reason: None,
            first_seen: None,
            last_seen: None,
            peers: Vec::new(),
            explanation,
            advice: cause.advice_lines(),
            evidence,
            related: Vec::new(),
        }
    }
}
