//! Building [`FlowKey`]s: from a tracepoint record's endpoint fields, or from a socket.

use aya_ebpf::programs::TracePointContext;
use tcpwhy_common::{flow::FlowKey, layout::KernelLayout};

use crate::{
    addresses::{Addresses, Locations, of_socket, read_addresses},
    context::{tracepoint_bytes, tracepoint_field},
    kernel::{read, socket_netns},
};

type Field = fn(&KernelLayout) -> &u32;

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
        netns: socket_netns(sk),
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

/// The same key read from the socket itself (for function probes, which get no record).
#[inline(always)]
pub fn from_socket(sk: u64, tag: u16) -> FlowKey {
    let family = read::<u16>(sk, |l| &l.skc_family).unwrap_or(0);
    let Addresses { local, remote } = of_socket(sk, family);
    FlowKey {
        netns: socket_netns(sk),
        family,
        local_port: read::<u16>(sk, |l| &l.skc_num).unwrap_or(0),
        remote_port: u16::from_be(read::<u16>(sk, |l| &l.skc_dport).unwrap_or(0)),
        tag,
        local_addr: local,
        remote_addr: remote,
    }
}
