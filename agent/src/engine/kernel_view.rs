//! What the namespace sampler asks of the loaded probes. A trait, so that sampling does not
//! depend on how the probes are loaded, and a test can stand in for them.

use std::{collections::HashMap, net::SocketAddr};

use tcpwhy_common::listen_overflow::ListenOverflows;

use crate::analysis::queues::attribution::SynAckSeen;

/// TCP state changes the state-change probe counted since it attached, over every namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// Every transition: while this stands still, no socket came, went or changed state.
    pub all: u64,
    /// Sockets that started or stopped listening.
    pub listeners: u64,
}

pub trait ListenerProbes {
    /// The backlog process `pid` passed to listen() on descriptor `fd`, if that call was seen.
    fn requested_backlog(&self, pid: u32, fd: u32) -> Option<i32>;
    /// SYN-ACK retransmits per (namespace inode, listener endpoint).
    fn synack_retransmits(&self) -> HashMap<(u64, SocketAddr), SynAckSeen>;
    /// Exact overflow counts per (namespace inode, listener endpoint) since the probes attached,
    /// or None when the function probes could not attach on this kernel.
    fn listen_overflows(&self) -> Option<HashMap<(u64, SocketAddr), ListenOverflows>>;
    /// State changes since the probes attached, or None when the state-change probe is not
    /// counting.
    fn state_changes(&self) -> Option<StateChanges>;
    /// SYNs and handshake-completing ACKs that reached any listener since the probes attached,
    /// or None unless all three function probes that count them (`tcp_conn_request`,
    /// `tcp_v4_syn_recv_sock`, `tcp_v6_syn_recv_sock`) attached: without IPv6 in the kernel,
    /// the namespaces are sampled as on a kernel without these probes.
    fn listener_arrivals(&self) -> Option<u64>;
}
