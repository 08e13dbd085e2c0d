//! Handshake times and round-trip times, aggregated in the kernel.
//!
//! `inet_sock_set_state` runs several times per connection, so nothing here leaves the kernel
//! per connection: each duration lands in a histogram per (namespace, endpoint, kind) in a
//! shared LRU map (atomic adds), and the handshakes also in a per-CPU array that nothing evicts,
//! for the metric.
//!
//! - A connect() takes from SYN_SENT to ESTABLISHED, timed by [`crate::sockets`].
//! - An accepted connection's SYN_RECV and ESTABLISHED transitions fire back to back when the
//!   final ACK arrives; its handshake time is the SYN-ACK's round trip, which
//!   `tcp_rcv_state_process` measures into the child's `srtt_us` (`tcp_synack_rtt_meas`) just
//!   before it sets ESTABLISHED.
//! - A connection leaving ESTABLISHED ends with its smoothed RTT in `srtt_us`.

use core::{
    hint::black_box,
    intrinsics::{AtomicOrdering, atomic_xadd},
};

use tcpwhy_common::{
    latency::{
        LATENCY_BUCKETS, LatencyHistogram, LatencyKey, LatencyKind, TOTAL_SLOTS_PER_KIND, bucket_of,
    },
    maps::Counter,
    tcp_state as st,
};

use crate::{
    addresses::{Addresses, of_socket},
    kernel::{Memory, read, socket_netns},
    maps::{LATENCIES, LATENCY_TOTALS, add_per_cpu, count},
};

/// A new histogram's first value, from read-only data: a 464-byte copy on the stack would not
/// fit beside the rest of the program's frame (BPF stacks have 512 bytes).
static EMPTY: LatencyHistogram = LatencyHistogram::EMPTY;

/// `BPF_NOEXIST`: two CPUs creating the same histogram at once must not zero each other's.
const CREATE_ONLY: u64 = 1;

/// A connect() on `sk` reached ESTABLISHED at `now`; it entered SYN_SENT at `since` (0: not
/// seen; a time after `now`: not a time, a flag).
#[inline(always)]
pub fn connected<M: Memory>(memory: M, sk: u64, since: u64, now: u64) {
    if since == 0 || since > now {
        return;
    }
    let family = memory.read::<u16>(sk, |l| &l.skc_family).unwrap_or(0);
    let Addresses { remote, .. } = of_socket(memory, sk, family);
    let port = u16::from_be(memory.read::<u16>(sk, |l| &l.skc_dport).unwrap_or(0));
    let key = key_of(memory, sk, LatencyKind::Connect, family, port, remote);
    record(&key, (now - since) / 1000, Some(LatencyKind::Connect));
}

/// Accepted connections becoming ESTABLISHED, and connections leaving it: their smoothed RTT.
#[inline(always)]
pub fn state_changed<M: Memory>(memory: M, sk: u64, old: u8, new: u8) {
    let accepted = old == st::SYN_RECV && new == st::ESTABLISHED;
    if !accepted && old != st::ESTABLISHED {
        return;
    }
    // Absent from the layout: the kernel's BTF has no such field, and user space says so. A
    // tcp_sock field lies beyond struct sock: read, never through a typed load.
    let Ok(srtt) = read::<u32>(sk, |l| &l.tcp_srtt_us) else {
        return;
    };
    // 0: no round trip was measured (a retransmitted SYN-ACK without timestamps).
    let rtt_us = u64::from(srtt >> 3);
    if rtt_us == 0 {
        return;
    }
    let family = memory.read::<u16>(sk, |l| &l.skc_family).unwrap_or(0);
    let Addresses { local, remote } = of_socket(memory, sk, family);
    if accepted {
        let port = memory.read::<u16>(sk, |l| &l.skc_num).unwrap_or(0);
        let key = key_of(memory, sk, LatencyKind::Accept, family, port, local);
        record(&key, rtt_us, Some(LatencyKind::Accept));
    } else {
        let key = key_of(memory, sk, LatencyKind::SrttAtClose, family, 0, remote);
        record(&key, rtt_us, None);
    }
}

#[inline(always)]
fn key_of<M: Memory>(
    memory: M,
    sk: u64,
    kind: LatencyKind,
    family: u16,
    port: u16,
    addr: [u8; 16],
) -> LatencyKey {
    LatencyKey {
        netns: socket_netns(memory, sk),
        kind: kind as u16,
        family,
        port,
        _pad: 0,
        addr,
    }
}

/// Adds `us` to the histogram of `key`, and to the totals of `total` if given.
// By value, the empty histogram would be copied to the stack: see `EMPTY`.
#[allow(clippy::needless_borrows_for_generic_args)]
#[inline(always)]
fn record(key: &LatencyKey, us: u64, total: Option<LatencyKind>) {
    let bucket = bucket_of(us);
    if let Some(kind) = total {
        let base = kind as u32 * TOTAL_SLOTS_PER_KIND;
        add_per_cpu(&LATENCY_TOTALS, base + bucket as u32, 1);
        add_per_cpu(&LATENCY_TOTALS, base + LATENCY_BUCKETS as u32, us);
    }
    let histogram = match LATENCIES.get_ptr_mut(key) {
        Some(histogram) => histogram,
        None => {
            if LATENCIES.insert(key, &EMPTY, CREATE_ONLY).is_ok() {
                count(Counter::LatencyHistograms);
            }
            match LATENCIES.get_ptr_mut(key) {
                Some(histogram) => histogram,
                None => return,
            }
        }
    };
    // SAFETY: the pointer comes from the map and stays valid for this program's run; every CPU
    // writes the counts with atomic adds.
    unsafe {
        // The compiler knows the bucket is in range and would drop the check; the verifier
        // needs to see it before the pointer arithmetic.
        let Some(slot) = (*histogram).buckets.get_mut(black_box(bucket)) else {
            return;
        };
        add_atomically(slot, 1);
        add_atomically(&mut (*histogram).sum_us, us);
        if us > (*histogram).max_us {
            (*histogram).max_us = us;
        }
    }
}

/// A BPF atomic add (`lock xadd`, which every kernel since 3.18 verifies); core's atomic types
/// offer no read-modify-write on the BPF target.
#[inline(always)]
fn add_atomically(counter: *mut u64, amount: u64) {
    // SAFETY: `counter` points into a map value, aligned to 8; the previous value is unused, so
    // the add needs no fetch (which would need BPF atomics of Linux 5.12).
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(counter, amount) };
}
