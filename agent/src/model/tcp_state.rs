//! TCP state names as users know them from `ss` and the kernel.

use tcpwhy_common::tcp_state as s;

pub fn name(state: u8) -> &'static str {
    match state {
        s::ESTABLISHED => "ESTABLISHED",
        s::SYN_SENT => "SYN_SENT",
        s::SYN_RECV => "SYN_RECV",
        s::FIN_WAIT1 => "FIN_WAIT1",
        s::FIN_WAIT2 => "FIN_WAIT2",
        s::TIME_WAIT => "TIME_WAIT",
        s::CLOSE => "CLOSE",
        s::CLOSE_WAIT => "CLOSE_WAIT",
        s::LAST_ACK => "LAST_ACK",
        s::LISTEN => "LISTEN",
        s::CLOSING => "CLOSING",
        s::NEW_SYN_RECV => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}
