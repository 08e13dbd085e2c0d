//! What the listeners of one namespace look like right now.

use std::{collections::HashMap, fs::File, net::SocketAddr};

use anyhow::Result;
use netlink_packet_sock_diag::inet::StateFlags;
use serde::Serialize;
use tcpwhy_common::tcp_state;

use super::{netdev, netns::Namespace, netstat::TcpExt, sock_diag};
use crate::kernel::sysctl;

/// The sysctls that decide how a namespace's listeners overflow. Each namespace has its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueSysctls {
    pub somaxconn: Option<i64>,
    pub tcp_abort_on_overflow: Option<i64>,
    pub tcp_syncookies: Option<i64>,
    pub tcp_max_syn_backlog: Option<i64>,
    pub tcp_synack_retries: Option<i64>,
    pub tcp_syn_retries: Option<i64>,
}

impl QueueSysctls {
    /// Reads them in the calling thread's namespace.
    fn read_here() -> Self {
        Self {
            somaxconn: sysctl::read_int("net.core.somaxconn"),
            tcp_abort_on_overflow: sysctl::read_int("net.ipv4.tcp_abort_on_overflow"),
            tcp_syncookies: sysctl::read_int("net.ipv4.tcp_syncookies"),
            tcp_max_syn_backlog: sysctl::read_int("net.ipv4.tcp_max_syn_backlog"),
            tcp_synack_retries: sysctl::read_int("net.ipv4.tcp_synack_retries"),
            tcp_syn_retries: sysctl::read_int("net.ipv4.tcp_syn_retries"),
        }
    }
}

/// The sysctls that explain retransmits and connection states, per namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionSysctls {
    pub tcp_syn_retries: Option<i64>,
    pub tcp_synack_retries: Option<i64>,
    pub tcp_retries2: Option<i64>,
    pub tcp_fin_timeout: Option<i64>,
    pub tcp_tw_reuse: Option<i64>,
    /// `net.ipv4.ip_local_port_range`: the ephemeral ports connect() picks from.
    pub ip_local_port_range: Option<(u32, u32)>,
}

impl ConnectionSysctls {
    fn read_here() -> Self {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| {
                let mut ports = text.split_whitespace().filter_map(|p| p.parse().ok());
                Some((ports.next()?, ports.next()?))
            });
        Self {
            tcp_syn_retries: sysctl::read_int("net.ipv4.tcp_syn_retries"),
            tcp_synack_retries: sysctl::read_int("net.ipv4.tcp_synack_retries"),
            tcp_retries2: sysctl::read_int("net.ipv4.tcp_retries2"),
            tcp_fin_timeout: sysctl::read_int("net.ipv4.tcp_fin_timeout"),
            tcp_tw_reuse: sysctl::read_int("net.ipv4.tcp_tw_reuse"),
            ip_local_port_range: range,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerNow {
    pub local: SocketAddr,
    /// Connections waiting for accept().
    pub queue_len: u32,
    /// `min(backlog passed to listen(), net.core.somaxconn)`; the queue holds one more.
    pub queue_limit: u32,
    pub inode: u32,
}

impl ListenerNow {
    /// `sk_acceptq_is_full()` is `len > limit`: the queue holds limit + 1 connections.
    pub fn is_full(&self) -> bool {
        self.queue_len > self.queue_limit
    }

    pub fn is_nearly_full(&self) -> bool {
        self.queue_len > 0 && u64::from(self.queue_len) * 10 >= u64::from(self.queue_limit) * 9
    }
}

/// Sampling one namespace: its listeners through sock_diag, its counters through netstat, the
/// packets it received through net/dev, its sysctls through /proc/sys. The socket and the files
/// are opened inside the namespace once.
pub struct NamespaceProbe {
    pub namespace: Namespace,
    pub sysctls: QueueSysctls,
    pub connection_sysctls: ConnectionSysctls,
    diag: netlink_sys::Socket,
    netstat: File,
    netdev: File,
}

impl NamespaceProbe {
    pub fn open(namespace: Namespace) -> Result<Self> {
        let (sysctls, connection_sysctls, diag, netstat, netdev) = namespace.run_in(|| {
            Ok((
                QueueSysctls::read_here(),
                ConnectionSysctls::read_here(),
                sock_diag::open_here()?,
                TcpExt::open_here()?,
                netdev::open_here()?,
            ))
        })?;
        Ok(Self {
            namespace,
            sysctls,
            connection_sysctls,
            diag,
            netstat,
            netdev,
        })
    }

    pub fn counters(&mut self) -> Result<TcpExt> {
        TcpExt::reread(&mut self.netstat)
    }

    /// Packets received by the namespace's interfaces so far.
    pub fn received_packets(&self) -> Result<u64> {
        netdev::received_packets(&self.netdev)
    }

    /// Re-reads the sysctls (they can change while watching).
    pub fn refresh_sysctls(&mut self) -> Result<()> {
        (self.sysctls, self.connection_sysctls) = self
            .namespace
            .run_in(|| Ok((QueueSysctls::read_here(), ConnectionSysctls::read_here())))?;
        Ok(())
    }

    /// The namespace's TCP sockets in `states`.
    pub fn sockets_in(&self, states: StateFlags) -> Result<Vec<sock_diag::DiagSocket>> {
        sock_diag::dump(&self.diag, states)
    }

    pub fn listeners(&self) -> Result<Vec<ListenerNow>> {
        let sockets = sock_diag::dump(&self.diag, StateFlags::LISTEN)?;
        Ok(sockets
            .into_iter()
            .filter(|s| s.state == tcp_state::LISTEN)
            .map(|s| ListenerNow {
                local: s.local,
                queue_len: s.recv_queue,
                queue_limit: s.send_queue,
                inode: s.inode,
            })
            .collect())
    }

    /// Half-open connections (SYN_RECV request sockets) per local endpoint.
    pub fn half_open_by_listener(&self) -> Result<HashMap<SocketAddr, u32>> {
        let sockets = sock_diag::dump(&self.diag, StateFlags::SYN_RECV)?;
        let mut counts = HashMap::new();
        for socket in sockets.iter().filter(|s| s.state == tcp_state::SYN_RECV) {
            *counts.entry(socket.local).or_insert(0) += 1;
        }
        Ok(counts)
    }
}
