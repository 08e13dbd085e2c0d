//! The cause ids and the kinds of finding. They are a public contract (`diagnose --format json`,
//! the event stream, the `cause` and `direction` labels of metrics): never rename one; add new
//! ones instead. docs/causes.md lists them for users.

use serde::{Serialize, Serializer};

use super::drop_cause::DropCause;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    RstSent,
    RstReceived,
    QueueDrop,
    Retransmit,
    State,
    Drop,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RstSent => "rst_sent",
            Kind::RstReceived => "rst_received",
            Kind::QueueDrop => "queue_drop",
            Kind::Retransmit => "retransmit",
            Kind::State => "state",
            Kind::Drop => "drop",
        }
    }
}

/// Whether this host sent a reset or received one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    /// The `direction` label of `tcpwhy_resets_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Direction::Sent => Kind::RstSent,
            Direction::Received => Kind::RstReceived,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    // Resets this host sends.
    NoListener,
    UnknownConnection,
    CloseWithUnreadData,
    LingerZeroAbort,
    DataAfterClose,
    TimewaitReject,
    AcceptQueueOverflowAbort,
    KeepaliveTimeout,
    MemoryPressureAbort,
    ProtocolViolation,
    ApplicationAbort,
    // Resets this host receives.
    ConnectionRefused,
    PeerReset,
    PeerResetDuringClose,
    /// A firewall on this host built the reset (a `reject with tcp reset` rule).
    FirewallReject,
    // Listen-queue drops.
    AcceptQueueOverflow,
    SynQueueOverflow,
    SynFloodCookies,
    // Retransmits.
    SynRetransmits,
    HandshakeIncomplete,
    DataRetransmits,
    TailLossProbes,
    // Connection states.
    ConnectTimeout,
    CloseWaitLeak,
    TimeWaitPressure,
    FinWait2Stuck,
    /// An established connection the kernel aborted after tcp_retries2 unanswered retransmits.
    RetransmitTimeout,
    /// The same abort, bounded by the application's TCP_USER_TIMEOUT.
    UserTimeout,
    /// The peer advertised a zero window (stopped reading) for more than 2 s.
    ZeroWindowStall,
    /// Segments the kernel dropped, by its reason (not in [`Cause::ALL`]: the running kernel
    /// says which reasons exist).
    Drop(DropCause),
    /// The evidence matched no rule; the finding still shows what was seen.
    Unclassified,
}

impl Cause {
    /// Every cause, in the order of the table above.
    pub const ALL: [Cause; 30] = [
        Cause::NoListener,
        Cause::UnknownConnection,
        Cause::CloseWithUnreadData,
        Cause::LingerZeroAbort,
        Cause::DataAfterClose,
        Cause::TimewaitReject,
        Cause::AcceptQueueOverflowAbort,
        Cause::KeepaliveTimeout,
        Cause::MemoryPressureAbort,
        Cause::ProtocolViolation,
        Cause::ApplicationAbort,
        Cause::ConnectionRefused,
        Cause::PeerReset,
        Cause::PeerResetDuringClose,
        Cause::FirewallReject,
        Cause::AcceptQueueOverflow,
        Cause::SynQueueOverflow,
        Cause::SynFloodCookies,
        Cause::SynRetransmits,
        Cause::HandshakeIncomplete,
        Cause::DataRetransmits,
        Cause::TailLossProbes,
        Cause::ConnectTimeout,
        Cause::CloseWaitLeak,
        Cause::TimeWaitPressure,
        Cause::FinWait2Stuck,
        Cause::RetransmitTimeout,
        Cause::UserTimeout,
        Cause::ZeroWindowStall,
        Cause::Unclassified,
    ];

    /// The causes a reset in `direction` can be given (the rules fall back to `unclassified`).
    pub fn of_resets(direction: Direction) -> impl Iterator<Item = Cause> {
        Cause::ALL.into_iter().filter(move |cause| match cause {
            Cause::Unclassified => true,
            cause => cause.reset_directions().contains(&direction),
        })
    }

