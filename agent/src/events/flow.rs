//! What the kernel side reports about connections: failed connects, retransmits per flow.

use std::time::Duration;

use anyhow::{Result, bail};
use tcpwhy_common::{flow::ConnectFailure, maps::RetransmitKind};

use crate::model::{Flow, OwnerSource, Process};

/// A connect() that ended in SYN_SENT without an RST (refused ones are only counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailed {
    pub flow: Flow,
    /// How long it waited in SYN_SENT, when the start was seen.
    pub waited: Option<Duration>,
    pub owner: Option<Process>,
}

impl ConnectFailed {
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < size_of::<ConnectFailure>() {
            bail!(
                "connect failure of {} bytes, expected {}",
                bytes.len(),
                size_of::<ConnectFailure>()
            );
        }
        // SAFETY: length checked; plain old data; unaligned read for the ring's alignment.
        let raw: ConnectFailure = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        Ok(Self {
            flow: Flow::from_key(&raw.key),
            waited: (raw.waited_ns > 0).then(|| Duration::from_nanos(raw.waited_ns)),
            owner: (raw.owner_pid != 0)
                .then(|| Process::from_raw(raw.owner_pid, &raw.owner_comm, OwnerSource::Syscall)),
        })
    }
}

/// Retransmits of one flow, one kind.
#[derive(Debug, Clone)]
pub struct RetransmitFlow {
    pub flow: Flow,
    pub kind: RetransmitKind,
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub owner: Option<Process>,
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::{family::AF_INET, flow::FlowKey};

    use super::*;

    #[test]
    fn decodes_a_timed_out_connect() {
        let mut key = FlowKey {
            netns: 7,
            family: AF_INET,
            local_port: 40000,
            remote_port: 80,
            tag: 2,
            local_addr: [0; 16],
            remote_addr: [0; 16],
        };
        key.local_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
        key.remote_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"curl");
        let raw = ConnectFailure {
            timestamp_ns: 1,
            waited_ns: 3_000_000_000,
            key,
            owner_pid: 42,
            owner_comm: comm,
        };
        // SAFETY: plain old data.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw as *const ConnectFailure).cast::<u8>(),
                size_of::<ConnectFailure>(),
            )
        };
        let failed = ConnectFailed::decode(bytes).unwrap();
        assert_eq!(failed.flow.remote.to_string(), "10.0.0.1:80");
        assert_eq!(failed.flow.netns, 7);
        assert_eq!(failed.waited, Some(Duration::from_secs(3)));
        assert_eq!(failed.owner.unwrap().comm, "curl");
        assert!(ConnectFailed::decode(&bytes[..10]).is_err());
    }
}
