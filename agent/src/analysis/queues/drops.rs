//! A listener's drops, accumulated over the watch window.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::{
    attribution::{Credit, History},
    split::Split,
};
use crate::{
    host::{namespace::QueueSysctls, netstat::CounterGrowth, owners::ProcessFacts},
    model::Cause,
};

/// How sure the attribution to a listener is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Certainty {
    /// Counted at the listener by kernel function probes as each drop happened.
    Exact,
    /// The only listener of the namespace seen full (or with a full SYN queue) when the counter moved.
    High,
    /// Several listeners were full at once; the namespace's drops are divided between them
    /// (the record's `split` says how).
    Shared,
    /// No sample saw a full queue, but this listener was re-sending SYN-ACKs when the counter
    /// moved: its handshakes' final ACKs were being dropped.
    Retransmits,
    /// No listener was seen full: the queue filled and drained between two samples.
    Unattributed,
}

#[derive(Debug, Clone)]
pub struct ListenerDrops {
    pub cause: Cause,
    pub namespace: u64,
    /// None when no listener could be identified.
    pub listener: Option<SocketAddr>,
    pub count: u64,
    pub certainty: Certainty,
    /// Largest accept-queue length and the limit seen while it overflowed.
    pub queue_len_max: u32,
    pub queue_limit: u32,
    /// Largest number of half-open (SYN_RECV) connections seen.
    pub half_open_max: u32,
    /// How long the accept queue was seen full, summed over the window.
    pub full_for: Duration,
    /// SYN-ACK retransmits of this listener over the window (kernel-counted).
    pub synack_retransmits: u64,
    /// A client of those retransmits.
    pub sample_remote: Option<SocketAddr>,
    pub owner: Option<ProcessFacts>,
    /// The backlog passed to listen(), when tcpwhy saw the call.
    pub requested_backlog: Option<i32>,
    pub sysctls: QueueSysctls,
    /// The namespace's counter growth over the window (all its listeners together).
    pub counters: CounterGrowth,
    /// How the namespace's drops were divided with the other listeners full at once (certainty
    /// `shared`).
    pub split: Option<Split>,
    /// When the first and the last of these drops were counted.
    pub first_seen: Option<SystemTime>,
    pub last_seen: Option<SystemTime>,
}

impl ListenerDrops {
    /// A listener's record before any drop is counted in it.
    pub fn nothing_yet(
        cause: Cause,
        namespace: u64,
        listener: Option<SocketAddr>,
        certainty: Certainty,
        sysctls: QueueSysctls,
        at: SystemTime,
    ) -> Self {
        Self {
            cause,
            namespace,
            listener,
            count: 0,
            certainty,
            queue_len_max: 0,
            queue_limit: 0,
            half_open_max: 0,
            full_for: Duration::ZERO,
            synack_retransmits: 0,
            sample_remote: None,
            owner: None,
            requested_backlog: None,
            sysctls,
            counters: CounterGrowth::default(),
            split: None,
            first_seen: Some(at),
            last_seen: None,
        }
    }
}

/// Drops are kept per namespace, listener (None: unidentified) and cause.
type DropKey = (u64, Option<SocketAddr>, Cause);

/// Records a streaming output keeps (see [`Ledger::take_new`]): listeners with drops, over every
/// namespace. Namespaces and listeners come and go; their records must not stay for good.
const RECORDS_KEPT: usize = 1024;

/// Every listener's drops over the window.
#[derive(Default)]
pub struct Ledger {
    drops: BTreeMap<DropKey, ListenerDrops>,
    /// For [`Ledger::take_new`]: how much of each record was already handed out.
    reported: HashMap<DropKey, u64>,
    /// Records let go since the last [`Ledger::take_evicted`].
    evicted: u64,
}

/// Who holds a listener, with the backlog its listen() asked for when tcpwhy saw the call.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerOwner {
    pub process: ProcessFacts,
    pub requested_backlog: Option<i32>,
}

impl Ledger {
    /// Adds a credit of namespace `namespace`, whose sysctls are `sysctls` now.
    pub fn record(
        &mut self,
        namespace: u64,
        credit: &Credit,
        owner: Option<ListenerOwner>,
        sysctls: &QueueSysctls,
        at: SystemTime,
    ) {
        let local = credit.listener.as_ref().map(|l| l.local);
        let entry = self
            .drops
            .entry((namespace, local, credit.cause))
            .or_insert_with(|| {
                ListenerDrops::nothing_yet(
                    credit.cause,
                    namespace,
                    local,
                    credit.certainty,
                    sysctls.clone(),
                    at,
                )
            });
        entry.count += credit.count;
        entry.last_seen = Some(at);
        entry.sysctls = sysctls.clone();
        if credit.certainty == Certainty::Shared {
            entry.certainty = Certainty::Shared;
            entry
                .split
                .get_or_insert_with(Split::default)
                .add(&credit.split);
        }
        if let Some(listener) = &credit.listener {
            entry.queue_len_max = entry.queue_len_max.max(listener.queue_len);
            entry.queue_limit = listener.queue_limit;
            entry.half_open_max = entry.half_open_max.max(credit.half_open);
        }
        if let Some(owner) = owner {
            entry.requested_backlog = owner.requested_backlog;
            entry.owner = Some(owner.process);
        }
    }

