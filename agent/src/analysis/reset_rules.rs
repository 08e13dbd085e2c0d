//! Where reset causes are decided. The rules read like the cause table in docs/causes.md: the
//! first rule whose condition holds names the cause.
//!
//! On Linux ≥ 6.10 the kernel's reason decides most causes. Some active resets still carry
//! NOT_SPECIFIED, and older kernels give no reason at all, so every reason-based rule has an
//! evidence-based twin: which hook saw the reset, the socket's state and flags, unread bytes.

use tcpwhy_common::{reset::ResetOrigin, tcp_state as st};

use super::firewall::FirewallEvidence;
use crate::{
    events::reset::Reset,
    model::{Cause, Direction},
};

/// Everything a rule may look at.
pub struct Evidence<'a> {
    pub reset: &'a Reset,
    /// The kernel's reason name (without `SK_RST_REASON_`), when it gave one.
    pub reason: Option<&'a str>,
    /// `net.ipv4.tcp_abort_on_overflow` in the socket's namespace, when known.
    pub abort_on_overflow: Option<bool>,
    /// A reset received that a firewall on this host built (see [`super::firewall`]).
    pub firewall: Option<FirewallEvidence>,
}

impl Evidence<'_> {
    fn reason_is(&self, names: &[&str]) -> bool {
        self.reason.is_some_and(|r| names.contains(&r))
    }

    /// No reason, or the kernel's "not specified": the cause must come from evidence.
    fn unspecified(&self) -> bool {
        self.reason.is_none_or(|r| r == "NOT_SPECIFIED")
    }

    fn state(&self) -> Option<u8> {
        self.reset.state
    }

    fn unread_bytes(&self) -> u32 {
        self.reset.socket.and_then(|s| s.unread_bytes).unwrap_or(0)
    }

    fn linger_zero(&self) -> bool {
        self.reset
            .socket
            .is_some_and(|s| s.linger_on && s.linger_zero)
    }

    fn orphan(&self) -> bool {
        self.reset.socket.is_some_and(|s| s.orphan)
    }

    fn timewait_substate(&self, substate: u8) -> bool {
        self.state() == Some(st::TIME_WAIT) && self.reset.tw_substate == Some(substate)
    }
}

pub struct Rule {
    pub cause: Cause,
    /// The condition in words; shown as evidence of why the cause was chosen.
    pub when: &'static str,
    pub holds: fn(&Evidence) -> bool,
}

const VIOLATIONS: &[&str] = &[
    "TCP_INVALID_ACK_SEQUENCE",
    "TCP_RFC7323_PAWS",
    "TCP_TOO_OLD_ACK",
    "TCP_ACK_UNSENT_DATA",
    "TCP_FLAGS",
    "TCP_OLD_ACK",
    "INVALID_SYN",
];

