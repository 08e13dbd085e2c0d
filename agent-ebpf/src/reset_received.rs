//! Probes on resets this host receives: `tcp:tcp_receive_reset`, BTF then classic. The hook runs
//! in `tcp_reset()` before the socket is closed, so the state read is the one the RST hit.

use aya_ebpf::{
    EbpfContext,
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use tcpwhy_common::reset::{NO_REASON, ResetOrigin};

use crate::{
    context::tracepoint_field,
    kernel::{Memory, Probed, Typed},
    reset_event::{Sighting, report},
};

/// Reports the reset with the state it hit (which marks a connecting socket refused).
#[inline(always)]
fn received<C: EbpfContext, M: Memory>(ctx: &C, memory: M, sk: u64) {
    report(
        ctx,
        memory,
        &Sighting {
            origin: ResetOrigin::ReceiveReset,
            sk,
            skb: 0,
            reason: NO_REASON,
        },
    );
}

#[tracepoint(category = "tcp", name = "tcp_receive_reset")]
pub fn tcp_receive_reset(ctx: TracePointContext) -> u32 {
    let sk = tracepoint_field::<u64>(&ctx, |l| &l.tp_receive_reset_skaddr).unwrap_or(0);
    received(&ctx, Probed, sk);
    0
}

#[btf_tracepoint(function = "tcp_receive_reset")]
pub fn tcp_receive_reset_btf(ctx: BtfTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    received(&ctx, Typed, sk);
    0
}
