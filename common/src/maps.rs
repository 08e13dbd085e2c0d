//! Names of the maps and globals shared by the programs and the loader.

/// Ring buffer carrying rare events ([`crate::reset::ResetEvent`]) to user space.
pub const EVENTS: &str = "EVENTS";
/// Per-CPU array of [`Counter`] slots, summed by user space.
pub const COUNTERS: &str = "COUNTERS";
/// LRU hash: socket address → [`crate::socket::SocketRecord`], what the programs remember of
/// it (since when it has been in its timed state, whether a reset refused its connect, its
/// owner).
pub const SOCKETS: &str = "SOCKETS";
/// LRU hash: [`crate::owner::ListenerKey`] → [`crate::owner::Owner`] of the listening process.
pub const LISTENER_OWNERS: &str = "LISTENER_OWNERS";
/// LRU hash: [`crate::owner::ListenCall`] → the backlog passed to listen(), before any capping.
pub const LISTEN_BACKLOGS: &str = "LISTEN_BACKLOGS";
/// Hash: [`crate::synack::ListenerId`] → [`crate::synack::SynAckRetransmits`].
pub const SYNACK_RETRANSMITS: &str = "SYNACK_RETRANSMITS";
/// Per-CPU hash: [`crate::synack::ListenerId`] → [`crate::listen_overflow::ListenOverflows`].
pub const LISTEN_OVERFLOWS: &str = "LISTEN_OVERFLOWS";
/// Per-CPU array of state transitions, slot `old * TCP_STATES + new`.
pub const STATE_TRANSITIONS: &str = "STATE_TRANSITIONS";
/// Per-CPU array of retransmits by [`RetransmitKind`].
pub const RETRANSMITS: &str = "RETRANSMITS";
/// LRU per-CPU hash: [`crate::flow::FlowKey`] (tag = kind) → [`crate::flow::FlowRetransmits`].
pub const RETRANSMIT_FLOWS: &str = "RETRANSMIT_FLOWS";
/// Ring buffer of [`crate::flow::ConnectFailure`]s.
pub const CONNECT_FAILURES: &str = "CONNECT_FAILURES";
/// Per-CPU array: connection lifetimes, slot = floor(log2(lifetime in ms)), capped.
pub const LIFETIMES: &str = "LIFETIMES";
/// LRU per-CPU hash: [`crate::drop::DropKey`] → [`crate::drop::DropCounts`].
pub const TCP_DROPS: &str = "TCP_DROPS";
/// Per-CPU array of TCP drops by reason, slot = reason (capped, see
/// [`crate::drop::DROP_REASON_SLOTS`]).
pub const DROP_REASONS: &str = "DROP_REASONS";
/// LRU hash: [`crate::latency::LatencyKey`] → [`crate::latency::LatencyHistogram`].
pub const LATENCIES: &str = "LATENCIES";
/// Per-CPU array of handshake durations by kind, slot `kind * TOTAL_SLOTS_PER_KIND + bucket`
/// (the last slot of a kind: the sum of µs); unlike [`LATENCIES`], nothing is evicted.
pub const LATENCY_TOTALS: &str = "LATENCY_TOTALS";
/// LRU hash: [`crate::flow::FlowKey`] (tag 0) → [`crate::close::SilentClose`].
pub const SILENT_CLOSES: &str = "SILENT_CLOSES";
/// Per-CPU hashes: [`crate::reset::ResetAggregateKey`] → [`crate::reset::ResetAggregate`], the
/// resets past the per-event rate. The programs add to the one [`RESET_AGGREGATES_SIDE`] names;
/// user space flips it, and drains and empties the other once no program can still be adding
/// to it, so that no count is lost between a read and a delete.
pub const RESET_AGGREGATES: [&str; 2] = ["RESET_AGGREGATES_0", "RESET_AGGREGATES_1"];
/// Array of one `u32`: which of [`RESET_AGGREGATES`] the programs add to.
pub const RESET_AGGREGATES_SIDE: &str = "RESET_AGGREGATES_SIDE";
/// Per-CPU array of one [`crate::reset::RecordBudget`].
pub const RESET_RECORD_BUDGET: &str = "RESET_RECORD_BUDGET";
/// Global holding the [`crate::layout::KernelLayout`] resolved from BTF and tracefs.
pub const LAYOUT_GLOBAL: &str = "LAYOUT";
/// Global `u16`: when not 0, only resets with this port at either end are written to
/// [`EVENTS`] (`diagnose` and `watch` with `--port`); the counters still count every reset. A
/// port filter keeps both ends of a connection, which the firewall inference needs.
pub const EVENT_PORT_GLOBAL: &str = "EVENT_PORT";
/// Global `u32`: resets each CPU sends one by one per window before aggregating the rest
/// (default [`crate::reset::DEFAULT_RECORDS_PER_WINDOW`]).
pub const RECORDS_PER_WINDOW_GLOBAL: &str = "RECORDS_PER_WINDOW";

