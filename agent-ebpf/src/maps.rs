//! The maps, named as in `tcpwhy_common::maps` (aya names a map after its static).

use aya_ebpf::{
    macros::map,
    maps::{Array, LruHashMap, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use tcpwhy_common::{
    close::SilentClose,
    drop::{DROP_REASON_SLOTS, DropCounts, DropKey},
    flow::{FlowKey, FlowRetransmits},
    latency::{LatencyHistogram, LatencyKey, TOTAL_KINDS, TOTAL_SLOTS_PER_KIND},
    listen_overflow::ListenOverflows,
    maps::{
        CONNECT_FAILURES_RING_BYTES, COUNTER_SLOTS, Counter, EVENTS_RING_BYTES, LATENCIES_ENTRIES,
        LIFETIME_SLOTS, LISTEN_BACKLOGS_ENTRIES, LISTEN_OVERFLOWS_ENTRIES, LISTENER_OWNERS_ENTRIES,
        RESET_AGGREGATES_ENTRIES, RETRANSMIT_FLOWS_ENTRIES, RETRANSMIT_KINDS, RetransmitKind,
        SILENT_CLOSES_ENTRIES, SOCKETS_ENTRIES, SYNACK_RETRANSMITS_ENTRIES, TCP_DROPS_ENTRIES,
        TCP_STATES,
    },
    owner::{ListenCall, ListenerKey, Owner},
    reset::{RecordBudget, ResetAggregate, ResetAggregateKey},
    socket::SocketRecord,
    synack::{ListenerId, SynAckRetransmits},
};

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

#[map]
pub static RESET_RECORD_BUDGET: PerCpuArray<RecordBudget> = PerCpuArray::with_max_entries(1, 0);

/// Not LRU: an eviction would lose counts. Two, so that user space never empties the one the
/// programs add to (see `tcpwhy_common::maps::RESET_AGGREGATES`).
#[map]
pub static RESET_AGGREGATES_0: PerCpuHashMap<ResetAggregateKey, ResetAggregate> =
    PerCpuHashMap::with_max_entries(RESET_AGGREGATES_ENTRIES, 0);

#[map]
pub static RESET_AGGREGATES_1: PerCpuHashMap<ResetAggregateKey, ResetAggregate> =
    PerCpuHashMap::with_max_entries(RESET_AGGREGATES_ENTRIES, 0);

#[map]
pub static RESET_AGGREGATES_SIDE: Array<u32> = Array::with_max_entries(1, 0);

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

#[map]
pub static SOCKETS: LruHashMap<u64, SocketRecord> =
    LruHashMap::with_max_entries(SOCKETS_ENTRIES, 0);

#[map]
pub static LISTENER_OWNERS: LruHashMap<ListenerKey, Owner> =
    LruHashMap::with_max_entries(LISTENER_OWNERS_ENTRIES, 0);

#[map]
pub static LISTEN_BACKLOGS: LruHashMap<ListenCall, u32> =
    LruHashMap::with_max_entries(LISTEN_BACKLOGS_ENTRIES, 0);

#[map]
pub static SYNACK_RETRANSMITS: LruPerCpuHashMap<ListenerId, SynAckRetransmits> =
    LruPerCpuHashMap::with_max_entries(SYNACK_RETRANSMITS_ENTRIES, 0);

#[map]
pub static LISTEN_OVERFLOWS: LruPerCpuHashMap<ListenerId, ListenOverflows> =
    LruPerCpuHashMap::with_max_entries(LISTEN_OVERFLOWS_ENTRIES, 0);

#[map]
pub static STATE_TRANSITIONS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(TCP_STATES * TCP_STATES, 0);

#[map]
pub static RETRANSMITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(RETRANSMIT_KINDS, 0);

#[map]
pub static RETRANSMIT_FLOWS: LruPerCpuHashMap<FlowKey, FlowRetransmits> =
    LruPerCpuHashMap::with_max_entries(RETRANSMIT_FLOWS_ENTRIES, 0);

#[map]
pub static CONNECT_FAILURES: RingBuf = RingBuf::with_byte_size(CONNECT_FAILURES_RING_BYTES, 0);

/// Connections the retransmission timer ended, by endpoints.
#[map]
pub static SILENT_CLOSES: LruHashMap<FlowKey, SilentClose> =
    LruHashMap::with_max_entries(SILENT_CLOSES_ENTRIES, 0);

#[map]
pub static LIFETIMES: PerCpuArray<u64> = PerCpuArray::with_max_entries(LIFETIME_SLOTS, 0);

#[map]
pub static TCP_DROPS: LruPerCpuHashMap<DropKey, DropCounts> =
    LruPerCpuHashMap::with_max_entries(TCP_DROPS_ENTRIES, 0);

#[map]
pub static DROP_REASONS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_REASON_SLOTS, 0);

/// Shared by every CPU and updated with atomic adds: per-CPU copies of 464-byte histograms
/// would multiply the memory by the number of CPUs.
#[map]
pub static LATENCIES: LruHashMap<LatencyKey, LatencyHistogram> =
    LruHashMap::with_max_entries(LATENCIES_ENTRIES, 0);

#[map]
pub static LATENCY_TOTALS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(TOTAL_KINDS * TOTAL_SLOTS_PER_KIND, 0);

/// `bpf_ringbuf_query` flag: bytes not yet consumed.
const BPF_RB_AVAIL_DATA: u64 = 0;
/// `bpf_ringbuf_submit` flags.
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// How to submit to `ring` of `ring_bytes`: without waking the reader (it drains every 100 ms
/// anyway), unless the ring is an eighth full. A wakeup per event is an irq_work self-IPI, which
/// costs a VM exit on virtual machines: about 10 µs per reset where `cargo xtask bench` measured
/// it. The size is passed, not queried: one helper call less per record.
#[inline(always)]
pub fn submit_flags(ring: &RingBuf, ring_bytes: u32) -> u64 {
    if ring.query(BPF_RB_AVAIL_DATA) > u64::from(ring_bytes / 8) {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

/// Updates this CPU's value for `key` in place, starting from `V::default()` when the key has
/// none yet (no atomics needed: no other CPU touches this copy).
#[inline(always)]
pub fn update_per_cpu<K, V: Default>(
    map: &LruPerCpuHashMap<K, V>,
    key: &K,
    update: impl Fn(&mut V),
) {
    match map.get_ptr_mut(key) {
        // SAFETY: the pointer comes from the map and is this CPU's own copy of the value.
        Some(value) => update(unsafe { &mut *value }),
        None => {
            let mut value = V::default();
            update(&mut value);
            let _ = map.insert(key, &value, 0);
        }
    }
}

/// Adds one to a slot of a per-CPU array.
#[inline(always)]
fn bump(array: &PerCpuArray<u64>, slot: u32) {
    add_per_cpu(array, slot, 1);
}

/// Adds to a slot of a per-CPU array (no atomics needed: each CPU has its own slot).
#[inline(always)]
pub fn add_per_cpu(array: &PerCpuArray<u64>, slot: u32, amount: u64) {
    if let Some(value) = array.get_ptr_mut(slot) {
        // SAFETY: the pointer comes from the map and is only touched by this CPU.
        unsafe { *value += amount };
    }
}

#[inline(always)]
pub fn count(counter: Counter) {
    bump(&COUNTERS, counter as u32);
}

#[inline(always)]
pub fn count_transition(old: u8, new: u8) {
    if u32::from(old) < TCP_STATES && u32::from(new) < TCP_STATES {
        bump(
            &STATE_TRANSITIONS,
            u32::from(old) * TCP_STATES + u32::from(new),
        );
    }
}

#[inline(always)]
pub fn count_retransmit(kind: RetransmitKind) {
    bump(&RETRANSMITS, kind as u32);
}

/// Counts a connection lifetime in its power-of-two millisecond bucket.
#[inline(always)]
pub fn count_lifetime(lifetime_ns: u64) {
    let ms = lifetime_ns / 1_000_000;
    let slot = if ms == 0 { 0 } else { 63 - ms.leading_zeros() };
    bump(&LIFETIMES, slot.min(LIFETIME_SLOTS - 1));
}

/// Counts a TCP drop under its reason; reasons past the array share its last slot.
#[inline(always)]
pub fn count_drop_reason(reason: u32) {
    bump(&DROP_REASONS, reason.min(DROP_REASON_SLOTS - 1));
}

#[map]
pub static LISTENER_ARRIVALS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
