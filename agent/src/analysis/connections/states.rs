//! Connection-state findings from a snapshot of every namespace's sockets (sock_diag), aged by
//! the kernel's record of when each connection entered its state.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    time::Duration,
};

use netlink_packet_sock_diag::inet::StateFlags;
use serde_json::{Map, json};
use tcpwhy_common::tcp_state;

use super::{HostLookup, canonical, human};
use crate::{
    host::{owners::ProcessFacts, sock_diag::DiagSocket},
    model::{Cause, Finding, Flow, Kind},
};

/// A CLOSE_WAIT socket older than this is a leak, not a close in progress.
pub const CLOSE_WAIT_MIN_AGE: Duration = Duration::from_secs(2);
/// A FIN_WAIT2 socket older than this is waiting on a peer that does not close.
pub const FIN_WAIT2_MIN_AGE: Duration = Duration::from_secs(5);
/// TIME_WAIT sockets to one destination are pressure when they hold this share of the ephemeral
/// port range (per mille).
pub const TIME_WAIT_SHARE_PER_MILLE: u64 = 100;

/// What is known of how long a socket has been in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Age {
    /// Entered the state while tcpwhy watched.
    Known(Duration),
    /// Was already in the state when tcpwhy started: at least as old as tcpwhy's run.
    AtLeast(Duration),
}

impl Age {
    fn at_least(self) -> Duration {
        match self {
            Age::Known(d) | Age::AtLeast(d) => d,
        }
    }

    fn describe(self) -> String {
        match self {
            Age::Known(d) => human(d),
            Age::AtLeast(d) => format!("more than {} (older than this run of tcpwhy)", human(d)),
        }
    }
}

/// The kernel's timestamps and the clock to age them by.
pub struct Ages<'a> {
    pub since: &'a HashMap<(u8, Flow), u64>,
    pub now_ns: u64,
    /// How long tcpwhy has been watching: the least age of a socket whose start it did not see.
    pub watched: Duration,
}

impl Ages<'_> {
    fn of(&self, state: u8, netns: u64, socket: &DiagSocket) -> Age {
        let flow = Flow {
            netns,
            local: canonical(socket.local),
            remote: canonical(socket.remote),
        };
        match self.since.get(&(state, flow)) {
            Some(&since) => Age::Known(Duration::from_nanos(self.now_ns.saturating_sub(since))),
            None => Age::AtLeast(self.watched),
        }
    }
}

pub fn findings(host: &dyn HostLookup, ages: &Ages) -> Vec<Finding> {
    let mut found = Vec::new();
    for netns in host.namespaces() {
        let states = StateFlags::CLOSE_WAIT | StateFlags::FIN_WAIT2 | StateFlags::TIME_WAIT;
        let Some(sockets) = host.sockets_in(netns, states) else {
            continue;
        };
        let of = |state: u8| -> Vec<&DiagSocket> {
            sockets.iter().filter(|s| s.state == state).collect()
        };
        found.extend(close_wait_leaks(
            host,
            netns,
            &of(tcp_state::CLOSE_WAIT),
            ages,
        ));
        found.extend(fin_wait2_stuck(
            host,
            netns,
            &of(tcp_state::FIN_WAIT2),
            ages,
        ));
        found.extend(time_wait_pressure(host, netns, &of(tcp_state::TIME_WAIT)));
    }
    found
}

/// The owners of sockets, in one walk of the fd tables.
fn owners(
    host: &dyn HostLookup,
    netns: u64,
    sockets: &[&DiagSocket],
) -> HashMap<u32, ProcessFacts> {
    let inodes: HashSet<u32> = sockets
        .iter()
        .map(|s| s.inode)
        .filter(|&i| i != 0)
        .collect();
    if inodes.is_empty() {
        return HashMap::new();
    }
    host.socket_owners(netns, &inodes)
}

fn close_wait_leaks(
    host: &dyn HostLookup,
    netns: u64,
    sockets: &[&DiagSocket],
    ages: &Ages,
) -> Vec<Finding> {
    let old: Vec<(&DiagSocket, Age)> = sockets
        .iter()
        .map(|s| (*s, ages.of(tcp_state::CLOSE_WAIT, netns, s)))
        .filter(|(_, age)| age.at_least() >= CLOSE_WAIT_MIN_AGE)
        .collect();
    let owners = owners(
        host,
        netns,
        &old.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
    );
    let mut by_process: BTreeMap<u32, Vec<(&DiagSocket, Age)>> = BTreeMap::new();
    for (socket, age) in old {
        let pid = owners.get(&socket.inode).map_or(0, |p| p.process.pid);
        by_process.entry(pid).or_default().push((socket, age));
    }
    by_process
        .into_iter()
        .map(|(pid, held)| {
            let process = owners.values().find(|p| p.process.pid == pid);
            let oldest = held.iter().map(|(_, age)| *age).max().expect("non-empty group");
            let (sample, _) = held[0];
            let who = process
                .map(|p| format!("{} (pid {})", p.process.comm, p.process.pid))
                .unwrap_or_else(|| "a process tcpwhy could not identify".into());
            let n = held.len() as u64;
            let explanation = format!(
                "{who} holds {n} {} in CLOSE_WAIT in network namespace {netns}, the oldest for {}: \
                 the peers closed their side (e.g. {} closed to {}) but the application never called \
                 close(), so the descriptors and their buffers stay allocated.",
                if n == 1 { "connection" } else { "connections" },
                oldest.describe(),
                sample.remote,
                sample.local,
            );
            let mut evidence = Map::new();
            evidence.insert("namespace".into(), json!(netns));
            evidence.insert("oldest_ms".into(), json!(oldest.at_least().as_millis() as u64));
            evidence.insert("oldest_known".into(), json!(matches!(oldest, Age::Known(_))));
            if let Some(p) = process {
                evidence.insert("open_fds".into(), json!(p.open_fds));
                evidence.insert("fd_limit".into(), json!(p.fd_limit));
            }
            Finding::observed(
                Kind::State,
                Cause::CloseWaitLeak,
                n,
                Some(sample.local),
                Some(sample.remote),
                process.map(|p| p.process.clone()),
                explanation,
                evidence,
            )
        })
        .collect()
}

