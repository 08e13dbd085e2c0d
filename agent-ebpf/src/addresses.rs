//! A pair of addresses read by address family, wherever they are kept: in a socket, in a
//! tracepoint record, or in a segment's IP header. IPv4 fills the first 4 bytes, IPv6 all 16.

use tcpwhy_common::family::{AF_INET, AF_INET6};

use crate::kernel::{Field, Memory};

/// This host's address and the peer's; zero where unknown or unreadable.
pub struct Addresses {
    pub local: [u8; 16],
    pub remote: [u8; 16],
}

/// Where each family keeps the pair, as `(local, remote)` locations that a reader understands.
pub struct Locations<L> {
    pub ipv4: (L, L),
    pub ipv6: (L, L),
}

/// Reads the pair for `family` with `read(location, destination)`; other families read nothing.
#[inline(always)]
pub fn read_addresses<L: Copy>(
    family: u16,
    at: &Locations<L>,
    read: impl Fn(L, &mut [u8]),
) -> Addresses {
    let mut pair = Addresses {
        local: [0; 16],
        remote: [0; 16],
    };
    match family {
        AF_INET => {
            read(at.ipv4.0, &mut pair.local[..4]);
            read(at.ipv4.1, &mut pair.remote[..4]);
        }
        AF_INET6 => {
            read(at.ipv6.0, &mut pair.local);
            read(at.ipv6.1, &mut pair.remote);
        }
        _ => {}
    }
    pair
}

/// Where `sock_common` keeps them (full, request and timewait sockets alike).
const SOCKET: Locations<Field> = Locations {
    ipv4: (|l| &l.skc_rcv_saddr, |l| &l.skc_daddr),
    ipv6: (|l| &l.skc_v6_rcv_saddr, |l| &l.skc_v6_daddr),
};

/// A socket's addresses.
#[inline(always)]
pub fn of_socket<M: Memory>(memory: M, sk: u64, family: u16) -> Addresses {
    read_addresses(family, &SOCKET, |field, dst| {
        let _ = memory.read_address(sk, field, dst);
    })
}
