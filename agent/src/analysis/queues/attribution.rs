//! Which listener a namespace's queue drops belong to.
//!
//! The kernel counts listen-queue drops per namespace (ListenOverflows, TCPReqQFullDrop,
//! TCPReqQFullDoCookies...), not per listener. Where function probes run they count each drop at
//! its listener and nothing needs inferring. Elsewhere the drops counted between two samples are
//! credited to the listeners the samples saw full, with a certainty that says how sure that is.
//! Everything here works on recorded samples: the engine reads the host, this decides.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use tcpwhy_common::listen_overflow::ListenOverflows;

use super::{drops::Certainty, split};
use crate::{
    host::{namespace::ListenerNow, netstat::CounterGrowth},
    model::Cause,
};

/// A listener that re-sent a SYN-ACK this recently may be the one whose final ACKs were dropped
/// (the SYN-ACK timer starts at 1 s and doubles).
const RECENT_SYNACK: Duration = Duration::from_secs(3);
/// A listener seen full this recently is a candidate for drops counted now: the queue can drain
/// between the drop and the sample.
const RECENTLY_FULL: Duration = Duration::from_secs(1);
/// What the samples saw of a listener is let go once it has been gone this long (closed, or
/// an ephemeral server long done): namespaces that live for months see many come and go.
const LISTENER_GONE_AFTER: Duration = Duration::from_secs(10 * 60);

/// SYN-ACK retransmits of one listener since the probes were attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAckSeen {
    pub count: u64,
    /// The client of the most recent retransmit.
    pub remote: SocketAddr,
}

/// What one sample of a namespace saw.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub listeners: Vec<ListenerNow>,
    /// The namespace's counter growth since the previous sample.
    pub growth: CounterGrowth,
    /// SYN-ACK retransmit totals per listener, kernel-counted since attach.
    pub synacks: Vec<(SocketAddr, SynAckSeen)>,
    /// Function-probe overflow totals per listener since attach; None where they cannot run.
    pub exact: Option<Vec<(SocketAddr, ListenOverflows)>>,
    /// Half-open (SYN_RECV) connections per listener. Dumping them costs a sock_diag round trip,
    /// so the engine reads them only when [`CounterGrowth::syn_queue_moved`].
    pub half_open: HashMap<SocketAddr, u32>,
}

/// `count` drops of `cause` credited to `listener` (None: no listener could be identified).
#[derive(Debug, Clone, PartialEq)]
pub struct Credit {
    pub cause: Cause,
    pub count: u64,
    pub listener: Option<ListenerNow>,
    pub certainty: Certainty,
    /// With several candidates: every candidate's share of the namespace's count (this one's
    /// included), summing to exactly that count.
    pub split: Vec<(SocketAddr, u64)>,
    /// The listener's half-open count in this sample.
    pub half_open: u32,
}

/// What the samples saw of one listener over the window.
#[derive(Debug, Default, Clone)]
pub struct Spell {
    full_now: bool,
    last_full: Option<Instant>,
    /// How long the accept queue was seen full, summed.
    pub full_for: Duration,
    /// SYN-ACK retransmits counted by the kernel since the probes attached.
    pub synack_retransmits: u64,
    pub synack_remote: Option<SocketAddr>,
    last_synack: Option<Instant>,
    /// The last sample that listed the listener or its SYN-ACK retransmits.
    last_sampled: Option<Instant>,
}

/// One namespace's listeners as the samples saw them over the window.
#[derive(Debug, Default)]
pub struct History {
    spells: HashMap<SocketAddr, Spell>,
    /// Function-probe totals per listener at the previous sample.
    exact_seen: HashMap<SocketAddr, ListenOverflows>,
    /// When the function probes last saw each listener's SYN queue at its limit.
    syn_limit_seen: HashMap<SocketAddr, Instant>,
    sampled_at: Option<Instant>,
    /// Entries let go since the last [`History::take_evicted`].
    evicted: u64,
}

impl History {
    pub fn spell(&self, listener: SocketAddr) -> Option<&Spell> {
        self.spells.get(&listener)
    }

