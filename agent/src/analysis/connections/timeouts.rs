//! Connections the kernel aborted without a reset after their retransmissions went unanswered
//! (`retransmit_timeout`, or `user_timeout` where TCP_USER_TIMEOUT bounded them): one finding per
//! service end of the connections, like retransmits (see [`crate::analysis::service`]).

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use serde_json::{Map, json};
use tcpwhy_common::maps::RetransmitKind;

use super::HostLookup;
use crate::{
    analysis::{
        narrative::timeouts::{self, errno_name},
        service::{End, EphemeralPorts, service_end},
    },
    events::{close::TimedOut, flow::RetransmitFlow},
    model::{Cause, Finding, Flow, Kind, Process, tcp_state},
    probes::catalog,
};

/// The timed-out connections to (or from) one service endpoint.
#[derive(Debug, Default)]
pub struct Group {
    pub connections: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// The most consecutive unanswered retransmission timeouts of one connection.
    pub unanswered: u32,
    /// Retransmitted segments over the connections' lives.
    pub total_retransmits: u64,
    /// The longest time from a connection's first data retransmit seen to its abort.
    pub retransmitting_for: Option<Duration>,
    /// The application's TCP_USER_TIMEOUT (the largest, if they differ).
    pub user_timeout: Option<Duration>,
    /// The errors the applications got, with how many connections got each.
    pub errors: BTreeMap<u32, u64>,
    pub states: BTreeMap<u8, u64>,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub owner: Option<Process>,
}

impl Group {
    fn add(&mut self, closed: &TimedOut, first_retransmit_ns: Option<u64>) {
        self.connections += 1;
        self.first_ns = match self.first_ns {
            0 => closed.closed_ns,
            first => first.min(closed.closed_ns),
        };
        self.last_ns = self.last_ns.max(closed.closed_ns);
        self.unanswered = self.unanswered.max(closed.unanswered);
        self.total_retransmits += u64::from(closed.total_retransmits);
        let retransmitting = first_retransmit_ns
            .filter(|&first| first > 0 && first <= closed.closed_ns)
            .map(|first| Duration::from_nanos(closed.closed_ns - first));
        self.retransmitting_for = self.retransmitting_for.max(retransmitting);
        self.user_timeout = self.user_timeout.max(closed.user_timeout);
        *self.errors.entry(closed.error).or_insert(0) += 1;
        *self.states.entry(closed.old_state).or_insert(0) += 1;
        self.local.get_or_insert(closed.flow.local);
        self.remote.get_or_insert(closed.flow.remote);
        if closed.owner.is_some() {
            self.owner = closed.owner.clone();
        }
    }
}

pub fn findings(
    closed: &[TimedOut],
    flows: &[RetransmitFlow],
    host: &dyn HostLookup,
) -> Vec<Finding> {
    let first_retransmit: BTreeMap<Flow, u64> = flows
        .iter()
        .filter(|f| f.kind == RetransmitKind::Data)
        .map(|f| (f.flow, f.first_ns))
        .collect();
    let mut by_service: BTreeMap<(Cause, u64, End, SocketAddr), Group> = BTreeMap::new();
    for close in closed {
        let Flow {
            netns,
            local,
            remote,
        } = close.flow;
        let ports = EphemeralPorts::from_sysctl(
            host.connection_sysctls(netns)
                .and_then(|s| s.ip_local_port_range),
        );
        let end = service_end(local, remote, None, ports, End::Remote);
        let service = match end {
            End::Local => local,
            End::Remote => remote,
        };
        let cause = if close.user_timeout.is_some() {
            Cause::UserTimeout
        } else {
            Cause::RetransmitTimeout
        };
        by_service
            .entry((cause, netns, end, service))
            .or_default()
            .add(close, first_retransmit.get(&close.flow).copied());
    }
    by_service
        .into_iter()
        .map(|((cause, netns, end, _), group)| finding(cause, netns, end, &group, host))
        .collect()
}

fn finding(cause: Cause, netns: u64, end: End, group: &Group, host: &dyn HostLookup) -> Finding {
    let retries2 = host.connection_sysctls(netns).and_then(|s| s.tcp_retries2);
    let explanation = timeouts::explain(cause, end, group, retries2);
    let mut evidence = Map::new();
    evidence.insert("namespace".into(), json!(netns));
    evidence.insert("hook".into(), json!(catalog::SET_STATE.name));
    evidence.insert("connections".into(), json!(group.connections));
    evidence.insert(
        "errors".into(),
        json!(
            group
                .errors
                .iter()
                .map(|(errno, n)| (errno_name(*errno), *n))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    evidence.insert(
        "states".into(),
        json!(
            group
                .states
                .iter()
                .map(|(state, n)| (tcp_state::name(*state), *n))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    evidence.insert("unanswered_retransmits".into(), json!(group.unanswered));
    evidence.insert("total_retransmits".into(), json!(group.total_retransmits));
    evidence.insert(
        "retransmitting_ms".into(),
        json!(group.retransmitting_for.map(|d| d.as_millis() as u64)),
    );
    evidence.insert(
        "user_timeout_ms".into(),
        json!(group.user_timeout.map(|d| d.as_millis() as u64)),
    );
    evidence.insert("tcp_retries2".into(), json!(retries2));
    Finding::observed(
        Kind::State,
        cause,
        group.connections,
        group.local,
        group.remote,
        group.owner.clone(),
        explanation,
        evidence,
    )
    .seen_between(group.first_ns, group.last_ns)
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::tcp_state;

    use super::*;
    use crate::analysis::connections::NothingToLookUp;

    fn closed(local_port: u16, user_timeout: Option<Duration>) -> TimedOut {
        TimedOut {
            flow: Flow {
                netns: 7,
                local: SocketAddr::from(([10, 0, 0, 2], local_port)),
                remote: SocketAddr::from(([10, 0, 0, 1], 5432)),
            },
            closed_ns: 10_000_000_000,
            error: libc::ETIMEDOUT as u32,
            user_timeout,
            unanswered: 5,
            total_retransmits: 6,
            old_state: tcp_state::ESTABLISHED,
            owner: None,
        }
    }

    #[test]
    fn connections_to_one_service_group_by_what_ended_them() {
        let closes = [
            closed(40000, None),
            closed(40001, None),
            closed(40002, Some(Duration::from_secs(1))),
        ];
        let first_retransmit = RetransmitFlow {
            flow: closes[0].flow,
            kind: RetransmitKind::Data,
            count: 6,
            first_ns: 4_000_000_000,
            last_ns: 9_000_000_000,
            owner: None,
        };
        let found = findings(&closes, &[first_retransmit], &NothingToLookUp);
        let by_cause: BTreeMap<&str, &Finding> = found.iter().map(|f| (f.cause.id(), f)).collect();
        assert_eq!(by_cause.len(), 2, "{found:#?}");
        let retries2 = by_cause["retransmit_timeout"];
        assert_eq!(retries2.count, 2);
        assert_eq!(retries2.remote.as_deref(), Some("10.0.0.1:5432"));
        assert_eq!(retries2.evidence["total_retransmits"], 12);
        assert_eq!(retries2.evidence["retransmitting_ms"], 6000);
        assert_eq!(retries2.evidence["errors"]["ETIMEDOUT"], 2);
        let user = by_cause["user_timeout"];
        assert_eq!(user.count, 1);
        assert_eq!(user.evidence["user_timeout_ms"], 1000);
        assert_eq!(user.evidence["retransmitting_ms"], serde_json::Value::Null);
    }
}
