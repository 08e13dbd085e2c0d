//! Feeds [`analysis::firewall`](crate::analysis::firewall): the resets the stack sent, this
//! host's addresses, and whether the reset probes see all they must for the inference to hold.

use std::{
    collections::HashSet,
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::{
    analysis::firewall::StackResets,
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
    stack: StackResets,
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
            stack: StackResets::default(),
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
        self.stack.forget_before(now);
    }

    /// Notes a reset the stack sent; every one of a batch comes before the judgements.
    pub fn note_sent(&mut self, reset: &Reset) {
        if self.sees_all_resets && reset.direction == Direction::Sent && reset.aggregate.is_none() {
            self.stack.sent(reset);
        }
    }

    /// Whether `reset` is one received from this host that its stack never sent, as far as the
    /// resets noted so far tell. A reset the stack sent may be noted in the next batch (its
    /// tracepoint can fire after the peer received it), so the engine asks twice.
    pub fn unsent_by_stack(&mut self, reset: &Reset) -> bool {
        if !self.sees_all_resets
            || reset.direction != Direction::Received
            || reset.aggregate.is_some()
            || reset.timestamp_ns < self.paused_until_ns
        {
            return false;
        }
        let from = reset.remote.ip();
        if !from.is_loopback() && !self.local_ips.contains(&from) {
            self.reread_addresses();
        }
        self.stack.unsent_by_stack(reset, &self.local_ips)
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
