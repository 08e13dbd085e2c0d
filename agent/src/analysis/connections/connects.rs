//! Failed connects: timed out (nothing answered), per destination, with how many other connects
//! to it an RST refused.

use std::{net::SocketAddr, time::Duration};

use serde_json::{Map, json};

use super::{HostLookup, give_up_after, human, retransmits::syn_retransmits_by_flow};
use crate::{
    analysis::lru::Lru,
    events::flow::{ConnectFailed, RetransmitFlow},
    model::{Cause, Finding, Flow, Kind, Process},
};

/// Destinations kept per window: a port scan or connects into a black-holed subnet reach
/// thousands of distinct ones. Beyond this, those that failed least recently go (the metrics
/// have counted them already).
const DESTINATIONS_KEPT: usize = 4096;
/// Connections per destination whose SYN retransmits are looked up; more connects to the same
/// destination tell nothing new.
const FLOWS_KEPT: usize = 64;

#[derive(Default)]
struct Destination {
    timed_out: u64,
    refused: u64,
    waited_max: Duration,
    sample_local: Option<SocketAddr>,
    owner: Option<Process>,
    /// The first [`FLOWS_KEPT`] timed-out connections.
    flows: Vec<Flow>,
}

/// A destination: its namespace and address.
type DestinationKey = (u64, SocketAddr);

/// Collects failed connects over a window.
pub struct FailedConnects {
    by_destination: Lru<DestinationKey, Destination>,
}

impl Default for FailedConnects {
    fn default() -> Self {
        Self::with_capacity(DESTINATIONS_KEPT)
    }
}

impl FailedConnects {
    fn with_capacity(destinations: usize) -> Self {
        Self {
            by_destination: Lru::new(destinations),
        }
    }

    pub fn add(&mut self, failed: ConnectFailed) {
        let destination = self
            .by_destination
            .get_or_insert_with((failed.flow.netns, failed.flow.remote), Default::default);
        destination.timed_out += 1;
        destination.waited_max = destination
            .waited_max
            .max(failed.waited.unwrap_or_default());
        destination.sample_local.get_or_insert(failed.flow.local);
        if destination.flows.len() < FLOWS_KEPT {
            destination.flows.push(failed.flow);
        }
        if failed.owner.is_some() {
            destination.owner = failed.owner;
        }
    }

    /// `count` connects from namespace `netns` to `remote` were refused (the resets received say
    /// so: the kernel sends no failed-connect record for them).
    pub fn add_refused(&mut self, netns: u64, remote: SocketAddr, count: u64) {
        self.by_destination
            .get_or_insert_with((netns, remote), Default::default)
            .refused += count;
    }

