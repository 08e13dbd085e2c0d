//! Retransmits: counted by kind, and per flow (count, first and last time, owner) in a per-CPU
//! LRU map, so that user space can summarise them per remote endpoint and read their timing
//! without an event per retransmit.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{fentry, kprobe, tracepoint},
    programs::{FEntryContext, ProbeContext, TracePointContext},
};
use tcpwhy_common::{
    flow::{FlowKey, FlowRetransmits},
    maps::RetransmitKind,
    tcp_state,
};

use crate::{
    addresses::Locations,
    context::tracepoint_field,
    flow::{EndpointFields, from_socket, from_tracepoint},
    kernel::Probed,
    maps::{RETRANSMIT_FLOWS, count_retransmit, update_per_cpu},
    sockets::recorded_owner,
};

const RETRANSMIT_FIELDS: EndpointFields = EndpointFields {
    sport: |l| &l.tp_retransmit_sport,
    dport: |l| &l.tp_retransmit_dport,
    family: |l| &l.tp_retransmit_family,
    addresses: Locations {
        ipv4: (|l| &l.tp_retransmit_saddr, |l| &l.tp_retransmit_daddr),
        ipv6: (|l| &l.tp_retransmit_saddr_v6, |l| &l.tp_retransmit_daddr_v6),
    },
};

#[tracepoint(category = "tcp", name = "tcp_retransmit_skb")]
pub fn tcp_retransmit_skb(ctx: TracePointContext) -> u32 {
    let state = tracepoint_field::<i32>(&ctx, |l| &l.tp_retransmit_state).unwrap_or(0);
    let kind = if state == i32::from(tcp_state::SYN_SENT) {
        RetransmitKind::Syn
    } else {
        RetransmitKind::Data
    };
    let sk = tracepoint_field::<u64>(&ctx, |l| &l.tp_retransmit_skaddr).unwrap_or(0);
    count_retransmit(kind);
    count_flow(
        sk,
        from_tracepoint(&ctx, sk, &RETRANSMIT_FIELDS, kind as u16),
    );
    0
}

/// A tail loss probe re-sends the last segment before any timeout: visible only to a
/// function probe on `tcp_send_loss_probe(sk)`.
#[inline(always)]
fn tail_loss_probe(sk: u64) {
    count_retransmit(RetransmitKind::TailLossProbe);
    count_flow(
        sk,
        from_socket(Probed, sk, RetransmitKind::TailLossProbe as u16),
    );
}

#[fentry(function = "tcp_send_loss_probe")]
pub fn tcp_send_loss_probe_fentry(ctx: FEntryContext) -> i32 {
    tail_loss_probe(ctx.arg(0));
    0
}

#[kprobe]
pub fn tcp_send_loss_probe_kprobe(ctx: ProbeContext) -> u32 {
    tail_loss_probe(ctx.arg(0).unwrap_or(0));
    0
}

#[inline(always)]
fn count_flow(sk: u64, key: FlowKey) {
    // SAFETY: helper call without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let owner = recorded_owner(sk);
    update_per_cpu(&RETRANSMIT_FLOWS, &key, |stats: &mut FlowRetransmits| {
        stats.count += 1;
        stats.last_ns = now;
        if stats.first_ns == 0 {
            stats.first_ns = now;
        }
        if owner.is_known() {
            stats.owner_pid = owner.pid;
            stats.owner_comm = owner.comm;
        }
    });
}
