//! What the probes let tcpwhy see, one capability per kind of finding they feed.

/// Each hook serves one capability; `coverage` says which ones some attached hook provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    ResetsSent,
    ResetsReceived,
    SocketOwners,
    ListenBacklogs,
    Retransmits,
    SynackRetransmits,
    /// Per-listener queue overflows counted as they happen (function probes).
    ExactQueueDrops,
    TailLossProbes,
    /// TCP segments dropped with the kernel's reason (Linux ≥ 5.17).
    Drops,
    /// Resets built by netfilter's REJECT rules (function probes; without them they are inferred).
    FirewallResets,
}

impl Capability {
    pub const ALL: [Capability; 10] = [
        Capability::ResetsSent,
        Capability::ResetsReceived,
        Capability::SocketOwners,
        Capability::ListenBacklogs,
        Capability::Retransmits,
        Capability::SynackRetransmits,
        Capability::ExactQueueDrops,
        Capability::TailLossProbes,
        Capability::Drops,
        Capability::FirewallResets,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ResetsSent => "resets_sent",
            Capability::ResetsReceived => "resets_received",
            Capability::SocketOwners => "socket_owners",
            Capability::ListenBacklogs => "listen_backlogs",
            Capability::Retransmits => "retransmits",
            Capability::SynackRetransmits => "synack_retransmits",
            Capability::ExactQueueDrops => "exact_queue_drops",
            Capability::TailLossProbes => "tail_loss_probes",
            Capability::Drops => "drops",
            Capability::FirewallResets => "firewall_resets",
        }
    }

    /// Whether `tcpwhy_coverage` exports it, for the alert on a capability nothing covers. Exact
    /// queue drops fall back to the namespace counters and tail loss probes only add detail to
    /// retransmits; both need function probes that many kernels refuse, and drop reasons need
    /// Linux 5.17: each would keep the alert firing on such hosts. Firewall resets are inferred
    /// without their probes, which also need a loaded netfilter module.
    pub fn is_alerted_on(self) -> bool {
        !matches!(
            self,
            Capability::ExactQueueDrops
                | Capability::TailLossProbes
                | Capability::Drops
                | Capability::FirewallResets
        )
    }
}
