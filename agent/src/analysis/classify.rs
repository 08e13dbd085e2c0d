//! Applies the reset rules to one reset, with the facts of this host they need.

use super::reset_rules::{Evidence, classify as apply_rules};
use crate::{
    events::reset::Reset, kernel::reset_reasons::ResetReasons, model::Cause,
    probes::catalog::reset_origin_name,
};

/// A reset after classification.
pub struct Classified<'a> {
    pub reset: &'a Reset,
    pub cause: Cause,
    /// The `when` of the rule that decided, quoted as evidence.
    pub rule: &'static str,
    /// The kernel's own reason, by its name on the running kernel.
    pub reason: Option<&'a str>,
    pub origin: &'static str,
}

/// `abort_on_overflow`: `net.ipv4.tcp_abort_on_overflow` of the reset's namespace, where known.
pub fn classify<'a>(
    reset: &'a Reset,
    reasons: &'a ResetReasons,
    abort_on_overflow: Option<bool>,
) -> Classified<'a> {
    let reason = reset.reason.and_then(|r| reasons.name(r));
    let (cause, rule) = apply_rules(&Evidence {
        reset,
        reason,
        abort_on_overflow,
    });
    Classified {
        reset,
        cause,
        rule,
        reason,
        origin: reset_origin_name(reset.origin),
    }
}
