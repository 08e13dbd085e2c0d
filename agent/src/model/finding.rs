//! A finding as `diagnose --format json` and the event stream publish it. The field names are a
//! public contract.

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Cause, Kind, Process};

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
    pub explanation: String,
    pub advice: Vec<String>,
    pub evidence: Map<String, Value>,
}

impl Finding {
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
            explanation,
            advice: cause.advice_lines(),
            evidence,
        }
    }
}
