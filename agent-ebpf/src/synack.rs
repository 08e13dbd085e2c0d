//! Counts SYN-ACK retransmits per listener, in the kernel (see `tcpwhy_common::synack`), in a
//! per-CPU map: no contention on the hot path, exact counts summed by user space.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tcpwhy_common::{
    maps::RetransmitKind,
    synack::{ListenerId, SynAckRetransmits},
};

use crate::{
    addresses::Locations,
    context::tracepoint_field,
    flow::{EndpointFields, from_tracepoint},
    maps::{SYNACK_RETRANSMITS, count_retransmit, update_per_cpu},
};

const SYNACK_FIELDS: EndpointFields = EndpointFields {
    sport: |l| &l.tp_synack_sport,
    dport: |l| &l.tp_synack_dport,
    family: |l| &l.tp_synack_family,
    addresses: Locations {
        ipv4: (|l| &l.tp_synack_saddr, |l| &l.tp_synack_daddr),
        ipv6: (|l| &l.tp_synack_saddr_v6, |l| &l.tp_synack_daddr_v6),
    },
};

#[tracepoint(category = "tcp", name = "tcp_retransmit_synack")]
pub fn tcp_retransmit_synack(ctx: TracePointContext) -> u32 {
    let Ok(listener) = tracepoint_field::<u64>(&ctx, |l| &l.tp_synack_skaddr) else {
        return 0;
    };
    let flow = from_tracepoint(&ctx, listener, &SYNACK_FIELDS, 0);
    let id = ListenerId {
        netns: flow.netns,
        port: flow.local_port,
        family: flow.family,
        addr: flow.local_addr,
    };
    count_retransmit(RetransmitKind::SynAck);
    update_per_cpu(&SYNACK_RETRANSMITS, &id, |stats: &mut SynAckRetransmits| {
        stats.count += 1;
        stats.remote_addr = flow.remote_addr;
        stats.remote_port = flow.remote_port;
    });
    0
}
