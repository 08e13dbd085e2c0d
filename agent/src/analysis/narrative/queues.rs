//! Explanations of listen-queue drops: the story told with the listener's own numbers.

use std::fmt::Write;

use crate::{
    analysis::queues::{
        drops::{Certainty, ListenerDrops},
        split,
    },
    model::Cause,
};

/// Why a namespace's drops have no listener: said instead of naming one.
const UNSEEN: &str = "No sample caught which listener: none was seen full while the counters \
                      moved, because its queue filled and drained within the 100 ms between two \
                      samples. Any listener of this namespace that a sample did see full has a \
                      finding of its own.";

pub fn explain(drops: &ListenerDrops) -> String {
    let mut text = String::new();
    let who = drops
        .owner
        .as_ref()
        .map(|p| format!(" ({}, pid {})", p.process.comm, p.process.pid))
        .unwrap_or_default();
    let ns = drops.namespace;
    let n = drops.count;
    let s = &drops.sysctls;
    let show = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    match drops.cause {
        Cause::AcceptQueueOverflow => {
            let dropped = if n == 1 {
                "handshake was"
            } else {
                "handshakes were"
            };
            let _ = match drops.listener {
                Some(listener) => write!(
                    text,
                    "{listener}{who} in network namespace {ns}: the accept queue was full \
                     ({}/{} connections waiting for accept(); it holds backlog+1 = {}) for {} ms, and \
                     {n} {dropped} dropped (ListenOverflows +{}). ",
                    drops.queue_len_max,
                    drops.queue_limit,
                    u64::from(drops.queue_limit) + 1,
                    drops.full_for.as_millis(),
                    drops.counters.listen_overflows,
                ),
                None => write!(
                    text,
                    "In network namespace {ns}, {n} {dropped} dropped at a full accept queue \
                     (ListenOverflows +{}). {UNSEEN} ",
                    drops.counters.listen_overflows,
                ),
            };
            if s.tcp_abort_on_overflow == Some(1) {
                let _ = write!(
                    text,
                    "With tcp_abort_on_overflow=1, handshakes completing into the full queue are reset: \
                     clients see \"connection reset by peer\". "
                );
            } else {
                let _ = write!(
                    text,
                    "With tcp_abort_on_overflow={}, the kernel drops the SYN or the handshake's final ACK \
                     silently: clients retransmit their SYN after 1 s, 3 s, 7 s... (tcp_syn_retries={}), \
                     and clients that believe they are connected wait while the server re-sends its SYN-ACK \
                     up to tcp_synack_retries={} times. ",
                    show(s.tcp_abort_on_overflow),
                    show(s.tcp_syn_retries),
                    show(s.tcp_synack_retries),
                );
            }
        }
        Cause::SynQueueOverflow => {
            let queue = match drops.listener {
                Some(listener) => format!(
                    "{listener}{who} in network namespace {ns}: the SYN queue was full ({} half-open \
                     connections; it is bounded by the listen() backlog, {})",
                    drops.half_open_max, drops.queue_limit,
                ),
                None => format!("In network namespace {ns}, a listener's SYN queue was full"),
            };
            let _ = write!(
                text,
                "{queue} with tcp_syncookies={}, so {n} new {} dropped (TCPReqQFullDrop +{}); those \
                 clients time out in connect() after tcp_syn_retries={} retransmits. ",
                show(s.tcp_syncookies),
                if n == 1 { "SYN was" } else { "SYNs were" },
                drops.counters.req_q_full_drop,
                show(s.tcp_syn_retries),
            );
            if drops.listener.is_none() {
                let _ = write!(text, "{UNSEEN} ");
            }
        }
        Cause::SynFloodCookies => {
            let queue = match drops.listener {
                Some(listener) => format!(
                    "{listener}{who} in network namespace {ns}: the SYN queue overflowed ({} half-open \
                     connections, limit {})",
                    drops.half_open_max, drops.queue_limit,
                ),
                None => format!("In network namespace {ns}, a listener's SYN queue overflowed"),
            };
            let _ = write!(
                text,
                "{queue}, and the kernel answered {n} {} with SYN cookies instead of queueing {} \
                 (TCPReqQFullDoCookies +{}, SyncookiesSent +{}, SyncookiesFailed +{}). ",
                if n == 1 { "SYN" } else { "SYNs" },
                if n == 1 { "it" } else { "them" },
                drops.counters.req_q_full_do_cookies,
                drops.counters.syncookies_sent,
                drops.counters.syncookies_failed,
            );
            if drops.listener.is_none() {
                let _ = write!(text, "{UNSEEN} ");
            }
        }
        _ => {}
    }
    if drops.synack_retransmits > 0 {
        let _ = write!(
            text,
            "The listener re-sent its SYN-ACK {} {}{}. ",
            drops.synack_retransmits,
            if drops.synack_retransmits == 1 {
                "time"
            } else {
                "times"
            },
            drops
                .sample_remote
                .map(|r| format!(" (to {r} among others)"))
                .unwrap_or_default(),
        );
    }
    backlog_sentence(drops, &mut text);
    fd_sentence(drops, &mut text);
    match drops.certainty {
        Certainty::High | Certainty::Exact => {}
        Certainty::Shared => {
            let others: Vec<String> = drops
                .split
                .iter()
                .flat_map(|split| split.others(drops.listener))
                .map(|a| a.to_string())
                .collect();
            let _ = write!(
                text,
                "Other listeners in the namespace were full at the same time ({}); the counters \
                 cannot say which of them dropped what, so the namespace's drops were divided \
                 between them ({}), and {n} is this listener's share. ",
                others.join(", "),
                split::RULE,
            );
        }
        Certainty::Retransmits => {
            let _ = write!(
                text,
                "No sample saw its queue full (it fills and drains faster than the 100 ms \
                 sampling), but it was re-sending SYN-ACKs when the drops were counted. "
            );
        }
        // Said where the listener would have been named.
        Certainty::Unattributed => {}
    }
    text.trim_end().to_string()
}

