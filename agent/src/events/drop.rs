//! TCP drops as the kernel counted them: one record per (reason, namespace, local endpoint),
//! its per-CPU values merged.

use std::net::SocketAddr;

use tcpwhy_common::{
    drop::{DropCounts, DropKey},
    family::AF_INET6,
};

use crate::model::endpoint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpDrops {
    /// The kernel's raw `enum skb_drop_reason` value.
    pub reason: u32,
    pub netns: u64,
    pub local: SocketAddr,
    /// The other end of the most recent drop.
    pub remote: SocketAddr,
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// The state of the socket the most recent drop was for, if it reached one.
    pub state: Option<u8>,
}

impl TcpDrops {
    /// Merges what each CPU counted; None when no CPU counted anything.
    pub fn merge(key: &DropKey, per_cpu: &[DropCounts]) -> Option<Self> {
        let counted = || per_cpu.iter().filter(|c| c.count > 0);
        let latest = counted().max_by_key(|c| c.last_ns)?;
        let ipv6 = key.family == AF_INET6;
        Some(Self {
            reason: key.reason,
            netns: u64::from(key.netns),
            local: endpoint::from_raw(&key.addr, key.port, ipv6),
            remote: endpoint::from_raw(&latest.remote_addr, latest.remote_port, ipv6),
            count: counted().map(|c| c.count).sum(),
            first_ns: counted().map(|c| c.first_ns).min().unwrap_or(0),
            last_ns: latest.last_ns,
            state: (latest.state != 0).then_some(latest.state),
        })
    }
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::{family::AF_INET, tcp_state};

    use super::*;

    #[test]
    fn cpus_are_summed_and_the_latest_names_the_peer() {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let key = DropKey {
            reason: 12,
            netns: 7,
            port: 80,
            family: AF_INET,
            addr,
        };
        let cpu = |count, first_ns, last_ns, port| DropCounts {
            count,
            first_ns,
            last_ns,
            remote_addr: addr,
            remote_port: port,
            state: tcp_state::LISTEN,
            _pad: [0; 5],
        };
        let merged = TcpDrops::merge(
            &key,
            &[
                cpu(2, 10, 20, 1000),
                DropCounts::default(),
                cpu(1, 5, 30, 2000),
            ],
        )
        .unwrap();
        assert_eq!(merged.count, 3);
        assert_eq!((merged.first_ns, merged.last_ns), (5, 30));
        assert_eq!(merged.local.to_string(), "127.0.0.1:80");
        assert_eq!(merged.remote.to_string(), "127.0.0.1:2000");
        assert_eq!(merged.state, Some(tcp_state::LISTEN));
        assert_eq!(TcpDrops::merge(&key, &[DropCounts::default()]), None);
    }
}