    /// Copies what the samples saw of each listener of `namespace` (time full, SYN-ACK
    /// retransmits) and the namespace's counter growth over the whole window into its records.
    /// Window totals, not per-sample sums: samples and probes may see the same drops in
    /// neighbouring samples.
    pub fn settle(&mut self, namespace: u64, window: &CounterGrowth, history: &History) {
        for drops in self.drops.values_mut().filter(|d| d.namespace == namespace) {
            drops.counters = *window;
            if let Some(spell) = drops.listener.and_then(|l| history.spell(l)) {
                drops.full_for = spell.full_for;
                drops.synack_retransmits = spell.synack_retransmits;
                drops.sample_remote = spell.synack_remote;
            }
        }
    }

    /// Records that grew since the last call, each with how many drops are new (for counters
    /// and the event stream of a long-running agent). Beyond [`RECORDS_KEPT`] records, those
    /// whose last drop is oldest are let go: every drop in them has just been handed out, so
    /// none goes uncounted, and a listener that drops again starts a new record.
    pub fn take_new(&mut self) -> Vec<(ListenerDrops, u64)> {
        let mut fresh = Vec::new();
        for (key, drops) in &self.drops {
            let reported = self.reported.entry(*key).or_insert(0);
            if drops.count > *reported {
                fresh.push((drops.clone(), drops.count - *reported));
                *reported = drops.count;
            }
        }
        self.keep_newest(RECORDS_KEPT);
        fresh
    }

    fn keep_newest(&mut self, kept: usize) {
        let Some(excess) = self.drops.len().checked_sub(kept).filter(|n| *n > 0) else {
            return;
        };
        let mut by_age: Vec<(Option<SystemTime>, DropKey)> = self
            .drops
            .iter()
            .map(|(key, drops)| (drops.last_seen, *key))
            .collect();
        by_age.sort_unstable();
        for (_, key) in by_age.into_iter().take(excess) {
            self.drops.remove(&key);
            self.reported.remove(&key);
        }
        self.evicted += excess as u64;
    }

    /// How many records were let go since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }

    /// Drops counted so far, over every record.
    pub fn total(&self) -> u64 {
        self.drops.values().map(|d| d.count).sum()
    }

    /// Every record, most drops first.
    pub fn into_sorted(self) -> Vec<ListenerDrops> {
        let mut drops: Vec<ListenerDrops> = self.drops.into_values().collect();
        drops.sort_by_key(|d| std::cmp::Reverse(d.count));
        drops
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::host::namespace::ListenerNow;

    fn overflow_at(port: u16, count: u64) -> Credit {
        Credit {
            cause: Cause::AcceptQueueOverflow,
            count,
            listener: Some(ListenerNow {
                local: SocketAddr::from(([10, 0, 0, 1], port)),
                queue_len: 5,
                queue_limit: 4,
                inode: u32::from(port),
            }),
            certainty: Certainty::High,
            split: Vec::new(),
            half_open: 0,
        }
    }

    #[test]
    fn beyond_the_cap_the_records_idle_longest_go_once_handed_out() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut ledger = Ledger::default();
        let listeners = RECORDS_KEPT as u16 + 10;
        for port in 1..=listeners {
            let at = start + Duration::from_secs(u64::from(port));
            ledger.record(7, &overflow_at(port, 2), None, &QueueSysctls::default(), at);
        }
        // Every drop is handed out before any record goes.
        let fresh = ledger.take_new();
        assert_eq!(fresh.len(), usize::from(listeners));
        assert_eq!(
            fresh.iter().map(|(_, new)| new).sum::<u64>(),
            2 * u64::from(listeners)
        );
        assert_eq!(ledger.drops.len(), RECORDS_KEPT);
        assert_eq!(ledger.reported.len(), RECORDS_KEPT);
        assert_eq!(ledger.take_evicted(), 10);
        assert_eq!(ledger.take_evicted(), 0);
        // The ten oldest went; a listener among them that drops again starts afresh and counts
        // only its new drops.
        let gone = |ledger: &Ledger, port: u16| {
            !ledger
                .drops
                .keys()
                .any(|(_, l, _)| l.is_some_and(|l| l.port() == port))
        };
        assert!((1..=10).all(|port| gone(&ledger, port)));
        let later = start + Duration::from_secs(u64::from(listeners) + 1);
        ledger.record(7, &overflow_at(1, 3), None, &QueueSysctls::default(), later);
        let fresh = ledger.take_new();
        assert_eq!(fresh.len(), 1);
        assert_eq!((fresh[0].0.count, fresh[0].1), (3, 3));
        // Its return pushed out the next oldest.
        assert_eq!(ledger.take_evicted(), 1);
        assert!(gone(&ledger, 11));
    }
}
