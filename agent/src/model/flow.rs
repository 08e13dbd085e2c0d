//! A connection as tcpwhy names it: its network namespace and both endpoints.

use std::net::SocketAddr;

use tcpwhy_common::{family::AF_INET6, flow::FlowKey};

use super::endpoint;

/// A connection's namespace and endpoints (IPv4-mapped addresses read as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    pub netns: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Flow {
    pub fn from_key(key: &FlowKey) -> Self {
        let ipv6 = key.family == AF_INET6;
        Self {
            netns: u64::from(key.netns),
            local: endpoint::from_raw(&key.local_addr, key.local_port, ipv6),
            remote: endpoint::from_raw(&key.remote_addr, key.remote_port, ipv6),
        }
    }
}
