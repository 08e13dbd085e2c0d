//! A reset as evidence: decoded from [`ResetEvent`] into types the rules can read.

use std::net::SocketAddr;

use anyhow::{Result, bail};
use tcpwhy_common::{
    owner::{OWNER_FROM_LISTENER, OWNER_FROM_SYSCALL},
    reset::{
        NO_REASON, ResetAggregate, ResetAggregateKey, ResetEvent, ResetOrigin, evidence, sampled,
        tcp_flags,
    },
    tcp_state,
};

use crate::model::{Direction, OwnerSource, Process, endpoint};

/// The socket-side evidence, present when a full socket was involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketEvidence {
    pub linger_on: bool,
    pub linger_zero: bool,
    pub orphan: bool,
    pub unread_bytes: Option<u32>,
}

/// Resets the kernel counted together instead of sending each (past the per-event rate): the
/// [`Reset`] they come in is the latest, whose other end's port stands for all of theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    pub count: u64,
    pub first_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    pub direction: Direction,
    pub origin: ResetOrigin,
    /// When it happened (for an aggregate: the latest).
    pub timestamp_ns: u64,
    /// None for a reset the kernel sent on its own.
    pub aggregate: Option<Aggregate>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Network namespace inode, when the socket told us.
    pub netns: Option<u32>,
    /// Socket state when the reset was sent or received; None without a socket.
    pub state: Option<u8>,
    /// For a timewait socket, the state it stands in for.
    pub tw_substate: Option<u8>,
    /// Raw `enum sk_rst_reason`; its name comes from the running kernel's BTF.
    pub reason: Option<u32>,
    /// Flags of the segment that provoked the reset.
    pub segment_flags: Option<u8>,
    pub socket: Option<SocketEvidence>,
    pub owner: Option<Process>,
}

