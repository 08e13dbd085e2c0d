//! TCP segments the kernel freed with a drop reason (`skb:kfree_skb`), counted in the kernel.
//!
//! The hook fires for every packet the host frees, so nothing leaves the kernel per packet:
//! the program keeps TCP drops only and counts them per (reason, namespace, local endpoint) in a
//! per-CPU map, and per reason in a per-CPU array, which user space reads.

/// Where drops of one reason happened: a local endpoint in one network namespace.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DropKey {
    /// The kernel's `enum skb_drop_reason` value (user space names it from BTF).
    pub reason: u32,
    pub netns: u32,
    pub port: u16,
    /// [`crate::family::AF_INET`] or [`crate::family::AF_INET6`].
    pub family: u16,
    /// IPv4 in the first 4 bytes, or IPv6.
    pub addr: [u8; 16],
}

/// What was seen for one [`DropKey`], per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// The other end of the most recent one.
    pub remote_addr: [u8; 16],
    pub remote_port: u16,
    /// The TCP state of the socket the segment was for, 0 when it reached none.
    pub state: u8,
    pub _pad: [u8; 5],
}

/// Slots of the per-reason array: the core reasons fit (Linux 6.18 has 128); a reason numbered
/// past them (the subsystem reasons, mac80211 or Open vSwitch, carry high bits) is counted in
/// the last slot.
pub const DROP_REASON_SLOTS: u32 = 256;

/// EtherType of the segment's network protocol, as `skb:kfree_skb` records it (host order).
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
/// The IP protocol number of TCP (IPv4 `protocol`, IPv6 `next header`).
pub const IPPROTO_TCP: u8 = 6;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `repr(C)`, integers and byte arrays, explicit padding.
    unsafe impl aya::Pod for super::DropKey {}
    unsafe impl aya::Pod for super::DropCounts {}
}
