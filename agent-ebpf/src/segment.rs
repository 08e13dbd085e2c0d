//! A segment's IP and TCP headers, each copied with one read: a helper call costs more than the
//! bytes it copies, and the reset and drop programs want five or six fields of each header.

use tcpwhy_common::{
    family::{AF_INET, AF_INET6},
    headers::{IP_VERSION, ipv4, ipv6, tcp},
};

use crate::{
    addresses::{Addresses, Locations, read_addresses},
    kernel::read_bytes_at,
};

/// Bytes of an IPv4 header without options, and the start of an IPv6 header: everything but
/// IPv6's addresses.
const IP_HEADER_START: usize = 20;
/// Fixed IPv6 header length: TCP follows it directly when `next header` says TCP.
const IPV6_HEADER_BYTES: u64 = 40;
/// Up to and including the TCP flags.
const TCP_HEADER_START: usize = tcp::FLAGS as usize + 1;

/// The start of an IP header.
pub struct IpHeader {
    at: u64,
    bytes: [u8; IP_HEADER_START],
}

impl IpHeader {
    #[inline(always)]
    pub fn read(at: u64) -> Option<Self> {
        let mut header = IpHeader {
            at,
            bytes: [0; IP_HEADER_START],
        };
        read_bytes_at(at, &mut header.bytes).ok()?;
        Some(header)
    }

    /// AF_INET or AF_INET6 by the version nibble; None for anything else.
    #[inline(always)]
    pub fn family(&self) -> Option<u16> {
        match self.bytes[IP_VERSION as usize] >> 4 {
            4 => Some(AF_INET),
            6 => Some(AF_INET6),
            _ => None,
        }
    }

    /// The transport protocol, and where its header starts (IPv6 extension headers are not
    /// followed: TCP behind one is not recognised).
    #[inline(always)]
    pub fn transport(&self) -> Option<(u8, u64)> {
        match self.family()? {
            AF_INET => {
                let words = self.bytes[IP_VERSION as usize] & 0x0f;
                Some((
                    self.bytes[ipv4::PROTOCOL as usize],
                    self.at + u64::from(words) * 4,
                ))
            }
            _ => Some((
                self.bytes[ipv6::NEXT_HEADER as usize],
                self.at + IPV6_HEADER_BYTES,
            )),
        }
    }

    /// Both addresses: the destination is this host's side of an incoming segment. IPv6's lie
    /// beyond the bytes read so far and take one more read.
    #[inline(always)]
    pub fn addresses(&self, family: u16) -> Addresses {
        if family == AF_INET {
            return read_addresses(family, &SEGMENT, |offset, dst| {
                let start = offset as usize;
                dst.copy_from_slice(&self.bytes[start..start + dst.len()]);
            });
        }
        read_addresses(family, &SEGMENT, |offset, dst| {
            let _ = read_bytes_at(self.at + offset, dst);
        })
    }
}

/// Where an IP header keeps them, as (this host's side, the peer's) of an incoming segment.
const SEGMENT: Locations<u64> = Locations {
    ipv4: (ipv4::DESTINATION, ipv4::SOURCE),
    ipv6: (ipv6::DESTINATION, ipv6::SOURCE),
};

/// The start of a TCP header: ports and flags.
pub struct TcpHeader {
    bytes: [u8; TCP_HEADER_START],
}

impl TcpHeader {
    #[inline(always)]
    pub fn read(at: u64) -> Option<Self> {
        let mut header = TcpHeader {
            bytes: [0; TCP_HEADER_START],
        };
        read_bytes_at(at, &mut header.bytes).ok()?;
        Some(header)
    }

    #[inline(always)]
    pub fn source_port(&self) -> u16 {
        self.port(tcp::SOURCE_PORT)
    }

    #[inline(always)]
    pub fn destination_port(&self) -> u16 {
        self.port(tcp::DESTINATION_PORT)
    }

    #[inline(always)]
    fn port(&self, at: u64) -> u16 {
        let at = at as usize;
        u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.bytes[tcp::FLAGS as usize]
    }
}
