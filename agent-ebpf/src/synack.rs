//! Counts SYN-ACK retransmits per listener, in the kernel (see `tcpwhy_common::synack`), in a
//! per-CPU map: no contention on the hot path, exact counts summed by user space.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tcpwhy_common::{
    maps::RetransmitKind,
    synack::{ListenerId, SynAckRetransmits},
};

use crate::{
    context::tracepoint_field,
    flow::record_family,
    kernel::socket_netns,
    maps::{SYNACK_RETRANSMITS, count_retransmit},
};

const AF_INET6: u16 = 10;

#[tracepoint(category = "tcp", name = "tcp_retransmit_synack")]
pub fn tcp_retransmit_synack(ctx: TracePointContext) -> u32 {
    let (Ok(listener), Ok(port)) = (
        tracepoint_field::<u64>(&ctx, |l| &l.tp_synack_skaddr),
        tracepoint_field::<u16>(&ctx, |l| &l.tp_synack_sport),
    ) else {
        return 0;
    };
    let family = record_family(&ctx, |l| &l.tp_synack_family, listener);
    let mut id = ListenerId {
        netns: socket_netns(listener),
        port,
        family,
        addr: [0; 16],
    };
    let mut remote = [0u8; 16];
    if family == AF_INET6 {
        id.addr = tracepoint_field(&ctx, |l| &l.tp_synack_saddr_v6).unwrap_or([0; 16]);
        remote = tracepoint_field(&ctx, |l| &l.tp_synack_daddr_v6).unwrap_or([0; 16]);
    } else {
        let local: [u8; 4] = tracepoint_field(&ctx, |l| &l.tp_synack_saddr).unwrap_or([0; 4]);
        let peer: [u8; 4] = tracepoint_field(&ctx, |l| &l.tp_synack_daddr).unwrap_or([0; 4]);
        id.addr[..4].copy_from_slice(&local);
        remote[..4].copy_from_slice(&peer);
    }
    let remote_port = tracepoint_field::<u16>(&ctx, |l| &l.tp_synack_dport).unwrap_or(0);
    count_retransmit(RetransmitKind::SynAck);

    if let Some(stats) = SYNACK_RETRANSMITS.get_ptr_mut(id) {
        // SAFETY: the pointer comes from the map and the value is this CPU's own copy.
        unsafe {
            (*stats).count += 1;
            (*stats).remote_addr = remote;
            (*stats).remote_port = remote_port;
        }
    } else {
        let stats = SynAckRetransmits {
            count: 1,
            remote_addr: remote,
            remote_port,
            _pad: [0; 6],
        };
        let _ = SYNACK_RETRANSMITS.insert(id, stats, 0);
    }
    0
}
