//! What a drop finding says: where the kernel dropped how many segments, and what its reason
//! means.

use crate::{events::drop::TcpDrops, model::DropCause};

/// `reason`: the kernel's name for the reason.
pub fn explain(drops: &TcpDrops, cause: DropCause, reason: &str, at_listener: bool) -> String {
    let n = drops.count;
    let segments = if n == 1 { "segment" } else { "segments" };
    let at = if at_listener { "the listener " } else { "" };
    let why = match cause.meaning() {
        Some(meaning) => format!("{meaning} (kernel reason {reason})"),
        None => format!(
            "the kernel's reason is {reason}, which tcpwhy has no words for: its name says where \
             in the kernel they were dropped"
        ),
    };
    format!(
        "The kernel dropped {n} TCP {segments} of {at}{} in network namespace {} (the last one \
         with {}): {why}.",
        drops.local, drops.netns, drops.remote
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drops(count: u64) -> TcpDrops {
        TcpDrops {
            reason: 12,
            netns: 4026531833,
            local: "127.0.0.1:8080".parse().unwrap(),
            remote: "127.0.0.1:40000".parse().unwrap(),
            count,
            first_ns: 1,
            last_ns: 2,
            state: None,
        }
    }

    #[test]
    fn explained_reasons_say_what_happened() {
        let text = explain(
            &drops(3),
            DropCause::of_reason("NETFILTER_DROP"),
            "NETFILTER_DROP",
            false,
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
            &drops(1),
            DropCause::of_reason("XFRM_POLICY"),
            "XFRM_POLICY",
            true,
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
