//! What a zero-window stall finding says: who waits on which peer, for how long, with how much.

use std::net::SocketAddr;

use crate::model::Process;

/// The stalls of one process towards one peer.
pub struct Stalled<'a> {
    pub connections: u64,
    /// Still stalled at the last look.
    pub ongoing: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The longest stall, as said ("3.2 s").
    pub longest: String,
    pub queued_bytes: u64,
    pub owner: Option<&'a Process>,
}

pub fn explain(s: &Stalled) -> String {
    let who = s
        .owner
        .map(|p| format!("{} (pid {})", p.comm, p.pid))
        .unwrap_or_else(|| "the application".into());
    let connections = if s.connections == 1 {
        "1 connection".to_string()
    } else {
        format!("{} connections", s.connections)
    };
    let still = match s.ongoing {
        0 => "It has since resumed".to_string(),
        n if n == s.connections => "It is still stalled".to_string(),
        n => format!("{n} of them are still stalled"),
    };
    format!(
        "{remote} advertised a zero window to {who} on {connections} (from {local}) for {longest}: \
         its application stopped reading, its receive buffer filled, and this side can only probe \
         the window while {queued} bytes wait in the send queue. {still}; {who} blocks in write() \
         (or sees EAGAIN) meanwhile. The network is fine: the peer answers the probes.",
        remote = s.remote,
        local = s.local,
        longest = s.longest,
        queued = s.queued_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_who_waits_on_whom_with_how_much() {
        let text = explain(&Stalled {
            connections: 1,
            ongoing: 1,
            local: "10.0.0.2:40000".parse().unwrap(),
            remote: "10.0.0.1:8080".parse().unwrap(),
            longest: "3.0 s".into(),
            queued_bytes: 2_500_000,
            owner: None,
        });
        assert_eq!(
            text,
            "10.0.0.1:8080 advertised a zero window to the application on 1 connection (from \
             10.0.0.2:40000) for 3.0 s: its application stopped reading, its receive buffer \
             filled, and this side can only probe the window while 2500000 bytes wait in the send \
             queue. It is still stalled; the application blocks in write() (or sees EAGAIN) \
             meanwhile. The network is fine: the peer answers the probes."
        );
    }
}
