//! Building [`FlowKey`]s: from a tracepoint record's endpoint fields, or from a socket.

use aya_ebpf::programs::TracePointContext;
use tcpwhy_common::{flow::FlowKey, layout::KernelLayout};

use crate::{
    context::tracepoint_field,
    kernel::{read, read_bytes, socket_netns},
};

const AF_INET6: u16 = 10;

type Field = fn(&KernelLayout) -> &u32;

/// Where a tracepoint keeps a connection's endpoints (all TCP tracepoints share the shape:
/// ports in host order, IPv4 addresses and IPv6 (or IPv4-mapped) addresses as bytes).
pub struct EndpointFields {
    pub sport: Field,
    pub dport: Field,
    pub family: Field,
    pub saddr: Field,
    pub daddr: Field,
    pub saddr_v6: Field,
    pub daddr_v6: Field,
}

#[inline(always)]
pub fn from_tracepoint(
    ctx: &TracePointContext,
    sk: u64,
    fields: &EndpointFields,
    tag: u16,
) -> FlowKey {
    let family = record_family(ctx, fields.family, sk);
    let mut key = FlowKey {
        netns: socket_netns(sk),
        family,
        local_port: tracepoint_field::<u16>(ctx, fields.sport).unwrap_or(0),
        remote_port: tracepoint_field::<u16>(ctx, fields.dport).unwrap_or(0),
        tag,
        local_addr: [0; 16],
        remote_addr: [0; 16],
    };
    if family == AF_INET6 {
        key.local_addr = tracepoint_field(ctx, fields.saddr_v6).unwrap_or([0; 16]);
        key.remote_addr = tracepoint_field(ctx, fields.daddr_v6).unwrap_or([0; 16]);
    } else {
        let local: [u8; 4] = tracepoint_field(ctx, fields.saddr).unwrap_or([0; 4]);
        let remote: [u8; 4] = tracepoint_field(ctx, fields.daddr).unwrap_or([0; 4]);
        key.local_addr[..4].copy_from_slice(&local);
        key.remote_addr[..4].copy_from_slice(&remote);
    }
    key
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
    let mut key = FlowKey {
        netns: socket_netns(sk),
        family,
        local_port: read::<u16>(sk, |l| &l.skc_num).unwrap_or(0),
        remote_port: u16::from_be(read::<u16>(sk, |l| &l.skc_dport).unwrap_or(0)),
        tag,
        local_addr: [0; 16],
        remote_addr: [0; 16],
    };
    if family == AF_INET6 {
        let _ = read_bytes(sk, |l| &l.skc_v6_rcv_saddr, &mut key.local_addr);
        let _ = read_bytes(sk, |l| &l.skc_v6_daddr, &mut key.remote_addr);
    } else {
        let _ = read_bytes(sk, |l| &l.skc_rcv_saddr, &mut key.local_addr[..4]);
        let _ = read_bytes(sk, |l| &l.skc_daddr, &mut key.remote_addr[..4]);
    }
    key
}
