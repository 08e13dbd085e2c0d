//! Both ends of the same connections, when both are on this host (loopback, or containers on
//! one node): the client's finding and the server's name each other in `related`, and each
//! explanation tells the other side's part, so the whole story is read in one place.

use std::net::SocketAddr;

use crate::model::{Cause, Finding, Kind, Related};

/// Links the findings that are two ends of the same connections.
pub fn link(findings: &mut [Finding]) {
    let mut pairs = Vec::new();
    for (i, client) in findings.iter().enumerate() {
        for (j, server) in findings.iter().enumerate() {
            if i != j && client_and_server(client, server) {
                pairs.push((i, j));
                pairs.push((j, i));
            }
        }
    }
    // Each side tells the other's own part, not what linking added to it.
    let stories: Vec<String> = findings.iter().map(|f| f.explanation.clone()).collect();
    for (i, j) in pairs {
        let (related, story) = (Related::of(&findings[j]), &stories[j]);
        let finding = &mut findings[i];
        if !finding.related.contains(&related) {
            finding.related.push(related);
            finding
                .explanation
                .push_str(&format!(" The other end is on this host: {story}"));
        }
    }
}

/// `client` is what the connecting side saw, and `server` what the other end of the same
/// connections did.
fn client_and_server(client: &Finding, server: &Finding) -> bool {
    let to = endpoint(client.remote.as_deref());
    let at = endpoint(server.local.as_deref());
    let (Some(to), Some(at)) = (to, at) else {
        return false;
    };
    match (client.kind, client.cause, server.kind, server.cause) {
        // A refused connect; the RST came from this host's own stack.
        (Kind::RstReceived, Cause::ConnectionRefused, Kind::RstSent, Cause::NoListener) => to == at,
        // A reset received; this host's other side sent it, to one of these connections.
        (Kind::RstReceived, Cause::PeerReset | Cause::PeerResetDuringClose, Kind::RstSent, _) => {
            to == at && shares_an_endpoint(client, server)
        }
        // Connects that were not answered, to a listener here whose queue overflowed.
        (
            Kind::Retransmit | Kind::State,
            Cause::SynRetransmits | Cause::ConnectTimeout,
            Kind::QueueDrop,
            Cause::AcceptQueueOverflow | Cause::SynQueueOverflow,
        ) => to.port() == at.port() && (to.ip() == at.ip() || at.ip().is_unspecified()),
        // A client whose handshake's final ACK was dropped at the full accept queue believes it
        // is connected: its first data goes unanswered and is retransmitted.
        (Kind::Retransmit, Cause::DataRetransmits, Kind::QueueDrop, Cause::AcceptQueueOverflow) => {
            to.port() == at.port() && (to.ip() == at.ip() || at.ip().is_unspecified())
        }
        _ => false,
    }
}

/// Whether the client side's local endpoints and the server side's remote endpoints meet.
fn shares_an_endpoint(client: &Finding, server: &Finding) -> bool {
    let client_side: Vec<&str> = client
        .local
        .iter()
        .map(String::as_str)
        .chain(client.peers.iter().map(String::as_str))
        .collect();
    server
        .remote
        .iter()
        .chain(server.peers.iter())
        .any(|e| client_side.contains(&e.as_str()))
}

fn endpoint(text: Option<&str>) -> Option<SocketAddr> {
    text?.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn finding(kind: Kind, cause: Cause, local: &str, remote: &str, story: &str) -> Finding {
        Finding::observed(
            kind,
            cause,
            1,
            Some(local.parse().unwrap()),
            Some(remote.parse().unwrap()),
            None,
            story.to_string(),
            Map::new(),
        )
    }

    #[test]
    fn both_ends_name_each_other_and_tell_only_the_other_sides_own_part() {
        let mut findings = vec![
            finding(
                Kind::RstSent,
                Cause::NoListener,
                "127.0.0.9:80",
                "127.0.0.1:40001",
                "S.",
            ),
            finding(
                Kind::RstReceived,
                Cause::ConnectionRefused,
                "127.0.0.1:40001",
                "127.0.0.9:80",
                "A.",
            ),
            finding(
                Kind::RstReceived,
                Cause::ConnectionRefused,
                "127.0.0.2:40002",
                "127.0.0.9:80",
                "B.",
            ),
            finding(
                Kind::RstReceived,
                Cause::ConnectionRefused,
                "127.0.0.1:40003",
                "127.0.0.9:81",
                "C.",
            ),
        ];
        link(&mut findings);
        let [server, a, b, unrelated] = &findings[..] else {
            unreachable!()
        };
        assert_eq!(server.related.len(), 2);
        assert_eq!(
            server.explanation,
            "S. The other end is on this host: A. The other end is on this host: B."
        );
        assert_eq!(a.explanation, "A. The other end is on this host: S.");
        assert_eq!(b.related, vec![Related::of(server)]);
        assert!(unrelated.related.is_empty(), "another port");
        assert_eq!(unrelated.explanation, "C.");
    }

    #[test]
    fn data_retransmits_to_a_full_listener_are_linked_but_not_those_it_sends() {
        let mut findings = vec![
            finding(
                Kind::QueueDrop,
                Cause::AcceptQueueOverflow,
                "10.0.0.1:8080",
                "10.0.0.2:40000",
                "Q.",
            ),
            finding(
                Kind::Retransmit,
                Cause::DataRetransmits,
                "10.0.0.2:40000",
                "10.0.0.1:8080",
                "client.",
            ),
            finding(
                Kind::Retransmit,
                Cause::DataRetransmits,
                "10.0.0.1:8080",
                "10.0.0.2:40001",
                "server.",
            ),
        ];
        link(&mut findings);
        assert_eq!(findings[1].related, vec![Related::of(&findings[0])]);
        assert!(findings[2].related.is_empty());
        assert_eq!(
            findings[0].explanation,
            "Q. The other end is on this host: client."
        );
    }

    #[test]
    fn unanswered_connects_are_linked_to_the_listener_whose_queue_overflowed() {
        let mut findings = vec![
            finding(
                Kind::QueueDrop,
                Cause::AcceptQueueOverflow,
                "0.0.0.0:8080",
                "10.0.0.2:1",
                "Q.",
            ),
            finding(
                Kind::Retransmit,
                Cause::SynRetransmits,
                "10.0.0.2:40000",
                "10.0.0.1:8080",
                "R.",
            ),
            finding(
                Kind::State,
                Cause::ConnectTimeout,
                "10.0.0.2:40001",
                "10.0.0.1:8081",
                "T.",
            ),
        ];
        link(&mut findings);
        assert_eq!(findings[1].related, vec![Related::of(&findings[0])]);
        assert_eq!(
            findings[0].related.len(),
            1,
            "only the connects to its port"
        );
        assert!(findings[2].related.is_empty());
    }
}
