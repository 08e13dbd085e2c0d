//! Plain-language explanations. Each one names the numbers it rests on, so that a reader can
//! check it against `ss`, `nstat` or a packet capture.

use tcpwhy_common::reset::tcp_flags;

use crate::{
    analysis::{grouping::ResetGroup, reset_rules::FIREWALL_INFERRED, service::End},
    model::{Cause, Direction, tcp_state},
};

pub fn explain(cause: Cause, group: &ResetGroup) -> String {
    let n = group.count;
    // The service end is one endpoint; the other end may be many, named with how many more.
    let distinct = group.distinct_peers();
    let (local, remote) = match group.service {
        End::Local => (
            group.local.to_string(),
            format!(
                "{}{}",
                group.sample_remote,
                others(distinct, "client", "clients")
            ),
        ),
        End::Remote => (
            format!(
                "{}{}",
                group.local,
                others(distinct, "local port", "local ports")
            ),
            group.sample_remote.to_string(),
        ),
    };
    let who = group
        .process
        .as_ref()
        .map(|p| format!("{} (pid {})", p.comm, p.pid))
        .unwrap_or_else(|| "the application".to_string());
    let times = plural(n, "time", "times");
    let state = group.state.map(tcp_state::name).unwrap_or("no socket");
    match cause {
        Cause::NoListener => format!(
            "{n} {} arrived for {local}, where nothing listens; this host answered each with RST, so \
             the client ({remote}) got \"connection refused\".",
            plural(n, "SYN", "SYNs"),
        ),
        Cause::UnknownConnection => format!(
            "{n} {} from {remote} arrived for {local}, a connection this host does not have (no socket); \
             this host answered with RST. One side has forgotten the connection: it restarted, \
             already gave up on it, or a NAT entry in between expired.",
            plural(n, "segment", "segments"),
        ),
        Cause::CloseWithUnreadData => format!(
            "{who} closed {n} {} on {local} with {} unread in the receive queue; the kernel discarded \
             the data and sent RST to {remote} instead of FIN.",
            plural(n, "connection", "connections"),
            bytes(group.unread_bytes_max),
        ),
        Cause::LingerZeroAbort => format!(
            "{who} set SO_LINGER {{on, 0 s}} and closed {n} {} on {local}; the kernel aborted {} with \
             RST to {remote} instead of FIN, skipping TIME_WAIT.",
            plural(n, "connection", "connections"),
            plural(n, "it", "them"),
        ),
        Cause::DataAfterClose => format!(
            "{remote} sent data {n} {times} to {local} after {who} had already closed {} \
             (socket state {state}); the data could not be delivered, so this host reset {}.",
            plural(n, "the connection", "the connections"),
            plural(n, "it", "them"),
        ),
        Cause::TimewaitReject => format!(
            "{n} {} from {remote} hit a connection on {local} that had already ended and sat in \
             TIME_WAIT; this host answered with RST.",
            plural(n, "segment", "segments"),
        ),
        Cause::AcceptQueueOverflowAbort => format!(
            "The listener on {local} had a full accept queue and net.ipv4.tcp_abort_on_overflow=1, so \
             {n} {} from {remote} {} reset instead of queued; the client sees \"connection reset by peer\".",
            plural(n, "handshake", "handshakes"),
            plural(n, "was", "were"),
        ),
        Cause::KeepaliveTimeout => format!(
            "{n} {} on {local} to {remote} went unanswered through every keepalive probe; the kernel \
             aborted {} (the application sees ETIMEDOUT).",
            plural(n, "connection", "connections"),
            plural(n, "it", "them"),
        ),
        Cause::MemoryPressureAbort => format!(
            "The kernel aborted {n} {} on {local} because TCP memory was under pressure or there were \
             too many orphaned sockets.",
            plural(n, "connection", "connections"),
        ),
        Cause::ProtocolViolation => format!(
            "{n} {} from {remote} to {local} broke a TCP rule for the socket's state ({state}{}); the \
             kernel answered with RST.",
            plural(n, "segment", "segments"),
            group
                .reason
                .as_deref()
                .map(|r| format!(", kernel reason {r}"))
                .unwrap_or_default(),
        ),
        Cause::ApplicationAbort => format!(
            "{who} aborted {n} {} on {local} to {remote} (state {state}{}).",
            plural(n, "connection", "connections"),
            group
                .reason
                .as_deref()
                .map(|r| format!(", kernel reason {r}"))
                .unwrap_or_default(),
        ),
        Cause::FirewallReject => firewall_reject(group, &local, &remote, &who, state),
        Cause::ConnectionRefused => format!(
            "{n} {} from {local} to {remote} {} refused: the RST answered the SYN (state SYN_SENT); \
             {who} got ECONNREFUSED.",
            plural(n, "connect", "connects"),
            plural(n, "was", "were"),
        ),
        Cause::PeerReset => format!(
            "{remote} reset {n} established {} with {local}; {who} gets ECONNRESET on its next read or write.",
            plural(n, "connection", "connections"),
        ),
        Cause::PeerResetDuringClose => format!(
            "{remote} reset {n} {} with {local} while {} closing (local state {state}).",
            plural(n, "connection", "connections"),
            plural(n, "it was", "they were"),
        ),
        // Other kinds have narratives of their own; should one reach here, say what is known.
        Cause::Unclassified
        | Cause::AcceptQueueOverflow
        | Cause::SynQueueOverflow
        | Cause::SynFloodCookies
        | Cause::SynRetransmits
        | Cause::HandshakeIncomplete
        | Cause::DataRetransmits
        | Cause::TailLossProbes
        | Cause::ConnectTimeout
        | Cause::CloseWaitLeak
        | Cause::TimeWaitPressure
        | Cause::RetransmitTimeout
        | Cause::UserTimeout
        | Cause::ZeroWindowStall
        | Cause::FinWait2Stuck
        | Cause::Drop(_) => format!(
            "{n} {} on {local} (remote {remote}, state {state}{}) matched no known cause.",
            plural(n, "reset", "resets"),
            group
                .reason
                .as_deref()
                .map(|r| format!(", kernel reason {r}"))
                .unwrap_or_default(),
        ),
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// " and 2 other clients": the peers of a group besides the one named.
fn others(distinct: usize, one: &str, many: &str) -> String {
    match distinct {
        0 | 1 => String::new(),
        n => format!(" and {} other {}", n - 1, plural(n as u64 - 1, one, many)),
    }
}

fn bytes(n: u32) -> String {
    format!("{n} {}", plural(u64::from(n), "byte", "bytes"))
}

/// The three ways a firewall's reset is known: seen leaving (netfilter answered a segment that
/// arrived here), and on a connection of this host, seen built or inferred.
fn firewall_reject(
    group: &ResetGroup,
    local: &str,
    remote: &str,
    who: &str,
    state: &str,
) -> String {
    let n = group.count;
    if group.direction == Direction::Sent {
        return format!(
            "A netfilter rule on this host answered {n} {} from {remote} to {local} with an RST \
             of its own (nf_send_reset), so {} never reached a socket: `reject with tcp reset` \
             (iptables `REJECT --reject-with tcp-reset`). The sender got {}.",
            plural(n, "segment", "segments"),
            plural(n, "it", "they"),
            if group.segment_flags.is_some_and(|f| f & tcp_flags::SYN != 0) {
                "ECONNREFUSED, as if nothing listened"
            } else {
                "ECONNRESET"
            },
        );
    }
    let how = if group.rule == FIREWALL_INFERRED {
        format!(
            "{remote} is an address of this host, and its TCP stack sent no reset on {} then",
            plural(n, "that connection", "those connections"),
        )
    } else {
        "netfilter was seen building it (nf_send_reset)".to_string()
    };
    format!(
        "{n} {} from {local} to {remote} {} reset (state {state}), but not by a TCP stack: \
         {how}. A firewall rule built {}: netfilter's `reject with tcp reset` (iptables `REJECT \
         --reject-with tcp-reset`). {who} got {}.",
        plural(n, "connection", "connections"),
        plural(n, "was", "were"),
        plural(n, "the reset", "the resets"),
        if group.state == Some(tcpwhy_common::tcp_state::SYN_SENT) {
            "ECONNREFUSED, as if nothing listened"
        } else {
            "ECONNRESET"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OwnerSource, Process};

    fn group(count: u64) -> ResetGroup {
        ResetGroup {
            count,
            local: "127.0.0.7:9000".parse().unwrap(),
            sample_remote: "127.0.0.1:40000".parse().unwrap(),
            peers: ["127.0.0.1:40000".parse().unwrap()].into(),
            process: Some(Process {
                pid: 42,
                comm: "server".into(),
                source: OwnerSource::Syscall,
                workload: Default::default(),
            }),
            state: Some(tcpwhy_common::tcp_state::CLOSE),
            reason: None,
            unread_bytes_max: 5,
            ..ResetGroup::default()
        }
    }

    #[test]
    fn explanations_name_their_numbers() {
        let text = explain(Cause::CloseWithUnreadData, &group(2));
        assert!(text.contains("server (pid 42)"), "{text}");
        assert!(text.contains("2 connections"), "{text}");
        assert!(text.contains("5 bytes unread"), "{text}");
        assert!(text.contains("127.0.0.7:9000"), "{text}");
        let peers = (1..=3)
            .map(|i| format!("127.0.0.1:{}", 40000 + i).parse().unwrap())
            .collect();
        let text = explain(Cause::NoListener, &ResetGroup { peers, ..group(1) });
        assert!(
            text.starts_with("1 SYN arrived for 127.0.0.7:9000"),
            "{text}"
        );
        assert!(text.contains("and 2 other clients"), "{text}");
    }
}
