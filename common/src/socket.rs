//! What the programs remember per socket ([`crate::maps::SOCKETS`], keyed by the socket's kernel
//! address): one record, so that a state change costs at most one lookup and, once the
//! allocator hands a socket's address out again, no insert at all.
//!
//! User space reads the records of connections waiting in CLOSE_WAIT or FIN_WAIT2 to age them.
//! The waiting states are timed here rather than in a map keyed by endpoints: an insert into a
//! hash map, with the memory it touches, cost more than the rest of a state change put together.

use crate::{flow::FlowKey, owner::Owner, tcp_state};

/// The states whose start a record keeps: connecting (connect latency, refused connects),
/// established (lifetimes), and the two a connection can be stuck in for good.
#[inline(always)]
pub fn is_timed(state: u8) -> bool {
    matches!(
        state,
        tcp_state::SYN_SENT | tcp_state::ESTABLISHED | tcp_state::CLOSE_WAIT | tcp_state::FIN_WAIT2
    )
}

/// The timed states user space ages connections in.
#[inline(always)]
pub fn is_waiting(state: u8) -> bool {
    matches!(state, tcp_state::CLOSE_WAIT | tcp_state::FIN_WAIT2)
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketRecord {
    /// When the socket entered `timed.tag` (0: it is in no timed state, or the start was not
    /// seen), with [`SocketRecord::REFUSED`].
    pub since: u64,
    pub owner: Owner,
    /// `tag`: the state of the socket's last transition the programs recorded (the one `since`
    /// times, if any). The endpoints are written on entering a waiting state only (a connecting
    /// or established socket's may be a predecessor's).
    pub timed: FlowKey,
    pub _pad: u32,
}

impl SocketRecord {
    /// Set in [`Self::since`] when an RST hit the socket in SYN_SENT: its connect() was refused.
    /// Kept with the time it started connecting, so that the failure costs one lookup.
    pub const REFUSED: u64 = 1 << 63;

    /// Since when the socket has been in the waiting state it is in, if it is in one and its
    /// start was seen.
    pub fn waiting_since(&self) -> Option<(u8, u64)> {
        let state = self.timed.tag as u8;
        let since = self.since & !Self::REFUSED;
        (is_waiting(state) && since != 0).then_some((state, since))
    }
}

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, integers and byte arrays, no padding.
unsafe impl aya::Pod for SocketRecord {}

const _: () = assert!(core::mem::size_of::<SocketRecord>() == 80);
