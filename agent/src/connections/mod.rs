//! Retransmits and connection states, turned into findings a user can act on.

pub mod connects;
pub mod retransmits;
pub mod states;
pub mod summary;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    time::Duration,
};

use netlink_packet_sock_diag::inet::StateFlags;

use self::{connects::FailedConnects, states::Ages};
use crate::{
    findings::finding::Finding,
    listeners::{
        owner::{ProcessFacts, socket_owners},
        snapshot::{ConnectionSysctls, NamespaceProbe},
    },
    netns,
    queues::{kernel_view::ListenerProbes, watch::QueueWatch},
    session::{Session, monotonic_ns},
};

/// Every retransmit and state finding as of now, for the namespaces being watched;
/// `failed` holds the connects that failed since the caller last asked; `watched` is how long
/// tcpwhy has been running (the least age of a state it did not see begin).
pub fn findings(
    session: &Session,
    queues: &QueueWatch,
    failed: &FailedConnects,
    watched: Duration,
) -> Vec<Finding> {
    let probes: HashMap<u64, &NamespaceProbe> = queues
        .namespaces()
        .map(|p| (p.namespace.inode, p))
        .collect();
    let sysctls: HashMap<u64, ConnectionSysctls> = probes
        .iter()
        .map(|(inode, p)| (*inode, p.connection_sysctls.clone()))
        .collect();
    let flows = session.retransmit_flows();
    let mut found = retransmits::findings(&flows, &session.synack_retransmits(), &probes);
    found.extend(failed.findings(&flows, &sysctls));
    let since = session.state_since();
    let ages = Ages {
        since: &since,
        now_ns: monotonic_ns(),
        watched,
    };
    found.extend(states::findings(queues.namespaces(), &ages));
    found
}

/// The process holding a live connection, found by its endpoints: for connections that began
/// before tcpwhy started, whose owner no probe recorded.
pub fn owner_by_endpoints(
    probe: &NamespaceProbe,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<ProcessFacts> {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let socket = probe
        .sockets_in(StateFlags::all())
        .ok()?
        .into_iter()
        .find(|s| canonical(s.local) == local && canonical(s.remote) == remote && s.inode != 0)?;
    let (inside, outside): (Vec<u32>, Vec<u32>) = netns::pids()
        .into_iter()
        .partition(|&pid| netns::namespace_of(pid) == Some(probe.namespace.inode));
    socket_owners(
        &HashSet::from([socket.inode]),
        inside.into_iter().chain(outside),
    )
    .remove(&socket.inode)
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
