//! SYN-ACK retransmits, counted in the kernel per listener.
//!
//! A listener re-sends its SYN-ACK when the handshake's final ACK never arrives, or arrives at a
//! full accept queue and is dropped. Counted per listener in a map (they can be frequent under
//! overflow), they tell which listener is dropping handshakes even when its queue is never seen
//! full by a sample.

/// A listener: its local endpoint in one network namespace.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId {
    pub netns: u32,
    pub port: u16,
    /// [`crate::family::AF_INET`] or [`crate::family::AF_INET6`].
    pub family: u16,
    /// IPv4 in the first 4 bytes, or IPv6.
    pub addr: [u8; 16],
}

/// What was seen for one listener.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynAckRetransmits {
    pub count: u64,
    /// The client of the most recent one.
    pub remote_addr: [u8; 16],
    pub remote_port: u16,
    pub _pad: [u8; 6],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `repr(C)`, integers and byte arrays, explicit padding.
    unsafe impl aya::Pod for super::ListenerId {}
    unsafe impl aya::Pod for super::SynAckRetransmits {}
}
