//! Bounds the `listener` label: the first N listeners with activity get a label of their own,
//! every later one shares `other`. A host with thousands of listeners (or ephemeral ones) cannot
//! blow up the series count, and a label, once given, is never taken back (counters stay whole).

use std::collections::HashSet;

pub const OTHER: &str = "other";

pub struct ListenerLabels {
    cap: usize,
    admitted: HashSet<(String, String)>,
}

impl ListenerLabels {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            admitted: HashSet::new(),
        }
    }

    /// The (listener, namespace) labels to use for a listener with activity.
    pub fn admit(&mut self, listener: &str, namespace: &str) -> (String, String) {
        let key = (listener.to_string(), namespace.to_string());
        if self.admitted.contains(&key) {
            return key;
        }
        if self.admitted.len() < self.cap {
            self.admitted.insert(key.clone());
            return key;
        }
        (OTHER.to_string(), OTHER.to_string())
    }

    /// Whether a listener already has labels of its own (gauges are only kept for those).
    pub fn is_admitted(&self, listener: &str, namespace: &str) -> bool {
        self.admitted
            .contains(&(listener.to_string(), namespace.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_and_admitted_listeners_keep_their_labels() {
        let mut labels = ListenerLabels::new(2);
        assert_eq!(labels.admit("a:1", "1").0, "a:1");
        assert_eq!(labels.admit("b:1", "1").0, "b:1");
        assert_eq!(
            labels.admit("c:1", "1"),
            (OTHER.to_string(), OTHER.to_string())
        );
        assert_eq!(labels.admit("a:1", "1").0, "a:1");
        assert!(labels.is_admitted("b:1", "1"));
        assert!(!labels.is_admitted("c:1", "1"));
    }
}