    /// Which resets this cause explains, for the reset causes.
    fn reset_directions(self) -> &'static [Direction] {
        match self {
            Cause::NoListener
            | Cause::UnknownConnection
            | Cause::CloseWithUnreadData
            | Cause::LingerZeroAbort
            | Cause::DataAfterClose
            | Cause::TimewaitReject
            | Cause::AcceptQueueOverflowAbort
            | Cause::KeepaliveTimeout
            | Cause::MemoryPressureAbort
            | Cause::ProtocolViolation
            | Cause::ApplicationAbort => &[Direction::Sent],
            Cause::ConnectionRefused | Cause::PeerReset | Cause::PeerResetDuringClose => {
                &[Direction::Received]
            }
            // Seen leaving by its probe, and arriving on this host's connections.
            Cause::FirewallReject => &[Direction::Sent, Direction::Received],
            _ => &[],
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Cause::NoListener => "no_listener",
            Cause::UnknownConnection => "unknown_connection",
            Cause::CloseWithUnreadData => "close_with_unread_data",
            Cause::LingerZeroAbort => "linger_zero_abort",
            Cause::DataAfterClose => "data_after_close",
            Cause::TimewaitReject => "timewait_reject",
            Cause::AcceptQueueOverflowAbort => "accept_queue_overflow_abort",
            Cause::KeepaliveTimeout => "keepalive_timeout",
            Cause::MemoryPressureAbort => "memory_pressure_abort",
            Cause::ProtocolViolation => "protocol_violation",
            Cause::ApplicationAbort => "application_abort",
            Cause::ConnectionRefused => "connection_refused",
            Cause::PeerReset => "peer_reset",
            Cause::PeerResetDuringClose => "peer_reset_during_close",
            Cause::FirewallReject => "firewall_reject",
            Cause::AcceptQueueOverflow => "accept_queue_overflow",
            Cause::SynQueueOverflow => "syn_queue_overflow",
            Cause::SynFloodCookies => "syn_flood_cookies",
            Cause::SynRetransmits => "syn_retransmits",
            Cause::HandshakeIncomplete => "handshake_incomplete",
            Cause::DataRetransmits => "data_retransmits",
            Cause::TailLossProbes => "tail_loss_probes",
            Cause::ConnectTimeout => "connect_timeout",
            Cause::CloseWaitLeak => "close_wait_leak",
            Cause::TimeWaitPressure => "time_wait_pressure",
            Cause::FinWait2Stuck => "fin_wait2_stuck",
            Cause::RetransmitTimeout => "retransmit_timeout",
            Cause::UserTimeout => "user_timeout",
            Cause::ZeroWindowStall => "zero_window_stall",
            Cause::Drop(drop) => drop.id(),
            Cause::Unclassified => "unclassified",
        }
    }

    /// The advice, as a finding carries it.
    pub fn advice_lines(self) -> Vec<String> {
        self.advice().iter().map(|line| line.to_string()).collect()
    }

    /// What to do about it, most likely fix first.
    pub fn advice(self) -> &'static [&'static str] {
        match self {
            Cause::NoListener => &[
                "check that the service is running and listening: `ss -ltnp 'sport = :PORT'`",
                "a service that crashed or is restarting refuses connects until it listens again",
                "the socket may be bound but never listen()ed, or listening on another address or address family (127.0.0.1 vs ::1 vs 0.0.0.0)",
                "check the port the client uses",
            ],
            Cause::UnknownConnection => &[
                "normal when one side restarted or already gave up on the connection (half-open detection)",
                "if frequent: look for host or process restarts, and for middleboxes (NAT, load balancers, firewalls) whose idle timeout is shorter than the connection's idle time",
                "enable TCP keepalive (or application pings) below the middlebox idle timeout",
            ],
            Cause::CloseWithUnreadData => &[
                "read the peer's data to EOF before close()",
                "for a graceful close: shutdown(SHUT_WR), read until EOF, then close()",
                "check that the protocol does not leave unread bytes (pipelined requests, a response the client never reads)",
            ],
            Cause::LingerZeroAbort => &[
                "remove SO_LINGER {on, 0} unless skipping TIME_WAIT is intended",
                "to avoid TIME_WAIT build-up, reuse connections (keep-alive, pooling) instead of aborting them",
            ],
            Cause::DataAfterClose => &[
                "the closing side should shutdown(SHUT_WR) and drain the peer's data before close()",
                "or the peer must stop writing once it has read EOF",
            ],
            Cause::TimewaitReject => &[
                "usually a late or duplicate segment for a connection that already ended: harmless when rare",
                "if frequent: a peer reusing ports too fast, or a middlebox replaying segments",
            ],
            Cause::AcceptQueueOverflowAbort => &[
                "find why accept() is slow: a blocked accept loop, too few workers, fd exhaustion, a CLOSE_WAIT leak",
                "raise the listen() backlog and net.core.somaxconn together",
                "net.ipv4.tcp_abort_on_overflow=1 turns every burst into hard connection resets; 0 lets clients retry",
            ],
            Cause::KeepaliveTimeout => &[
                "the peer host is gone or the path to it is broken",
                "tune TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT (or net.ipv4.tcp_keepalive_*) to detect it sooner or later",
            ],
            Cause::MemoryPressureAbort => &[
                "check net.ipv4.tcp_mem and net.ipv4.tcp_max_orphans against /proc/net/sockstat",
                "find why so many connections or buffers are held",
            ],
            Cause::ProtocolViolation => &[
                "the kernel reason names the rule that was broken",
                "usually a middlebox rewriting segments, a stale connection, or a broken peer stack",
            ],
            Cause::ApplicationAbort => &[
                "an application or operator aborted the connection (tcp_disconnect with data, `ss -K`, shutdown of a connecting socket)",
                "intended, or a bug in the caller: check the process named",
            ],
            Cause::ConnectionRefused => &[
                "nothing listens on the remote port, or a firewall rejects: check the service on the remote host",
            ],
            Cause::PeerReset => &[
                "the peer aborted the connection: it closed with unread data, used SO_LINGER 0, crashed and restarted, or forgot the connection",
                "look at the peer's side (its logs, or tcpwhy on the peer) for the matching rst_sent cause",
            ],
            Cause::PeerResetDuringClose => &[
                "this host probably wrote after the peer closed (the application sees EPIPE/SIGPIPE)",
                "stop writing once the peer's EOF is read; close both directions in protocol order",
            ],
            Cause::FirewallReject => &[
                "find the rule: `nft list ruleset | grep -n reject`, `iptables-save | grep -- '--reject-with tcp-reset'` (in the namespace: `ip netns exec NAME ...`)",
                "if the rule is intended, the client should not be connecting there; if not, narrow or remove it",
                "a container runtime or Kubernetes network policy may have installed it: check the policies of the pod or service",
            ],
            Cause::AcceptQueueOverflow => &[
                "find why accept() is slow: a blocked accept loop, too few workers, fd exhaustion (EMFILE), a CLOSE_WAIT leak",
                "raise the listen() backlog and net.core.somaxconn together: the kernel silently caps the backlog at somaxconn",
                "keep net.ipv4.tcp_abort_on_overflow=0 so that clients retry instead of being reset",
            ],
            Cause::SynQueueOverflow => &[
                "enable SYN cookies: net.ipv4.tcp_syncookies=1",
                "raise the listen() backlog (the SYN queue is bounded by it) and net.ipv4.tcp_max_syn_backlog",
                "under a SYN flood, lower net.ipv4.tcp_synack_retries so half-open entries expire sooner",
            ],
            Cause::SynFloodCookies => &[
                "connections still work, but without TCP timestamps they may lose window scaling and SACK",
                "if this is not an attack, the backlog is too small for the connection rate: raise the listen() backlog and net.core.somaxconn",
                "SyncookiesFailed rising means ACKs with invalid cookies: a flood or very late ACKs",
            ],
            Cause::SynRetransmits => &[
                "the destination does not answer SYNs: it is down or unreachable, a firewall drops them, or its listener's queue is full",
                "check the path (`ip route get`, firewalls on both ends) and the remote listener (`ss -ltn` there, or tcpwhy's queue_drop findings)",
            ],
            Cause::HandshakeIncomplete => &[
                "clients do not complete the handshake: the final ACK is lost, or dropped because the accept queue is full (see queue_drop findings)",
                "if the clients are spoofed or gone, this is a SYN flood: enable syncookies, lower net.ipv4.tcp_synack_retries",
            ],
            Cause::DataRetransmits => &[
                "segments to this peer are lost: look for loss on the path (interface errors, congestion, a middlebox dropping packets)",
                "growing gaps between retransmits are RTO backoff: the peer may be gone; net.ipv4.tcp_retries2 bounds how long the kernel insists",
            ],
            Cause::TailLossProbes => {
                &["the last segments of a burst went unacknowledged: tail loss on the path"]
            }
            Cause::ConnectTimeout => &[
                "nothing answered the SYNs (no RST either): the host is down, unreachable, or a firewall drops silently",
                "a refused connect would have been answered by an RST: silence points at the network, not the service",
                "lower net.ipv4.tcp_syn_retries (or set TCP_SYNCNT / an application connect timeout) to fail faster",
            ],
            Cause::CloseWaitLeak => &[
                "the peer closed, but the application never called close(): a descriptor leak in the code path that handles EOF",
                "check that every read()==0 / EOF leads to close(), including error paths; `ls -l /proc/PID/fd | grep socket` shows the growth",
            ],
            Cause::TimeWaitPressure => &[
                "this side closes many short connections to one destination: reuse connections (keep-alive, pooling)",
                "net.ipv4.tcp_tw_reuse (2 by default: loopback only; 1: all) lets connect() reuse TIME_WAIT ports safely with timestamps",
                "widen net.ipv4.ip_local_port_range if the ephemeral ports run out (connect() fails with EADDRNOTAVAIL)",
            ],
            Cause::FinWait2Stuck => &[
                "this side shut down its writing half and waits for the peer's FIN, which never comes: the peer keeps the connection open",
                "close() the socket when done (an orphaned FIN_WAIT2 expires after net.ipv4.tcp_fin_timeout), or fix the peer that never closes",
            ],
            Cause::RetransmitTimeout => &[
                "the peer stopped acknowledging: it crashed or lost power, its address moved, a cable or link went down, or a firewall, NAT or load balancer dropped the flow (often after its idle timeout)",
                "check the path to the peer (`ip route get`, `ping`, firewall and NAT state) and whether the peer host is up",
                "the kernel insists for tcp_retries2 timeouts (about 15 minutes at the default 15): lower net.ipv4.tcp_retries2, or set TCP_USER_TIMEOUT on the socket, to fail sooner",
            ],
            Cause::UserTimeout => &[
                "the application's TCP_USER_TIMEOUT expired while data went unacknowledged: the peer or the path stopped answering within it",
                "if the timeout is too short for the path (high latency, brief outages), raise it; otherwise look at why the peer stopped answering",
            ],
            Cause::ZeroWindowStall => &[
                "the peer's application stopped reading: it is blocked, overloaded, or waiting on this side (a deadlock where both ends write and neither reads)",
                "look at the peer process (`ss -tmi` there shows its full receive queue), not at the network: the path works, the window probes are answered",
                "a slow consumer needs flow control above TCP (timeouts on writes, bounded queues) so that this side does not block forever",
            ],
            Cause::Drop(drop) => drop.advice(),
            Cause::Unclassified => {
                &["the evidence matched no known cause: report it with the evidence shown"]
            }
        }
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_match_serde() {
        let all = Cause::ALL;
        let mut ids: Vec<_> = all.iter().map(|c| c.id()).collect();
        for cause in all {
            assert_eq!(serde_json::to_value(cause).unwrap(), cause.id());
            assert!(!cause.advice().is_empty());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
    }

    #[test]
    fn every_cause_is_documented_for_users() {
        let page = include_str!("../../../docs/causes.md");
        let explained_drops = crate::model::drop_cause::EXPLAINED
            .iter()
            .map(|e| Cause::Drop(DropCause::of_reason(e.id)));
        for cause in Cause::ALL.into_iter().chain(explained_drops) {
            assert!(
                page.contains(&format!("`{}`", cause.id())),
                "docs/causes.md does not list {}",
                cause.id()
            );
        }
    }
}
