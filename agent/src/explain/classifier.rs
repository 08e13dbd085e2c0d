//! Applies the reset rules with what the agent knows about this host.

use tcpwhy_common::reset::ResetOrigin;

use super::reset_rules::{Evidence, classify};
use crate::{
    events::reset::Reset,
    findings::group::Classified,
    kernel::{reset_reasons::ResetReasons, sysctl},
};

pub struct Classifier {
    reasons: ResetReasons,
    abort_on_overflow: Option<bool>,
}

impl Classifier {
    pub fn new(reasons: ResetReasons) -> Self {
        Self {
            reasons,
            abort_on_overflow: sysctl::read_int("net.ipv4.tcp_abort_on_overflow").map(|v| v != 0),
        }
    }

    pub fn classify<'a>(&'a self, reset: &'a Reset) -> Classified<'a> {
        let reason = reset.reason.and_then(|r| self.reasons.name(r));
        let (cause, rule) = classify(&Evidence {
            reset,
            reason,
            abort_on_overflow: self.abort_on_overflow,
        });
        Classified {
            reset,
            cause,
            rule,
            reason,
            origin: hook_name(reset.origin),
        }
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
