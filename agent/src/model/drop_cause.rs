//! The causes of drops: the kernel's own drop reason in lower case (`NETFILTER_DROP` →
//! `netfilter_drop`), so that every reason a kernel has, including ones added after this was
//! written, gets a stable id. The ones users meet have an explanation and advice here; the rest
//! get a generic one that names the kernel's reason.

use std::{
    collections::HashSet,
    sync::{LazyLock, Mutex},
};

/// A drop cause id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DropCause(&'static str);

/// A drop cause with words of its own.
pub struct ExplainedDrop {
    pub id: &'static str,
    /// What happened to the segments, completing "the kernel dropped N TCP segments: ...".
    pub meaning: &'static str,
    pub advice: &'static [&'static str],
}

const SIGNATURE_ADVICE: &[&str] = &[
    "both ends must configure the same key for the connection: TCP_MD5SIG (RFC 2385, BGP sessions) or TCP-AO (RFC 5925) keys, and the peer's address and port must match the key's",
    "a key changed on one end only, or a peer restarted without its key: compare the configuration of both ends",
    "counters: `nstat -az TcpExtTCPMD5NotFound TcpExtTCPMD5Unexpected TcpExtTCPMD5Failure TcpExtTCPAOBad TcpExtTCPAOKeyNotFound`",
];

const PAWS_ADVICE: &[&str] = &[
    "several hosts behind one NAT share an address and port range but not their timestamp clocks: a new connection from one of them can look older than the last one from another",
    "check `nstat -az TcpExtPAWSEstab TcpExtPAWSActive TcpExtTW*`; keep net.ipv4.tcp_tw_reuse from reusing ports towards a NAT that rewrites timestamps",
    "turning timestamps off (net.ipv4.tcp_timestamps=0 on the clients) avoids the check but loses PAWS protection, RTT measurement and window scaling on SYN cookies",
];

