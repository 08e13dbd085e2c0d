//! Counts retransmitted segments by kind. Retransmits can be frequent on a lossy host, so they
//! are only counted here (per-CPU, no events); SYN-ACKs are counted in `synack`.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tcpwhy_common::{maps::RetransmitKind, tcp_state};

use crate::{context::tracepoint_field, maps::count_retransmit};

#[tracepoint(category = "tcp", name = "tcp_retransmit_skb")]
pub fn tcp_retransmit_skb(ctx: TracePointContext) -> u32 {
    let state = tracepoint_field::<i32>(&ctx, |l| &l.tp_retransmit_state).unwrap_or(0);
    count_retransmit(if state == i32::from(tcp_state::SYN_SENT) {
        RetransmitKind::Syn
    } else {
        RetransmitKind::Data
    });
    0
}
