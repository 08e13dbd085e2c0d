//! Per-connection facts the kernel keeps for retransmit and state findings: keyed by the
//! connection's endpoints (sock_diag reports endpoints, not kernel pointers, so user space can
//! join the two).

/// A connection in one network namespace. Addresses: IPv4 in the first 4 bytes, or IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub netns: u32,
    pub family: u16,
    pub local_port: u16,
    pub remote_port: u16,
    /// A [`crate::maps::RetransmitKind`] for retransmit flows; a TCP state for state timestamps.
    pub tag: u16,
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
}

impl FlowKey {
    /// No connection: what a socket's record holds until it has endpoints worth keeping.
    pub const UNKNOWN: FlowKey = FlowKey {
        netns: 0,
        family: 0,
        local_port: 0,
        remote_port: 0,
        tag: 0,
        local_addr: [0; 16],
        remote_addr: [0; 16],
    };
}

/// Retransmits of one flow, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowRetransmits {
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Owner of the socket, when recorded (0 otherwise).
    pub owner_pid: u32,
    pub _pad: u32,
    pub owner_comm: [u8; 16],
}

/// A connect() that failed without an RST (timed out, or abandoned by its application): the
/// socket went from SYN_SENT to CLOSE. Refused connects are only counted
/// ([`crate::maps::Counter::ConnectsRefused`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectFailure {
    pub timestamp_ns: u64,
    /// Time spent in SYN_SENT, 0 when the start was not seen.
    pub waited_ns: u64,
    pub key: FlowKey,
    pub owner_pid: u32,
    pub owner_comm: [u8; 16],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `repr(C)`, integers and byte arrays, explicit padding.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowRetransmits {}
    unsafe impl aya::Pod for super::ConnectFailure {}
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 44);
const _: () = assert!(core::mem::size_of::<ConnectFailure>() == 80);
