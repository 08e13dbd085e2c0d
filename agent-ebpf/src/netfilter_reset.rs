//! Resets built by netfilter: a `reject with tcp reset` rule (iptables `REJECT --reject-with
//! tcp-reset`) answers the segment it matched with an RST from `nf_send_reset` (IPv4) or
//! `nf_send_reset6`, outside the TCP stack, so no TCP reset hook sees it. Function probes only
//! (no tracepoint fires there); the functions live in the `nf_reject_ipv4`/`nf_reject_ipv6`
//! modules, loaded with the first rule that needs them.

use aya_ebpf::{
    macros::{fentry, kprobe},
    programs::{FEntryContext, ProbeContext},
};
use tcpwhy_common::{
    layout::KernelLayout,
    reset::{NO_REASON, ResetOrigin},
};

use crate::{
    kernel::Probed,
    layout::offset,
    reset_event::{Sighting, report},
};

type Position = fn(&KernelLayout) -> &u32;

/// The rejected segment is the only evidence: it names both ends (its destination is this
/// host's side) and the device it arrived on names the namespace. The socket netfilter may pass
/// is the one that sent the segment, not one this reset is for.
#[inline(always)]
fn on_reject<C: aya_ebpf::EbpfContext>(ctx: &C, oldskb: u64) {
    // Probed even under fentry: the argument picked is one of two, of different types.
    report(
        ctx,
        Probed,
        &Sighting {
            origin: ResetOrigin::NetfilterReset,
            sk: 0,
            skb: oldskb,
            reason: NO_REASON,
        },
    );
}

/// The segment's argument. A BTF context may only be read at fixed offsets, and so may a
/// kprobe's registers: a branch per position would be merged by the compiler into one read at an
/// offset chosen at run time, which the verifier refuses. So both candidates are read, each at
/// its own fixed place, and the layout picks one.
#[inline(always)]
fn pick(position: Position, second: Option<u64>, third: Option<u64>) -> Option<u64> {
    match offset(position) {
        1 => second,
        2 => third,
        _ => None,
    }
}

#[inline(always)]
fn fentry_skb(ctx: &FEntryContext, position: Position) -> Option<u64> {
    pick(position, Some(ctx.arg(1)), Some(ctx.arg(2)))
}

#[inline(always)]
fn kprobe_skb(ctx: &ProbeContext, position: Position) -> Option<u64> {
    pick(position, ctx.arg(1), ctx.arg(2))
}

#[fentry(function = "nf_send_reset")]
pub fn nf_send_reset_fentry(ctx: FEntryContext) -> i32 {
    if let Some(skb) = fentry_skb(&ctx, |l| &l.nf_send_reset_skb_arg) {
        on_reject(&ctx, skb);
    }
    0
}

#[kprobe]
pub fn nf_send_reset_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(skb) = kprobe_skb(&ctx, |l| &l.nf_send_reset_skb_arg) {
        on_reject(&ctx, skb);
    }
    0
}

#[fentry(function = "nf_send_reset6")]
pub fn nf_send_reset6_fentry(ctx: FEntryContext) -> i32 {
    if let Some(skb) = fentry_skb(&ctx, |l| &l.nf_send_reset6_skb_arg) {
        on_reject(&ctx, skb);
    }
    0
}

#[kprobe]
pub fn nf_send_reset6_kprobe(ctx: ProbeContext) -> u32 {
    if let Some(skb) = kprobe_skb(&ctx, |l| &l.nf_send_reset6_skb_arg) {
        on_reject(&ctx, skb);
    }
    0
}
