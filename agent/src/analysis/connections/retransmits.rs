//! Retransmit findings: per remote endpoint (SYN, data, tail loss probes) and per listener
//! (SYN-ACKs), explained with the live sysctls and the timing actually seen.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::Duration,
};

use serde_json::{Map, json};
use tcpwhy_common::maps::RetransmitKind;

use super::{HostLookup, give_up_after, human, owner_by_endpoints};
use crate::{
    analysis::queues::attribution::SynAckSeen,
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

#[derive(Default)]
struct ToRemote {
    count: u64,
    connections: u64,
    first_ns: u64,
    last_ns: u64,
    sample_local: Option<SocketAddr>,
    owner: Option<Process>,
}

pub fn findings(
    flows: &[RetransmitFlow],
    synacks: &HashMap<(u64, SocketAddr), SynAckSeen>,
    host: &dyn HostLookup,
) -> Vec<Finding> {
    let mut by_remote: BTreeMap<(u32, u64, SocketAddr), ToRemote> = BTreeMap::new();
    for flow in flows.iter().filter(|f| f.kind != RetransmitKind::SynAck) {
        let group = by_remote
            .entry((flow.kind as u32, flow.flow.netns, flow.flow.remote))
            .or_default();
        group.count += flow.count;
        group.connections += 1;
        group.first_ns = if group.first_ns == 0 {
            flow.first_ns
        } else {
            group.first_ns.min(flow.first_ns)
        };
        group.last_ns = group.last_ns.max(flow.last_ns);
        group.sample_local.get_or_insert(flow.flow.local);
        if flow.owner.is_some() {
            group.owner = flow.owner.clone();
        }
    }
    let sysctls = |netns: &u64| host.connection_sysctls(*netns);
    let mut found: Vec<Finding> = by_remote
        .into_iter()
        .filter_map(|((kind, netns, remote), mut g)| {
            let kind = RetransmitKind::from_u16(kind as u16)?;
            if g.owner.is_none() {
                // The connection predates tcpwhy: find its socket, and the socket's process.
                g.owner = g
                    .sample_local
                    .and_then(|local| owner_by_endpoints(host, netns, local, remote))
                    .map(|facts| Process {
                        source: OwnerSource::Socket,
                        ..facts.process
                    });
            }
            Some(to_remote(kind, netns, remote, &g, sysctls(&netns)))
        })
        .collect();
    found.extend(synacks.iter().map(|((netns, listener), seen)| {
        handshake_incomplete(*netns, *listener, seen, sysctls(netns))
    }));
    found.sort_by_key(|f| std::cmp::Reverse(f.count));
    found
}

fn to_remote(
    kind: RetransmitKind,
    netns: u64,
    remote: SocketAddr,
    g: &ToRemote,
    sysctls: Option<&ConnectionSysctls>,
) -> Finding {
    let span = Duration::from_nanos(g.last_ns.saturating_sub(g.first_ns));
    let n = g.count;
    let connections = format!(
        "{} {}",
        g.connections,
        if g.connections == 1 {
            "connection"
        } else {
            "connections"
        }
    );
    let sysctl = |f: fn(&ConnectionSysctls) -> Option<i64>| sysctls.and_then(f);
    let (cause, explanation) = match kind {
        RetransmitKind::Syn => {
            let retries = sysctl(|s| s.tcp_syn_retries);
            (
                Cause::SynRetransmits,
                format!(
                    "{n} SYN {} to {remote} over {} on {connections}: connect() is not being answered \
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
                    "{n} data {} to {remote} over {} on {connections} (every {} on average): segments \
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
                "{n} tail loss {} to {remote} over {} on {connections}: the last segments of bursts went \
                 unacknowledged and were re-sent before the retransmission timer fired.",
                plural(n, "probe", "probes"),
                human(span)
            ),
        ),
    };
    let mut evidence = Map::new();
    evidence.insert("namespace".into(), json!(netns));
    evidence.insert("connections".into(), json!(g.connections));
    evidence.insert("span_ms".into(), json!(span.as_millis() as u64));
    evidence.insert("sysctls".into(), json!(sysctls));
    Finding::observed(
        Kind::Retransmit,
        cause,
        n,
        g.sample_local,
        Some(remote),
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
