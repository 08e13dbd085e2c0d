//! Retransmit findings: per service end of the connections (SYN, data, tail loss probes: see
//! [`crate::analysis::service`]) and per listener (SYN-ACKs), explained with the live sysctls
//! and the timing actually seen.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::Duration,
};

use serde_json::{Map, json};
use tcpwhy_common::maps::RetransmitKind;

use super::{HostLookup, give_up_after, human, owner_by_endpoints};
use crate::{
    analysis::{
        queues::attribution::SynAckSeen,
        service::{End, EphemeralPorts, service_end},
    },
    events::flow::RetransmitFlow,
    host::namespace::ConnectionSysctls,
    model::{Cause, Finding, Flow, Kind, OwnerSource, Process},
};

/// SYN retransmits per connection (for the connect-timeout findings).
pub fn syn_retransmits_by_flow(flows: &[RetransmitFlow]) -> HashMap<Flow, u64> {
    flows
        .iter()
        .filter(|f| f.kind == RetransmitKind::Syn)
        .map(|f| (f.flow, f.count))
        .collect()
}

/// The retransmits of one kind on the connections to (or from) one service endpoint.
#[derive(Default)]
struct Group {
    count: u64,
    connections: u64,
    first_ns: u64,
    last_ns: u64,
    sample_local: Option<SocketAddr>,
    sample_remote: Option<SocketAddr>,
    owner: Option<Process>,
}

pub fn findings(
    flows: &[RetransmitFlow],
    synacks: &HashMap<(u64, SocketAddr), SynAckSeen>,
    host: &dyn HostLookup,
) -> Vec<Finding> {
    let sysctls = |netns: &u64| host.connection_sysctls(*netns);
    let mut by_service: BTreeMap<(u32, u64, End, SocketAddr), Group> = BTreeMap::new();
    for flow in flows.iter().filter(|f| f.kind != RetransmitKind::SynAck) {
        let (local, remote) = (flow.flow.local, flow.flow.remote);
        // A SYN is the connecting side's; other segments go either way.
        let known = (flow.kind == RetransmitKind::Syn).then_some(End::Remote);
        let ports = EphemeralPorts::from_sysctl(
            sysctls(&flow.flow.netns).and_then(|s| s.ip_local_port_range),
        );
        let end = service_end(local, remote, known, ports, End::Remote);
        let service = match end {
            End::Local => local,
            End::Remote => remote,
        };
        let group = by_service
            .entry((flow.kind as u32, flow.flow.netns, end, service))
            .or_default();
        group.count += flow.count;
        group.connections += 1;
        group.first_ns = if group.first_ns == 0 {
            flow.first_ns
        } else {
            group.first_ns.min(flow.first_ns)
        };
        group.last_ns = group.last_ns.max(flow.last_ns);
        group.sample_local.get_or_insert(local);
        group.sample_remote.get_or_insert(remote);
        if flow.owner.is_some() {
            group.owner = flow.owner.clone();
        }
    }
    let mut found: Vec<Finding> = by_service
        .into_iter()
        .filter_map(|((kind, netns, end, service), mut g)| {
            let kind = RetransmitKind::from_u16(kind as u16)?;
            let (local, remote) = (g.sample_local?, g.sample_remote?);
            if g.owner.is_none() {
                // The connection predates tcpwhy: find its socket, and the socket's process.
                g.owner = owner_by_endpoints(host, netns, local, remote).map(|facts| Process {
                    source: OwnerSource::Socket,
                    ..facts.process
                });
            }
            Some(of_group(kind, netns, (end, service), &g, sysctls(&netns)))
        })
        .collect();
    found.extend(synacks.iter().map(|((netns, listener), seen)| {
        handshake_incomplete(*netns, *listener, seen, sysctls(netns))
    }));
    found.sort_by_key(|f| std::cmp::Reverse(f.count));
    found
}