    /// Destinations let go since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        self.by_destination.take_evicted()
    }

    /// One `connect_timeout` finding per destination that let connects time out. Refused ones are
    /// reported as rst_received/connection_refused; their count is evidence here.
    pub fn findings(&self, retransmits: &[RetransmitFlow], host: &dyn HostLookup) -> Vec<Finding> {
        let syns = syn_retransmits_by_flow(retransmits);
        let mut timed_out: Vec<(&DestinationKey, &Destination)> = self
            .by_destination
            .iter()
            .filter(|(_, d)| d.timed_out > 0)
            .collect();
        timed_out.sort_unstable_by_key(|(key, _)| **key);
        timed_out
            .into_iter()
            .map(|((netns, remote), d)| {
                let syn_retransmits: u64 = d.flows.iter().filter_map(|f| syns.get(f)).sum();
                let syn_retries = host
                    .connection_sysctls(*netns)
                    .and_then(|s| s.tcp_syn_retries);
                let n = d.timed_out;
                let all_flows = d.flows.len() as u64 == n;
                let mut explanation = format!(
                    "{n} {} to {remote} got no answer at all (no SYN-ACK, no RST) and failed after \
                     waiting up to {} with {}{syn_retransmits} SYN {}{}.",
                    if n == 1 { "connect" } else { "connects" },
                    human(d.waited_max),
                    if all_flows { "" } else { "at least " },
                    if syn_retransmits == 1 {
                        "retransmit"
                    } else {
                        "retransmits"
                    },
                    if all_flows {
                        String::new()
                    } else {
                        format!(" (counted over the first {} of them)", d.flows.len())
                    },
                );
                if let Some(retries) = syn_retries {
                    explanation.push_str(&format!(
                        " With tcp_syn_retries={retries} the kernel gives up after about {} \
                         (unless the socket sets TCP_SYNCNT or the application gives up sooner).",
                        human(give_up_after(retries))
                    ));
                }
                if d.refused > 0 {
                    explanation.push_str(&format!(
                        " {} other connects to it were refused (see connection_refused).",
                        d.refused
                    ));
                }
                let mut evidence = Map::new();
                evidence.insert("namespace".into(), json!(netns));
                evidence.insert("timed_out".into(), json!(n));
                evidence.insert("refused".into(), json!(d.refused));
                evidence.insert(
                    "waited_max_ms".into(),
                    json!(d.waited_max.as_millis() as u64),
                );
                evidence.insert("syn_retransmits".into(), json!(syn_retransmits));
                evidence.insert("syn_retransmits_counted_over".into(), json!(d.flows.len()));
                evidence.insert("tcp_syn_retries".into(), json!(syn_retries));
                Finding::observed(
                    Kind::State,
                    Cause::ConnectTimeout,
                    n,
                    d.sample_local,
                    Some(*remote),
                    d.owner.clone(),
                    explanation,
                    evidence,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::maps::RetransmitKind;

    use super::*;
    use crate::analysis::connections::NothingToLookUp;

    fn timeout(remote_port: u16, local_port: u16) -> ConnectFailed {
        ConnectFailed {
            flow: Flow {
                netns: 7,
                local: SocketAddr::from(([10, 0, 0, 2], local_port)),
                remote: SocketAddr::from(([10, 9, 0, 1], remote_port)),
            },
            waited: Some(Duration::from_secs(3)),
            owner: None,
        }
    }

    #[test]
    fn destinations_beyond_the_cap_go_least_recent_first_and_are_counted() {
        let mut failed = FailedConnects::with_capacity(100);
        for port in 1..=100 {
            failed.add(timeout(port, 40000));
        }
        assert_eq!(failed.take_evicted(), 0);
        // The first destination failed again: it is the most recent now, so 50 new ones let
        // 2..=51 go.
        failed.add(timeout(1, 40001));
        for port in 101..=150 {
            failed.add(timeout(port, 40000));
        }
        assert_eq!(failed.take_evicted(), 50);
        let found = failed.findings(&[], &NothingToLookUp);
        assert_eq!(found.len(), 100);
        let remotes: Vec<String> = found.iter().filter_map(|f| f.remote.clone()).collect();
        for kept in [1, 52, 150] {
            assert!(remotes.contains(&format!("10.9.0.1:{kept}")), "{kept}");
        }
        for gone in [2, 51] {
            assert!(!remotes.contains(&format!("10.9.0.1:{gone}")), "{gone}");
        }
    }

    #[test]
    fn refused_connects_are_evidence_only_beside_a_timeout_to_the_same_destination() {
        let mut failed = FailedConnects::default();
        failed.add(timeout(80, 40000));
        failed.add_refused(7, SocketAddr::from(([10, 9, 0, 1], 80)), 5);
        failed.add_refused(7, SocketAddr::from(([10, 9, 0, 1], 443)), 9);
        let found = failed.findings(&[], &NothingToLookUp);
        assert_eq!(
            found.len(),
            1,
            "refused alone is no connect_timeout: {found:#?}"
        );
        assert_eq!(found[0].evidence["refused"], 5);
        assert!(
            found[0]
                .explanation
                .contains("5 other connects to it were refused"),
            "{}",
            found[0].explanation
        );
    }

    #[test]
    fn one_destination_keeps_a_bounded_sample_of_its_connections() {
        let mut failed = FailedConnects::default();
        let n = FLOWS_KEPT as u16 * 3;
        for local_port in 0..n {
            failed.add(timeout(80, 40000 + local_port));
        }
        // Each connection was retransmitted twice, the first FLOWS_KEPT are matched.
        let retransmits: Vec<RetransmitFlow> = (0..n)
            .map(|local_port| RetransmitFlow {
                flow: timeout(80, 40000 + local_port).flow,
                kind: RetransmitKind::Syn,
                count: 2,
                first_ns: 0,
                last_ns: 0,
                owner: None,
            })
            .collect();
        let found = failed.findings(&retransmits, &NothingToLookUp);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].count, u64::from(n));
        assert_eq!(found[0].evidence["syn_retransmits"], 2 * FLOWS_KEPT);
        assert_eq!(
            found[0].evidence["syn_retransmits_counted_over"],
            FLOWS_KEPT
        );
        assert!(
            found[0].explanation.contains(&format!(
                "at least {} SYN retransmits (counted over the first {FLOWS_KEPT} of them)",
                2 * FLOWS_KEPT
            )),
            "{}",
            found[0].explanation
        );
    }
}
