//! For the outputs that stream findings as they change (the daemon's event stream, `watch`):
//! what was already said about retransmits and states, so that each round says only what
//! changed: retransmits as the growth since the last round, states as they are now.

use std::collections::HashMap;

use crate::model::{Cause, Finding, Kind};

/// What the event stream already said about retransmits and states, so that each report says
/// only what changed: retransmits as the growth since the last report, states as they are now.
#[derive(Default)]
pub struct Reported {
    counts: HashMap<(Cause, Option<String>, Option<String>), u64>,
}

impl Reported {
    pub fn changed(&mut self, found: Vec<Finding>) -> Vec<Finding> {
        found
            .into_iter()
            .filter_map(|mut finding| {
                let key = (finding.cause, finding.local.clone(), finding.remote.clone());
                let before = self.counts.insert(key, finding.count).unwrap_or(0);
                if finding.count == before {
                    return None;
                }
                if finding.kind == Kind::Retransmit {
                    finding.count = finding.count.saturating_sub(before);
                }
                Some(finding)
            })
            .collect()
    }
}