/// `service`: which end the group is named by, and its endpoint.
fn of_group(
    kind: RetransmitKind,
    netns: u64,
    (end, service): (End, SocketAddr),
    g: &Group,
    sysctls: Option<&ConnectionSysctls>,
) -> Finding {
    let span = Duration::from_nanos(g.last_ns.saturating_sub(g.first_ns));
    let n = g.count;
    let (local, remote) = (g.sample_local, g.sample_remote);
    let remote_text = remote.map(|r| r.to_string()).unwrap_or_default();
    let connections = format!(
        "{} {}",
        g.connections,
        if g.connections == 1 {
            "connection"
        } else {
            "connections"
        }
    );
    // Named by the service: "to db:5432", or "from :8081 to 40 clients".
    let direction = match end {
        End::Remote => format!("to {remote_text}"),
        End::Local if g.connections > 1 => format!(
            "from {} to {} clients ({remote_text} among them)",
            local.map(|l| l.to_string()).unwrap_or_default(),
            g.connections
        ),
        End::Local => format!(
            "from {} to {remote_text}",
            local.map(|l| l.to_string()).unwrap_or_default()
        ),
    };
    let sysctl = |f: fn(&ConnectionSysctls) -> Option<i64>| sysctls.and_then(f);
    let (cause, explanation) = match kind {
        RetransmitKind::Syn => {
            let retries = sysctl(|s| s.tcp_syn_retries);
            (
                Cause::SynRetransmits,
                format!(
                    "{n} SYN {} {direction} over {} on {connections}: connect() is not being answered \
                     (the destination is unreachable, a firewall drops the SYNs, or its listener is full).{}",
                    plural(n, "retransmit", "retransmits"),
                    human(span),
                    retries
                        .map(|r| format!(
                            " With tcp_syn_retries={r} a connect gives up after about {}.",
                            human(give_up_after(r))
                        ))
                        .unwrap_or_default()
                ),
            )
        }
        RetransmitKind::Data => {
            let retries2 = sysctl(|s| s.tcp_retries2);
            let gap = if n > 1 {
                span / (n as u32 - 1)
            } else {
                Duration::ZERO
            };
            (
                Cause::DataRetransmits,
                format!(
                    "{n} data {} {direction} over {} on {connections} (every {} on average): segments \
                     or their acknowledgements are being lost, or the peer stopped answering.{}",
                    plural(n, "retransmit", "retransmits"),
                    human(span),
                    human(gap),
                    retries2
                        .map(|r| format!(" The retransmission timer doubles after each timeout; with tcp_retries2={r} the kernel gives up on an unresponsive peer after about 15 minutes (ETIMEDOUT)."))
                        .unwrap_or_default()
                ),
            )
        }
        RetransmitKind::TailLossProbe | RetransmitKind::SynAck => (
            Cause::TailLossProbes,
            format!(
                "{n} tail loss {} {direction} over {} on {connections}: the last segments of bursts went \
                 unacknowledged and were re-sent before the retransmission timer fired.",
                plural(n, "probe", "probes"),
                human(span)
            ),
        ),
    };
    let mut evidence = Map::new();
    evidence.insert("namespace".into(), json!(netns));
    evidence.insert("service".into(), json!(service.to_string()));
    evidence.insert("connections".into(), json!(g.connections));
    evidence.insert("span_ms".into(), json!(span.as_millis() as u64));
    evidence.insert("sysctls".into(), json!(sysctls));
    Finding::observed(
        Kind::Retransmit,
        cause,
        n,
        local,
        remote,
        g.owner.clone(),
        explanation,
        evidence,
    )
    .seen_between(g.first_ns, g.last_ns)
}

fn handshake_incomplete(
    netns: u64,
    listener: SocketAddr,
    seen: &SynAckSeen,
    sysctls: Option<&ConnectionSysctls>,
) -> Finding {
    let retries = sysctls.and_then(|s| s.tcp_synack_retries);
    let explanation = format!(
        "{listener} re-sent its SYN-ACK {} {} (to {} among others): clients are not completing the \
         handshake, because their final ACK is lost or dropped at a full accept queue, or because \
         they are gone.{}",
        seen.count,
        plural(seen.count, "time", "times"),
        seen.remote,
        retries
            .map(|r| format!(
                " With tcp_synack_retries={r} a half-open connection is dropped after about {}.",
                human(give_up_after(r))
            ))
            .unwrap_or_default()
    );
    let mut evidence = Map::new();
    evidence.insert("namespace".into(), json!(netns));
    evidence.insert("sysctls".into(), json!(sysctls));
    Finding::observed(
        Kind::Retransmit,
        Cause::HandshakeIncomplete,
        seen.count,
        Some(listener),
        Some(seen.remote),
        None,
        explanation,
        evidence,
    )
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
