//! Builds a [`ResetEvent`] from the socket and segment a reset hook saw, and sends it.

use aya_ebpf::{EbpfContext, helpers::bpf_ktime_get_ns};
use aya_log_ebpf::debug;
use tcpwhy_common::{
    family::AF_INET6,
    maps::{Counter, EVENTS_RING_BYTES},
    owner::Owner,
    reset::{ResetEvent, ResetOrigin, evidence},
    tcp_state,
};

use crate::{
    addresses::{Addresses, of_socket},
    flow::local_port,
    kernel::{Memory, device_netns, read, socket_netns},
    maps::{EVENTS, count, submit_flags},
    reset_aggregate::{aggregate, within_record_budget},
    segment::{IpHeader, TcpHeader},
    sockets::{mark_refused, recorded_owner},
};

/// What a hook saw: the socket and the segment (either may be null) and the kernel's reason.
pub struct Sighting {
    pub origin: ResetOrigin,
    pub sk: u64,
    pub skb: u64,
    pub reason: u32,
}

/// Gathers the evidence and sends the event while this CPU's record budget lasts (or the ring
/// has room), else adds it to the aggregates; counts it as lost when neither has room.
#[inline(always)]
pub fn report<C: EbpfContext, M: Memory>(ctx: &C, memory: M, sighting: &Sighting) {
    count(if sighting.origin.is_received() {
        Counter::ResetsReceived
    } else {
        Counter::ResetsSent
    });
    let mut event = ResetEvent {
        // SAFETY: helper call without preconditions.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        reason: sighting.reason,
        netns: 0,
        unread_bytes: 0,
        owner_pid: 0,
        owner_source: 0,
        owner_comm: [0; 16],
        local_addr: [0; 16],
        remote_addr: [0; 16],
        local_port: 0,
        remote_port: 0,
        evidence: 0,
        origin: sighting.origin as u8,
        state: 0,
        tw_substate: 0,
        segment_flags: 0,
        _pad: [0; 10],
    };
    let has_socket = describe_socket(memory, sighting.sk, &mut event);
    if !has_socket && sighting.sk != 0 {
        // No addresses in log records: a typed pointer may not be turned into bytes.
        debug!(ctx, "reset (origin {}): socket unreadable", event.origin);
    }
    // A listener has no peer: the segment it answered names both ends precisely.
    let socket_names_peer = has_socket && event.state != tcp_state::LISTEN;
    describe_segment(ctx, memory, sighting.skb, &mut event, !socket_names_peer);
    // A connect() an RST hit is marked refused whatever the filter, and its record, looked up
    // for that, names the owner too.
    let refused = has_socket && sighting.origin.is_received() && event.state == tcp_state::SYN_SENT;
    let mut owner = if refused {
        mark_refused(sighting.sk)
    } else {
        Owner::UNKNOWN
    };
    if !wanted(&event) {
        count(Counter::ResetsFilteredOut);
        return;
    }
    if has_socket && !refused {
        owner = recorded_owner(sighting.sk);
    }
    describe_owner(owner, &mut event);
    if within_record_budget(event.timestamp_ns)
        && EVENTS
            .output::<ResetEvent>(&event, submit_flags(&EVENTS, EVENTS_RING_BYTES))
            .is_ok()
    {
        return;
    }
    count(if aggregate(&event) {
        Counter::ResetsAggregated
    } else {
        Counter::EventsLost
    });
}

/// Set by the loader: see [`tcpwhy_common::maps::EVENT_PORT_GLOBAL`].
#[unsafe(no_mangle)]
static EVENT_PORT: u16 = 0;

/// Whether user space asked for this reset: the ring carries only what a filtered `diagnose`
/// or `watch` shows, so a storm elsewhere costs it no ring space and no decoding.
#[inline(always)]
fn wanted(event: &ResetEvent) -> bool {
    // SAFETY: a valid, aligned static; the volatile read keeps the loader's value from being
    // folded away.
    let port = unsafe { core::ptr::read_volatile(&EVENT_PORT) };
    port == 0 || event.local_port == port || event.remote_port == port
}

