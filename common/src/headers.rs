//! Byte offsets of the IP and TCP header fields the programs read from a segment. Unlike the
//! kernel's structs ([`crate::layout`]), these are fixed by the protocols themselves.

/// The first byte of an IP header carries the version (4 or 6) in its high nibble.
pub const IP_VERSION: u64 = 0;

/// RFC 791.
pub mod ipv4 {
    pub const PROTOCOL: u64 = 9;
    pub const SOURCE: u64 = 12;
    pub const DESTINATION: u64 = 16;
}

/// RFC 8200.
pub mod ipv6 {
    pub const NEXT_HEADER: u64 = 6;
    pub const SOURCE: u64 = 8;
    pub const DESTINATION: u64 = 24;
}

/// RFC 9293.
pub mod tcp {
    pub const SOURCE_PORT: u64 = 0;
    pub const DESTINATION_PORT: u64 = 2;
    /// The byte of control bits ([`crate::reset::tcp_flags`]).
    pub const FLAGS: u64 = 13;
}
