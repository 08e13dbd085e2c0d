//! What attached, by which method, and why the rest did not.

use serde::Serialize;

use super::method::Method;

/// How a fallback that was not needed explains itself (it is not a failure).
pub const NOT_NEEDED: &str = "not needed";

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The kernel hook, e.g. `tcp:tcp_send_reset` or `tcp_v4_send_reset`.
    pub name: String,
    /// The method that attached, or the last one tried.
    pub method: Option<Method>,
    pub attached: bool,
    /// Why it is not attached, or what was tried before the method that worked.
    pub error: Option<String>,
}

impl ProbeReport {
    pub fn attached(name: &str, method: Method, earlier_failures: &[String]) -> Self {
        Self {
            name: name.to_string(),
            method: Some(method),
            attached: true,
            error: (!earlier_failures.is_empty()).then(|| earlier_failures.join("; ")),
        }
    }

    pub fn failed(name: &str, method: Option<Method>, error: String) -> Self {
        Self {
            name: name.to_string(),
            method,
            attached: false,
            error: Some(error),
        }
    }
}
