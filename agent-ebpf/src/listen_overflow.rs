//! Exact per-listener queue overflows from function probes (fentry, else kprobe), for kernels
//! that allow them (see `tcpwhy_common::listen_overflow`). The conditions are the kernel's own:
//! `sk_acceptq_is_full()` is `sk_ack_backlog > sk_max_ack_backlog`; the SYN queue is bounded by
//! the same limit.

use aya_ebpf::{
    macros::{fentry, kprobe},
    programs::{FEntryContext, ProbeContext},
};
use tcpwhy_common::{listen_overflow::ListenOverflows, synack::ListenerId};

use crate::{
    addresses::of_socket,
    kernel::{Probed, read, socket_netns},
    maps::{LISTEN_OVERFLOWS, LISTENER_ARRIVALS, add_per_cpu, update_per_cpu},
};

/// What a listener's queues look like right now.
struct Queues {
    accept_len: u32,
    limit: u32,
    half_open: u32,
}

#[inline(always)]
fn queues(listener: u64) -> Option<Queues> {
    Some(Queues {
        accept_len: read::<u32>(listener, |l| &l.sk_ack_backlog).ok()?,
        limit: read::<u32>(listener, |l| &l.sk_max_ack_backlog).ok()?,
        half_open: read::<u32>(listener, |l| &l.icsk_accept_queue_qlen).unwrap_or(0),
    })
}

#[inline(always)]
fn listener_id(listener: u64) -> ListenerId {
    let family = read::<u16>(listener, |l| &l.skc_family).unwrap_or(0);
    ListenerId {
        netns: socket_netns(Probed, listener),
        port: read::<u16>(listener, |l| &l.skc_num).unwrap_or(0),
        family,
        addr: of_socket(Probed, listener, family).local,
    }
}

/// Adds one to the listener's counters through `bump` and records the queue lengths.
#[inline(always)]
fn count(listener: u64, queues: &Queues, bump: fn(&mut ListenOverflows)) {
    update_per_cpu(&LISTEN_OVERFLOWS, &listener_id(listener), |stats| {
        bump(stats);
        stats.queue_len = queues.accept_len;
        stats.queue_limit = queues.limit;
        stats.half_open = queues.half_open;
    });
}

/// Something that may grow a listener's queue arrived: user space leaves namespaces alone while
/// nothing did.
#[inline(always)]
fn arrived() {
    add_per_cpu(&LISTENER_ARRIVALS, 0, 1);
}

/// A SYN reached a listener (`tcp_conn_request`, listener is its third argument).
#[inline(always)]
fn on_syn(listener: u64) {
    arrived();
    let Some(q) = queues(listener) else { return };
    // Kernels disagree on whether a SYN queue of `limit` requests is full (>= before 6.x, >
    // since): count "at or over", which names the listener; the counters give the exact count.
    if q.half_open >= q.limit {
        count(listener, &q, |s| s.syn_queue_full += 1);
    }
    if q.accept_len > q.limit {
        count(listener, &q, |s| s.syn_accept_queue_full += 1);
    }
}

/// A handshake's final ACK is about to create the child socket (`tcp_v4/v6_syn_recv_sock`).
#[inline(always)]
fn on_final_ack(listener: u64) {
    arrived();
    let Some(q) = queues(listener) else { return };
    if q.accept_len > q.limit {
        count(listener, &q, |s| s.ack_accept_queue_full += 1);
    }
}

#[fentry(function = "tcp_conn_request")]
pub fn tcp_conn_request_fentry(ctx: FEntryContext) -> i32 {
    on_syn(ctx.arg(2));
    0
}

#[kprobe]
pub fn tcp_conn_request_kprobe(ctx: ProbeContext) -> u32 {
    on_syn(ctx.arg(2).unwrap_or(0));
    0
}

#[fentry(function = "tcp_v4_syn_recv_sock")]
pub fn tcp_v4_syn_recv_sock_fentry(ctx: FEntryContext) -> i32 {
    on_final_ack(ctx.arg(0));
    0
}

#[kprobe]
pub fn tcp_v4_syn_recv_sock_kprobe(ctx: ProbeContext) -> u32 {
    on_final_ack(ctx.arg(0).unwrap_or(0));
    0
}

#[fentry(function = "tcp_v6_syn_recv_sock")]
pub fn tcp_v6_syn_recv_sock_fentry(ctx: FEntryContext) -> i32 {
    on_final_ack(ctx.arg(0));
    0
}

#[kprobe]
pub fn tcp_v6_syn_recv_sock_kprobe(ctx: ProbeContext) -> u32 {
    on_final_ack(ctx.arg(0).unwrap_or(0));
    0
}
