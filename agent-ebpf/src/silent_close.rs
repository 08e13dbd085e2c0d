//! Connections the kernel gave up on without a reset: the retransmission timer's abort
//! (`tcp_write_err`) stores the application's error in `sk_err` and moves the socket to CLOSE, so
//! the `inet_sock_set_state` transition to CLOSE, with `icsk_retransmits` still non-zero, marks it.
//!
//! Other closes from these states either leave `icsk_retransmits` at 0 (an acknowledged
//! connection, including the keepalive timer's abort, whose RST the reset probes already
//! explain) or carry a reset's error (ECONNRESET, EPIPE): a reset finding explains those.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use tcpwhy_common::{
    close::{ECONNRESET, EPIPE, SilentClose},
    tcp_state as st,
};

use crate::{kernel::read, maps::SILENT_CLOSES, sockets::recorded_owner, state_change::Endpoints};

/// States with data or a FIN in flight that the retransmission timer can give up on.
#[inline(always)]
fn may_time_out(old: u8) -> bool {
    matches!(
        old,
        st::ESTABLISHED | st::FIN_WAIT1 | st::CLOSE_WAIT | st::LAST_ACK | st::CLOSING
    )
}

/// Called on every TCP transition; keeps the closes the retransmission timer caused.
#[inline(always)]
pub fn note<E: Endpoints>(endpoints: E, sk: u64, old: u8, new: u8) {
    if new != st::CLOSE || !may_time_out(old) {
        return;
    }
    // One byte read per close: most closes end here. (inet_connection_sock and tcp_sock fields
    // lie beyond struct sock: read, never through typed loads.)
    let unanswered = read::<u8>(sk, |l| &l.icsk_retransmits).unwrap_or(0);
    if unanswered == 0 {
        return;
    }
    let error = read::<i32>(sk, |l| &l.sk_err).unwrap_or(0) as u32;
    if error == 0 || error == ECONNRESET || error == EPIPE {
        return;
    }
    let owner = recorded_owner(sk);
    let close = SilentClose {
        // SAFETY: helper call without preconditions.
        closed_ns: unsafe { bpf_ktime_get_ns() },
        error,
        user_timeout_ms: read::<u32>(sk, |l| &l.icsk_user_timeout).unwrap_or(0),
        unanswered: u32::from(unanswered),
        total_retransmits: read::<u32>(sk, |l| &l.tcp_total_retrans).unwrap_or(0),
        old_state: u32::from(old),
        owner_pid: owner.pid,
        owner_comm: owner.comm,
    };
    let key = endpoints.flow_key(sk, 0);
    let _ = SILENT_CLOSES.insert(key, close, 0);
}
