//! Exact per-listener queue overflows, seen by function probes where the kernel allows them.
//!
//! At the entry of `tcp_conn_request` (a SYN for a listener) and of `tcp_v4/v6_syn_recv_sock`
//! (the handshake's final ACK), the programs read the listener's queues and count the arrivals
//! that the kernel is about to drop, per listener, in a per-CPU map.

/// Counts for one listener (a [`crate::synack::ListenerId`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenOverflows {
    /// SYNs that arrived while the accept queue was full (`sk_acceptq_is_full()`).
    pub syn_accept_queue_full: u64,
    /// Final ACKs that arrived while the accept queue was full.
    pub ack_accept_queue_full: u64,
    /// SYNs that arrived while the SYN queue was at or over its limit (dropped or answered with
    /// a cookie when the kernel deems it full; which, and how many, the namespace counters say).
    pub syn_queue_full: u64,
    /// The queue lengths and limit at the most recent overflow.
    pub queue_len: u32,
    pub queue_limit: u32,
    pub half_open: u32,
    pub _pad: u32,
}

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, integers only, explicit padding.
unsafe impl aya::Pod for ListenOverflows {}
