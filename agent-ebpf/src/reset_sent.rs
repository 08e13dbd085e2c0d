//! Probes on resets this host sends, one program per attach method of the fallback chain:
//! the `tcp:tcp_send_reset` tracepoint (BTF, then classic), and function probes (fentry, then
//! kprobe) on `tcp_v4_send_reset`, `tcp_v6_send_reset` and `tcp_send_active_reset` for kernels
//! where the tracepoint is missing or blind to resets sent without a socket (before 6.10).

use aya_ebpf::{
    macros::{btf_tracepoint, fentry, kprobe, tracepoint},
    programs::{BtfTracePointContext, FEntryContext, ProbeContext, TracePointContext},
};
use tcpwhy_common::reset::{NO_REASON, ResetOrigin};

use crate::{
    context::tracepoint_field,
    kernel::{Probed, Typed},
    layout::offset,
    reset_event::{Sighting, report},
};

#[tracepoint(category = "tcp", name = "tcp_send_reset")]
pub fn tcp_send_reset(ctx: TracePointContext) -> u32 {
    let skb = tracepoint_field::<u64>(&ctx, |l| &l.tp_send_reset_skbaddr).unwrap_or(0);
    report(
        &ctx,
        Probed,
        &Sighting {
            origin: origin_of_tracepoint(skb),
            sk: tracepoint_field::<u64>(&ctx, |l| &l.tp_send_reset_skaddr).unwrap_or(0),
            skb,
            reason: tracepoint_field::<u32>(&ctx, |l| &l.tp_send_reset_reason).unwrap_or(NO_REASON),
        },
    );
    0
}

#[btf_tracepoint(function = "tcp_send_reset")]
pub fn tcp_send_reset_btf(ctx: BtfTracePointContext) -> i32 {
    let skb: u64 = ctx.arg(1);
    // The verifier prunes the branch the layout rules out, so the 3-argument read is only
    // checked on kernels whose tracepoint has a reason.
    let reason = if offset(|l| &l.tp_btf_send_reset_has_reason) != 0 {
        ctx.arg::<u32>(2)
    } else {
        NO_REASON
    };
    report(
        &ctx,
        Typed,
        &Sighting {
            origin: origin_of_tracepoint(skb),
            sk: ctx.arg(0),
            skb,
            reason,
        },
    );
    0
}

/// The tracepoint fires with a segment when replying to one, and without one for an active reset.
fn origin_of_tracepoint(skb: u64) -> ResetOrigin {
    if skb == 0 {
        ResetOrigin::SendResetActive
    } else {
        ResetOrigin::SendResetReply
    }
}

/// `tcp_v4_send_reset(sk, skb[, reason])`, `tcp_v6_send_reset(sk, skb[, reason])` and
/// `tcp_send_active_reset(sk, priority[, reason])`: the reason is the third argument on ≥ 6.10.
fn function_sighting(origin: ResetOrigin, sk: u64, skb: u64, reason: Option<u32>) -> Sighting {
    Sighting {
        origin,
        sk,
        skb,
        reason: reason.unwrap_or(NO_REASON),
    }
}

macro_rules! reason_arg {
    ($ctx:expr, $read:expr) => {
        if offset(|l| &l.fn_reset_has_reason) != 0 {
            $read
        } else {
            None
        }
    };
}

#[fentry(function = "tcp_v4_send_reset")]
pub fn tcp_v4_send_reset_fentry(ctx: FEntryContext) -> i32 {
    let reason = reason_arg!(ctx, Some(ctx.arg::<u32>(2)));
    report(
        &ctx,
        Typed,
        &function_sighting(ResetOrigin::V4SendReset, ctx.arg(0), ctx.arg(1), reason),
    );
    0
}

#[fentry(function = "tcp_v6_send_reset")]
pub fn tcp_v6_send_reset_fentry(ctx: FEntryContext) -> i32 {
    let reason = reason_arg!(ctx, Some(ctx.arg::<u32>(2)));
    report(
        &ctx,
        Typed,
        &function_sighting(ResetOrigin::V6SendReset, ctx.arg(0), ctx.arg(1), reason),
    );
    0
}

#[fentry(function = "tcp_send_active_reset")]
pub fn tcp_send_active_reset_fentry(ctx: FEntryContext) -> i32 {
    let reason = reason_arg!(ctx, Some(ctx.arg::<u32>(2)));
    report(
        &ctx,
        Typed,
        &function_sighting(ResetOrigin::SendActiveReset, ctx.arg(0), 0, reason),
    );
    0
}

#[kprobe]
pub fn tcp_v4_send_reset_kprobe(ctx: ProbeContext) -> u32 {
    let reason = reason_arg!(ctx, ctx.arg::<u32>(2));
    let (sk, skb) = (ctx.arg(0).unwrap_or(0), ctx.arg(1).unwrap_or(0));
    report(
        &ctx,
        Probed,
        &function_sighting(ResetOrigin::V4SendReset, sk, skb, reason),
    );
    0
}

#[kprobe]
pub fn tcp_v6_send_reset_kprobe(ctx: ProbeContext) -> u32 {
    let reason = reason_arg!(ctx, ctx.arg::<u32>(2));
    let (sk, skb) = (ctx.arg(0).unwrap_or(0), ctx.arg(1).unwrap_or(0));
    report(
        &ctx,
        Probed,
        &function_sighting(ResetOrigin::V6SendReset, sk, skb, reason),
    );
    0
}

#[kprobe]
pub fn tcp_send_active_reset_kprobe(ctx: ProbeContext) -> u32 {
    let reason = reason_arg!(ctx, ctx.arg::<u32>(2));
    let sk = ctx.arg(0).unwrap_or(0);
    report(
        &ctx,
        Probed,
        &function_sighting(ResetOrigin::SendActiveReset, sk, 0, reason),
    );
    0
}
