//! Every TCP state change (`sock:inet_sock_set_state`, BTF then classic): counted by
//! transition, and the evidence that outlives it kept: the socket's record (`sockets`), its
//! owner (`owners`), handshake and round-trip times (`latency`), connections the kernel gave up
//! on (`silent_close`), connects that failed (a ring record each, or a count for refused
//! ones), and, in the BTF program, the backlog listen() asked for (`listen_backlog`).

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use aya_log_ebpf::debug;
use tcpwhy_common::{
    flow::{ConnectFailure, FlowKey},
    maps::{CONNECT_FAILURES_RING_BYTES, Counter},
    owner::Owner,
    socket::is_timed,
    tcp_state as st,
};

use crate::{
    addresses::Locations,
    context::tracepoint_field,
    flow::{EndpointFields, from_socket, from_tracepoint},
    kernel::{Memory, Probed, Typed},
    latency, listen_backlog,
    maps::{CONNECT_FAILURES, count, count_lifetime, count_transition, submit_flags},
    owners, silent_close,
    sockets::{self, Ended},
};

const IPPROTO_TCP: u16 = 6;

/// Where a state-change program finds a connection's endpoints and reads its socket: the classic
/// tracepoint's record carries the endpoints; the BTF tracepoint has only the socket, which it
/// reads with typed loads.
pub trait Endpoints: Copy {
    type Memory: Memory;
    fn memory(self) -> Self::Memory;
    fn flow_key(self, sk: u64, tag: u16) -> FlowKey;
}

/// The classic tracepoint's record.
#[derive(Clone, Copy)]
pub struct Record<'a>(&'a TracePointContext);

const SET_STATE_FIELDS: EndpointFields = EndpointFields {
    sport: |l| &l.tp_set_state_sport,
    dport: |l| &l.tp_set_state_dport,
    family: |l| &l.tp_set_state_family,
    addresses: Locations {
        ipv4: (|l| &l.tp_set_state_saddr, |l| &l.tp_set_state_daddr),
        ipv6: (|l| &l.tp_set_state_saddr_v6, |l| &l.tp_set_state_daddr_v6),
    },
};

impl Endpoints for Record<'_> {
    type Memory = Probed;
    #[inline(always)]
    fn memory(self) -> Probed {
        Probed
    }
    #[inline(always)]
    fn flow_key(self, sk: u64, tag: u16) -> FlowKey {
        from_tracepoint(self.0, sk, &SET_STATE_FIELDS, tag)
    }
}

/// The socket alone (the BTF tracepoint).
#[derive(Clone, Copy)]
pub struct Socket;

impl Endpoints for Socket {
    type Memory = Typed;
    #[inline(always)]
    fn memory(self) -> Typed {
        Typed
    }
    #[inline(always)]
    fn flow_key(self, sk: u64, tag: u16) -> FlowKey {
        from_socket(Typed, sk, tag)
    }
}

#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    if tracepoint_field::<u16>(&ctx, |l| &l.tp_set_state_protocol) != Ok(IPPROTO_TCP) {
        return 0;
    }
    let (Ok(sk), Ok(old), Ok(new)) = (
        tracepoint_field::<u64>(&ctx, |l| &l.tp_set_state_skaddr),
        tracepoint_field::<i32>(&ctx, |l| &l.tp_set_state_oldstate),
        tracepoint_field::<i32>(&ctx, |l| &l.tp_set_state_newstate),
    ) else {
        debug!(&ctx, "inet_sock_set_state: record fields unreadable");
        return 0;
    };
    changed(Record(&ctx), sk, old as u8, new as u8);
    0
}

#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn inet_sock_set_state_btf(ctx: BtfTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    if Typed.read::<u16>(sk, |l| &l.sk_protocol) != Ok(IPPROTO_TCP) {
        return 0;
    }
    let (old, new): (i32, i32) = (ctx.arg(1), ctx.arg(2));
    if new as u8 == st::LISTEN {
        listen_backlog::from_syscall_registers();
    }
    changed(Socket, sk, old as u8, new as u8);
    0
}

#[inline(always)]
fn changed<E: Endpoints>(endpoints: E, sk: u64, old: u8, new: u8) {
    count_transition(old, new);
    silent_close::note(endpoints, sk, old, new);
    latency::state_changed(endpoints.memory(), sk, old, new);
    let owner = owners::revealed_by(endpoints.memory(), sk, old, new);
    if !owner.is_known() && !is_timed(old) && !is_timed(new) {
        return;
    }
    // A clock read costs about 60 ns on this project's VMs: only what starts a timed
    // state or measures one needs it, not a close or the end of a wait.
    let now = if is_timed(new) || old == st::SYN_SENT || old == st::ESTABLISHED {
        // SAFETY: helper call without preconditions.
        unsafe { bpf_ktime_get_ns() }
    } else {
        0
    };
    let endpoints_now = || endpoints.flow_key(sk, u16::from(new));
    match sockets::changed(sk, old, new, now, owner, endpoints_now) {
        Ended::ConnectFailed { refused: true, .. } => count(Counter::ConnectsRefused),
        Ended::ConnectFailed {
            waited_since,
            owner,
            ..
        } => report_connect_failure(endpoints, sk, now, waited_since, owner),
        Ended::Connected { since } => latency::connected(endpoints.memory(), sk, since, now),
        Ended::Established { since } if since != 0 => count_lifetime(now.saturating_sub(since)),
        _ => {}
    }
}

/// A connect() failed without an RST: it timed out, or its application gave up.
#[inline(always)]
fn report_connect_failure<E: Endpoints>(
    endpoints: E,
    sk: u64,
    now: u64,
    started: u64,
    owner: Owner,
) {
    let Some(mut entry) = CONNECT_FAILURES.reserve::<ConnectFailure>(0) else {
        count(Counter::EventsLost);
        return;
    };
    entry.write(ConnectFailure {
        timestamp_ns: now,
        waited_ns: if started == 0 {
            0
        } else {
            now.saturating_sub(started)
        },
        key: endpoints.flow_key(sk, u16::from(st::SYN_SENT)),
        owner_pid: owner.pid,
        owner_comm: owner.comm,
    });
    entry.submit(submit_flags(&CONNECT_FAILURES, CONNECT_FAILURES_RING_BYTES));
}