/// Resets this host sends, most specific first.
pub const SENT: &[Rule] = &[
    Rule {
        cause: Cause::FirewallReject,
        when: "netfilter built the RST (nf_send_reset): a REJECT rule answered the segment, not the TCP stack",
        holds: |e| e.reset.origin == ResetOrigin::NetfilterReset,
    },
    Rule {
        cause: Cause::NoListener,
        when: "no socket for the segment (kernel reason NO_SOCKET, or none) and the segment is a SYN",
        holds: |e| {
            !e.reset.has_socket()
                && (e.reason_is(&["NO_SOCKET"]) || e.unspecified())
                && e.reset.segment_is_syn()
        },
    },
    Rule {
        cause: Cause::UnknownConnection,
        when: "no socket for the segment (kernel reason NO_SOCKET, or none) and the segment is not a SYN",
        holds: |e| !e.reset.has_socket() && (e.reason_is(&["NO_SOCKET"]) || e.unspecified()),
    },
    Rule {
        cause: Cause::CloseWithUnreadData,
        when: "kernel reason TCP_ABORT_ON_CLOSE, or an active reset from a socket with unread bytes",
        holds: |e| {
            e.reason_is(&["TCP_ABORT_ON_CLOSE"])
                || (e.unspecified() && e.reset.is_active() && e.unread_bytes() > 0)
        },
    },
    Rule {
        cause: Cause::LingerZeroAbort,
        when: "an active reset from a socket with SO_LINGER on and a linger time of 0",
        holds: |e| {
            e.reset.is_active()
                && e.linger_zero()
                && (e.unspecified() || e.reason_is(&["TCP_STATE", "TCP_DISCONNECT_WITH_DATA"]))
        },
    },
    Rule {
        cause: Cause::DataAfterClose,
        when: "kernel reason TCP_ABORT_ON_DATA, or a segment for a closed socket (orphan, or a FIN_WAIT2 timewait socket)",
        holds: |e| {
            e.reason_is(&["TCP_ABORT_ON_DATA"])
                || ((e.unspecified() || e.reason_is(&["TCP_TIMEWAIT_SOCKET"]))
                    && e.timewait_substate(st::FIN_WAIT2))
                || (e.unspecified()
                    && !e.reset.is_active()
                    && e.orphan()
                    && e.state() == Some(st::CLOSE))
        },
    },
    Rule {
        cause: Cause::TimewaitReject,
        when: "kernel reason TCP_TIMEWAIT_SOCKET, or a reply from a socket in TIME_WAIT",
        holds: |e| {
            e.reason_is(&["TCP_TIMEWAIT_SOCKET"])
                || (e.unspecified() && e.state() == Some(st::TIME_WAIT))
        },
    },
    Rule {
        cause: Cause::AcceptQueueOverflowAbort,
        when: "a listener answered the handshake's final ACK with a reset while net.ipv4.tcp_abort_on_overflow=1",
        holds: |e| {
            e.abort_on_overflow == Some(true)
                && e.state() == Some(st::LISTEN)
                && !e.reset.is_active()
                && !e.reset.segment_is_syn()
                && (e.unspecified() || e.reason_is(&["INVALID_SYN", "TCP_ABORT_ON_DATA"]))
        },
    },
    Rule {
        cause: Cause::KeepaliveTimeout,
        when: "kernel reason TCP_KEEPALIVE_TIMEOUT",
        holds: |e| e.reason_is(&["TCP_KEEPALIVE_TIMEOUT"]),
    },
    Rule {
        cause: Cause::MemoryPressureAbort,
        when: "kernel reason TCP_ABORT_ON_MEMORY",
        holds: |e| e.reason_is(&["TCP_ABORT_ON_MEMORY"]),
    },
    Rule {
        cause: Cause::ProtocolViolation,
        when: "the kernel reason names a TCP rule the segment broke, or a reply from a listening or half-open socket",
        holds: |e| {
            e.reason_is(VIOLATIONS)
                || (e.unspecified()
                    && !e.reset.is_active()
                    && matches!(
                        e.state(),
                        Some(st::LISTEN | st::SYN_RECV | st::NEW_SYN_RECV)
                    ))
        },
    },
    Rule {
        cause: Cause::ApplicationAbort,
        when: "kernel reason TCP_STATE, TCP_DISCONNECT_WITH_DATA or TCP_ABORT_ON_LINGER, or another active reset",
        holds: |e| {
            e.reason_is(&[
                "TCP_STATE",
                "TCP_DISCONNECT_WITH_DATA",
                "TCP_ABORT_ON_LINGER",
            ]) || (e.unspecified() && e.reset.is_active())
        },
    },
];

/// The rule that infers a firewall's reset, which evidence marks as inferred.
pub const FIREWALL_INFERRED: &str = "the RST came from an address of this host, but its TCP stack sent no such reset (inferred: a netfilter rule built it)";

/// Resets this host receives: the local state when the RST arrived decides.
pub const RECEIVED: &[Rule] = &[
    Rule {
        cause: Cause::FirewallReject,
        when: "netfilter on this host built the RST (nf_send_reset), not a TCP stack",
        holds: |e| e.firewall == Some(FirewallEvidence::Probed),
    },
    Rule {
        cause: Cause::FirewallReject,
        when: FIREWALL_INFERRED,
        holds: |e| e.firewall == Some(FirewallEvidence::Inferred),
    },
    Rule {
        cause: Cause::ConnectionRefused,
        when: "the RST answered our SYN (local state SYN_SENT)",
        holds: |e| e.state() == Some(st::SYN_SENT),
    },
    Rule {
        cause: Cause::PeerReset,
        when: "the RST hit an established connection (local state ESTABLISHED or SYN_RECV)",
        holds: |e| matches!(e.state(), Some(st::ESTABLISHED | st::SYN_RECV)),
    },
    Rule {
        cause: Cause::PeerResetDuringClose,
        when: "the RST arrived while the connection was closing (FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING)",
        holds: |e| {
            matches!(
                e.state(),
                Some(st::FIN_WAIT1 | st::FIN_WAIT2 | st::CLOSE_WAIT | st::LAST_ACK | st::CLOSING)
            )
        },
    },
];

