//! Feeds [`analysis::firewall`](crate::analysis::firewall): the resets this host sent, its
//! addresses, and whether the reset probes see all they must for the inference to hold.

use std::{
    collections::HashSet,
    net::IpAddr,
    time::{Duration, Instant},
};

use tcpwhy_common::reset::ResetOrigin;

use crate::{
    analysis::firewall::{FirewallEvidence, SentResets},
    events::reset::Reset,
    host::addresses,
    model::{Direction, time::monotonic_ns},
    probes::{capability::Capability, catalog, coverage::covers, report::ProbeReport},
};

/// How often the addresses may be read again, when a reset comes from one not yet known.
const REREAD_ADDRESSES_AFTER: Duration = Duration::from_secs(1);
/// After resets were lost or aggregated (not seen one by one), a reset sent may be among them:
/// judge nothing for this long.
const PAUSE_AFTER_UNSEEN_NS: u64 = 1_000_000_000;

pub struct FirewallWatch {
    /// Every reset the stack sends is seen (and every one received).
    sees_all_resets: bool,
    sent: SentResets,
    local_ips: HashSet<IpAddr>,
    local_ips_read: Option<Instant>,
    unseen: u64,
    paused_until_ns: u64,
}

impl FirewallWatch {
    /// `kernel_names_reset_reasons`: the kernel has `enum sk_rst_reason` (6.10 and later); before
    /// it, the send-reset tracepoint does not fire for resets sent without a socket, so only the
    /// function probes see them all.
    pub fn new(probes: &[ProbeReport], kernel_names_reset_reasons: bool) -> Self {
        let blind_tracepoint = probes
            .iter()
            .any(|p| p.attached && p.name == catalog::SEND_RESET.name)
            && !kernel_names_reset_reasons;
        Self {
            sees_all_resets: covers(probes, Capability::ResetsSent)
                && covers(probes, Capability::ResetsReceived)
                && !blind_tracepoint,
            sent: SentResets::default(),
            local_ips: HashSet::new(),
            local_ips_read: None,
            unseen: 0,
            paused_until_ns: 0,
        }
    }

    /// Before each batch of events: how many events so far were not seen one by one (lost, or
    /// aggregated in the kernel past the per-event rate).
    pub fn new_batch(&mut self, unseen: u64) {
        let now = monotonic_ns();
        if unseen != self.unseen {
            self.unseen = unseen;
            self.paused_until_ns = now + PAUSE_AFTER_UNSEEN_NS;
        }
        self.sent.forget_before(now);
    }

    /// Notes a reset this host sent; every one of a batch comes before the judgements. The
    /// stack's resets only count while all of them are seen; netfilter's, always.
    pub fn note_sent(&mut self, reset: &Reset) {
        let by_netfilter = reset.origin == ResetOrigin::NetfilterReset;
        // An aggregate stands for many resets at once, none of them matchable one by one.
        let one_by_one = reset.aggregate.is_none();
        if reset.direction == Direction::Sent
            && one_by_one
            && (self.sees_all_resets || by_netfilter)
        {
            self.sent.sent(reset);
        }
    }

    /// Whether `reset` is one received that a firewall on this host built, as far as the
    /// resets noted so far tell. A reset sent may be noted in the next batch (its hook can fire
    /// after the peer received it), so the engine asks twice about an inferred one.
    pub fn judge(&mut self, reset: &Reset) -> Option<FirewallEvidence> {
        if reset.direction != Direction::Received || reset.aggregate.is_some() {
            return None;
        }
        let may_infer = self.sees_all_resets && reset.timestamp_ns >= self.paused_until_ns;
        let from = reset.remote.ip();
        if may_infer && !from.is_loopback() && !self.local_ips.contains(&from) {
            self.reread_addresses();
        }
        self.sent.firewall(reset, &self.local_ips, may_infer)
    }

    fn reread_addresses(&mut self) {
        let due = self
            .local_ips_read
            .is_none_or(|at| at.elapsed() >= REREAD_ADDRESSES_AFTER);
        if due {
            self.local_ips = addresses::of_every_namespace();
            self.local_ips_read = Some(Instant::now());
        }
    }
}
