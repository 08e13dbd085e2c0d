//! The event a reset probe sends to user space, and the aggregates that stand in for events
//! past a rate.

use crate::tcp_state;

/// Which hook saw the reset. It is evidence in itself: before Linux 6.10 the kernel gives no
/// reason, and the function that sent the reset is what tells a refused SYN from an abort on close.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetOrigin {
    /// `tcp:tcp_send_reset` (classic tracepoint or its BTF flavour) replying to a segment.
    SendResetReply = 1,
    /// `tcp:tcp_send_reset` for an active reset (no incoming segment: close, abort, timer).
    SendResetActive = 2,
    /// Function probe on `tcp_v4_send_reset`.
    V4SendReset = 3,
    /// Function probe on `tcp_v6_send_reset`.
    V6SendReset = 4,
    /// Function probe on `tcp_send_active_reset`.
    SendActiveReset = 5,
    /// `tcp:tcp_receive_reset`.
    ReceiveReset = 6,
    /// Function probe on `nf_send_reset` or `nf_send_reset6`: a netfilter rule (`reject with
    /// tcp reset`) answered the segment, not the TCP stack.
    NetfilterReset = 7,
}

impl ResetOrigin {
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::SendResetReply,
            2 => Self::SendResetActive,
            3 => Self::V4SendReset,
            4 => Self::V6SendReset,
            5 => Self::SendActiveReset,
            6 => Self::ReceiveReset,
            7 => Self::NetfilterReset,
            _ => return None,
        })
    }

    pub fn is_received(self) -> bool {
        self == Self::ReceiveReset
    }
}

/// `ResetEvent::reason` when the hook gives no `enum sk_rst_reason`.
pub const NO_REASON: u32 = u32::MAX;

/// Bits of [`ResetEvent::evidence`].
pub mod evidence {
    /// A socket was involved (full, request or timewait).
    pub const SOCKET: u16 = 1 << 0;
    /// The socket is a full socket, so its flags, linger time and sequence numbers were read.
    pub const FULL_SOCKET: u16 = 1 << 1;
    /// `SOCK_LINGER` was set on the socket.
    pub const LINGER_ON: u16 = 1 << 2;
    /// The linger time was zero.
    pub const LINGER_ZERO: u16 = 1 << 3;
    /// `SOCK_DEAD`: the application had already closed the socket (orphan).
    pub const ORPHAN: u16 = 1 << 4;
    /// The incoming segment was read, so [`super::ResetEvent::segment_flags`] is valid.
    pub const SEGMENT: u16 = 1 << 5;
    /// The owner fields are valid.
    pub const OWNER: u16 = 1 << 7;
    /// The socket is an IPv6 socket; addresses are 16 bytes (IPv4-mapped ones included).
    pub const IPV6: u16 = 1 << 8;
    /// The unread byte count was read.
    pub const UNREAD_KNOWN: u16 = 1 << 9;
    /// In an [`super::ResetAggregateKey`] only: the unread byte count was not zero, which is
    /// evidence in itself (an abort on close with data unread).
    pub const UNREAD_SOME: u16 = 1 << 10;
}

/// One reset, sent or received. Addresses are in network byte order; ports in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetEvent {
    /// `bpf_ktime_get_ns()`, CLOCK_MONOTONIC.
    pub timestamp_ns: u64,
    /// Raw `enum sk_rst_reason`, or [`NO_REASON`]. Names come from the running kernel's BTF.
    pub reason: u32,
    /// Network namespace inode number, 0 when unknown.
    pub netns: u32,
    /// Bytes received but not read by the application (`rcv_nxt - copied_seq`).
    pub unread_bytes: u32,
    /// Owning process (see [`crate::owner`]).
    pub owner_pid: u32,
    pub owner_source: u32,
    pub owner_comm: [u8; 16],
    /// Local and remote addresses: IPv4 in the first 4 bytes, or 16 bytes of IPv6.
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
    pub local_port: u16,
    pub remote_port: u16,
    /// Bits from [`evidence`].
    pub evidence: u16,
    /// [`ResetOrigin`] as a byte.
    pub origin: u8,
    /// Socket state (`crate::tcp_state`), 0 when no socket.
    pub state: u8,
    /// For timewait sockets: the state they stand in for (`FIN_WAIT2` or `TIME_WAIT`).
    pub tw_substate: u8,
    /// TCP flags byte of the segment that provoked the reset, when there was one.
    pub segment_flags: u8,
    pub _pad: [u8; 10],
}

