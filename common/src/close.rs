//! Connections the kernel gave up on without a reset: an established connection whose
//! retransmissions went unanswered until `tcp_retries2` or `TCP_USER_TIMEOUT` ended it.
//!
//! The kernel's retransmission timer then stores the error the application will see in
//! `sk_err` (ETIMEDOUT, or a soft error an ICMP message left, such as EHOSTUNREACH) and moves the
//! socket to CLOSE. Such closes are rare, so each is kept whole, per connection, in an LRU map
//! that user space reads.

/// `ECONNRESET`: an RST ended the connection (a reset finding already explains it).
pub const ECONNRESET: u32 = 104;
/// `EPIPE`: an RST arrived in CLOSE_WAIT (a reset finding already explains it).
pub const EPIPE: u32 = 32;

/// One connection the retransmission timer ended (keyed by its endpoints, tag 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SilentClose {
    /// When it moved to CLOSE (CLOCK_MONOTONIC ns).
    pub closed_ns: u64,
    /// `sk_err`: the errno the application gets.
    pub error: u32,
    /// `icsk_user_timeout` in ms: non-zero when TCP_USER_TIMEOUT bounded the retransmissions.
    pub user_timeout_ms: u32,
    /// `icsk_retransmits`: consecutive retransmission timeouts without an answer.
    pub unanswered: u32,
    /// `tcp_sock.total_retrans`: every segment retransmitted over the connection's life.
    pub total_retransmits: u32,
    /// The state it left (ESTABLISHED, FIN_WAIT1, CLOSE_WAIT, LAST_ACK, CLOSING).
    pub old_state: u32,
    /// Owner of the socket, when recorded (0 otherwise).
    pub owner_pid: u32,
    pub owner_comm: [u8; 16],
}

#[cfg(feature = "user")]
// SAFETY: `repr(C)`, integers and a byte array, no padding.
unsafe impl aya::Pod for SilentClose {}

const _: () = assert!(core::mem::size_of::<SilentClose>() == 48);
