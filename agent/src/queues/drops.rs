//! A listener's drops, accumulated over the watch window.

use std::{net::SocketAddr, time::Duration};

use serde::Serialize;

use crate::{
    explain::cause::Cause,
    listeners::{owner::ProcessFacts, snapshot::QueueSysctls},
    netns::netstat::CounterGrowth,
};

/// How sure the attribution to a listener is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Certainty {
    /// Counted at the listener by kernel function probes as each drop happened.
    Exact,
    /// The only listener of the namespace seen full (or with a full SYN queue) when the counter moved.
    High,
    /// Several listeners were full at once; each is credited with the namespace's drops.
    Shared,
    /// No sample saw a full queue, but this listener was re-sending SYN-ACKs when the counter
    /// moved: its handshakes' final ACKs were being dropped.
    Retransmits,
    /// No listener was seen full: the queue filled and drained between two samples.
    Unattributed,
}

#[derive(Debug, Clone)]
pub struct ListenerDrops {
    pub cause: Cause,
    pub namespace: u64,
    /// None when no listener could be identified.
    pub listener: Option<SocketAddr>,
    pub count: u64,
    pub certainty: Certainty,
    /// Largest accept-queue length and the limit seen while it overflowed.
    pub queue_len_max: u32,
    pub queue_limit: u32,
    /// Largest number of half-open (SYN_RECV) connections seen.
    pub half_open_max: u32,
    /// How long the accept queue was seen full, summed over the window.
    pub full_for: Duration,
    /// SYN-ACK retransmits of this listener over the window (kernel-counted).
    pub synack_retransmits: u64,
    /// A client of those retransmits.
    pub sample_remote: Option<SocketAddr>,
    pub owner: Option<ProcessFacts>,
    /// The backlog passed to listen(), when tcpwhy saw the call.
    pub requested_backlog: Option<i32>,
    pub sysctls: QueueSysctls,
    /// The namespace's counter growth over the window (all its listeners together).
    pub counters: CounterGrowth,
    pub shared_with: Vec<SocketAddr>,
}