/// TCP header control bits, as in the byte at [`crate::headers::tcp::FLAGS`].
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// Per-event records each CPU sends per window unless user space sets another budget
/// ([`crate::maps::RECORDS_PER_WINDOW_GLOBAL`]); past them, resets of the window are aggregated
/// in the kernel (see [`ResetAggregateKey`]): user space spends a few microseconds on each
/// record, which a storm of resets takes from the workload on a small host.
pub const DEFAULT_RECORDS_PER_WINDOW: u32 = 1024;
/// The window is 2^`RECORD_WINDOW_SHIFT` ns of CLOCK_MONOTONIC (about 1.07 s).
pub const RECORD_WINDOW_SHIFT: u32 = 30;

/// One CPU's use of its record budget (the single slot of a per-CPU array).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordBudget {
    /// `timestamp >> RECORD_WINDOW_SHIFT` of the window counted.
    pub window: u64,
    pub used: u64,
}

/// Which port of an aggregate's key is left out and kept as a sample instead.
pub mod sampled {
    /// The local port varies (a client's ephemeral port): the remote end is the service.
    pub const LOCAL_PORT: u8 = 0;
    /// The remote port varies: the local end is the service.
    pub const REMOTE_PORT: u8 = 1;
}

/// What resets aggregated in the kernel share: every field of [`ResetEvent`] the rules and the
/// grouping read, both addresses, and the port of the service end. The other end's port (new
/// on every connection) and the times are what a [`ResetAggregate`] sums up.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResetAggregateKey {
    pub reason: u32,
    pub netns: u32,
    /// 0 without an owner (the owner's name groups the resets of a client program).
    pub owner_pid: u32,
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
    /// The service end's port; the other one is 0 (see [`Self::sampled`]).
    pub local_port: u16,
    pub remote_port: u16,
    /// Bits from [`evidence`], [`evidence::UNREAD_SOME`] included.
    pub evidence: u16,
    pub origin: u8,
    pub state: u8,
    pub tw_substate: u8,
    pub segment_flags: u8,
    /// A [`sampled`] value.
    pub sampled: u8,
    pub _pad: u8,
}

/// The resets of one [`ResetAggregateKey`] on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResetAggregate {
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub unread_bytes_max: u32,
    pub owner_source: u32,
    pub owner_comm: [u8; 16],
    /// The left-out port of the latest reset.
    pub sample_port: u16,
    pub _pad: [u8; 6],
}

impl ResetAggregateKey {
    /// The key `event` is aggregated under, and the port left out of it. The service end is
    /// kept: the socket state or the segment says which it is where it can (as the user-space
    /// grouping does), else the lower port (ephemeral ports are the high ones).
    #[inline(always)]
    pub fn of(event: &ResetEvent) -> (Self, u16) {
        let has_socket = event.evidence & evidence::SOCKET != 0;
        let sampled = match event.state {
            tcp_state::SYN_SENT if has_socket => sampled::LOCAL_PORT,
            tcp_state::LISTEN | tcp_state::SYN_RECV | tcp_state::NEW_SYN_RECV if has_socket => {
                sampled::REMOTE_PORT
            }
            _ if !has_socket
                && event.segment_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
                && event.evidence & evidence::SEGMENT != 0 =>
            {
                sampled::REMOTE_PORT
            }
            _ if event.local_port > event.remote_port => sampled::LOCAL_PORT,
            _ => sampled::REMOTE_PORT,
        };
        let (local_port, remote_port, sample_port) = if sampled == sampled::LOCAL_PORT {
            (0, event.remote_port, event.local_port)
        } else {
            (event.local_port, 0, event.remote_port)
        };
        let unread = if event.unread_bytes != 0 {
            evidence::UNREAD_SOME
        } else {
            0
        };
        let key = Self {
            reason: event.reason,
            netns: event.netns,
            owner_pid: event.owner_pid,
            local_addr: event.local_addr,
            remote_addr: event.remote_addr,
            local_port,
            remote_port,
            evidence: event.evidence | unread,
            origin: event.origin,
            state: event.state,
            tw_substate: event.tw_substate,
            segment_flags: event.segment_flags,
            sampled,
            _pad: 0,
        };
        (key, sample_port)
    }
}

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, integers and byte arrays only, explicit padding.
unsafe impl aya::Pod for ResetEvent {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for ResetAggregateKey {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for ResetAggregate {}

// The kernel writes these structs and user space reads them byte for byte: pin their sizes.
const _: () = assert!(core::mem::size_of::<ResetEvent>() == 96);
const _: () = assert!(core::mem::size_of::<ResetAggregateKey>() == 56);
const _: () = assert!(core::mem::size_of::<ResetAggregate>() == 56);