fn backlog_sentence(drops: &ListenerDrops, text: &mut String) {
    let somaxconn = drops.sysctls.somaxconn;
    match (drops.requested_backlog, somaxconn) {
        (Some(requested), Some(max)) if requested < 0 || i64::from(requested) > max => {
            let _ = write!(
                text,
                "The backlog passed to listen() was {requested}, but net.core.somaxconn={max} \
                 silently capped it at {}. ",
                drops.queue_limit
            );
        }
        (Some(requested), _) => {
            let _ = write!(text, "The backlog passed to listen() was {requested}. ");
        }
        (None, Some(max)) if i64::from(drops.queue_limit) == max && max > 0 => {
            let _ = write!(
                text,
                "The limit equals net.core.somaxconn={max}: the backlog passed to listen() may have \
                 been larger and silently capped. "
            );
        }
        _ => {}
    }
}

fn fd_sentence(drops: &ListenerDrops, text: &mut String) {
    let Some(owner) = &drops.owner else { return };
    let Some(limit) = owner.fd_limit else { return };
    if owner.open_fds + 1 >= limit {
        let _ = write!(
            text,
            "{} has {} of its {} file descriptors open: at the limit accept() fails with EMFILE and \
             the queue cannot drain. ",
            owner.process.comm, owner.open_fds, limit
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{namespace::QueueSysctls, netstat::CounterGrowth};

    fn unattributed(cause: Cause) -> ListenerDrops {
        ListenerDrops {
            count: 715,
            counters: CounterGrowth {
                listen_overflows: 1225,
                ..CounterGrowth::default()
            },
            ..ListenerDrops::nothing_yet(
                cause,
                7,
                None,
                Certainty::Unattributed,
                QueueSysctls::default(),
                std::time::SystemTime::now(),
            )
        }
    }

    #[test]
    fn drops_no_sample_pinned_on_a_listener_say_so_without_a_listener_s_numbers() {
        for cause in [
            Cause::AcceptQueueOverflow,
            Cause::SynQueueOverflow,
            Cause::SynFloodCookies,
        ] {
            let text = explain(&unattributed(cause));
            assert!(text.starts_with("In network namespace 7, "), "{text}");
            assert!(text.contains("No sample caught which listener"), "{text}");
            assert!(!text.contains("0/0"), "{text}");
            assert!(!text.contains("limit 0"), "{text}");
            assert!(!text.contains("unidentified"), "{text}");
        }
        let text = explain(&unattributed(Cause::AcceptQueueOverflow));
        assert!(
            text.contains(
                "715 handshakes were dropped at a full accept queue (ListenOverflows +1225)"
            ),
            "{text}"
        );
    }
}
