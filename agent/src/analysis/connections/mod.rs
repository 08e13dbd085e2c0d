//! Retransmits and connection states, turned into findings a user can act on.
//!
//! The analysis reads the host through [`HostLookup`] only, and only for what it reports: socket
//! dumps and fd-table walks are the costly part of an agent, so it asks for owners of the
//! sockets it is about to report, never of all.

pub mod connects;
pub mod retransmits;
pub mod states;
pub mod summary;
pub mod timeouts;
pub mod zero_window;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    time::Duration,
};

use netlink_packet_sock_diag::inet::StateFlags;

use self::{connects::FailedConnects, states::Ages};
use crate::{
    analysis::queues::attribution::SynAckSeen,
    events::{close::TimedOut, flow::RetransmitFlow},
    host::{namespace::ConnectionSysctls, owners::ProcessFacts, sock_diag::DiagSocket},
    model::{Finding, Flow},
};

/// What the connection findings ask of the host.
pub trait HostLookup {
    /// The namespaces being watched.
    fn namespaces(&self) -> Vec<u64>;
    /// The retransmit and state sysctls of a namespace.
    fn connection_sysctls(&self, netns: u64) -> Option<&ConnectionSysctls>;
    /// The namespace's TCP sockets in `states`; None when it cannot be read.
    fn sockets_in(&self, netns: u64, states: StateFlags) -> Option<Vec<DiagSocket>>;
    /// The processes holding sockets `inodes` of namespace `netns`.
    fn socket_owners(&self, netns: u64, inodes: &HashSet<u32>) -> HashMap<u32, ProcessFacts>;
    /// Zero-window probes the namespace has sent (`TcpExt: TCPWinProbe`), as of its last
    /// sample; None where unknown.
    fn window_probes_sent(&self, _netns: u64) -> Option<u64> {
        None
    }
}

/// A host with nothing to look up, for tests whose findings rest on the kernel's records alone.
#[cfg(test)]
pub struct NothingToLookUp;

#[cfg(test)]
impl HostLookup for NothingToLookUp {
    fn namespaces(&self) -> Vec<u64> {
        Vec::new()
    }
    fn connection_sysctls(&self, _netns: u64) -> Option<&ConnectionSysctls> {
        None
    }
    fn sockets_in(&self, _netns: u64, _states: StateFlags) -> Option<Vec<DiagSocket>> {
        None
    }
    fn socket_owners(&self, _netns: u64, _inodes: &HashSet<u32>) -> HashMap<u32, ProcessFacts> {
        HashMap::new()
    }
}

/// What the kernel side counted, read once for a round of findings.
pub struct KernelCounts<'a> {
    pub flows: &'a [RetransmitFlow],
    /// Connections the retransmission timer ended.
    pub timed_out: &'a [TimedOut],
    pub synacks: &'a HashMap<(u64, SocketAddr), SynAckSeen>,
    /// Since when (CLOCK_MONOTONIC ns) connections have been in CLOSE_WAIT or FIN_WAIT2.
    pub state_since: &'a HashMap<(u8, Flow), u64>,
    pub now_ns: u64,
}

/// Every retransmit and state finding as of now; `failed` holds the connects that failed since
/// the caller last asked; `watched` is how long tcpwhy has been running (the least age of a
/// state it did not see begin).
pub fn findings(
    kernel: &KernelCounts,
    host: &dyn HostLookup,
    failed: &FailedConnects,
    watched: Duration,
) -> Vec<Finding> {
    let mut found = retransmits::findings(kernel.flows, kernel.synacks, host);
    found.extend(failed.findings(kernel.flows, host));
    found.extend(timeouts::findings(kernel.timed_out, kernel.flows, host));
    let ages = Ages {
        since: kernel.state_since,
        now_ns: kernel.now_ns,
        watched,
    };
    found.extend(states::findings(host, &ages));
    found
}

/// The process holding a live connection, found by its endpoints: for connections that began
/// before tcpwhy started, whose owner no probe recorded.
fn owner_by_endpoints(
    host: &dyn HostLookup,
    netns: u64,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<ProcessFacts> {
    let socket = host
        .sockets_in(netns, StateFlags::all())?
        .into_iter()
        .find(|s| canonical(s.local) == local && canonical(s.remote) == remote && s.inode != 0)?;
    host.socket_owners(netns, &HashSet::from([socket.inode]))
        .remove(&socket.inode)
}

/// IPv4-mapped addresses as IPv4, as the programs report them.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// "3.2 s", "450 ms": durations as the explanations say them.
pub fn human(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// Roughly how long the kernel keeps retrying a SYN or SYN-ACK before giving up: the timer
/// starts at 1 s and doubles, so `retries` retransmits end after 2^(retries+1) - 1 seconds.
pub fn give_up_after(retries: i64) -> Duration {
    let retries = retries.clamp(0, 20) as u32;
    Duration::from_secs((1u64 << (retries + 1)) - 1)
}
