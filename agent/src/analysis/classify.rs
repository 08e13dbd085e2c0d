//! Applies the reset rules to one reset, with the facts of this host they need.

use tcpwhy_common::tcp_state as st;

use super::{
    firewall::FirewallEvidence,
    reset_rules::{Evidence, classify as apply_rules},
    service::{End, EphemeralPorts, service_end},
};
use crate::{
    events::reset::Reset,
    kernel::reset_reasons::ResetReasons,
    model::{Cause, Direction},
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
    /// The end the finding is named by (see [`super::service`]).
    pub service: End,
}

/// What the engine knows around one reset, beyond the reset itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Surroundings {
    /// `net.ipv4.tcp_abort_on_overflow` of the reset's namespace, where known.
    pub abort_on_overflow: Option<bool>,
    /// The namespace's ephemeral port range.
    pub ports: EphemeralPorts,
    /// A reset received that a firewall on this host built (see [`super::firewall`]).
    pub firewall: Option<FirewallEvidence>,
}

pub fn classify<'a>(
    reset: &'a Reset,
    reasons: &'a ResetReasons,
    around: Surroundings,
) -> Classified<'a> {
    let reason = reset.reason.and_then(|r| reasons.name(r));
    let (cause, rule) = apply_rules(&Evidence {
        reset,
        reason,
        abort_on_overflow: around.abort_on_overflow,
        firewall: around.firewall,
    });
    Classified {
        reset,
        cause,
        rule,
        reason,
        origin: reset_origin_name(reset.origin),
        service: service_end(
            reset.local,
            reset.remote,
            known_service_end(reset),
            around.ports,
            // Without a clue, a reset sent is this host's service speaking; one received, its
            // peer's.
            match reset.direction {
                Direction::Sent => End::Local,
                Direction::Received => End::Remote,
            },
        ),
    }
}

/// What the socket says about which end is the service: a listener's side of a handshake (or
/// a SYN to a port with no socket) is; a connecting socket's side is not.
fn known_service_end(reset: &Reset) -> Option<End> {
    match reset.state {
        Some(st::SYN_SENT) => Some(End::Remote),
        Some(st::LISTEN | st::SYN_RECV | st::NEW_SYN_RECV) => Some(End::Local),
        None if reset.segment_is_syn() => Some(End::Local),
        _ => None,
    }
}