/// Fills addresses, state and the socket's own evidence. Returns false when there is no socket.
#[inline(always)]
fn describe_socket<M: Memory>(memory: M, sk: u64, event: &mut ResetEvent) -> bool {
    let Ok(family) = memory.read::<u16>(sk, |l| &l.skc_family) else {
        return false;
    };
    event.evidence |= evidence::SOCKET;
    event.state = memory.read::<u8>(sk, |l| &l.skc_state).unwrap_or(0);
    event.netns = socket_netns(memory, sk);
    event.local_port = match event.state {
        // Only full sockets have an inet_sport to fall back on.
        tcp_state::TIME_WAIT | tcp_state::NEW_SYN_RECV => {
            memory.read::<u16>(sk, |l| &l.skc_num).unwrap_or(0)
        }
        _ => local_port(memory, sk),
    };
    event.remote_port = u16::from_be(memory.read::<u16>(sk, |l| &l.skc_dport).unwrap_or(0));
    if family == AF_INET6 {
        event.evidence |= evidence::IPV6;
    }
    let Addresses { local, remote } = of_socket(memory, sk, family);
    event.local_addr = local;
    event.remote_addr = remote;

    match event.state {
        // A timewait socket stands in for FIN_WAIT2 or TIME_WAIT; which one is the evidence.
        // (inet_timewait_sock and tcp_sock fields lie beyond struct sock: read, never typed.)
        tcp_state::TIME_WAIT => {
            event.tw_substate = read::<u8>(sk, |l| &l.tw_substate).unwrap_or(0);
        }
        // A request socket has no flags, linger time or receive queue.
        tcp_state::NEW_SYN_RECV => {}
        state => describe_full_socket(memory, sk, state, event),
    }
    true
}

#[inline(always)]
fn describe_full_socket<M: Memory>(memory: M, sk: u64, state: u8, event: &mut ResetEvent) {
    event.evidence |= evidence::FULL_SOCKET;
    if let Ok(flags) = memory.read::<u64>(sk, |l| &l.sk_flags) {
        let bit = |number: u32| number < 64 && flags & (1u64 << number) != 0;
        if bit(crate::layout::offset(|l| &l.sock_flag_linger)) {
            event.evidence |= evidence::LINGER_ON;
        }
        if bit(crate::layout::offset(|l| &l.sock_flag_dead)) {
            event.evidence |= evidence::ORPHAN;
        }
    }
    if memory.read::<u64>(sk, |l| &l.sk_lingertime) == Ok(0) {
        event.evidence |= evidence::LINGER_ZERO;
    }
    if state != tcp_state::LISTEN && state != tcp_state::SYN_SENT {
        if let (Ok(rcv_nxt), Ok(copied_seq)) = (
            read::<u32>(sk, |l| &l.tcp_rcv_nxt),
            read::<u32>(sk, |l| &l.tcp_copied_seq),
        ) {
            event.unread_bytes = rcv_nxt.wrapping_sub(copied_seq);
            event.evidence |= evidence::UNREAD_KNOWN;
        }
    }
}

/// Reads the flags of the segment that provoked the reset and, when the socket cannot name the
/// peer, the endpoints from its headers (the segment's destination is this host's side).
#[inline(always)]
fn describe_segment<C: EbpfContext, M: Memory>(
    ctx: &C,
    memory: M,
    skb: u64,
    event: &mut ResetEvent,
    take_endpoints: bool,
) {
    if skb == 0 {
        return;
    }
    let (Ok(head), Ok(network), Ok(transport)) = (
        memory.read::<u64>(skb, |l| &l.skb_head),
        memory.read::<u16>(skb, |l| &l.skb_network_header),
        memory.read::<u16>(skb, |l| &l.skb_transport_header),
    ) else {
        debug!(
            ctx,
            "reset (origin {}): segment header positions unreadable", event.origin
        );
        return;
    };
    let ip = head + network as u64;
    let tcp = head + transport as u64;
    if !take_endpoints {
        // The socket names both ends: only the flags are wanted.
        match TcpHeader::read(tcp) {
            Some(tcp_header) => {
                event.segment_flags = tcp_header.flags();
                event.evidence |= evidence::SEGMENT;
            }
            None => debug!(
                ctx,
                "reset (origin {}): segment TCP header unreadable", event.origin
            ),
        }
        return;
    }
    let Some(ip_header) = IpHeader::read(ip) else {
        debug!(
            ctx,
            "reset (origin {}): segment headers unreadable", event.origin
        );
        return;
    };
    let Some(tcp_header) = ip_header.tcp_header(tcp) else {
        debug!(
            ctx,
            "reset (origin {}): segment TCP header unreadable", event.origin
        );
        return;
    };
    event.segment_flags = tcp_header.flags();
    event.evidence |= evidence::SEGMENT;
    let Some(family) = ip_header.family() else {
        debug!(
            ctx,
            "reset (origin {}): segment of another IP version", event.origin
        );
        return;
    };
    if family == AF_INET6 {
        event.evidence |= evidence::IPV6;
    }
    let Addresses { local, remote } = ip_header.addresses(family);
    if event.netns == 0 {
        event.netns = device_netns(memory, skb);
    }
    event.local_addr = local;
    event.remote_addr = remote;
    event.remote_port = tcp_header.source_port();
    event.local_port = tcp_header.destination_port();
}

/// Names the socket's owner as recorded in process context (see `owners`).
#[inline(always)]
fn describe_owner(owner: Owner, event: &mut ResetEvent) {
    if owner.is_known() {
        event.evidence |= evidence::OWNER;
        event.owner_pid = owner.pid;
        event.owner_source = owner.source;
        event.owner_comm = owner.comm;
    }
}
