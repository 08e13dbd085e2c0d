//! Applies the reset rules to one reset, with the facts of this host they need.

use tcpwhy_common::reset::ResetOrigin;

use super::reset_rules::{Evidence, classify as apply_rules};
use crate::{events::reset::Reset, kernel::reset_reasons::ResetReasons, model::Cause};

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
        origin: hook_name(reset.origin),
    }
}

/// The hook that saw a reset, as the attach report names it.
pub fn hook_name(origin: ResetOrigin) -> &'static str {
    match origin {
        ResetOrigin::SendResetReply => "tcp:tcp_send_reset (reply)",
        ResetOrigin::SendResetActive => "tcp:tcp_send_reset (active)",
        ResetOrigin::V4SendReset => "tcp_v4_send_reset",
        ResetOrigin::V6SendReset => "tcp_v6_send_reset",
        ResetOrigin::SendActiveReset => "tcp_send_active_reset",
        ResetOrigin::ReceiveReset => "tcp:tcp_receive_reset",
    }
}