    /// Takes in one sample and says which listeners the drops it counted belong to.
    pub fn observe(&mut self, sample: &Sample) -> Vec<Credit> {
        let now = sample.at;
        let elapsed = self
            .sampled_at
            .map_or(Duration::ZERO, |at| now.duration_since(at));
        self.sampled_at = Some(now);
        for listener in &sample.listeners {
            let spell = self.spells.entry(listener.local).or_default();
            spell.last_sampled = Some(now);
            if listener.is_full() {
                if spell.full_now {
                    spell.full_for += elapsed;
                }
                spell.full_now = true;
                spell.last_full = Some(now);
            } else {
                spell.full_now = false;
            }
        }
        for (local, seen) in &sample.synacks {
            let spell = self.spells.entry(*local).or_default();
            spell.last_sampled = Some(now);
            if seen.count > spell.synack_retransmits {
                spell.synack_retransmits = seen.count;
                spell.synack_remote = Some(seen.remote);
                spell.last_synack = Some(now);
            }
        }
        let credits = match &sample.exact {
            Some(totals) => {
                let grown = self.exact_growth(totals);
                for (local, _) in grown.iter().filter(|(_, g)| g.syn_queue_full > 0) {
                    self.syn_limit_seen.insert(*local, now);
                }
                self.credit_exact(sample, &grown)
            }
            // No function probe runs here: infer from the samples.
            None if sample.growth.any() => self.credit_inferred(sample),
            None => Vec::new(),
        };
        self.forget_the_gone(sample);
        credits
    }

    /// Lets go of listeners gone for [`LISTENER_GONE_AFTER`], of SYN-queue sightings too old to
    /// credit anything, and of function-probe totals the kernel no longer holds (a listener
    /// that comes back starts from zero there too, so nothing is credited twice).
    fn forget_the_gone(&mut self, sample: &Sample) {
        let now = sample.at;
        let recent = |at: Option<Instant>, window: Duration| {
            at.is_some_and(|at| now.duration_since(at) < window)
        };
        let held = self.spells.len() + self.syn_limit_seen.len() + self.exact_seen.len();
        self.spells
            .retain(|_, spell| recent(spell.last_sampled, LISTENER_GONE_AFTER));
        self.syn_limit_seen
            .retain(|_, at| recent(Some(*at), RECENTLY_FULL));
        if let Some(totals) = &sample.exact {
            self.exact_seen
                .retain(|local, _| totals.iter().any(|(counted, _)| counted == local));
        }
        let kept = self.spells.len() + self.syn_limit_seen.len() + self.exact_seen.len();
        self.evicted += (held - kept) as u64;
    }

    /// How many entries were let go since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }

    /// What the function probes counted since the previous sample, per listener that grew.
    fn exact_growth(
        &mut self,
        totals: &[(SocketAddr, ListenOverflows)],
    ) -> Vec<(SocketAddr, ListenOverflows)> {
        totals
            .iter()
            .filter_map(|(local, totals)| {
                let earlier = self.exact_seen.insert(*local, *totals).unwrap_or_default();
                let grown = ListenOverflows {
                    syn_accept_queue_full: totals
                        .syn_accept_queue_full
                        .saturating_sub(earlier.syn_accept_queue_full),
                    ack_accept_queue_full: totals
                        .ack_accept_queue_full
                        .saturating_sub(earlier.ack_accept_queue_full),
                    syn_queue_full: totals.syn_queue_full.saturating_sub(earlier.syn_queue_full),
                    ..*totals
                };
                let counted = grown.syn_accept_queue_full
                    + grown.ack_accept_queue_full
                    + grown.syn_queue_full;
                (counted > 0).then_some((*local, grown))
            })
            .collect()
    }