impl Reset {
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < size_of::<ResetEvent>() {
            bail!(
                "reset event of {} bytes, expected {}",
                bytes.len(),
                size_of::<ResetEvent>()
            );
        }
        // SAFETY: the length was checked and ResetEvent is plain old data; read_unaligned
        // copes with the ring buffer's 8-byte alignment.
        let raw: ResetEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        Self::from_raw(&raw)
    }

    pub fn from_raw(raw: &ResetEvent) -> Result<Self> {
        let Some(origin) = ResetOrigin::from_u8(raw.origin) else {
            bail!("reset event with unknown origin {}", raw.origin);
        };
        let has = |bit: u16| raw.evidence & bit != 0;
        let ipv6 = has(evidence::IPV6);
        let socket = has(evidence::FULL_SOCKET).then(|| SocketEvidence {
            linger_on: has(evidence::LINGER_ON),
            linger_zero: has(evidence::LINGER_ZERO),
            orphan: has(evidence::ORPHAN),
            unread_bytes: has(evidence::UNREAD_KNOWN).then_some(raw.unread_bytes),
        });
        let owner = has(evidence::OWNER).then(|| {
            let source = match raw.owner_source {
                OWNER_FROM_SYSCALL => OwnerSource::Syscall,
                OWNER_FROM_LISTENER => OwnerSource::Listener,
                _ => OwnerSource::Unknown,
            };
            Process::from_raw(raw.owner_pid, &raw.owner_comm, source)
        });
        Ok(Self {
            direction: if origin.is_received() {
                Direction::Received
            } else {
                Direction::Sent
            },
            origin,
            timestamp_ns: raw.timestamp_ns,
            aggregate: None,
            local: endpoint::from_raw(&raw.local_addr, raw.local_port, ipv6),
            remote: endpoint::from_raw(&raw.remote_addr, raw.remote_port, ipv6),
            netns: (raw.netns != 0).then_some(raw.netns),
            state: has(evidence::SOCKET).then_some(raw.state),
            tw_substate: (raw.state == tcp_state::TIME_WAIT && has(evidence::SOCKET))
                .then_some(raw.tw_substate),
            reason: (raw.reason != NO_REASON).then_some(raw.reason),
            segment_flags: has(evidence::SEGMENT).then_some(raw.segment_flags),
            socket,
            owner,
        })
    }

    /// The resets of one aggregate, merged over the CPUs that counted them (`per_cpu`, zeros for
    /// CPUs that counted none).
    pub fn from_aggregate(key: &ResetAggregateKey, per_cpu: &[ResetAggregate]) -> Result<Self> {
        let counted = || per_cpu.iter().filter(|v| v.count > 0);
        let Some(latest) = counted().max_by_key(|v| v.last_ns) else {
            bail!("reset aggregate with no count");
        };
        let (local_port, remote_port) = match key.sampled {
            sampled::LOCAL_PORT => (latest.sample_port, key.remote_port),
            _ => (key.local_port, latest.sample_port),
        };
        let unread_bytes = counted().map(|v| v.unread_bytes_max).max().unwrap_or(0);
        let raw = ResetEvent {
            timestamp_ns: latest.last_ns,
            reason: key.reason,
            netns: key.netns,
            unread_bytes,
            owner_pid: key.owner_pid,
            owner_source: latest.owner_source,
            owner_comm: latest.owner_comm,
            local_addr: key.local_addr,
            remote_addr: key.remote_addr,
            local_port,
            remote_port,
            evidence: key.evidence & !evidence::UNREAD_SOME,
            origin: key.origin,
            state: key.state,
            tw_substate: key.tw_substate,
            segment_flags: key.segment_flags,
            _pad: [0; 10],
        };
        Ok(Self {
            aggregate: Some(Aggregate {
                count: counted().map(|v| v.count).sum(),
                first_ns: counted().map(|v| v.first_ns).min().unwrap_or(0),
            }),
            ..Self::from_raw(&raw)?
        })
    }

    /// How many resets this stands for.
    pub fn count(&self) -> u64 {
        self.aggregate.map_or(1, |a| a.count)
    }

    /// When the first of them happened.
    pub fn first_ns(&self) -> u64 {
        self.aggregate.map_or(self.timestamp_ns, |a| a.first_ns)
    }

    pub fn has_socket(&self) -> bool {
        self.state.is_some()
    }

    /// The segment that provoked the reset opened a connection (SYN without ACK).
    pub fn segment_is_syn(&self) -> bool {
        self.segment_flags
            .is_some_and(|f| f & tcp_flags::SYN != 0 && f & tcp_flags::ACK == 0)
    }

    /// The reset was not a reply to a segment: close, abort or a timer sent it.
    pub fn is_active(&self) -> bool {
        matches!(
            self.origin,
            ResetOrigin::SendResetActive | ResetOrigin::SendActiveReset
        )
    }
}

