//! Resets a firewall on this host built. A netfilter `reject with tcp reset` rule answers a
//! segment with an RST of its own (`nf_send_reset`), which never passes through the TCP stack's
//! reset hooks. Where a probe on `nf_send_reset` loads, the reset it saw names the firewall
//! outright. Elsewhere, when a reset arrives from an address of this host and the stack sent no
//! reset on that connection just before, something outside TCP made it: a firewall. That
//! inference only holds while the reset probes see every reset the stack sends, which the
//! engine checks before it asks.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
};

use tcpwhy_common::reset::ResetOrigin;

use crate::{events::reset::Reset, model::Direction};

/// How far apart a reset received and the reset sent for it may be to be the same one. On one
/// host they are microseconds apart, in either order: an active reset's tracepoint fires after
/// the segment left, and loopback may deliver it first. The margin covers a slow reader, not the
/// network.
const MATCH_WITHIN_NS: u64 = 1_000_000_000;

/// How a reset received is known to be a firewall's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallEvidence {
    /// The probe on `nf_send_reset` saw netfilter build it.
    Probed,
    /// It came from this host, whose TCP stack sent no such reset.
    Inferred,
}

/// Resets this host sent recently (by its TCP stack or by netfilter), by connection.
#[derive(Default)]
pub struct SentResets {
    /// (local, remote) of each reset sent, with when it was last sent and whether netfilter
    /// built it.
    sent: HashMap<(SocketAddr, SocketAddr), (u64, bool)>,
    /// Set when entries had to be dropped before they aged out: until they would have, a
    /// missing entry proves nothing.
    forgot_until_ns: u64,
}

/// Resets remembered at most: a flood of resets sent costs bounded memory, and only pauses the
/// inference for a second.
const REMEMBERED: usize = 65_536;

impl SentResets {
    /// Notes a reset this host sent.
    pub fn sent(&mut self, reset: &Reset) {
        debug_assert_eq!(reset.direction, Direction::Sent);
        if self.sent.len() >= REMEMBERED {
            let now = reset.timestamp_ns;
            self.sent
                .retain(|_, (at, _)| now.saturating_sub(*at) <= MATCH_WITHIN_NS);
            if self.sent.len() >= REMEMBERED {
                self.sent.clear();
                self.forgot_until_ns = now + MATCH_WITHIN_NS;
            }
        }
        let by_netfilter = reset.origin == ResetOrigin::NetfilterReset;
        self.sent.insert(
            (reset.local, reset.remote),
            (reset.timestamp_ns, by_netfilter),
        );
    }

    /// Lets go of resets too old to match any reset still to come: a batch's resets arrive
    /// within [`MATCH_WITHIN_NS`] of when they happened, so memory follows the reset rate.
    pub fn forget_before(&mut self, now_ns: u64) {
        let horizon = now_ns.saturating_sub(2 * MATCH_WITHIN_NS);
        self.sent.retain(|_, (at, _)| *at >= horizon);
    }

    /// Whether `received` was a firewall's: netfilter's reset on that connection was seen, or
    /// (with `may_infer`) it came from an address of this host (`local_ips`, or loopback) while
    /// nothing here sent one.
    pub fn firewall(
        &self,
        received: &Reset,
        local_ips: &HashSet<IpAddr>,
        may_infer: bool,
    ) -> Option<FirewallEvidence> {
        let matching = self
            .sent
            .get(&(received.remote, received.local))
            .filter(|(at, _)| at.abs_diff(received.timestamp_ns) <= MATCH_WITHIN_NS);
        match matching {
            Some((_, true)) => Some(FirewallEvidence::Probed),
            Some((_, false)) => None,
            None => {
                let from = received.remote.ip();
                let from_here = from.is_loopback() || local_ips.contains(&from);
                let complete = received.timestamp_ns >= self.forgot_until_ns;
                (may_infer && from_here && complete).then_some(FirewallEvidence::Inferred)
            }
        }
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
        let mut stack = SentResets::default();
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
        assert_eq!(stack.firewall(&answered, &none, true), None);
        // Another connection, no reset sent: a firewall's.
        let rejected = reset(
            Direction::Received,
            "127.0.0.1:40001",
            "127.0.0.1:80",
            SECOND + 5,
        );
        assert_eq!(
            stack.firewall(&rejected, &none, true),
            Some(FirewallEvidence::Inferred)
        );
        // The same connection much later: the old reset is not this one's origin.
        let later = reset(
            Direction::Received,
            "127.0.0.1:40000",
            "127.0.0.1:80",
            3 * SECOND,
        );
        assert_eq!(
            stack.firewall(&later, &none, true),
            Some(FirewallEvidence::Inferred)
        );
    }

    #[test]
    fn only_resets_from_this_hosts_addresses_are_judged() {
        let stack = SentResets::default();
        let remote = reset(Direction::Received, "10.0.0.2:40000", "10.0.0.9:80", SECOND);
        assert_eq!(stack.firewall(&remote, &HashSet::new(), true), None);
        let ours: HashSet<IpAddr> = ["10.0.0.9".parse().unwrap()].into();
        assert_eq!(
            stack.firewall(&remote, &ours, true),
            Some(FirewallEvidence::Inferred)
        );
    }

    #[test]
    fn resets_long_past_are_let_go() {
        let mut stack = SentResets::default();
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
        let mut stack = SentResets::default();
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
        assert_eq!(stack.firewall(&unknown, &HashSet::new(), true), None);
        let after = reset(
            Direction::Received,
            "127.0.0.1:50000",
            "127.0.0.1:80",
            3 * SECOND,
        );
        assert_eq!(
            stack.firewall(&after, &HashSet::new(), true),
            Some(FirewallEvidence::Inferred)
        );
    }

    #[test]
    fn a_reset_netfilter_was_seen_building_is_probed_not_inferred() {
        let mut stack = SentResets::default();
        stack.sent(&Reset::bare(
            Direction::Sent,
            ResetOrigin::NetfilterReset,
            "127.0.0.1:80",
            "127.0.0.1:40000",
            SECOND,
        ));
        let rejected = reset(
            Direction::Received,
            "127.0.0.1:40000",
            "127.0.0.1:80",
            SECOND + 5,
        );
        // Even where the stack's resets are not all seen, netfilter's own is proof.
        assert_eq!(
            stack.firewall(&rejected, &HashSet::new(), false),
            Some(FirewallEvidence::Probed)
        );
        let elsewhere = reset(
            Direction::Received,
            "127.0.0.1:40001",
            "127.0.0.1:80",
            SECOND + 5,
        );
        assert_eq!(stack.firewall(&elsewhere, &HashSet::new(), false), None);
    }
}
