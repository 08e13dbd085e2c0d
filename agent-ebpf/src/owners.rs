//! Counts state transitions, and remembers which process owns each socket, learned only where the kernel context makes it
//! certain.
//!
//! Resets are mostly sent and received in softirq, where `current` names whatever task the
//! interrupt landed on. BPF programs on tracepoints cannot tell softirq from process context
//! (the kernel overwrites the record's `common_flags` with a pt_regs pointer for them), so the
//! owner is recorded only on state changes that happen exclusively inside a system call:
//! connect() (→ SYN_SENT), listen() (→ LISTEN), and close()/shutdown() (ESTABLISHED → FIN_WAIT1,
//! CLOSE_WAIT → LAST_ACK). An accepted socket, born in softirq, inherits its listener's owner.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::tracepoint,
    programs::TracePointContext,
};
use aya_log_ebpf::debug;
use tcpwhy_common::{
    flow::ConnectFailure,
    maps::Counter,
    owner::{ListenerKey, OWNER_FROM_LISTENER, OWNER_FROM_SYSCALL, Owner},
    tcp_state as st,
};

use crate::{
    addresses::Locations,
    context::tracepoint_field,
    flow::{EndpointFields, from_tracepoint},
    kernel::{read, socket_netns},
    latency,
    maps::{
        CONNECT_FAILURES, LISTENER_OWNERS, SOCKET_OWNERS, SOCKET_SINCE, STATE_SINCE, count,
        count_lifetime, count_transition, submit_flags,
    },
    silent_close,
};

/// Set in a [`SOCKET_SINCE`] value when an RST hit the socket in SYN_SENT: its connect() was
/// refused. Kept with the time it started connecting, so that the failure costs one lookup.
const REFUSED: u64 = 1 << 63;

const IPPROTO_TCP: u16 = 6;

/// The recorded owner of a socket, if any.
#[inline(always)]
pub fn recorded_owner(sk: u64) -> Option<Owner> {
    // SAFETY: the value is copied out at once.
    unsafe { SOCKET_OWNERS.get(sk).copied() }
}

/// Records `sk`'s owner in place when the address already has an entry (the socket itself when
/// it closes, else an earlier socket at the same address): an LRU map's insert allocates a new
/// element even for a key it holds.
#[inline(always)]
fn record_owner(sk: u64, owner: Owner) {
    match SOCKET_OWNERS.get_ptr_mut(sk) {
        // SAFETY: the pointer comes from the map; the socket's own state changes are serialised
        // by its lock, so no other writer races this one.
        Some(recorded) => unsafe { *recorded = owner },
        None => {
            let _ = SOCKET_OWNERS.insert(sk, owner, 0);
        }
    }
}

/// Transitions only a system call on the socket can cause, so `current` is its owner.
#[inline(always)]
fn made_by_syscall(old: u8, new: u8) -> bool {
    matches!(
        (old, new),
        (_, st::SYN_SENT)
            | (_, st::LISTEN)
            | (st::ESTABLISHED, st::FIN_WAIT1)
            | (st::CLOSE_WAIT, st::LAST_ACK)
    )
}

/// Listeners are keyed by namespace and port only: a dual-stack listener accepts both families.
#[inline(always)]
fn listener_key(sk: u64) -> ListenerKey {
    ListenerKey {
        netns: socket_netns(sk),
        port: read::<u16>(sk, |l| &l.skc_num).unwrap_or(0),
        _pad: 0,
    }
}

#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    if tracepoint_field::<u16>(&ctx, |l| &l.tp_set_state_protocol) != Ok(IPPROTO_TCP) {
        return 0;
    }
    let (Ok(sk), Ok(old), Ok(new)) = (
        tracepoint_field::<u64>(&ctx, |l| &l.tp_set_state_skaddr),
        tracepoint_field::<i32>(&ctx, |l| &l.tp_set_state_oldstate),
        tracepoint_field::<i32>(&ctx, |l| &l.tp_set_state_newstate),
    ) else {
        debug!(&ctx, "inet_sock_set_state: record fields unreadable");
        return 0;
    };
    let (old, new) = (old as u8, new as u8);
    count_transition(old, new);
    silent_close::note(&ctx, sk, old, new);
    track_state_times(&ctx, sk, old, new);
    latency::state_changed(sk, old, new);

    if made_by_syscall(old, new) {
        let owner = Owner {
            pid: (bpf_get_current_pid_tgid() >> 32) as u32,
            source: OWNER_FROM_SYSCALL,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        };
        record_owner(sk, owner);
        if new == st::LISTEN {
            let _ = LISTENER_OWNERS.insert(listener_key(sk), owner, 0);
        }
    } else if old == st::SYN_RECV && new == st::ESTABLISHED {
        // SAFETY: copied out at once.
        if let Some(listener) = unsafe { LISTENER_OWNERS.get(listener_key(sk)) } {
            let owner = Owner {
                source: OWNER_FROM_LISTENER,
                ..*listener
            };
            record_owner(sk, owner);
        }
    } else if old == st::LISTEN && new == st::CLOSE {
        let _ = LISTENER_OWNERS.remove(listener_key(sk));
    }
    0
}

