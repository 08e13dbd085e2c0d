//! Turning what was seen into findings: the explanation, the advice and the evidence of each.

use serde_json::{Map, Value, json};
use tcpwhy_common::reset::tcp_flags;

use super::{
    grouping::ResetGroup,
    narrative,
    queues::drops::{Certainty, ListenerDrops},
    reset_rules,
    service::End,
};
use crate::model::{Finding, Kind, tcp_state, time};

/// The finding of a group of resets.
pub fn of_resets(group: &ResetGroup) -> Finding {
    Finding {
        kind: group.direction.kind(),
        cause: group.cause,
        count: group.count,
        local: Some(group.local.to_string()),
        remote: Some(group.sample_remote.to_string()),
        process: group.process.clone(),
        kernel_reason: group.reason.clone(),
        first_seen: None,
        last_seen: None,
        peers: group.sample_peers.iter().map(|p| p.to_string()).collect(),
        explanation: narrative::resets::explain(group.cause, group),
        advice: group.cause.advice_lines(),
        evidence: evidence(group),
        related: Vec::new(),
    }
    .seen_between(group.first_ns, group.last_ns)
}

/// The finding of a listener's queue drops.
pub fn of_queue_drops(drops: &ListenerDrops) -> Finding {
    Finding {
        kind: Kind::QueueDrop,
        cause: drops.cause,
        count: drops.count,
        local: drops.listener.map(|l| l.to_string()),
        remote: drops.sample_remote.map(|r| r.to_string()),
        process: drops.owner.as_ref().map(|p| p.process.clone()),
        kernel_reason: None,
        first_seen: drops.first_seen.map(time::rfc3339),
        last_seen: drops.last_seen.map(time::rfc3339),
        peers: Vec::new(),
        explanation: narrative::queues::explain(drops),
        advice: drops.cause.advice_lines(),
        evidence: queue_evidence(drops),
        related: Vec::new(),
    }
}

fn queue_evidence(drops: &ListenerDrops) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("namespace".into(), json!(drops.namespace));
    let method = match drops.certainty {
        Certainty::Exact => "function probes (tcp_conn_request, tcp_v4/v6_syn_recv_sock)",
        _ => {
            "namespace counters (nstat) + sock_diag listener samples + SYN-ACK retransmits (tcp:tcp_retransmit_synack)"
        }
    };
    map.insert("attribution".into(), json!(method));
    map.insert("certainty".into(), json!(drops.certainty));
    if let Some(split) = &drops.split {
        let others: Vec<String> = split
            .others(drops.listener)
            .iter()
            .map(|a| a.to_string())
            .collect();
        map.insert("shared_with".into(), json!(others));
        map.insert("split".into(), json!(split.to_string()));
    }
    // A listener's own numbers; drops no sample could pin on a listener have none.
    if drops.listener.is_some() {
        map.insert("queue_len_max".into(), json!(drops.queue_len_max));
        map.insert("queue_limit".into(), json!(drops.queue_limit));
        map.insert("half_open_max".into(), json!(drops.half_open_max));
        map.insert(
            "full_for_ms".into(),
            json!(drops.full_for.as_millis() as u64),
        );
        map.insert("synack_retransmits".into(), json!(drops.synack_retransmits));
        map.insert("requested_backlog".into(), json!(drops.requested_backlog));
    }
    if let Some(owner) = &drops.owner {
        map.insert("open_fds".into(), json!(owner.open_fds));
        map.insert("fd_limit".into(), json!(owner.fd_limit));
        if let Some(unit) = &owner.process.workload.unit {
            map.insert("unit".into(), json!(unit));
        }
    }
    map.insert("sysctls".into(), json!(drops.sysctls));
    let c = &drops.counters;
    map.insert(
        "counters".into(),
        json!({
            "ListenOverflows": c.listen_overflows,
            "ListenDrops": c.listen_drops,
            "TCPReqQFullDrop": c.req_q_full_drop,
            "TCPReqQFullDoCookies": c.req_q_full_do_cookies,
            "SyncookiesSent": c.syncookies_sent,
            "SyncookiesFailed": c.syncookies_failed,
        }),
    );
    map
}

fn evidence(group: &ResetGroup) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("rule".into(), json!(group.rule));
    if group.rule == reset_rules::FIREWALL_INFERRED {
        map.insert(
            "inferred".into(),
            json!("no tcp_send_reset for this connection within 1 s before it arrived"),
        );
    }
    map.insert("hook".into(), json!(group.origin));
    map.insert(
        "socket_state".into(),
        json!(group.state.map(tcp_state::name)),
    );
    if let Some(substate) = group.tw_substate {
        map.insert("timewait_substate".into(), json!(tcp_state::name(substate)));
    }
    if let Some(flags) = group.segment_flags {
        map.insert("segment_flags".into(), json!(flag_names(flags)));
    }
    if group.state.is_some() {
        map.insert("unread_bytes".into(), json!(group.unread_bytes_max));
        map.insert("linger_zero".into(), json!(group.linger_zero));
        map.insert("orphan".into(), json!(group.orphan));
    }
    if let Some(netns) = group.netns {
        map.insert("netns".into(), json!(netns));
    }
    if let Some(from) = group.owner_learned_from {
        map.insert("process_from".into(), json!(from.as_str()));
    }
    let distinct = match group.service {
        End::Local => "distinct_remotes",
        End::Remote => "distinct_local_endpoints",
    };
    map.insert(distinct.into(), json!(group.distinct_peers()));
    if group.aggregated > 0 {
        map.insert("aggregated_in_kernel".into(), json!(group.aggregated));
    }
    map.insert(
        "first_to_last_ms".into(),
        json!((group.last_ns.saturating_sub(group.first_ns)) / 1_000_000),
    );
    map
}

/// `SYN`, `ACK`, `FIN|ACK`...
pub fn flag_names(flags: u8) -> String {
    let names: Vec<&str> = [
        (tcp_flags::SYN, "SYN"),
        (tcp_flags::FIN, "FIN"),
        (tcp_flags::RST, "RST"),
        (tcp_flags::ACK, "ACK"),
    ]
    .into_iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, name)| name)
    .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join("|")
    }
}
