//! Resets a firewall on this host built. A netfilter `reject with tcp reset` rule answers a
//! segment with an RST of its own (`nf_send_reset`), which never passes through the TCP stack's
//! reset hooks. So when a reset arrives from an address of this host and the stack sent no reset
//! on that connection just before, something outside TCP made it: a firewall. This only holds
//! while the reset probes see every reset the stack sends, which the engine checks before it asks.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
};

use crate::{events::reset::Reset, model::Direction};

/// How far apart a reset received and the stack's reset on the same connection may be to be the
/// same one. On one host they are microseconds apart, in either order: an active reset's
/// tracepoint fires after the segment left, and loopback may deliver it first. The margin
/// covers a slow reader, not the network.
const MATCH_WITHIN_NS: u64 = 1_000_000_000;

/// Resets this host's TCP stack sent recently, by connection.
#[derive(Default)]
pub struct StackResets {
    /// (local, remote) of each reset sent, with when it was last sent.
    sent: HashMap<(SocketAddr, SocketAddr), u64>,
    /// Set when entries had to be dropped before they aged out: until they would have, a
    /// missing entry proves nothing.
    forgot_until_ns: u64,
}

/// Resets remembered at most: a flood of resets sent costs bounded memory, and only pauses the
/// inference for a second.
const REMEMBERED: usize = 65_536;

impl StackResets {
    /// Notes a reset the stack sent.
    pub fn sent(&mut self, reset: &Reset) {
        debug_assert_eq!(reset.direction, Direction::Sent);
        if self.sent.len() >= REMEMBERED {
            let now = reset.timestamp_ns;
            self.sent
                .retain(|_, at| now.saturating_sub(*at) <= MATCH_WITHIN_NS);
            if self.sent.len() >= REMEMBERED {
                self.sent.clear();
                self.forgot_until_ns = now + MATCH_WITHIN_NS;
            }
        }
        self.sent
            .insert((reset.local, reset.remote), reset.timestamp_ns);
    }

    /// Lets go of resets too old to match any reset still to come: a batch's resets arrive
    /// within [`MATCH_WITHIN_NS`] of when they happened, so memory follows the reset rate.
    pub fn forget_before(&mut self, now_ns: u64) {
        let horizon = now_ns.saturating_sub(2 * MATCH_WITHIN_NS);
        self.sent.retain(|_, at| *at >= horizon);
    }

    /// Whether `received` came from an address of this host (`local_ips`, or loopback) while
    /// its stack sent no reset on that connection. None when that cannot be known.
    pub fn unsent_by_stack(&self, received: &Reset, local_ips: &HashSet<IpAddr>) -> bool {
        let from = received.remote.ip();
        if !(from.is_loopback() || local_ips.contains(&from)) {
            return false;
        }
        if received.timestamp_ns < self.forgot_until_ns {
            return false;
        }
        let sent_at = self.sent.get(&(received.remote, received.local));
        sent_at.is_none_or(|at| at.abs_diff(received.timestamp_ns) > MATCH_WITHIN_NS)
    }
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::reset::ResetOrigin;

    use super::*;

    fn reset(direction: Direction, local: &str, remote: &str, at: u64) -> Reset {
        let origin = match direction {
            Direction::Sent => ResetOrigin::SendResetReply,
            Direction::Received => ResetOrigin::ReceiveReset,
        };
        Reset::bare(direction, origin, local, remote, at)
    }

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_local_reset_the_stack_did_not_send_is_unsent() {
        let mut stack = StackResets::default();
        let none = HashSet::new();
        // The stack refused one connect: its reset is the one received.
        stack.sent(&reset(
            Direction::Sent,
            "127.0.0.1:80",
            "127.0.0.1:40000",
            SECOND,
        ));
        let answered = reset(
            Direction::Received,
            "127.0.0.1:40000",
            "127.0.0.1:80",
            SECOND + 5,
        );
        assert!(!stack.unsent_by_stack(&answered, &none));
        // Another connection, no reset sent: a firewall's.
        let rejected = reset(
            Direction::Received,
            "127.0.0.1:40001",
            "127.0.0.1:80",
            SECOND + 5,
        );
        assert!(stack.unsent_by_stack(&rejected, &none));
        // The same connection much later: the old reset is not this one's origin.
        let later = reset(
            Direction::Received,
            "127.0.0.1:40000",
            "127.0.0.1:80",
            3 * SECOND,
        );
        assert!(stack.unsent_by_stack(&later, &none));
    }

    #[test]
    fn only_resets_from_this_hosts_addresses_are_judged() {
        let stack = StackResets::default();
        let remote = reset(Direction::Received, "10.0.0.2:40000", "10.0.0.9:80", SECOND);
        assert!(!stack.unsent_by_stack(&remote, &HashSet::new()));
        let ours: HashSet<IpAddr> = ["10.0.0.9".parse().unwrap()].into();
        assert!(stack.unsent_by_stack(&remote, &ours));
    }

    #[test]
    fn resets_long_past_are_let_go() {
        let mut stack = StackResets::default();
        stack.sent(&reset(
            Direction::Sent,
            "127.0.0.1:80",
            "127.0.0.1:40000",
            SECOND,
        ));
        stack.sent(&reset(
            Direction::Sent,
            "127.0.0.1:80",
            "127.0.0.1:40001",
            4 * SECOND,
        ));
        stack.forget_before(4 * SECOND);
        assert_eq!(stack.sent.len(), 1);
    }

    #[test]
    fn a_flood_of_resets_sent_pauses_the_inference_instead_of_guessing() {
        let mut stack = StackResets::default();
        for i in 0..=REMEMBERED as u64 {
            let local = format!("127.0.0.1:{}", 1 + i % 60000);
            let remote = format!("127.0.0.{}:{}", 2 + i / 60000, 40000);
            stack.sent(&reset(Direction::Sent, &local, &remote, SECOND + i));
        }
        let unknown = reset(
            Direction::Received,
            "127.0.0.1:50000",
            "127.0.0.1:80",
            2 * SECOND,
        );
        assert!(!stack.unsent_by_stack(&unknown, &HashSet::new()));
        let after = reset(
            Direction::Received,
            "127.0.0.1:50000",
            "127.0.0.1:80",
            3 * SECOND,
        );
        assert!(stack.unsent_by_stack(&after, &HashSet::new()));
    }
}
