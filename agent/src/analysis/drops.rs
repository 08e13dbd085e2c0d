//! Drop findings: the kernel counts per (reason, namespace, local endpoint); a finding is one
//! reason in one namespace at one service end (see [`super::service`]): a listener's drops under
//! the listener's endpoint, and a client's drops on its connections to one service as one
//! finding, whichever ephemeral port each connection used.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
};

use serde_json::{Map, Value, json};
use tcpwhy_common::tcp_state::LISTEN;

use super::{
    narrative,
    service::{End, EphemeralPorts, service_end},
};
use crate::{
    events::drop::TcpDrops,
    kernel::drop_reasons::DropReasons,
    model::{Cause, DropCause, Finding, Kind, Process, tcp_state},
    probes::catalog,
};

/// Drops of one reason in one namespace at one service end.
pub struct DropGroup {
    /// The counts summed; endpoints and state those of the most recent drop.
    pub drops: TcpDrops,
    pub service: End,
    /// The service end's endpoint, the same whichever drop was the most recent.
    pub service_endpoint: SocketAddr,
    /// The local endpoints the drops were counted at.
    pub local_endpoints: usize,
}

impl DropGroup {
    pub fn at_listener(&self) -> bool {
        self.drops.state == Some(LISTEN)
    }
}

/// Groups the kernel's counts by service end. `ports`: the ephemeral port range of a namespace.
pub fn group(drops: &[TcpDrops], ports: impl Fn(u64) -> EphemeralPorts) -> Vec<DropGroup> {
    // (reason, namespace, end, the service's endpoint) → counts summed, local endpoints.
    type Key = (u32, u64, End, SocketAddr);
    let mut groups: HashMap<Key, (TcpDrops, HashSet<SocketAddr>)> = HashMap::new();
    for d in drops {
        let known = (d.state == Some(LISTEN)).then_some(End::Local);
        // Without a clue, the end where the kernel counted is the one named.
        let end = service_end(d.local, d.remote, known, ports(d.netns), End::Local);
        let service = match end {
            End::Local => d.local,
            End::Remote => d.remote,
        };
        let (sum, locals) = groups
            .entry((d.reason, d.netns, end, service))
            .or_insert_with(|| {
                (
                    TcpDrops {
                        count: 0,
                        ..d.clone()
                    },
                    HashSet::new(),
                )
            });
        locals.insert(d.local);
        sum.count += d.count;
        sum.first_ns = sum.first_ns.min(d.first_ns);
        if d.last_ns >= sum.last_ns {
            sum.last_ns = d.last_ns;
            (sum.local, sum.remote, sum.state) = (d.local, d.remote, d.state);
        }
    }
    groups
        .into_iter()
        .map(|((_, _, service, endpoint), (drops, locals))| DropGroup {
            drops,
            service,
            service_endpoint: endpoint,
            local_endpoints: locals.len(),
        })
        .collect()
}

/// The findings, most frequent first. `owner`: the process of the listener at (namespace,
/// endpoint), where one listens there.
pub fn findings(
    groups: &[DropGroup],
    reasons: &DropReasons,
    mut owner: impl FnMut(u64, SocketAddr) -> Option<Process>,
) -> Vec<Finding> {
    let mut found: Vec<Finding> = groups
        .iter()
        .map(|g| {
            let d = &g.drops;
            let reason = reason_name(reasons, d.reason);
            let cause = DropCause::of_reason(&reason);
            Finding {
                kernel_reason: Some(reason.clone()),
                ..Finding::observed(
                    Kind::Drop,
                    Cause::Drop(cause),
                    d.count,
                    Some(d.local),
                    Some(d.remote),
                    owner(d.netns, d.local),
                    narrative::drops::explain(g, cause, &reason),
                    evidence(g),
                )
            }
            .seen_between(d.first_ns, d.last_ns)
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.count));
    found
}

/// The kernel's name for a reason; a value it does not name (a subsystem's reason) keeps its
/// number.
pub fn reason_name(reasons: &DropReasons, value: u32) -> String {
    reasons
        .name(value)
        .map_or_else(|| format!("REASON_{value}"), str::to_string)
}

