//! The maps, named as in `tcpwhy_common::maps` (aya names a map after its static).

use aya_ebpf::{
    macros::map,
    maps::{LruHashMap, LruPerCpuHashMap, PerCpuArray, RingBuf},
};
use tcpwhy_common::{
    listen_overflow::ListenOverflows,
    maps::{
        COUNTER_SLOTS, Counter, EVENTS_RING_BYTES, LISTEN_BACKLOGS_ENTRIES,
        LISTEN_OVERFLOWS_ENTRIES, LISTENER_OWNERS_ENTRIES, SOCKET_OWNERS_ENTRIES,
        SYNACK_RETRANSMITS_ENTRIES,
    },
    owner::{ListenCall, ListenerKey, Owner},
    synack::{ListenerId, SynAckRetransmits},
};

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

#[map]
pub static SOCKET_OWNERS: LruHashMap<u64, Owner> =
    LruHashMap::with_max_entries(SOCKET_OWNERS_ENTRIES, 0);

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

/// Adds one to a per-CPU counter (no atomics needed: each CPU has its own slot).
#[inline(always)]
pub fn count(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: the pointer comes from the map and is only touched by this CPU.
        unsafe { *slot += 1 };
    }
}
