//! Failed connects: refused (an RST answered) or timed out (nothing did), per destination.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use serde_json::{Map, json};

use super::{HostLookup, give_up_after, human, retransmits::syn_retransmits_by_flow};
use crate::{
    events::flow::{ConnectFailed, RetransmitFlow},
    model::{Cause, Finding, Flow, Kind, Process},
};

#[derive(Default)]
struct Destination {
    timed_out: u64,
    refused: u64,
    waited_max: Duration,
    sample_local: Option<SocketAddr>,
    owner: Option<Process>,
    flows: Vec<Flow>,
}

/// Collects failed connects over a window.
#[derive(Default)]
pub struct FailedConnects {
    by_destination: BTreeMap<(u64, SocketAddr), Destination>,
}

impl FailedConnects {
    pub fn add(&mut self, failed: ConnectFailed) {
        let destination = self
            .by_destination
            .entry((failed.flow.netns, failed.flow.remote))
            .or_default();
        if failed.refused {
            destination.refused += 1;
            return;
        }
        destination.timed_out += 1;
        destination.waited_max = destination
            .waited_max
            .max(failed.waited.unwrap_or_default());
        destination.sample_local.get_or_insert(failed.flow.local);
        destination.flows.push(failed.flow);
        if failed.owner.is_some() {
            destination.owner = failed.owner;
        }
    }

    /// One `connect_timeout` finding per destination that let connects time out. Refused ones are
    /// reported as rst_received/connection_refused; their count is evidence here.
    pub fn findings(&self, retransmits: &[RetransmitFlow], host: &dyn HostLookup) -> Vec<Finding> {
        let syns = syn_retransmits_by_flow(retransmits);
        self.by_destination
            .iter()
            .filter(|(_, d)| d.timed_out > 0)
            .map(|((netns, remote), d)| {
                let syn_retransmits: u64 = d.flows.iter().filter_map(|f| syns.get(f)).sum();
                let syn_retries = host
                    .connection_sysctls(*netns)
                    .and_then(|s| s.tcp_syn_retries);
                let n = d.timed_out;
                let mut explanation = format!(
                    "{n} {} to {remote} got no answer at all (no SYN-ACK, no RST) and failed after \
                     waiting up to {} with {syn_retransmits} SYN {}.",
                    if n == 1 { "connect" } else { "connects" },
                    human(d.waited_max),
                    if syn_retransmits == 1 {
                        "retransmit"
                    } else {
                        "retransmits"
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