fn evidence(group: &DropGroup) -> Map<String, Value> {
    let drops = &group.drops;
    let mut map = Map::new();
    map.insert("hook".into(), json!(catalog::DROPS.name));
    map.insert("netns".into(), json!(drops.netns));
    map.insert("reason_value".into(), json!(drops.reason));
    map.insert("listener".into(), json!(group.at_listener()));
    map.insert("service".into(), json!(group.service_endpoint.to_string()));
    if group.service == End::Remote {
        map.insert(
            "distinct_local_endpoints".into(),
            json!(group.local_endpoints),
        );
    }
    map.insert(
        "socket_state".into(),
        json!(drops.state.map(tcp_state::name)),
    );
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OwnerSource;

    fn drops(reason: u32, count: u64, state: Option<u8>) -> TcpDrops {
        TcpDrops {
            reason,
            netns: 9,
            local: "0.0.0.0:8080".parse().unwrap(),
            remote: "127.0.0.1:40000".parse().unwrap(),
            count,
            first_ns: 1,
            last_ns: 2,
            state,
        }
    }

    #[test]
    fn causes_come_from_the_kernels_names_most_frequent_first() {
        let reasons = DropReasons::from_members(
            [
                ("SKB_DROP_REASON_NETFILTER_DROP".to_string(), 12),
                ("SKB_DROP_REASON_TCP_LISTEN_OVERFLOW".to_string(), 40),
            ],
            "SKB_DROP_REASON_",
        );
        let groups = group(
            &[
                drops(12, 1, None),
                drops(40, 5, Some(LISTEN)),
                drops(300, 2, None),
            ],
            |_| EphemeralPorts::default(),
        );
        let found = findings(&groups, &reasons, |netns, local| {
            let mut comm = [0u8; 16];
            comm[..6].copy_from_slice(b"server");
            (netns == 9 && local.port() == 8080)
                .then(|| Process::from_raw(42, &comm, OwnerSource::ListenerSocket))
        });
        let causes: Vec<&str> = found.iter().map(|f| f.cause.id()).collect();
        assert_eq!(
            causes,
            ["tcp_listen_overflow", "reason_300", "netfilter_drop"]
        );
        assert_eq!(
            found[0].kernel_reason.as_deref(),
            Some("TCP_LISTEN_OVERFLOW")
        );
        assert_eq!(found[0].evidence["listener"], true);
        assert_eq!(found[0].evidence["socket_state"], "LISTEN");
        assert_eq!(found[0].process.as_ref().map(|p| p.pid), Some(42));
        assert_eq!(found[2].evidence["socket_state"], Value::Null);
    }

    #[test]
    fn a_clients_drops_to_one_service_are_one_finding_whatever_its_ports() {
        let to_service = |local_port: u16, count: u64, last_ns: u64| TcpDrops {
            local: SocketAddr::from(([127, 0, 0, 1], local_port)),
            remote: "127.0.0.1:5432".parse().unwrap(),
            count,
            first_ns: last_ns - 1,
            last_ns,
            ..drops(12, 0, None)
        };
        let groups = group(
            &[
                to_service(40001, 2, 10),
                to_service(40002, 3, 30),
                to_service(40003, 1, 20),
            ],
            |_| EphemeralPorts::default(),
        );
        assert_eq!(groups.len(), 1);
        let only = &groups[0];
        assert_eq!(only.service, End::Remote);
        assert_eq!(only.local_endpoints, 3);
        assert_eq!(only.drops.count, 6);
        assert_eq!((only.drops.first_ns, only.drops.last_ns), (9, 30));
        // Named by the most recent drop.
        assert_eq!(only.drops.local.port(), 40002);
        let reasons = DropReasons::from_members(
            [("SKB_DROP_REASON_NETFILTER_DROP".to_string(), 12)],
            "SKB_DROP_REASON_",
        );
        let found = findings(&groups, &reasons, |_, _| None);
        assert_eq!(found[0].remote.as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(found[0].evidence["distinct_local_endpoints"], 3);
        assert!(
            found[0]
                .explanation
                .contains("to 127.0.0.1:5432 from 127.0.0.1:40002 and 2 more local ports"),
            "{}",
            found[0].explanation
        );
    }
}
