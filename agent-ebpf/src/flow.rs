//! Building [`FlowKey`]s: from a tracepoint record's endpoint fields, or from a socket.

use aya_ebpf::programs::TracePointContext;
use tcpwhy_common::flow::FlowKey;

use crate::{
    addresses::{Addresses, Locations, of_socket, read_addresses},
    context::{tracepoint_bytes, tracepoint_field},
    kernel::{Field, Memory, Probed, read, socket_netns},
};

/// Where a tracepoint keeps a connection's endpoints (all TCP tracepoints share the shape:
/// ports in host order, IPv4 addresses and IPv6 (or IPv4-mapped) addresses as bytes).
pub struct EndpointFields {
    pub sport: Field,
    pub dport: Field,
    pub family: Field,
    pub addresses: Locations<Field>,
}

#[inline(always)]
pub fn from_tracepoint(
    ctx: &TracePointContext,
    sk: u64,
    fields: &EndpointFields,
    tag: u16,
) -> FlowKey {
    let family = record_family(ctx, fields.family, sk);
    let Addresses { local, remote } = read_addresses(family, &fields.addresses, |field, dst| {
        let _ = tracepoint_bytes(ctx, field, dst);
    });
    FlowKey {
        netns: socket_netns(Probed, sk),
        family,
        local_port: tracepoint_field::<u16>(ctx, fields.sport).unwrap_or(0),
        remote_port: tracepoint_field::<u16>(ctx, fields.dport).unwrap_or(0),
        tag,
        local_addr: local,
        remote_addr: remote,
    }
}

/// A record's address family. Records without one (Linux 5.10's TCP tracepoints) take the
/// socket's: the family the kernel chose the record's address fields by.
#[inline(always)]
pub fn record_family(ctx: &TracePointContext, field: Field, sk: u64) -> u16 {
    tracepoint_field::<u16>(ctx, field)
        .or_else(|_| read::<u16>(sk, |l| &l.skc_family))
        .unwrap_or(0)
}

/// The same key read from the socket itself (for programs that get no record).
#[inline(always)]
pub fn from_socket<M: Memory>(memory: M, sk: u64, tag: u16) -> FlowKey {
    let family = memory.read::<u16>(sk, |l| &l.skc_family).unwrap_or(0);
    let Addresses { local, remote } = of_socket(memory, sk, family);
    FlowKey {
        netns: socket_netns(memory, sk),
        family,
        local_port: local_port(memory, sk),
        remote_port: u16::from_be(memory.read::<u16>(sk, |l| &l.skc_dport).unwrap_or(0)),
        tag,
        local_addr: local,
        remote_addr: remote,
    }
}

/// A socket's local port. A socket moving to CLOSE has released it (`inet_put_port` zeroes
/// `skc_num` before the state changes) but still holds it in `inet_sport`, which is what the
/// tracepoint records report. (An inet_sock field lies beyond struct sock: read, not a typed
/// load; only closing sockets pay for it.)
#[inline(always)]
pub fn local_port<M: Memory>(memory: M, sk: u64) -> u16 {
    match memory.read::<u16>(sk, |l| &l.skc_num) {
        Ok(0) | Err(_) => u16::from_be(read::<u16>(sk, |l| &l.inet_sport).unwrap_or(0)),
        Ok(port) => port,
    }
}
