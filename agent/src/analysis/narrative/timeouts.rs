//! What a timeout finding says: which connections the kernel gave up on, after how many
//! unanswered retransmissions and how long, and what the application saw.

use crate::{
    analysis::{
        connections::{human, timeouts::Group},
        service::End,
    },
    model::Cause,
};

/// The errno's name as programs print it.
pub fn errno_name(errno: u32) -> String {
    match errno as i32 {
        libc::ETIMEDOUT => "ETIMEDOUT".into(),
        libc::EHOSTUNREACH => "EHOSTUNREACH".into(),
        libc::ENETUNREACH => "ENETUNREACH".into(),
        libc::EHOSTDOWN => "EHOSTDOWN".into(),
        libc::ECONNREFUSED => "ECONNREFUSED".into(),
        libc::EPROTO => "EPROTO".into(),
        other => format!("errno {other}"),
    }
}

pub fn explain(cause: Cause, end: End, group: &Group, retries2: Option<i64>) -> String {
    let n = group.connections;
    let connections = if n == 1 { "connection" } else { "connections" };
    let endpoint = |e: Option<std::net::SocketAddr>| e.map(|e| e.to_string()).unwrap_or_default();
    let (local, remote) = (endpoint(group.local), endpoint(group.remote));
    let direction = match end {
        End::Remote => format!("to {remote}"),
        End::Local if n > 1 => format!("from {local} ({remote} among the peers)"),
        End::Local => format!("from {local} to {remote}"),
    };
    let who = group
        .owner
        .as_ref()
        .map(|p| format!(" of {} (pid {})", p.comm, p.pid))
        .unwrap_or_default();
    let errors: Vec<String> = group.errors.keys().map(|&e| errno_name(e)).collect();
    let took = group
        .retransmitting_for
        .map(|d| format!(", {} after the first retransmit tcpwhy saw", human(d)))
        .unwrap_or_default();
    let limit = match (cause, group.user_timeout, retries2) {
        (Cause::UserTimeout, Some(timeout), _) => format!(
            "the application's TCP_USER_TIMEOUT of {} expired first",
            human(timeout)
        ),
        (_, _, Some(retries2)) => format!("the limit is tcp_retries2={retries2}"),
        _ => "the limit is tcp_retries2".into(),
    };
    format!(
        "The kernel aborted {n} {connections}{who} {direction} without a reset: {} retransmission \
         timeouts in a row went unanswered ({limit}){took}, and {} {} retransmitted in all. The \
         application's next read or write failed with {}. Nothing answered, not even an RST: the \
         peer vanished (crashed, powered off, moved), a link went down, or a firewall, NAT or load \
         balancer dropped the flow.",
        group.unanswered,
        group.total_retransmits,
        if group.total_retransmits == 1 {
            "segment was"
        } else {
            "segments were"
        },
        errors.join(" or "),
    )
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Duration};

    use super::*;

    fn group(user_timeout: Option<Duration>) -> Group {
        Group {
            connections: 1,
            first_ns: 1,
            last_ns: 1,
            unanswered: 6,
            total_retransmits: 7,
            retransmitting_for: Some(Duration::from_millis(12_600)),
            user_timeout,
            errors: BTreeMap::from([(libc::ETIMEDOUT as u32, 1)]),
            states: BTreeMap::new(),
            local: Some("10.0.0.2:40000".parse().unwrap()),
            remote: Some("10.0.0.1:5432".parse().unwrap()),
            owner: None,
        }
    }

    #[test]
    fn retries2_timeouts_say_the_limit_and_the_time() {
        let text = explain(Cause::RetransmitTimeout, End::Remote, &group(None), Some(5));
        assert_eq!(
            text,
            "The kernel aborted 1 connection to 10.0.0.1:5432 without a reset: 6 retransmission \
             timeouts in a row went unanswered (the limit is tcp_retries2=5), 12.6 s after the \
             first retransmit tcpwhy saw, and 7 segments were retransmitted in all. The \
             application's next read or write failed with ETIMEDOUT. Nothing answered, not even \
             an RST: the peer vanished (crashed, powered off, moved), a link went down, or a \
             firewall, NAT or load balancer dropped the flow."
        );
    }

    #[test]
    fn user_timeouts_name_the_setting() {
        let text = explain(
            Cause::UserTimeout,
            End::Remote,
            &group(Some(Duration::from_secs(1))),
            Some(15),
        );
        assert!(
            text.contains("the application's TCP_USER_TIMEOUT of 1.0 s expired first"),
            "{text}"
        );
        assert_eq!(errno_name(113), "EHOSTUNREACH");
        assert_eq!(errno_name(5), "errno 5");
    }
}
