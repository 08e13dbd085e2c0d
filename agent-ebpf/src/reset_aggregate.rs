//! Resets past the per-event rate: counted in the kernel by what they share instead of sent one
//! by one (see `tcpwhy_common::reset::ResetAggregateKey`).

use aya_ebpf::maps::PerCpuHashMap;
use tcpwhy_common::reset::{
    DEFAULT_RECORDS_PER_WINDOW, RECORD_WINDOW_SHIFT, ResetAggregate, ResetAggregateKey, ResetEvent,
    evidence,
};

use crate::maps::{
    RESET_AGGREGATES_0, RESET_AGGREGATES_1, RESET_AGGREGATES_SIDE, RESET_RECORD_BUDGET,
};

/// Set by the loader: see [`tcpwhy_common::maps::RECORDS_PER_WINDOW_GLOBAL`].
#[unsafe(no_mangle)]
static RECORDS_PER_WINDOW: u32 = DEFAULT_RECORDS_PER_WINDOW;

/// Whether this CPU may still send a record in the window `now_ns` falls in, and counts it.
#[inline(always)]
pub fn within_record_budget(now_ns: u64) -> bool {
    let Some(budget) = RESET_RECORD_BUDGET.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: the pointer comes from the map and is this CPU's own slot.
    let budget = unsafe { &mut *budget };
    let window = now_ns >> RECORD_WINDOW_SHIFT;
    if budget.window != window {
        budget.window = window;
        budget.used = 0;
    }
    // SAFETY: a valid, aligned static; the volatile read keeps the loader's value from being
    // folded away.
    let allowed = unsafe { core::ptr::read_volatile(&RECORDS_PER_WINDOW) };
    if budget.used >= u64::from(allowed) {
        return false;
    }
    budget.used += 1;
    true
}

/// Adds `event` to the aggregates the programs currently add to. False when the map is full.
#[inline(always)]
pub fn aggregate(event: &ResetEvent) -> bool {
    let (key, sample_port) = ResetAggregateKey::of(event);
    if RESET_AGGREGATES_SIDE.get(0).copied().unwrap_or(0) == 0 {
        add(&RESET_AGGREGATES_0, &key, event, sample_port)
    } else {
        add(&RESET_AGGREGATES_1, &key, event, sample_port)
    }
}

#[inline(always)]
fn add(
    map: &PerCpuHashMap<ResetAggregateKey, ResetAggregate>,
    key: &ResetAggregateKey,
    event: &ResetEvent,
    sample_port: u16,
) -> bool {
    if let Some(found) = map.get_ptr_mut(key) {
        // SAFETY: the pointer comes from the map and is this CPU's own copy of the value.
        let found = unsafe { &mut *found };
        found.count += 1;
        found.last_ns = event.timestamp_ns;
        found.sample_port = sample_port;
        if event.unread_bytes > found.unread_bytes_max {
            found.unread_bytes_max = event.unread_bytes;
        }
        return true;
    }
    let has_owner = event.evidence & evidence::OWNER != 0;
    let first = ResetAggregate {
        count: 1,
        first_ns: event.timestamp_ns,
        last_ns: event.timestamp_ns,
        unread_bytes_max: event.unread_bytes,
        owner_source: if has_owner { event.owner_source } else { 0 },
        owner_comm: event.owner_comm,
        sample_port,
        _pad: [0; 6],
    };
    map.insert(key, first, 0).is_ok()
}
