//! A segment's IP and TCP headers, copied with one read where the TCP header follows an IP header
//! of fixed size (IPv4 without options, IPv6 without extension headers), which is nearly always:
//! a helper call costs more than the bytes it copies (about 40 ns on this project's VMs),
//! and the reset and drop programs want five or six fields of each header.

use tcpwhy_common::{
    family::{AF_INET, AF_INET6},
    headers::{IP_VERSION, ipv4, ipv6, tcp},
};

use crate::{
    addresses::{Addresses, Locations, read_addresses},
    kernel::read_bytes_at,
};

/// Bytes of an IPv4 header without options.
const IPV4_HEADER_BYTES: usize = 20;
/// Fixed IPv6 header length: TCP follows it directly when `next header` says TCP.
const IPV6_HEADER_BYTES: usize = 40;
/// Up to and including the TCP flags.
const TCP_HEADER_START: usize = tcp::FLAGS as usize + 1;
/// What one read copies: the longer fixed IP header and the start of a TCP header after it (past
/// an IPv4 header, part of the TCP header or the payload, unused).
const COPIED: usize = IPV6_HEADER_BYTES + TCP_HEADER_START;

/// An IP header, and what follows it.
pub struct IpHeader {
    at: u64,
    bytes: [u8; COPIED],
}

impl IpHeader {
    #[inline(always)]
    pub fn read(at: u64) -> Option<Self> {
        let mut header = IpHeader {
            at,
            bytes: [0; COPIED],
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
                self.at + IPV6_HEADER_BYTES as u64,
            )),
        }
    }

    /// Both addresses: the destination is this host's side of an incoming segment.
    #[inline(always)]
    pub fn addresses(&self, family: u16) -> Addresses {
        read_addresses(family, &SEGMENT, |offset, dst| {
            let start = offset as usize;
            dst.copy_from_slice(&self.bytes[start..start + dst.len()]);
        })
    }

    /// The TCP header at `at`: already copied when it follows a fixed-size IP header, else read.
    #[inline(always)]
    pub fn tcp_header(&self, at: u64) -> Option<TcpHeader> {
        let copied = |start: usize| {
            let mut header = TcpHeader {
                bytes: [0; TCP_HEADER_START],
            };
            header
                .bytes
                .copy_from_slice(&self.bytes[start..start + TCP_HEADER_START]);
            Some(header)
        };
        let after_ip = at.wrapping_sub(self.at);
        if after_ip == IPV4_HEADER_BYTES as u64 {
            copied(IPV4_HEADER_BYTES)
        } else if after_ip == IPV6_HEADER_BYTES as u64 {
            copied(IPV6_HEADER_BYTES)
        } else {
            TcpHeader::read(at)
        }
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