#[cfg(test)]
impl Reset {
    /// A reset with only its direction, hook, endpoints and time: what tests add to.
    pub fn bare(
        direction: Direction,
        origin: ResetOrigin,
        local: &str,
        remote: &str,
        timestamp_ns: u64,
    ) -> Self {
        Self {
            direction,
            origin,
            timestamp_ns,
            aggregate: None,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            netns: None,
            state: None,
            tw_substate: None,
            reason: None,
            segment_flags: None,
            socket: None,
            owner: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_event() -> ResetEvent {
        ResetEvent {
            timestamp_ns: 42,
            reason: 1,
            netns: 4026531840,
            unread_bytes: 0,
            owner_pid: 0,
            owner_source: 0,
            owner_comm: [0; 16],
            local_addr: [127, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            remote_addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            local_port: 8080,
            remote_port: 40000,
            evidence: evidence::SEGMENT,
            origin: ResetOrigin::SendResetReply as u8,
            state: 0,
            tw_substate: 0,
            segment_flags: tcp_flags::SYN,
            _pad: [0; 10],
        }
    }

    #[test]
    fn a_refused_syn_decodes_without_socket_or_owner() {
        let raw = raw_event();
        // SAFETY: ResetEvent is plain old data.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&raw as *const ResetEvent).cast::<u8>(),
                size_of::<ResetEvent>(),
            )
        };
        let reset = Reset::decode(bytes).unwrap();
        assert_eq!(reset.direction, Direction::Sent);
        assert_eq!(reset.local.to_string(), "127.0.0.5:8080");
        assert_eq!(reset.remote.to_string(), "127.0.0.1:40000");
        assert!(!reset.has_socket());
        assert!(reset.segment_is_syn());
        assert_eq!(reset.reason, Some(1));
        assert_eq!(reset.owner, None);
    }

    #[test]
    fn owner_and_socket_evidence_decode() {
        let mut raw = raw_event();
        raw.evidence = evidence::SOCKET
            | evidence::FULL_SOCKET
            | evidence::OWNER
            | evidence::LINGER_ON
            | evidence::LINGER_ZERO
            | evidence::UNREAD_KNOWN;
        raw.state = tcp_state::CLOSE;
        raw.unread_bytes = 5;
        raw.owner_pid = 77;
        raw.owner_comm[..4].copy_from_slice(b"curl");
        raw.origin = ResetOrigin::SendResetActive as u8;
        raw.reason = NO_REASON;
        let reset = Reset::from_raw(&raw).unwrap();
        let socket = reset.socket.unwrap();
        assert!(socket.linger_on && socket.linger_zero && !socket.orphan);
        assert_eq!(socket.unread_bytes, Some(5));
        assert_eq!(reset.owner.as_ref().unwrap().comm, "curl");
        assert!(reset.is_active());
        assert_eq!(reset.reason, None);
        assert_eq!(reset.state, Some(tcp_state::CLOSE));
    }

    #[test]
    fn an_aggregate_is_its_latest_reset_standing_for_all_of_them() {
        let mut event = raw_event();
        event.evidence |= evidence::OWNER;
        event.owner_pid = 77;
        event.owner_source = OWNER_FROM_SYSCALL;
        let (key, sample_port) = ResetAggregateKey::of(&event);
        // A SYN refused: the local end is the service, the remote port is the sample.
        assert_eq!((key.local_port, key.remote_port), (8080, 0));
        let cpu = |count, first_ns, last_ns, sample_port| ResetAggregate {
            count,
            first_ns,
            last_ns,
            unread_bytes_max: 0,
            owner_source: OWNER_FROM_SYSCALL,
            owner_comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
            sample_port,
            _pad: [0; 6],
        };
        let merged = Reset::from_aggregate(
            &key,
            &[
                cpu(3, 10, 50, 40001),
                ResetAggregate::default(),
                cpu(2, 5, 90, sample_port),
            ],
        )
        .unwrap();
        assert_eq!(merged.count(), 5);
        assert_eq!((merged.first_ns(), merged.timestamp_ns), (5, 90));
        assert_eq!(merged.local.to_string(), "127.0.0.5:8080");
        assert_eq!(merged.remote.to_string(), "127.0.0.1:40000");
        assert!(merged.segment_is_syn() && !merged.has_socket());
        assert_eq!(merged.owner.unwrap().pid, 77);
        assert!(Reset::from_aggregate(&key, &[ResetAggregate::default()]).is_err());
    }

    #[test]
    fn a_connecting_socket_is_aggregated_by_the_service_it_called() {
        let mut event = raw_event();
        event.origin = ResetOrigin::ReceiveReset as u8;
        event.evidence = evidence::SOCKET | evidence::FULL_SOCKET;
        event.state = tcp_state::SYN_SENT;
        (event.local_port, event.remote_port) = (40000, 8080);
        let (key, sample_port) = ResetAggregateKey::of(&event);
        assert_eq!(
            (key.local_port, key.remote_port, sample_port),
            (0, 8080, 40000)
        );
        // Without a state or segment to tell, the lower port is the service's.
        event.state = tcp_state::ESTABLISHED;
        (event.local_port, event.remote_port) = (5432, 50000);
        let (key, sample_port) = ResetAggregateKey::of(&event);
        assert_eq!(
            (key.local_port, key.remote_port, sample_port),
            (5432, 0, 50000)
        );
        event.unread_bytes = 3;
        assert_ne!(
            ResetAggregateKey::of(&event).0.evidence & evidence::UNREAD_SOME,
            0
        );
    }

    #[test]
    fn short_or_unknown_events_are_rejected() {
        assert!(Reset::decode(&[0u8; 10]).is_err());
        let mut raw = raw_event();
        raw.origin = 99;
        assert!(Reset::from_raw(&raw).is_err());
    }
}
