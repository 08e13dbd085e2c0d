//! Drop findings: one per (reason, namespace, local endpoint) the kernel counted, a listener's
//! drops under the listener's endpoint.

use std::net::SocketAddr;

use serde_json::{Map, Value, json};
use tcpwhy_common::tcp_state::LISTEN;

use super::narrative;
use crate::{
    events::drop::TcpDrops,
    kernel::drop_reasons::DropReasons,
    model::{Cause, DropCause, Finding, Kind, Process, tcp_state},
    probes::catalog,
};

/// The findings, most frequent first. `owner`: the process of the listener at (namespace,
/// endpoint), where one listens there.
pub fn findings(
    drops: &[TcpDrops],
    reasons: &DropReasons,
    mut owner: impl FnMut(u64, SocketAddr) -> Option<Process>,
) -> Vec<Finding> {
    let mut found: Vec<Finding> = drops
        .iter()
        .map(|d| {
            let reason = reason_name(reasons, d.reason);
            let cause = DropCause::of_reason(&reason);
            let at_listener = d.state == Some(LISTEN);
            Finding {
                kernel_reason: Some(reason.clone()),
                ..Finding::observed(
                    Kind::Drop,
                    Cause::Drop(cause),
                    d.count,
                    Some(d.local),
                    Some(d.remote),
                    owner(d.netns, d.local),
                    narrative::drops::explain(d, cause, &reason, at_listener),
                    evidence(d, at_listener),
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

fn evidence(drops: &TcpDrops, at_listener: bool) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("hook".into(), json!(catalog::DROPS.name));
    map.insert("netns".into(), json!(drops.netns));
    map.insert("reason_value".into(), json!(drops.reason));
    map.insert("listener".into(), json!(at_listener));
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
        let found = findings(
            &[
                drops(12, 1, None),
                drops(40, 5, Some(LISTEN)),
                drops(300, 2, None),
            ],
            &reasons,
            |netns, local| {
                let mut comm = [0u8; 16];
                comm[..6].copy_from_slice(b"server");
                (netns == 9 && local.port() == 8080)
                    .then(|| Process::from_raw(42, &comm, OwnerSource::ListenerSocket))
            },
        );
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
}