/// The drop causes explained here, in the order docs/causes.md lists them.
pub const EXPLAINED: &[ExplainedDrop] = &[
    ExplainedDrop {
        id: "netfilter_drop",
        meaning: "a netfilter rule (nftables or iptables) dropped them",
        advice: &[
            "list the rules of the namespace named: `nft list ruleset` (or `iptables-save`); a rule's counter shows it matching",
            "a silent drop makes clients wait for a timeout; `reject with tcp reset` fails them at once if the block is intended",
            "in containers and Kubernetes the rules often come from the CNI plugin, kube-proxy or a network policy",
        ],
    },
    ExplainedDrop {
        id: "socket_rcvbuff",
        meaning: "the socket's receive buffer was full: the application does not read fast enough",
        advice: &[
            "find what keeps the application from reading: too few workers, a blocked event loop, a slow consumer",
            "raise the buffer if bursts are expected: SO_RCVBUF, or net.ipv4.tcp_rmem (max) for autotuning",
        ],
    },
    ExplainedDrop {
        id: "socket_backlog",
        meaning: "the socket's backlog (segments queued while the application held the socket) went over its receive buffer",
        advice: &[
            "the application holds the socket busy while data keeps arriving: read more often, or raise SO_RCVBUF / net.ipv4.tcp_rmem",
        ],
    },
    ExplainedDrop {
        id: "proto_mem",
        meaning: "TCP's memory for the whole host or namespace was exhausted (net.ipv4.tcp_mem): memory pressure",
        advice: &[
            "compare `TCP: ... mem` in /proc/net/sockstat with net.ipv4.tcp_mem (in pages)",
            "find the sockets holding buffers: `ss -tm` (large rb/tb), often unread receive queues of stalled applications",
            "raise net.ipv4.tcp_mem only if the host has the memory to back it",
        ],
    },
    ExplainedDrop {
        id: "tcp_zerowindow",
        meaning: "data arrived while this socket's receive window was zero: the application stopped reading",
        advice: &[
            "the receiving application is not reading: check the process named, its CPU and what it waits on",
            "larger receive buffers only delay this while the reader is stalled",
        ],
    },
    ExplainedDrop {
        id: "tcp_rfc7323_paws",
        meaning: "their TCP timestamp was older than the last one seen on the connection (PAWS, RFC 7323)",
        advice: PAWS_ADVICE,
    },
    ExplainedDrop {
        id: "tcp_rfc7323_tw_paws",
        meaning: "a SYN's TCP timestamp was older than the last one of the TIME_WAIT connection it would reuse (PAWS, RFC 7323)",
        advice: PAWS_ADVICE,
    },
    ExplainedDrop {
        id: "tcp_invalid_sequence",
        meaning: "their sequence numbers were outside the receive window: stale or duplicated segments, or a middlebox rewriting sequence numbers",
        advice: &[
            "rare ones are late duplicates; many point at a middlebox (NAT, load balancer) that rewrites or replays segments",
            "a peer that lost the connection's state keeps sending old sequence numbers: see the rst findings for the same endpoints",
        ],
    },
    ExplainedDrop {
        id: "tcp_old_sequence",
        meaning: "their sequence numbers were older than what the connection had already received: duplicates of segments that arrived before",
        advice: &[
            "harmless when rare (a retransmission that crossed its ACK); many point at duplication on the path or a peer retransmitting too eagerly",
        ],
    },
    ExplainedDrop {
        id: "tcp_invalid_syn",
        meaning: "they carried a SYN the connection's state did not allow (a SYN on an established or closing connection)",
        advice: &[
            "a peer that restarted reuses the same ports while this host still has the old connection: it answers with a challenge ACK and the peer should reset it",
            "many of them: a middlebox replaying SYNs, or port reuse faster than connections close",
        ],
    },
    ExplainedDrop {
        id: "tcp_old_data",
        meaning: "they carried only data already received: retransmissions of data this host had acknowledged (its ACKs were lost or late)",
        advice: &[
            "look for loss on the path back to the peer (ACKs lost): data_retransmits findings on the peer's side",
        ],
    },
    ExplainedDrop {
        id: "tcp_overwindow",
        meaning: "their data went past the receive window this host advertised",
        advice: &[
            "a peer or middlebox that ignores the advertised window (window scaling stripped by a middlebox is a classic)",
        ],
    },
    ExplainedDrop {
        id: "tcp_ofo_drop",
        meaning: "out-of-order segments did not fit the receive window or the memory left for the out-of-order queue",
        advice: &[
            "loss or reordering on the path filled the out-of-order queue: look for loss (retransmit findings for the same peer)",
            "small receive buffers make it worse: net.ipv4.tcp_rmem",
        ],
    },
    ExplainedDrop {
        id: "tcp_listen_overflow",
        meaning: "the listener's accept queue was full when the handshake's final ACK (or data carrying it) arrived: the connection was not created, and the client, which believes it is connected, waits",
        advice: &[
            "find why accept() is slow: a blocked accept loop, too few workers, fd exhaustion (EMFILE), a CLOSE_WAIT leak",
            "raise the listen() backlog and net.core.somaxconn together: the kernel silently caps the backlog at somaxconn",
            "see the queue_drop findings for the same listener",
        ],
    },
    ExplainedDrop {
        id: "no_socket",
        meaning: "no socket wanted them: nothing listens on the port, or the connection is already gone (the rst_sent finding for the same endpoint tells the rest)",
        advice: &[
            "check that the service listens on that address and port: `ss -ltn`",
            "late segments of connections that already ended are harmless when rare",
        ],
    },
    ExplainedDrop {
        id: "tcp_reset",
        meaning: "they were RSTs: the kernel frees each after it has reset its connection (the rst_received finding for the same endpoint tells why)",
        advice: &["see the rst_received findings: the drop is the reset itself, not a loss"],
    },
    ExplainedDrop {
        id: "tcp_csum",
        meaning: "their TCP checksum was wrong: corruption on the path, or a checksum offload bug",
        advice: &[
            "check the interface's error counters (`ip -s link`) and, for virtual NICs, checksum offload settings (`ethtool -k`)",
        ],
    },
    ExplainedDrop {
        id: "socket_filter",
        meaning: "a socket filter (SO_ATTACH_FILTER, a BPF program on the socket) rejected them",
        advice: &["find the program that attached the filter (`bpftool prog`, `ss -tbp`)"],
    },
    ExplainedDrop {
        id: "tcp_md5notfound",
        meaning: "they carried no TCP-MD5 signature, but the socket expects one for this peer",
        advice: SIGNATURE_ADVICE,
    },
    ExplainedDrop {
        id: "tcp_md5unexpected",
        meaning: "they carried a TCP-MD5 signature, but the socket has no key for this peer",
        advice: SIGNATURE_ADVICE,
    },
    ExplainedDrop {
        id: "tcp_md5failure",
        meaning: "their TCP-MD5 signature did not match the key this host has for the peer",
        advice: SIGNATURE_ADVICE,
    },
    ExplainedDrop {
        id: "tcp_aonotfound",
        meaning: "they carried no TCP-AO option, but the socket requires one for this peer",
        advice: SIGNATURE_ADVICE,
    },
    ExplainedDrop {
        id: "tcp_aounexpected",
        meaning: "they carried a TCP-AO option, but the socket has no key for this peer",
        advice: SIGNATURE_ADVICE,
    },
    ExplainedDrop {
        id: "tcp_aokeynotfound",
        meaning: "their TCP-AO key id matched none of the socket's keys",
        advice: SIGNATURE_ADVICE,
    },
    ExplainedDrop {
        id: "tcp_aofailure",
        meaning: "their TCP-AO signature did not verify with the matching key",
        advice: SIGNATURE_ADVICE,
    },
];

