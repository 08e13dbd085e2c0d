//! Connections the retransmission timer ended (`SILENT_CLOSES`), decoded.

use std::time::Duration;

use tcpwhy_common::{close::SilentClose, flow::FlowKey};

use crate::model::{Flow, OwnerSource, Process};

/// A connection the kernel gave up on after its retransmissions went unanswered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    pub flow: Flow,
    pub closed_ns: u64,
    /// The errno the application got (ETIMEDOUT, or the ICMP error that preceded it).
    pub error: u32,
    /// TCP_USER_TIMEOUT, when the application set one: then it, not tcp_retries2, ended it.
    pub user_timeout: Option<Duration>,
    /// Consecutive retransmission timeouts without an answer.
    pub unanswered: u32,
    /// Segments retransmitted over the connection's whole life.
    pub total_retransmits: u32,
    /// The state it was in (ESTABLISHED, or a closing state with a FIN unacknowledged).
    pub old_state: u8,
    pub owner: Option<Process>,
}

impl TimedOut {
    pub fn from_raw(key: &FlowKey, raw: &SilentClose) -> Self {
        Self {
            flow: Flow::from_key(key),
            closed_ns: raw.closed_ns,
            error: raw.error,
            user_timeout: (raw.user_timeout_ms > 0)
                .then(|| Duration::from_millis(u64::from(raw.user_timeout_ms))),
            unanswered: raw.unanswered,
            total_retransmits: raw.total_retransmits,
            old_state: raw.old_state as u8,
            owner: (raw.owner_pid != 0)
                .then(|| Process::from_raw(raw.owner_pid, &raw.owner_comm, OwnerSource::Syscall)),
        }
    }
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::{family::AF_INET, tcp_state};

    use super::*;

    #[test]
    fn a_user_timeout_is_kept_and_its_absence_is_none() {
        let mut key = FlowKey {
            netns: 7,
            family: AF_INET,
            local_port: 40000,
            remote_port: 5432,
            tag: 0,
            local_addr: [0; 16],
            remote_addr: [0; 16],
        };
        key.remote_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut raw = SilentClose {
            closed_ns: 5,
            error: 110,
            user_timeout_ms: 1500,
            unanswered: 4,
            total_retransmits: 6,
            old_state: u32::from(tcp_state::ESTABLISHED),
            owner_pid: 0,
            owner_comm: [0; 16],
        };
        let timed_out = TimedOut::from_raw(&key, &raw);
        assert_eq!(timed_out.flow.remote.to_string(), "10.0.0.1:5432");
        assert_eq!(timed_out.user_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(timed_out.old_state, tcp_state::ESTABLISHED);
        assert!(timed_out.owner.is_none());
        raw.user_timeout_ms = 0;
        assert_eq!(TimedOut::from_raw(&key, &raw).user_timeout, None);
    }
}
