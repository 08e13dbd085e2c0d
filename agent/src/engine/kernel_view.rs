//! What the namespace sampler asks of the loaded probes. A trait, so that sampling does not
//! depend on how the probes are loaded, and a test can stand in for them.

use std::{collections::HashMap, net::SocketAddr};

use tcpwhy_common::listen_overflow::ListenOverflows;

use crate::analysis::queues::attribution::SynAckSeen;

pub trait ListenerProbes {
    /// The backlog process `pid` passed to listen() on descriptor `fd`, if that call was seen.
    fn requested_backlog(&self, pid: u32, fd: u32) -> Option<i32>;
    /// SYN-ACK retransmits per (namespace inode, listener endpoint).
    fn synack_retransmits(&self) -> HashMap<(u64, SocketAddr), SynAckSeen>;
    /// Exact overflow counts per (namespace inode, listener endpoint) since the probes attached,
    /// or None when the function probes could not attach on this kernel.
    fn listen_overflows(&self) -> Option<HashMap<(u64, SocketAddr), ListenOverflows>>;
    /// Sockets that started or stopped listening since the probes attached, in any namespace,
    /// or None when the state-change probe is not counting.
    fn listener_changes(&self) -> Option<u64>;
}