const UNEXPLAINED_ADVICE: &[&str] = &[
    "the kernel's reason names where it dropped them: look the name up in include/net/dropreason-core.h of this kernel's version",
    "`nstat -az` counters that grow with it often say more",
];

/// Ids of reasons without an entry in [`EXPLAINED`], made once per name and kept: the kernel's
/// enum is finite, so this stays as small as it is.
static OTHER_IDS: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);

impl DropCause {
    /// The cause of a drop the kernel named `reason` (its `enum skb_drop_reason` name without
    /// the `SKB_DROP_REASON_` prefix).
    pub fn of_reason(reason: &str) -> Self {
        let id = reason.to_ascii_lowercase();
        if let Some(explained) = EXPLAINED.iter().find(|e| e.id == id) {
            return Self(explained.id);
        }
        let mut others = OTHER_IDS.lock().unwrap_or_else(|p| p.into_inner());
        match others.get(id.as_str()) {
            Some(known) => Self(known),
            None => {
                let id: &'static str = Box::leak(id.into_boxed_str());
                others.insert(id);
                Self(id)
            }
        }
    }

    pub fn id(self) -> &'static str {
        self.0
    }

    fn explained(self) -> Option<&'static ExplainedDrop> {
        EXPLAINED.iter().find(|e| e.id == self.0)
    }

    /// What happened, where this cause has words of its own.
    pub fn meaning(self) -> Option<&'static str> {
        self.explained().map(|e| e.meaning)
    }

    pub fn advice(self) -> &'static [&'static str] {
        self.explained().map_or(UNEXPLAINED_ADVICE, |e| e.advice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_the_reason_in_lower_case() {
        assert_eq!(
            DropCause::of_reason("NETFILTER_DROP").id(),
            "netfilter_drop"
        );
        let unknown = DropCause::of_reason("SOME_FUTURE_REASON");
        assert_eq!(unknown.id(), "some_future_reason");
        assert_eq!(unknown.meaning(), None);
        assert_eq!(unknown.advice(), UNEXPLAINED_ADVICE);
        // Named once: the same reason is the same id, not another allocation.
        assert!(std::ptr::eq(
            DropCause::of_reason("SOME_FUTURE_REASON").id(),
            unknown.id()
        ));
    }

    #[test]
    fn explained_causes_are_unique_and_advised() {
        let mut ids: Vec<&str> = EXPLAINED.iter().map(|e| e.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), EXPLAINED.len());
        assert!(EXPLAINED.iter().all(|e| !e.advice.is_empty()));
    }
}
