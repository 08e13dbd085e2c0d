//! What the report says about connections as a whole: transitions and lifetimes.

use serde::Serialize;

use crate::model::tcp_state;

#[derive(Debug, Serialize)]
pub struct Transition {
    pub from: &'static str,
    pub to: &'static str,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct LifetimeBucket {
    /// Connections that lived at least this long (and less than twice as long).
    pub at_least_ms: u64,
    pub count: u64,
}

#[derive(Debug, Serialize, Default)]
pub struct ConnectionSummary {
    /// State transitions in the window, most frequent first.
    pub transitions: Vec<Transition>,
    /// Lifetimes of connections that ended in the window (power-of-two buckets).
    pub lifetimes: Vec<LifetimeBucket>,
}

impl ConnectionSummary {
    pub fn new(transitions: &[(u8, u8, u64)], lifetimes: &[u64]) -> Self {
        let mut transitions: Vec<Transition> = transitions
            .iter()
            .map(|&(from, to, count)| Transition {
                from: tcp_state::name(from),
                to: tcp_state::name(to),
                count,
            })
            .collect();
        transitions.sort_by_key(|t| std::cmp::Reverse(t.count));
        let lifetimes = lifetimes
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(slot, count)| LifetimeBucket {
                at_least_ms: if slot == 0 { 0 } else { 1 << slot },
                count: *count,
            })
            .collect();
        Self {
            transitions,
            lifetimes,
        }
    }
}