fn fin_wait2_stuck(
    host: &dyn HostLookup,
    netns: u64,
    sockets: &[&DiagSocket],
    ages: &Ages,
) -> Vec<Finding> {
    let stuck: Vec<(&DiagSocket, Age)> = sockets
        .iter()
        .map(|s| (*s, ages.of(tcp_state::FIN_WAIT2, netns, s)))
        .filter(|(_, age)| age.at_least() >= FIN_WAIT2_MIN_AGE)
        .collect();
    let owners = owners(
        host,
        netns,
        &stuck.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
    );
    let mut by_remote: BTreeMap<SocketAddr, Vec<(&DiagSocket, Age)>> = BTreeMap::new();
    for (socket, age) in stuck {
        by_remote
            .entry(socket.remote)
            .or_default()
            .push((socket, age));
    }
    let fin_timeout = host
        .connection_sysctls(netns)
        .and_then(|s| s.tcp_fin_timeout);
    by_remote
        .into_iter()
        .map(|(remote, held)| {
            let n = held.len() as u64;
            let oldest = held.iter().map(|(_, age)| *age).max().expect("non-empty group");
            let (sample, _) = held[0];
            let orphans = held.iter().filter(|(s, _)| s.inode == 0).count() as u64;
            let process = held.iter().find_map(|(s, _)| owners.get(&s.inode));
            let explanation = format!(
                "{n} {} from {} to {remote} in FIN_WAIT2, the oldest for {}: this side sent its FIN \
                 and the peer acknowledged it, but the peer never closes its side. {}",
                if n == 1 { "connection" } else { "connections" },
                sample.local,
                oldest.describe(),
                if orphans == n {
                    format!(
                        "They are orphans (already closed here): the kernel drops them after tcp_fin_timeout={}s.",
                        fin_timeout.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
                    )
                } else {
                    "The application still holds them (shutdown(SHUT_WR) without close()): no timer ends them.".to_string()
                }
            );
            let mut evidence = Map::new();
            evidence.insert("namespace".into(), json!(netns));
            evidence.insert("oldest_ms".into(), json!(oldest.at_least().as_millis() as u64));
            evidence.insert("oldest_known".into(), json!(matches!(oldest, Age::Known(_))));
            evidence.insert("orphans".into(), json!(orphans));
            evidence.insert("tcp_fin_timeout".into(), json!(fin_timeout));
            Finding::observed(
                Kind::State,
                Cause::FinWait2Stuck,
                n,
                Some(sample.local),
                Some(remote),
                process.map(|p| p.process.clone()),
                explanation,
                evidence,
            )
        })
        .collect()
}

fn time_wait_pressure(host: &dyn HostLookup, netns: u64, sockets: &[&DiagSocket]) -> Vec<Finding> {
    let Some(sysctls) = host.connection_sysctls(netns) else {
        return Vec::new();
    };
    let Some((low, high)) = sysctls.ip_local_port_range else {
        return Vec::new();
    };
    let range = u64::from(high.saturating_sub(low)) + 1;
    let mut by_destination: BTreeMap<(std::net::IpAddr, SocketAddr), u64> = BTreeMap::new();
    for socket in sockets {
        *by_destination
            .entry((socket.local.ip(), socket.remote))
            .or_insert(0) += 1;
    }
    let tw_reuse = sysctls.tcp_tw_reuse;
    by_destination
        .into_iter()
        .filter(|(_, n)| n * 1000 >= range * TIME_WAIT_SHARE_PER_MILLE || *n >= 10_000)
        .map(|((local_ip, remote), n)| {
            let explanation = format!(
                "{n} connections from {local_ip} to {remote} sit in TIME_WAIT: {}% of the {range} \
                 ephemeral ports of ip_local_port_range {low}-{high}. This side closes first, and \
                 each closed connection keeps its port for 60 s; when the range runs out, connect() \
                 fails with EADDRNOTAVAIL unless tcp_tw_reuse={} lets it reuse them.",
                n * 100 / range,
                tw_reuse.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
            );
            let mut evidence = Map::new();
            evidence.insert("namespace".into(), json!(netns));
            evidence.insert("local_ip".into(), json!(local_ip.to_string()));
            evidence.insert("ip_local_port_range".into(), json!([low, high]));
            evidence.insert("share_percent".into(), json!(n * 100 / range));
            evidence.insert("tcp_tw_reuse".into(), json!(tw_reuse));
            Finding::observed(
                Kind::State,
                Cause::TimeWaitPressure,
                n,
                None,
                Some(remote),
                None,
                explanation,
                evidence,
            )
        })
        .collect()
}