pub const SET_STATE_FIELDS: EndpointFields = EndpointFields {
    sport: |l| &l.tp_set_state_sport,
    dport: |l| &l.tp_set_state_dport,
    family: |l| &l.tp_set_state_family,
    addresses: Locations {
        ipv4: (|l| &l.tp_set_state_saddr, |l| &l.tp_set_state_daddr),
        ipv6: (|l| &l.tp_set_state_saddr_v6, |l| &l.tp_set_state_daddr_v6),
    },
};

/// Remembers when connections enter the states whose duration matters (SYN_SENT, ESTABLISHED
/// by socket; CLOSE_WAIT, FIN_WAIT2 by endpoints for user space), counts lifetimes, and reports
/// failed connects.
#[inline(always)]
fn track_state_times(ctx: &TracePointContext, sk: u64, old: u8, new: u8) {
    // SAFETY: helper call without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    match new {
        // In place: an LRU map replaces an entry on insert, which costs an allocation.
        st::ESTABLISHED if old == st::SYN_SENT => match SOCKET_SINCE.get_ptr_mut(sk) {
            // SAFETY: the pointer comes from the map; a racing writer stores a time or a bit too.
            Some(since) => unsafe {
                latency::connected(sk, *since, now);
                *since = now
            },
            None => {
                let _ = SOCKET_SINCE.insert(sk, now, 0);
            }
        },
        st::SYN_SENT | st::ESTABLISHED => {
            let _ = SOCKET_SINCE.insert(sk, now, 0);
        }
        st::CLOSE_WAIT | st::FIN_WAIT2 => {
            let key = from_tracepoint(ctx, sk, &SET_STATE_FIELDS, u16::from(new));
            let _ = STATE_SINCE.insert(key, now, 0);
        }
        _ => {}
    }
    match old {
        st::SYN_SENT if new == st::CLOSE => report_connect_failure(ctx, sk, now),
        st::ESTABLISHED => {
            // SAFETY: copied out at once.
            if let Some(since) = unsafe { SOCKET_SINCE.get(sk).copied() } {
                count_lifetime(now.saturating_sub(since & !REFUSED));
            }
        }
        st::CLOSE_WAIT | st::FIN_WAIT2 => {
            let _ = STATE_SINCE.remove(from_tracepoint(ctx, sk, &SET_STATE_FIELDS, u16::from(old)));
        }
        _ => {}
    }
    // SYN_SENT → ESTABLISHED already replaced the time: the lifetime counts from there.
    let timed = |state| matches!(state, st::SYN_SENT | st::ESTABLISHED);
    if timed(old) && !timed(new) {
        let _ = SOCKET_SINCE.remove(sk);
    }
}

/// An RST hit `sk`: if it was connecting, the connect() failing next was refused.
#[inline(always)]
pub fn mark_if_refused(sk: u64) {
    if read::<u8>(sk, |l| &l.skc_state) != Ok(st::SYN_SENT) {
        return;
    }
    match SOCKET_SINCE.get_ptr_mut(sk) {
        // SAFETY: the pointer comes from the map; a racing writer can only set the same bit or
        // replace the entry.
        Some(since) => unsafe { *since |= REFUSED },
        // Connecting since before the probes attached: when is unknown (0).
        None => {
            let _ = SOCKET_SINCE.insert(sk, REFUSED, 0);
        }
    }
}

/// A connect() failed: refused when an RST answered it, timed out or abandoned otherwise.
#[inline(always)]
fn report_connect_failure(ctx: &TracePointContext, sk: u64, now: u64) {
    // SAFETY: copied out at once.
    let since = unsafe { SOCKET_SINCE.get(sk).copied() }.unwrap_or(0);
    let (refused, started) = (since & REFUSED != 0, since & !REFUSED);
    let Some(mut entry) = CONNECT_FAILURES.reserve::<ConnectFailure>(0) else {
        count(Counter::EventsLost);
        return;
    };
    let owner = recorded_owner(sk);
    entry.write(ConnectFailure {
        timestamp_ns: now,
        waited_ns: if started == 0 {
            0
        } else {
            now.saturating_sub(started)
        },
        key: from_tracepoint(ctx, sk, &SET_STATE_FIELDS, u16::from(st::SYN_SENT)),
        owner_pid: owner.map(|o| o.pid).unwrap_or(0),
        refused: u32::from(refused),
        owner_comm: owner.map(|o| o.comm).unwrap_or([0; 16]),
    });
    entry.submit(submit_flags(&CONNECT_FAILURES));
}