/// Size of the [`EVENTS`] ring buffer in bytes (a power of two and a multiple of the page size).
pub const EVENTS_RING_BYTES: u32 = 1 << 20;
/// Entries in [`SOCKETS`]; LRU eviction keeps the most recently active sockets.
pub const SOCKETS_ENTRIES: u32 = 65536;
/// Entries in [`LISTENER_OWNERS`].
pub const LISTENER_OWNERS_ENTRIES: u32 = 8192;
/// Entries in [`SYNACK_RETRANSMITS`]: one per listener that retransmitted.
pub const SYNACK_RETRANSMITS_ENTRIES: u32 = 4096;
/// Entries in [`LISTEN_OVERFLOWS`]: one per listener that overflowed.
pub const LISTEN_OVERFLOWS_ENTRIES: u32 = 4096;
/// Entries in [`RETRANSMIT_FLOWS`].
pub const RETRANSMIT_FLOWS_ENTRIES: u32 = 16384;
/// Size of [`CONNECT_FAILURES`]: connects that time out arrive at most as fast as applications
/// start them (a storm of refused connects, which once overran 64 KiB between two drains, is
/// counted in the kernel instead).
pub const CONNECT_FAILURES_RING_BYTES: u32 = 1 << 18;
/// Slots of [`LIFETIMES`]: 2^0 ms .. 2^31 ms and more.
pub const LIFETIME_SLOTS: u32 = 32;
/// Entries in [`LISTEN_BACKLOGS`].
pub const LISTEN_BACKLOGS_ENTRIES: u32 = 8192;

/// Entries in [`SILENT_CLOSES`]: connections that timed out since attach, newest kept.
pub const SILENT_CLOSES_ENTRIES: u32 = 1024;
/// Entries in each of [`RESET_AGGREGATES`]: one per (evidence, service end, other address)
/// within a drain period (100 ms); a reset that finds it full is counted as lost.
pub const RESET_AGGREGATES_ENTRIES: u32 = 4096;

/// Entries in [`TCP_DROPS`]: one per (reason, namespace, local endpoint) that dropped.
pub const TCP_DROPS_ENTRIES: u32 = 4096;

/// Entries in [`LATENCIES`]: one per (namespace, endpoint, kind); a histogram is 464 bytes.
pub const LATENCIES_ENTRIES: u32 = 2048;

/// Slots of the [`COUNTERS`] array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Events that did not fit in the ring buffer: user space reports them as lost.
    EventsLost = 0,
    /// Resets seen by the send-side probes, whether or not their event reached user space.
    ResetsSent = 1,
    /// Resets seen by the receive-side probe.
    ResetsReceived = 2,
    /// Resets counted but not sent to user space: outside the `--port` filter
    /// ([`EVENT_PORT_GLOBAL`]).
    ResetsFilteredOut = 3,
    /// Histograms created in [`LATENCIES`]: those not in the map any more were evicted.
    LatencyHistograms = 4,
    /// Resets added to [`RESET_AGGREGATES`] instead of sent one by one.
    ResetsAggregated = 5,
    /// connect() calls an RST refused: counted, not sent to [`CONNECT_FAILURES`] (the reset
    /// received is the event, and a storm of them would overrun the ring).
    ConnectsRefused = 6,
}

/// Number of slots in [`COUNTERS`].
pub const COUNTER_SLOTS: u32 = 7;

/// Slots per dimension of [`STATE_TRANSITIONS`]: TCP states are numbered 1..=12.
pub const TCP_STATES: u32 = 16;

/// What a retransmitted segment was.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetransmitKind {
    /// A SYN (our connect() is not being answered).
    Syn = 0,
    /// A SYN-ACK (a handshake to our listener is not completing).
    SynAck = 1,
    /// Data or FIN on an established connection.
    Data = 2,
    /// A tail loss probe (seen by a function probe on `tcp_send_loss_probe`).
    TailLossProbe = 3,
}

impl RetransmitKind {
    pub fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            0 => RetransmitKind::Syn,
            1 => RetransmitKind::SynAck,
            2 => RetransmitKind::Data,
            3 => RetransmitKind::TailLossProbe,
            _ => return None,
        })
    }

    /// The `kind` label value.
    pub fn label(self) -> &'static str {
        match self {
            RetransmitKind::Syn => "syn",
            RetransmitKind::SynAck => "synack",
            RetransmitKind::Data => "data",
            RetransmitKind::TailLossProbe => "tail_loss_probe",
        }
    }
}

/// Slots in [`RETRANSMITS`].
pub const RETRANSMIT_KINDS: u32 = 4;
/// Per-CPU array of one slot: SYNs and handshake-completing ACKs that reached a listener,
/// counted by the exact queue probes. While it stands still, no listener's queue has grown.
pub const LISTENER_ARRIVALS: &str = "LISTENER_ARRIVALS";