    /// Accept-queue overflows as the function probes counted them, at their listener; SYN-queue
    /// overflows at the listeners they saw at their limit, with the counts the namespace's
    /// counters give (drop or cookie).
    fn credit_exact(
        &self,
        sample: &Sample,
        grown: &[(SocketAddr, ListenOverflows)],
    ) -> Vec<Credit> {
        let mut credits = Vec::new();
        for (local, g) in grown {
            let accept = g.syn_accept_queue_full + g.ack_accept_queue_full;
            if accept == 0 {
                continue;
            }
            let sampled = sample.listeners.iter().find(|l| l.local == *local);
            let listener = ListenerNow {
                local: *local,
                queue_len: g.queue_len.max(sampled.map_or(0, |l| l.queue_len)),
                queue_limit: g.queue_limit,
                // The socket inode finds the owner; a listener already closed has none.
                inode: sampled.map_or(0, |l| l.inode),
            };
            credits.push(Credit {
                cause: Cause::AcceptQueueOverflow,
                count: accept,
                listener: Some(listener),
                certainty: Certainty::Exact,
                split: Vec::new(),
                half_open: g.half_open,
            });
        }
        // The probes may have seen the SYN queue at its limit a sample before the counters moved.
        let named: Vec<ListenerNow> = sample
            .listeners
            .iter()
            .filter(|l| {
                self.syn_limit_seen
                    .get(&l.local)
                    .is_some_and(|at| sample.at.duration_since(*at) <= RECENTLY_FULL)
            })
            .cloned()
            .collect();
        credits.extend(credit_syn_queue(sample, &named));
        credits
    }

    /// Credits the namespace's counter growth to the listeners whose queues explain it.
    fn credit_inferred(&self, sample: &Sample) -> Vec<Credit> {
        let mut credits = Vec::new();
        let overflows = sample.growth.listen_overflows;
        if overflows > 0 {
            let full = self.seen_within(sample, RECENTLY_FULL, |s| s.last_full);
            let (candidates, certainty) = if full.is_empty() {
                // No sample saw a full queue; listeners re-sending SYN-ACKs just now are the ones
                // whose handshakes' final ACKs were dropped.
                let retransmitting = self.seen_within(sample, RECENT_SYNACK, |s| s.last_synack);
                let certainty = (!retransmitting.is_empty()).then_some(Certainty::Retransmits);
                (retransmitting, certainty)
            } else {
                (full, None)
            };
            credits.extend(credit(
                Cause::AcceptQueueOverflow,
                overflows,
                &candidates,
                certainty,
                &HashMap::new(),
            ));
        }
        credits.extend(credit_syn_queue(sample, &[]));
        credits
    }

    /// The sampled listeners whose spell saw something (`when`) no longer than `window` ago.
    fn seen_within(
        &self,
        sample: &Sample,
        window: Duration,
        when: fn(&Spell) -> Option<Instant>,
    ) -> Vec<ListenerNow> {
        sample
            .listeners
            .iter()
            .filter(|l| {
                self.spells
                    .get(&l.local)
                    .and_then(when)
                    .is_some_and(|at| sample.at.duration_since(at) <= window)
            })
            .cloned()
            .collect()
    }
}

/// Credits SYN-queue counter growth (drops or cookies) to `named` listeners (those the function
/// probes saw at their limit), else to those whose half-open count is at the limit now.
fn credit_syn_queue(sample: &Sample, named: &[ListenerNow]) -> Vec<Credit> {
    let growth = &sample.growth;
    let syn_queue_drops = growth.req_q_full_drop;
    let cookies = growth.req_q_full_do_cookies.max(growth.syncookies_sent);
    if syn_queue_drops == 0 && cookies == 0 {
        return Vec::new();
    }
    let (candidates, certainty) = if named.is_empty() {
        let half_open_of = |l: &ListenerNow| sample.half_open.get(&l.local).copied().unwrap_or(0);
        // reqsk_queue_is_full(): half-open count at (or over) the listener's backlog limit.
        let mut full: Vec<ListenerNow> = sample
            .listeners
            .iter()
            .filter(|l| half_open_of(l) > 0 && half_open_of(l) >= l.queue_limit)
            .cloned()
            .collect();
        if full.is_empty() {
            // The SYN queue may have drained since; the busiest one is the best guess.
            full.extend(
                sample
                    .listeners
                    .iter()
                    .filter(|l| half_open_of(l) > 0)
                    .max_by_key(|l| half_open_of(l))
                    .cloned(),
            );
        }
        (full, None)
    } else {
        let certainty = if named.len() == 1 {
            Certainty::Exact
        } else {
            Certainty::Shared
        };
        (named.to_vec(), Some(certainty))
    };
    [
        (Cause::SynQueueOverflow, syn_queue_drops),
        (Cause::SynFloodCookies, cookies),
    ]
    .into_iter()
    .filter(|(_, count)| *count > 0)
    .flat_map(|(cause, count)| credit(cause, count, &candidates, certainty, &sample.half_open))
    .collect()
}

