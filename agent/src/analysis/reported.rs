//! For the outputs that stream findings as they change (the daemon's event stream, `watch`):
//! what was already said about retransmits and states, so that each round says only what
//! changed: retransmits as the growth since the last round, states as they are now.

use std::collections::HashMap;

use crate::model::{Cause, Finding, Kind};

/// Rounds a finding may be absent before what was said about it is forgotten. Every distinct
/// endpoint (a port scan, connects into a black hole) would otherwise stay here for good.
const FORGET_AFTER_ROUNDS: u64 = 6;

/// (cause, namespace, the endpoints that name the finding).
type Key = (Cause, Option<u64>, Option<String>, Option<String>);

/// What names a finding from one round to the next. Findings grouped by service end say which
/// (`evidence.service`): their sample endpoints may differ every round. A drop's remote is only
/// its latest peer: the reason and endpoint are the drop. The namespace tells apart the same
/// addresses in two containers.
fn key(finding: &Finding) -> Key {
    let evidence = |name: &str| finding.evidence.get(name);
    let namespace = evidence("namespace")
        .or_else(|| evidence("netns"))
        .and_then(|n| n.as_u64());
    match evidence("service").and_then(|s| s.as_str()) {
        Some(service) => (finding.cause, namespace, Some(service.to_string()), None),
        None => {
            let remote = (finding.kind != Kind::Drop)
                .then(|| finding.remote.clone())
                .flatten();
            (finding.cause, namespace, finding.local.clone(), remote)
        }
    }
}

/// What the event stream already said about retransmits and states, so that each report says
/// only what changed: retransmits as the growth since the last report, states as they are now.
#[derive(Default)]
pub struct Reported {
    /// The count last said of each finding, and the round it was last found in.
    counts: HashMap<Key, (u64, u64)>,
    round: u64,
    /// Entries forgotten since the last [`Reported::take_forgotten`].
    forgotten: u64,
}

impl Reported {
    pub fn changed(&mut self, found: Vec<Finding>) -> Vec<Finding> {
        self.round += 1;
        let round = self.round;
        let changed = found
            .into_iter()
            .filter_map(|mut finding| {
                let before = self
                    .counts
                    .insert(key(&finding), (finding.count, round))
                    .map_or(0, |(count, _)| count);
                if finding.count == before {
                    return None;
                }
                if matches!(finding.kind, Kind::Retransmit | Kind::Drop) {
                    finding.count = finding.count.saturating_sub(before);
                }
                Some(finding)
            })
            .collect();
        let held = self.counts.len();
        self.counts
            .retain(|_, (_, found_in)| round - *found_in < FORGET_AFTER_ROUNDS);
        self.forgotten += (held - self.counts.len()) as u64;
        changed
    }

    /// How many findings were forgotten (absent for [`FORGET_AFTER_ROUNDS`]) since the last call.
    pub fn take_forgotten(&mut self) -> u64 {
        std::mem::take(&mut self.forgotten)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn timeout_to(port: u16) -> Finding {
        Finding::observed(
            Kind::State,
            Cause::ConnectTimeout,
            1,
            None,
            Some(std::net::SocketAddr::from(([10, 0, 0, 1], port))),
            None,
            String::new(),
            Map::new(),
        )
    }

    #[test]
    fn findings_absent_for_a_while_are_forgotten_and_counted() {
        let mut reported = Reported::default();
        let scan: Vec<Finding> = (1..=100).map(timeout_to).collect();
        assert_eq!(reported.changed(scan).len(), 100);
        // The same finding again: nothing changed, nothing said.
        assert!(reported.changed(vec![timeout_to(1)]).is_empty());
        for _ in 0..FORGET_AFTER_ROUNDS - 2 {
            reported.changed(vec![timeout_to(1)]);
        }
        assert_eq!(reported.take_forgotten(), 0, "not absent long enough yet");
        reported.changed(vec![timeout_to(1)]);
        // Only the one still found is remembered.
        assert_eq!(reported.take_forgotten(), 99);
        assert_eq!(reported.counts.len(), 1);
        assert_eq!(reported.take_forgotten(), 0);
        // A forgotten finding found again is said again.
        assert_eq!(reported.changed(vec![timeout_to(2)]).len(), 1);
    }

    #[test]
    fn a_group_is_the_same_finding_whichever_sample_it_shows() {
        let retransmits = |count: u64, sample_local: u16, namespace: u64| {
            let mut evidence = Map::new();
            evidence.insert("namespace".into(), namespace.into());
            evidence.insert("service".into(), "10.0.0.1:5432".into());
            Finding::observed(
                Kind::Retransmit,
                Cause::DataRetransmits,
                count,
                Some(std::net::SocketAddr::from(([10, 0, 0, 2], sample_local))),
                Some(std::net::SocketAddr::from(([10, 0, 0, 1], 5432))),
                None,
                String::new(),
                evidence,
            )
        };
        let mut reported = Reported::default();
        assert_eq!(reported.changed(vec![retransmits(5, 40001, 7)])[0].count, 5);
        // Another connection is the sample this round: 3 more, not 8 new.
        assert_eq!(reported.changed(vec![retransmits(8, 40002, 7)])[0].count, 3);
        assert!(reported.changed(vec![retransmits(8, 40003, 7)]).is_empty());
        // The same service seen from another namespace is another finding.
        assert_eq!(reported.changed(vec![retransmits(8, 40003, 9)])[0].count, 8);
    }
}
