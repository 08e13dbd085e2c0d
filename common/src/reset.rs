//! The event a reset probe sends to user space.

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

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, integers and byte arrays only, explicit padding.
unsafe impl aya::Pod for ResetEvent {}

// The kernel writes this struct and user space reads it byte for byte: pin its size.
const _: () = assert!(core::mem::size_of::<ResetEvent>() == 96);