/// The cause and the rule that chose it.
pub fn classify(evidence: &Evidence) -> (Cause, &'static str) {
    let rules = match evidence.reset.direction {
        Direction::Sent => SENT,
        Direction::Received => RECEIVED,
    };
    rules
        .iter()
        .find(|rule| (rule.holds)(evidence))
        .map(|rule| (rule.cause, rule.when))
        .unwrap_or((Cause::Unclassified, "no rule matched the evidence"))
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::reset::{ResetOrigin, tcp_flags};

    use super::*;
    use crate::events::reset::SocketEvidence;

    fn reset(direction: Direction, origin: ResetOrigin) -> Reset {
        Reset::bare(direction, origin, "127.0.0.2:80", "127.0.0.1:5000", 0)
    }

    fn full_socket(state: u8) -> (Option<u8>, Option<SocketEvidence>) {
        (
            Some(state),
            Some(SocketEvidence {
                linger_on: false,
                linger_zero: false,
                orphan: false,
                unread_bytes: Some(0),
            }),
        )
    }

    fn decide(reset: &Reset, reason: Option<&str>) -> Cause {
        classify(&Evidence {
            reset,
            reason,
            abort_on_overflow: Some(false),
            firewall: None,
        })
        .0
    }

    #[test]
    fn no_socket_splits_on_syn_with_or_without_reason() {
        let mut r = reset(Direction::Sent, ResetOrigin::SendResetReply);
        r.segment_flags = Some(tcp_flags::SYN);
        assert_eq!(decide(&r, Some("NO_SOCKET")), Cause::NoListener);
        assert_eq!(
            decide(&r, None),
            Cause::NoListener,
            "pre-6.10: from evidence"
        );
        r.segment_flags = Some(tcp_flags::ACK);
        assert_eq!(decide(&r, Some("NO_SOCKET")), Cause::UnknownConnection);
        r.origin = ResetOrigin::V4SendReset;
        assert_eq!(decide(&r, None), Cause::UnknownConnection);
    }

    #[test]
    fn active_resets_split_on_unread_bytes_and_linger() {
        let mut r = reset(Direction::Sent, ResetOrigin::SendActiveReset);
        (r.state, r.socket) = full_socket(st::CLOSE);
        r.socket.as_mut().unwrap().unread_bytes = Some(12);
        assert_eq!(decide(&r, None), Cause::CloseWithUnreadData);
        assert_eq!(
            decide(&r, Some("TCP_ABORT_ON_CLOSE")),
            Cause::CloseWithUnreadData
        );
        let socket = r.socket.as_mut().unwrap();
        socket.unread_bytes = Some(0);
        socket.linger_on = true;
        socket.linger_zero = true;
        assert_eq!(decide(&r, None), Cause::LingerZeroAbort);
        assert_eq!(decide(&r, Some("TCP_STATE")), Cause::LingerZeroAbort);
        r.socket.as_mut().unwrap().linger_on = false;
        assert_eq!(decide(&r, Some("TCP_STATE")), Cause::ApplicationAbort);
        assert_eq!(decide(&r, None), Cause::ApplicationAbort);
        assert_eq!(
            decide(&r, Some("TCP_KEEPALIVE_TIMEOUT")),
            Cause::KeepaliveTimeout
        );
        assert_eq!(
            decide(&r, Some("TCP_ABORT_ON_MEMORY")),
            Cause::MemoryPressureAbort
        );
    }

    #[test]
    fn timewait_sockets_split_on_substate() {
        let mut r = reset(Direction::Sent, ResetOrigin::SendResetReply);
        r.state = Some(st::TIME_WAIT);
        r.tw_substate = Some(st::FIN_WAIT2);
        assert_eq!(
            decide(&r, Some("TCP_TIMEWAIT_SOCKET")),
            Cause::DataAfterClose
        );
        assert_eq!(decide(&r, None), Cause::DataAfterClose);
        r.tw_substate = Some(st::TIME_WAIT);
        assert_eq!(
            decide(&r, Some("TCP_TIMEWAIT_SOCKET")),
            Cause::TimewaitReject
        );
        assert_eq!(decide(&r, None), Cause::TimewaitReject);
    }

    #[test]
    fn orphan_reply_is_data_after_close_and_reasons_name_violations() {
        let mut r = reset(Direction::Sent, ResetOrigin::V4SendReset);
        (r.state, r.socket) = full_socket(st::CLOSE);
        r.socket.as_mut().unwrap().orphan = true;
        assert_eq!(decide(&r, None), Cause::DataAfterClose);
        assert_eq!(decide(&r, Some("TCP_ABORT_ON_DATA")), Cause::DataAfterClose);
        assert_eq!(
            decide(&r, Some("TCP_RFC7323_PAWS")),
            Cause::ProtocolViolation
        );
        r.state = Some(st::LISTEN);
        r.socket.as_mut().unwrap().orphan = false;
        assert_eq!(decide(&r, None), Cause::ProtocolViolation);
        let overflow = Evidence {
            reset: &r,
            reason: None,
            abort_on_overflow: Some(true),
            firewall: None,
        };
        assert_eq!(classify(&overflow).0, Cause::AcceptQueueOverflowAbort);
    }

    #[test]
    fn received_resets_follow_the_local_state() {
        let mut r = reset(Direction::Received, ResetOrigin::ReceiveReset);
        for (state, cause) in [
            (st::SYN_SENT, Cause::ConnectionRefused),
            (st::ESTABLISHED, Cause::PeerReset),
            (st::CLOSE_WAIT, Cause::PeerResetDuringClose),
            (st::FIN_WAIT2, Cause::PeerResetDuringClose),
            (st::LISTEN, Cause::Unclassified),
        ] {
            r.state = Some(state);
            assert_eq!(decide(&r, None), cause, "state {state}");
        }
    }
}
