//! What the attached probes let tcpwhy see, capability by capability. A fallback on standby is
//! not a gap; a capability with no method attached is (it is what the "probe not attached"
//! alert watches).

use super::{capability::Capability, catalog, report::ProbeReport};

/// Each capability the coverage alert watches, and whether the attached probes provide it.
pub fn coverage(reports: &[ProbeReport]) -> Vec<(&'static str, bool)> {
    Capability::ALL
        .into_iter()
        .filter(|c| c.is_alerted_on())
        .map(|c| (c.as_str(), covers(reports, c)))
        .collect()
}

/// A capability is provided by its tracepoints, or by its function probes, each set attached
/// whole (each reset-sending function sees only some of the resets) or on standby because
/// another hook does its job.
pub fn covers(reports: &[ProbeReport], capability: Capability) -> bool {
    let attached = |name: &str| {
        reports
            .iter()
            .any(|r| (r.attached || r.standby) && r.name == name)
    };
    [false, true].into_iter().any(|functions| {
        let mut family = catalog::serving(capability)
            .filter(|h| h.is_function() == functions)
            .peekable();
        family.peek().is_some() && family.all(|h| attached(h.name))
    })
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

    #[test]
    fn the_send_reset_tracepoint_alone_covers_resets_sent() {
        let reports = [
            report("tcp:tcp_send_reset", true),
            ProbeReport::standby("tcp_v4_send_reset", "not needed".into()),
        ];
        assert!(covers(&reports, Capability::ResetsSent));
    }

    #[test]
    fn a_hook_on_standby_for_another_still_covers_its_capability() {
        let reports = [ProbeReport::standby(
            "syscalls:sys_enter_listen",
            "sock:inet_sock_set_state reads it".into(),
        )];
        assert!(covers(&reports, Capability::ListenBacklogs));
        assert!(!covers(&reports, Capability::Retransmits));
    }

    #[test]
    fn exported_series_are_the_six_alerted_capabilities() {
        let names: Vec<&str> = coverage(&[]).into_iter().map(|(c, _)| c).collect();
        assert_eq!(
            names,
            [
                "resets_sent",
                "resets_received",
                "socket_owners",
                "listen_backlogs",
                "retransmits",
                "synack_retransmits"
            ]
        );
    }
}
