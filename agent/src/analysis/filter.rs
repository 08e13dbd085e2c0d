//! Asking about one service: which findings a user wants to see. Filters apply to what is shown
//! and streamed, never to metrics, which count everything.

use std::net::SocketAddr;

use serde_json::Value;

use crate::model::Finding;

/// `--port`, `--pid`, `--comm`, `--netns`: a finding is shown when it matches every one given.
#[derive(Debug, Default, Clone, PartialEq, Eq, clap::Args)]
pub struct Filter {
    /// Only findings with this port at either end.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Only findings whose process has this pid.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Only findings whose process has this name (as in /proc/PID/comm).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,

    /// Only findings in this network namespace (its inode, as `lsns -t net` shows it).
    #[arg(long, value_name = "INODE")]
    pub netns: Option<u64>,

    /// Only findings whose process runs in this container (its id, or the start of it).
    #[arg(long, value_name = "ID")]
    pub container: Option<String>,

    /// Only findings whose process runs in this Kubernetes pod (`NAME` or `NAMESPACE/NAME`).
    #[arg(long, value_name = "POD")]
    pub pod: Option<String>,
}

impl Filter {
    pub fn matches(&self, finding: &Finding) -> bool {
        let port_matches = |port: u16| {
            [&finding.local, &finding.remote]
                .into_iter()
                .flatten()
                .filter_map(|e| e.parse::<SocketAddr>().ok())
                .any(|e| e.port() == port)
        };
        let process = finding.process.as_ref();
        self.port.is_none_or(port_matches)
            && self
                .pid
                .is_none_or(|pid| process.is_some_and(|p| p.pid == pid))
            && self
                .comm
                .as_ref()
                .is_none_or(|comm| process.is_some_and(|p| &p.comm == comm))
            && self
                .netns
                .is_none_or(|netns| namespace_of(finding) == Some(netns))
            && self.container.as_ref().is_none_or(|id| {
                let container = process.and_then(|p| p.workload.container.as_ref());
                container.is_some_and(|c| !id.is_empty() && c.id.starts_with(id.as_str()))
            })
            && self.pod.as_ref().is_none_or(|wanted| {
                let pod = process.and_then(|p| p.workload.pod.as_ref());
                pod.is_some_and(|pod| {
                    *wanted == pod.name || *wanted == format!("{}/{}", pod.namespace, pod.name)
                })
            })
    }
}

/// The namespace a finding's evidence names (`netns` for resets, `namespace` for the rest).
fn namespace_of(finding: &Finding) -> Option<u64> {
    ["netns", "namespace"]
        .iter()
        .find_map(|key| finding.evidence.get(*key).and_then(Value::as_u64))
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::model::{Cause, Kind, OwnerSource, Process};

    fn finding() -> Finding {
        let mut evidence = Map::new();
        evidence.insert("netns".into(), json!(4026531840u64));
        Finding::observed(
            Kind::RstReceived,
            Cause::PeerReset,
            1,
            Some("127.0.0.1:40000".parse().unwrap()),
            Some("127.0.0.1:8080".parse().unwrap()),
            Some(Process {
                pid: 7,
                comm: "curl".into(),
                source: OwnerSource::Syscall,
                workload: Default::default(),
            }),
            String::new(),
            evidence,
        )
    }

    #[test]
    fn every_given_filter_must_match() {
        let f = finding();
        assert!(Filter::default().matches(&f));
        let port = |port| Filter {
            port: Some(port),
            ..Filter::default()
        };
        assert!(port(8080).matches(&f) && port(40000).matches(&f) && !port(80).matches(&f));
        let both = Filter {
            pid: Some(7),
            comm: Some("curl".into()),
            netns: Some(4026531840),
            ..Filter::default()
        };
        assert!(both.matches(&f));
        assert!(
            !Filter {
                pid: Some(8),
                ..both.clone()
            }
            .matches(&f)
        );
        assert!(
            !Filter {
                netns: Some(1),
                ..both
            }
            .matches(&f)
        );
    }
}
