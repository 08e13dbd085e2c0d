//! Bounds the `listener` label: at most N listeners have a label of their own at a time, every
//! other one shares `other`. A host with thousands of listeners (or ephemeral ones) cannot blow
//! up the series count. A label is held while its listener is seen; once the listener has been
//! gone for [`IDLE`] the label is freed (and its series removed), so pod churn does not use up
//! the labels for good.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

pub const OTHER: &str = "other";

/// How long a listener may go unseen before its label is freed: long enough for a restart or a
/// rolling update to come back under the same label, and for a scrape to see its last values.
pub const IDLE: Duration = Duration::from_secs(10 * 60);

/// A listener's labels: (listener, namespace).
pub type Labels = (String, String);

pub struct ListenerLabels {
    cap: usize,
    /// Admitted listeners, with when each was last seen.
    admitted: HashMap<Labels, Instant>,
}

impl ListenerLabels {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            admitted: HashMap::new(),
        }
    }

    /// The labels to use for a listener with activity at `now`: its own while a label is free,
    /// else `other`.
    pub fn admit(&mut self, listener: &str, namespace: &str, now: Instant) -> Labels {
        if self.seen(listener, namespace, now) {
            return (listener.to_string(), namespace.to_string());
        }
        if self.admitted.len() < self.cap {
            let labels = (listener.to_string(), namespace.to_string());
            self.admitted.insert(labels.clone(), now);
            return labels;
        }
        (OTHER.to_string(), OTHER.to_string())
    }

    /// Notes that a listener exists at `now`; whether it has labels of its own (gauges are only
    /// kept for those).
    pub fn seen(&mut self, listener: &str, namespace: &str, now: Instant) -> bool {
        let key = (listener.to_string(), namespace.to_string());
        match self.admitted.get_mut(&key) {
            Some(last_seen) => {
                *last_seen = now;
                true
            }
            None => false,
        }
    }

    pub fn is_admitted(&self, labels: &Labels) -> bool {
        self.admitted.contains_key(labels)
    }

    /// Frees the labels of listeners not seen for [`IDLE`] before `now`, and returns them.
    pub fn free_idle(&mut self, now: Instant) -> Vec<Labels> {
        let idle: Vec<Labels> = self
            .admitted
            .iter()
            .filter(|(_, last_seen)| now.saturating_duration_since(**last_seen) >= IDLE)
            .map(|(labels, _)| labels.clone())
            .collect();
        for labels in &idle {
            self.admitted.remove(labels);
        }
        idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other() -> Labels {
        (OTHER.to_string(), OTHER.to_string())
    }

    #[test]
    fn the_cap_holds_and_admitted_listeners_keep_their_labels() {
        let now = Instant::now();
        let mut labels = ListenerLabels::new(2);
        assert_eq!(labels.admit("a:1", "1", now).0, "a:1");
        assert_eq!(labels.admit("b:1", "1", now).0, "b:1");
        assert_eq!(labels.admit("c:1", "1", now), other());
        assert_eq!(labels.admit("a:1", "1", now).0, "a:1");
        assert!(labels.seen("b:1", "1", now));
        assert!(!labels.seen("c:1", "1", now));
    }

    #[test]
    fn a_listener_gone_for_the_idle_time_frees_its_label_for_a_new_one() {
        let start = Instant::now();
        let mut labels = ListenerLabels::new(2);
        labels.admit("gone:1", "1", start);
        labels.admit("kept:1", "1", start);
        assert_eq!(labels.admit("new:1", "1", start), other());
        // Only "kept" is still seen; just short of the idle time nothing is freed.
        let later = start + IDLE - Duration::from_secs(1);
        assert!(labels.seen("kept:1", "1", later));
        assert!(labels.free_idle(later).is_empty());
        assert_eq!(labels.admit("new:1", "1", later), other());
        // "gone" reaches the idle time: its label goes, and the new listener gets one of its own.
        let idle = start + IDLE;
        assert_eq!(
            labels.free_idle(idle),
            vec![("gone:1".to_string(), "1".to_string())]
        );
        assert!(!labels.seen("gone:1", "1", idle));
        assert_eq!(labels.admit("new:1", "1", idle).0, "new:1");
        assert!(labels.seen("kept:1", "1", idle));
        // A listener that comes back after its label went competes like any new one.
        assert_eq!(labels.admit("gone:1", "1", idle), other());
    }
}
