//! What the attached probes let tcpwhy see, capability by capability. A fallback on standby is
//! not a gap; a capability with no method attached is (it is what the "probe not attached"
//! alert watches).

use super::report::ProbeReport;

/// (capability, the probes that provide it: any one hook of a group suffices, all of a group
/// are needed).
const CAPABILITIES: [(&str, &[&[&str]]); 6] = [
    (
        "resets_sent",
        &[
            &["tcp:tcp_send_reset"],
            &[
                "tcp_v4_send_reset",
                "tcp_v6_send_reset",
                "tcp_send_active_reset",
            ],
        ],
    ),
    ("resets_received", &[&["tcp:tcp_receive_reset"]]),
    ("socket_owners", &[&["sock:inet_sock_set_state"]]),
    ("listen_backlogs", &[&["syscalls:sys_enter_listen"]]),
    ("retransmits", &[&["tcp:tcp_retransmit_skb"]]),
    ("synack_retransmits", &[&["tcp:tcp_retransmit_synack"]]),
];

/// Each capability and whether some group of its probes is fully attached.
pub fn coverage(reports: &[ProbeReport]) -> Vec<(&'static str, bool)> {
    let attached = |name: &str| reports.iter().any(|r| r.attached && r.name == name);
    CAPABILITIES
        .iter()
        .map(|(capability, groups)| {
            let covered = groups
                .iter()
                .any(|group| group.iter().all(|probe| attached(probe)));
            (*capability, covered)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::method::Method;

    fn report(name: &str, attached: bool) -> ProbeReport {
        if attached {
            ProbeReport::attached(name, Method::Fentry, &[])
        } else {
            ProbeReport::failed(name, None, "no".into())
        }
    }

    #[test]
    fn function_probes_cover_resets_sent_only_all_together() {
        let mut reports = vec![
            report("tcp:tcp_send_reset", false),
            report("tcp_v4_send_reset", true),
            report("tcp_v6_send_reset", true),
            report("tcp_send_active_reset", false),
        ];
        assert_eq!(coverage(&reports)[0], ("resets_sent", false));
        reports[3] = report("tcp_send_active_reset", true);
        assert_eq!(coverage(&reports)[0], ("resets_sent", true));
        assert_eq!(coverage(&reports)[1], ("resets_received", false));
    }
}
