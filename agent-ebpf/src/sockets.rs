//! Each socket's [`SocketRecord`]: the start of its timed state, whether an RST refused its
//! connect(), its owner (see `owners`), and the endpoints of a connection left waiting.
//!
//! Records are not deleted when a socket closes: resets sent after the transition to CLOSE (an
//! abortive close) still need the owner, and the LRU map reuses the oldest records. A socket
//! address the allocator hands out again finds its predecessor's record and overwrites it in
//! place, which also spares the LRU map an insert (it allocates even for a key it holds).

use tcpwhy_common::{
    flow::FlowKey,
    owner::Owner,
    socket::{SocketRecord, is_timed, is_waiting},
    tcp_state as st,
};

use crate::maps::SOCKETS;

const REFUSED: u64 = SocketRecord::REFUSED;

/// What the end of a timed state tells, handed to the caller.
pub enum Ended {
    /// SYN_SENT → CLOSE: the connect() failed.
    ConnectFailed {
        waited_since: u64,
        refused: bool,
        owner: Owner,
    },
    /// SYN_SENT → ESTABLISHED: the connect() succeeded after starting at `since` (0: unknown).
    Connected {
        since: u64,
    },
    /// ESTABLISHED → anything: the connection lived since `since` (0: unknown).
    Established {
        since: u64,
    },
    Nothing,
}

/// Updates `sk`'s record for its transition `old` → `new` at `now` with the owner it revealed
/// (if known), and says what ended. `endpoints` names the connection when it starts waiting.
#[inline(always)]
pub fn changed(
    sk: u64,
    old: u8,
    new: u8,
    now: u64,
    owner: Owner,
    endpoints: impl FnOnce() -> FlowKey,
) -> Ended {
    let starts = is_timed(new);
    let failed = old == st::SYN_SENT && new == st::CLOSE;
    if !starts && !is_timed(old) && !owner.is_known() {
        return Ended::Nothing;
    }
    let Some(record) = SOCKETS.get_ptr_mut(sk) else {
        if starts || owner.is_known() {
            let _ = SOCKETS.insert(sk, first_record(new, now, owner, endpoints), 0);
        }
        return if failed {
            Ended::ConnectFailed {
                waited_since: 0,
                refused: false,
                owner,
            }
        } else {
            Ended::Nothing
        };
    };
    // SAFETY: the pointer comes from the map; a socket's state changes are serialised by its
    // lock, and a racing reset only sets REFUSED, which this transition ends anyway.
    let record = unsafe { &mut *record };
    let since = record.since & !REFUSED;
    let ended = match old {
        st::SYN_SENT if failed => Ended::ConnectFailed {
            waited_since: since,
            refused: record.since & REFUSED != 0,
            owner: if owner.is_known() {
                owner
            } else {
                record.owner
            },
        },
        st::SYN_SENT if new == st::ESTABLISHED => Ended::Connected { since },
        st::ESTABLISHED => Ended::Established { since },
        _ => Ended::Nothing,
    };
    // The time first, the state it times last: user space reads records while they change, and
    // must not pair a waiting state with the start of the connection.
    record.since = if starts { now } else { 0 };
    if is_waiting(new) {
        record.timed = endpoints();
    }
    record.timed.tag = u16::from(new);
    if owner.is_known() {
        record.owner = owner;
    }
    ended
}

/// The record of a socket seen for the first time.
#[inline(always)]
fn first_record(
    new: u8,
    now: u64,
    owner: Owner,
    endpoints: impl FnOnce() -> FlowKey,
) -> SocketRecord {
    let mut timed = if is_waiting(new) {
        endpoints()
    } else {
        FlowKey::UNKNOWN
    };
    timed.tag = u16::from(new);
    SocketRecord {
        since: if is_timed(new) { now } else { 0 },
        owner,
        timed,
        _pad: 0,
    }
}

/// The recorded owner of a socket, [`Owner::UNKNOWN`] if none.
#[inline(always)]
pub fn recorded_owner(sk: u64) -> Owner {
    // SAFETY: the value is copied out at once.
    match unsafe { SOCKETS.get(sk) } {
        Some(record) => record.owner,
        None => Owner::UNKNOWN,
    }
}

/// An RST hit `sk` in SYN_SENT: its connect() failing next was refused. Returns the socket's
/// recorded owner, so that the reset costs one lookup.
#[inline(always)]
pub fn mark_refused(sk: u64) -> Owner {
    match SOCKETS.get_ptr_mut(sk) {
        // SAFETY: the pointer comes from the map; a racing writer can only set the same bit or
        // replace the time.
        Some(record) => unsafe {
            (*record).since |= REFUSED;
            (*record).owner
        },
        // Connecting since before the probes attached: when is unknown (0).
        None => {
            let mut record = first_record(st::SYN_SENT, 0, Owner::UNKNOWN, || FlowKey::UNKNOWN);
            record.since = REFUSED;
            let _ = SOCKETS.insert(sk, record, 0);
            Owner::UNKNOWN
        }
    }
}
