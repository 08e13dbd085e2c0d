//! What attached, by which method, and why the rest did not.

use serde::Serialize;

use super::method::Method;

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The kernel hook, e.g. `tcp:tcp_send_reset` or `tcp_v4_send_reset`.
    pub name: String,
    /// The method that attached, or the last one tried.
    pub method: Option<Method>,
    pub attached: bool,
    /// Why it is not attached, or what was tried before the method that worked.
    pub error: Option<String>,
    /// Not attached because another hook already provides what it would: a fallback that was
    /// not needed, not a failure.
    pub standby: bool,
}

impl ProbeReport {
    pub fn attached(name: &str, method: Method, earlier_failures: &[String]) -> Self {
        Self {
            name: name.to_string(),
            method: Some(method),
            attached: true,
            error: (!earlier_failures.is_empty()).then(|| earlier_failures.join("; ")),
            standby: false,
        }
    }

    pub fn failed(name: &str, method: Option<Method>, error: String) -> Self {
        Self {
            name: name.to_string(),
            method,
            attached: false,
            error: Some(error),
            standby: false,
        }
    }

    /// `why` names what made it unnecessary.
    pub fn standby(name: &str, why: String) -> Self {
        Self {
            name: name.to_string(),
            method: None,
            attached: false,
            error: Some(format!("not needed: {why}")),
            standby: true,
        }
    }
}