/// One credit per candidate (or one unidentified credit), with the certainty the number of
/// candidates implies unless the caller knows better. Several candidates divide `count` between
/// them (see [`split::divide`]): the credits never add up to more drops than the kernel counted.
fn credit(
    cause: Cause,
    count: u64,
    candidates: &[ListenerNow],
    known_certainty: Option<Certainty>,
    half_open: &HashMap<SocketAddr, u32>,
) -> Vec<Credit> {
    let certainty = known_certainty.unwrap_or(match candidates.len() {
        0 => Certainty::Unattributed,
        1 => Certainty::High,
        _ => Certainty::Shared,
    });
    if candidates.is_empty() {
        return vec![Credit {
            cause,
            count,
            listener: None,
            certainty,
            split: Vec::new(),
            half_open: 0,
        }];
    }
    let half_open_of = |l: &ListenerNow| half_open.get(&l.local).copied().unwrap_or(0);
    // How full each candidate was, by the queue this cause overflows.
    let queued: Vec<(SocketAddr, u32)> = candidates
        .iter()
        .map(|l| match cause {
            Cause::AcceptQueueOverflow => (l.local, l.queue_len),
            _ => (l.local, half_open_of(l)),
        })
        .collect();
    let shares = split::divide(count, &queued);
    let split = if candidates.len() > 1 {
        shares.clone()
    } else {
        Vec::new()
    };
    candidates
        .iter()
        .zip(shares)
        .filter(|(_, (_, share))| *share > 0)
        .map(|(listener, (_, share))| Credit {
            cause,
            count: share,
            listener: Some(listener.clone()),
            certainty,
            split: split.clone(),
            half_open: half_open_of(listener),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u32 = 4;

    fn listener(port: u16, queue_len: u32) -> ListenerNow {
        ListenerNow {
            local: SocketAddr::from(([10, 0, 0, 1], port)),
            queue_len,
            queue_limit: LIMIT,
            inode: u32::from(port),
        }
    }

    fn overflows(n: u64) -> CounterGrowth {
        CounterGrowth {
            listen_overflows: n,
            listen_drops: n,
            ..CounterGrowth::default()
        }
    }

    /// Samples 100 ms apart from `start`, without function probes.
    fn sample(
        start: Instant,
        n: u32,
        listeners: Vec<ListenerNow>,
        growth: CounterGrowth,
    ) -> Sample {
        Sample {
            at: start + Duration::from_millis(100) * n,
            listeners,
            growth,
            synacks: Vec::new(),
            exact: None,
            half_open: HashMap::new(),
        }
    }

    #[test]
    fn a_full_queue_takes_the_namespace_drops_with_high_certainty() {
        let start = Instant::now();
        let mut history = History::default();
        let full = listener(8080, LIMIT + 1);
        let idle = listener(9090, 0);
        assert!(
            history
                .observe(&sample(
                    start,
                    0,
                    vec![full.clone(), idle.clone()],
                    CounterGrowth::default()
                ))
                .is_empty()
        );
        let credits = history.observe(&sample(start, 1, vec![full.clone(), idle], overflows(7)));
        assert_eq!(credits.len(), 1, "{credits:?}");
        assert_eq!(credits[0].cause, Cause::AcceptQueueOverflow);
        assert_eq!(credits[0].count, 7);
        assert_eq!(credits[0].listener.as_ref().unwrap().local, full.local);
        assert_eq!(credits[0].certainty, Certainty::High);
        assert_eq!(
            history.spell(full.local).unwrap().full_for,
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_queue_that_drained_before_the_counters_moved_is_still_credited() {
        let start = Instant::now();
        let mut history = History::default();
        history.observe(&sample(
            start,
            0,
            vec![listener(8080, LIMIT + 1)],
            CounterGrowth::default(),
        ));
        // Drained by the next sample, when the counters moved: full within RECENTLY_FULL.
        let credits = history.observe(&sample(start, 1, vec![listener(8080, 0)], overflows(3)));
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].certainty, Certainty::High);
        // Long after the queue was last seen full, the same growth goes unattributed.
        let credits = history.observe(&sample(start, 30, vec![listener(8080, 0)], overflows(2)));
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].listener, None);
        assert_eq!(credits[0].certainty, Certainty::Unattributed);
    }

    #[test]
    fn full_listeners_divide_the_drops_and_name_each_other() {
        let start = Instant::now();
        let mut history = History::default();
        let three = vec![
            listener(8080, LIMIT + 1),
            listener(9090, LIMIT + 1),
            listener(7070, LIMIT + 1),
        ];
        let credits = history.observe(&sample(start, 0, three.clone(), overflows(9)));
        assert_eq!(credits.len(), 3);
        for credit in &credits {
            assert_eq!(credit.certainty, Certainty::Shared);
            assert_eq!(credit.count, 3, "9 drops split 3/3/3");
            assert_eq!(credit.split.len(), 3);
            assert!(
                credit
                    .split
                    .iter()
                    .any(|(local, _)| *local == three[0].local)
            );
        }
        // 5 drops over 3 full queues: 2/2/1, the remainder to the longest queues, never more in
        // all than the namespace counted.
        let mut uneven = three.clone();
        uneven[2].queue_len = LIMIT + 3;
        let credits = history.observe(&sample(start, 1, uneven, overflows(5)));
        let by_port: Vec<(u16, u64)> = credits
            .iter()
            .map(|c| (c.listener.as_ref().unwrap().local.port(), c.count))
            .collect();
        assert_eq!(by_port, vec![(8080, 2), (9090, 1), (7070, 2)]);
        // One drop: one listener gets it; none is credited with a drop that did not happen.
        let credits = history.observe(&sample(start, 2, three, overflows(1)));
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].count, 1);
        assert_eq!(credits[0].certainty, Certainty::Shared);
    }

    #[test]
    fn no_full_sample_but_synack_retransmits_point_at_the_listener() {
        let start = Instant::now();
        let mut history = History::default();
        let client = SocketAddr::from(([10, 0, 0, 2], 40000));
        let mut first = sample(
            start,
            0,
            vec![listener(8080, 0), listener(9090, 0)],
            CounterGrowth::default(),
        );
        first.synacks = vec![(
            listener(8080, 0).local,
            SynAckSeen {
                count: 2,
                remote: client,
            },
        )];
        history.observe(&first);
        let credits = history.observe(&sample(
            start,
            5,
            vec![listener(8080, 0), listener(9090, 0)],
            overflows(2),
        ));
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].certainty, Certainty::Retransmits);
        assert_eq!(
            credits[0].listener.as_ref().unwrap().local,
            listener(8080, 0).local
        );
        assert_eq!(
            history
                .spell(listener(8080, 0).local)
                .unwrap()
                .synack_remote,
            Some(client)
        );
    }

    #[test]
    fn syn_queue_drops_go_to_the_listener_whose_half_open_count_is_at_its_limit() {
        let start = Instant::now();
        let mut history = History::default();
        let mut flood = sample(
            start,
            0,
            vec![listener(8080, 0), listener(9090, 0)],
            CounterGrowth {
                req_q_full_drop: 9,
                ..CounterGrowth::default()
            },
        );
        flood.half_open = HashMap::from([
            (listener(8080, 0).local, LIMIT),
            (listener(9090, 0).local, 1),
        ]);
        let credits = history.observe(&flood);
        assert_eq!(credits.len(), 1, "{credits:?}");
        assert_eq!(credits[0].cause, Cause::SynQueueOverflow);
        assert_eq!(credits[0].count, 9);
        assert_eq!(credits[0].half_open, LIMIT);
        assert_eq!(
            credits[0].listener.as_ref().unwrap().local,
            listener(8080, 0).local
        );
    }

    #[test]
    fn listeners_gone_a_while_are_forgotten_and_counted() {
        let start = Instant::now();
        let mut history = History::default();
        let churn: Vec<ListenerNow> = (1000..1100).map(|port| listener(port, 0)).collect();
        history.observe(&sample(start, 0, churn, CounterGrowth::default()));
        let stays = vec![listener(8080, LIMIT + 1)];
        let samples_per_idle = (LISTENER_GONE_AFTER.as_millis() / 100) as u32;
        history.observe(&sample(
            start,
            samples_per_idle - 1,
            stays.clone(),
            CounterGrowth::default(),
        ));
        assert_eq!(history.spells.len(), 101, "not gone long enough yet");
        assert_eq!(history.take_evicted(), 0);
        history.observe(&sample(
            start,
            samples_per_idle,
            stays.clone(),
            CounterGrowth::default(),
        ));
        assert_eq!(history.take_evicted(), 100);
        assert!(history.spell(stays[0].local).is_some());
        assert!(history.spell(listener(1000, 0).local).is_none());
        // The listener still sampled keeps crediting as before.
        let credits = history.observe(&sample(start, samples_per_idle + 1, stays, overflows(4)));
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].certainty, Certainty::High);
    }

    #[test]
    fn exact_totals_the_kernel_let_go_are_forgotten_without_crediting_twice() {
        let start = Instant::now();
        let mut history = History::default();
        let totals = |n: u64| ListenOverflows {
            ack_accept_queue_full: n,
            syn_queue_full: n,
            queue_len: LIMIT + 1,
            queue_limit: LIMIT,
            ..ListenOverflows::default()
        };
        let (a, b) = (listener(8080, 0).local, listener(9090, 0).local);
        let mut first = sample(start, 0, vec![listener(8080, 0)], CounterGrowth::default());
        first.exact = Some(vec![(a, totals(3)), (b, totals(2))]);
        assert_eq!(history.observe(&first).len(), 2);
        // The kernel dropped b's entry; a's totals did not move.
        let mut second = sample(start, 1, vec![listener(8080, 0)], CounterGrowth::default());
        second.exact = Some(vec![(a, totals(3))]);
        assert!(history.observe(&second).is_empty());
        assert_eq!(history.exact_seen.len(), 1);
        // b's entry (exact totals) is gone, and the SYN-queue sightings of both are older than
        // RECENTLY_FULL by the next sample far enough on.
        assert_eq!(history.take_evicted(), 1);
        let mut later = sample(start, 20, vec![listener(8080, 0)], CounterGrowth::default());
        later.exact = Some(vec![(a, totals(3))]);
        assert!(
            history.observe(&later).is_empty(),
            "nothing new: nothing credited"
        );
        assert_eq!(history.take_evicted(), 2);
        assert!(history.syn_limit_seen.is_empty());
    }

    #[test]
    fn exact_counts_are_taken_as_growth_since_the_previous_sample() {
        let start = Instant::now();
        let mut history = History::default();
        let local = listener(8080, 0).local;
        let totals = |n: u64| ListenOverflows {
            ack_accept_queue_full: n,
            queue_len: LIMIT + 1,
            queue_limit: LIMIT,
            ..ListenOverflows::default()
        };
        let mut first = sample(start, 0, vec![listener(8080, 0)], CounterGrowth::default());
        first.exact = Some(vec![(local, totals(3))]);
        let credits = history.observe(&first);
        assert_eq!(credits.len(), 1);
        assert_eq!(
            (credits[0].count, credits[0].certainty),
            (3, Certainty::Exact)
        );
        let mut again = sample(start, 1, vec![listener(8080, 0)], CounterGrowth::default());
        again.exact = Some(vec![(local, totals(3))]);
        assert!(history.observe(&again).is_empty(), "nothing new");
    }
}
