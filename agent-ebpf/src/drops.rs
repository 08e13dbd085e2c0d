//! TCP segments the kernel freed with a drop reason: `skb:kfree_skb`, BTF then classic.
//!
//! The hook fires for every packet the host frees, so the cheapest tests come first (the
//! record's protocol, the reason) and nothing is sent per packet: drops are counted per (reason,
//! namespace, local endpoint) in a per-CPU map and per reason in a per-CPU array.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use tcpwhy_common::drop::{DropCounts, DropKey, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP};

use crate::{
    addresses::Addresses,
    context::tracepoint_field,
    kernel::{Memory, Probed, Typed, device_netns, socket_netns},
    layout::offset,
    maps::{TCP_DROPS, count_drop_reason, update_per_cpu},
    segment::IpHeader,
};

#[tracepoint(category = "skb", name = "kfree_skb")]
pub fn kfree_skb(ctx: TracePointContext) -> u32 {
    let Ok(protocol) = tracepoint_field::<u16>(&ctx, |l| &l.tp_kfree_skb_protocol) else {
        return 0;
    };
    if protocol != ETH_P_IP && protocol != ETH_P_IPV6 {
        return 0;
    }
    // A kernel without the field (before 5.17) says nothing about why: user space does not
    // attach there, and this keeps a forced attach from counting reasonless frees.
    let Ok(reason) = tracepoint_field::<u32>(&ctx, |l| &l.tp_kfree_skb_reason) else {
        return 0;
    };
    if is_quiet(reason) {
        return 0;
    }
    let skb = tracepoint_field::<u64>(&ctx, |l| &l.tp_kfree_skb_skbaddr).unwrap_or(0);
    let rx_sk = tracepoint_field::<u64>(&ctx, |l| &l.tp_kfree_skb_rx_sk).unwrap_or(0);
    count_if_tcp(Probed, reason, skb, rx_sk);
    0
}

#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb_btf(ctx: BtfTracePointContext) -> i32 {
    // Arguments: skb, location[, reason (≥ 5.17)[, rx_sk (≥ 6.12)]]. The verifier prunes the
    // reads the layout rules out, so each is only checked where the kernel passes it. The
    // reason comes first here: reading an argument is free, the protocol is a memory read.
    let arity = offset(|l| &l.tp_btf_kfree_skb_arity);
    if arity < 3 {
        return 0;
    }
    let reason: u32 = ctx.arg(2);
    if is_quiet(reason) {
        return 0;
    }
    let skb: u64 = ctx.arg(0);
    let protocol = u16::from_be(Typed.read::<u16>(skb, |l| &l.skb_protocol).unwrap_or(0));
    if protocol != ETH_P_IP && protocol != ETH_P_IPV6 {
        return 0;
    }
    let rx_sk: u64 = if arity >= 4 { ctx.arg(3) } else { 0 };
    count_if_tcp(Typed, reason, skb, rx_sk);
    0
}

/// No drop, or a drop the kernel gave no reason for: nothing to explain, and by far the most
/// frequent frees. Also a closing socket's queue purge (on nearly every connection), and
/// segments for no socket where the reset sent for each is seen (see the layout's fields).
#[inline(always)]
fn is_quiet(reason: u32) -> bool {
    reason <= offset(|l| &l.drop_reason_not_specified)
        || reason == offset(|l| &l.drop_reason_queue_purge)
        || reason == offset(|l| &l.drop_reason_no_socket_quiet)
}

/// Counts a dropped IP segment if it is TCP.
#[inline(always)]
fn count_if_tcp<M: Memory>(memory: M, reason: u32, skb: u64, rx_sk: u64) {
    let (Ok(head), Ok(network)) = (
        memory.read::<u64>(skb, |l| &l.skb_head),
        memory.read::<u16>(skb, |l| &l.skb_network_header),
    ) else {
        return;
    };
    // The transport header may not be set yet where IP drops a segment: derive it.
    let Some(ip_header) = IpHeader::read(head + u64::from(network)) else {
        return;
    };
    let (Some(family), Some((IPPROTO_TCP, tcp))) = (ip_header.family(), ip_header.transport())
    else {
        return;
    };
    let Some(tcp_header) = ip_header.tcp_header(tcp) else {
        return;
    };
    let (source_port, destination_port) = (tcp_header.source_port(), tcp_header.destination_port());

    // The socket the kernel matched (rx_sk), else the one attached to the segment: its sender
    // for an outgoing segment, or the receiver that early demux found for an incoming one.
    let sk = if rx_sk != 0 {
        rx_sk
    } else {
        memory.read::<u64>(skb, |l| &l.skb_sk).unwrap_or(0)
    };
    let incoming = sk == 0 || memory.read::<u16>(sk, |l| &l.skc_num) == Ok(destination_port);
    let Addresses { local, remote } = ip_header.addresses(family);
    let (local_port, remote_port, local, remote) = if incoming {
        (destination_port, source_port, local, remote)
    } else {
        (source_port, destination_port, remote, local)
    };
    let (netns, state) = if sk != 0 {
        (
            socket_netns(memory, sk),
            memory.read::<u8>(sk, |l| &l.skc_state).unwrap_or(0),
        )
    } else {
        (device_netns(memory, skb), 0)
    };
    let key = DropKey {
        reason,
        netns,
        port: local_port,
        family,
        addr: local,
    };
    // SAFETY: helper call without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    count_drop_reason(reason);
    update_per_cpu(&TCP_DROPS, &key, |counts: &mut DropCounts| {
        counts.count += 1;
        counts.last_ns = now;
        if counts.first_ns == 0 {
            counts.first_ns = now;
        }
        counts.remote_addr = remote;
        counts.remote_port = remote_port;
        counts.state = state;
    });
}
