//! What a drop finding says: where the kernel dropped how many segments, and what its reason
//! means.

use crate::{
    analysis::{drops::DropGroup, service::End},
    model::DropCause,
};

/// `reason`: the kernel's name for the reason.
pub fn explain(group: &DropGroup, cause: DropCause, reason: &str) -> String {
    let drops = &group.drops;
    let n = drops.count;
    let segments = if n == 1 { "segment" } else { "segments" };
    let why = match cause.meaning() {
        Some(meaning) => format!("{meaning} (kernel reason {reason})"),
        None => format!(
            "the kernel's reason is {reason}, which tcpwhy has no words for: its name says where \
             in the kernel they were dropped"
        ),
    };
    let of = match group.service {
        End::Local if group.at_listener() => format!("of the listener {}", drops.local),
        End::Local => format!("of {}", drops.local),
        // A client's connections to a service: the service names them.
        End::Remote => format!(
            "of connections to {} from {}{}",
            drops.remote,
            drops.local,
            match group.local_endpoints {
                0 | 1 => String::new(),
                2 => " and 1 more local port".to_string(),
                more => format!(" and {} more local ports", more - 1),
            }
        ),
    };
    let last_with = match group.service {
        End::Local => format!(" (the last one with {})", drops.remote),
        End::Remote => String::new(),
    };
    format!(
        "The kernel dropped {n} TCP {segments} {of} in network namespace {}{last_with}: {why}.",
        drops.netns
    )
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::tcp_state::LISTEN;

    use super::*;
    use crate::events::drop::TcpDrops;

    fn drops(count: u64, state: Option<u8>) -> DropGroup {
        DropGroup {
            drops: TcpDrops {
                reason: 12,
                netns: 4026531833,
                local: "127.0.0.1:8080".parse().unwrap(),
                remote: "127.0.0.1:40000".parse().unwrap(),
                count,
                first_ns: 1,
                last_ns: 2,
                state,
            },
            service: End::Local,
            service_endpoint: "127.0.0.1:8080".parse().unwrap(),
            local_endpoints: 1,
        }
    }

    #[test]
    fn explained_reasons_say_what_happened() {
        let text = explain(
            &drops(3, None),
            DropCause::of_reason("NETFILTER_DROP"),
            "NETFILTER_DROP",
        );
        assert_eq!(
            text,
            "The kernel dropped 3 TCP segments of 127.0.0.1:8080 in network namespace 4026531833 \
             (the last one with 127.0.0.1:40000): a netfilter rule (nftables or iptables) dropped \
             them (kernel reason NETFILTER_DROP)."
        );
    }

    #[test]
    fn other_reasons_are_named() {
        let text = explain(
            &drops(1, Some(LISTEN)),
            DropCause::of_reason("XFRM_POLICY"),
            "XFRM_POLICY",
        );
        assert!(
            text.contains("1 TCP segment of the listener 127.0.0.1:8080"),
            "{text}"
        );
        assert!(
            text.contains("the kernel's reason is XFRM_POLICY"),
            "{text}"
        );
    }
}
