//! Resets a firewall on this host built: an nftables `reject with tcp reset` rule in a namespace
//! of the test's own answers for a port, and the agent must tell that from a reset the TCP stack
//! sent. Where the probe on `nf_send_reset` loads (the kernel matrix), it saw netfilter build the
//! reset; where none does (this host), the agent infers it.

mod support;

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    thread::sleep,
    time::Duration,
};

use serde_json::Value;
use support::{Agent, Report, netns::TestNetns, our_pid, require_bpf};

/// A table in `ns` whose input chain answers TCP segments to `port` with a reset.
fn reject_with_reset(ns: &TestNetns, port: u16) {
    let table = format!("reject{port}");
    ns.nft(&format!("add table inet {table}"));
    ns.nft(&format!(
        "add chain inet {table} in {{ type filter hook input priority 0 ; }}"
    ));
    ns.nft(&format!(
        "add rule inet {table} in tcp dport {port} reject with tcp reset"
    ));
}

/// Whether the agent saw netfilter build resets, rather than inferring it.
fn probed(report: &Report) -> bool {
    report.probe("nf_send_reset")["attached"] == true
}

/// What the received reset's finding must say of how it is known.
fn assert_known_as_expected(report: &Report, finding: &Value) {
    let story = finding["explanation"].as_str().unwrap();
    if probed(report) {
        assert!(finding["evidence"]["inferred"].is_null(), "{finding:#}");
        assert!(story.contains("netfilter was seen building it"), "{story}");
    } else {
        assert!(finding["evidence"]["inferred"].is_string(), "{finding:#}");
        assert!(story.contains("its TCP stack sent no reset"), "{story}");
    }
}

/// The rule's own resets, where the probe saw them: one finding for the service's port.
fn assert_rule_seen_answering(report: &Report, service: SocketAddr, inode: u64, flags: &str) {
    let sent: Vec<&Value> = report
        .in_namespace_at(&service.to_string(), inode)
        .into_iter()
        .filter(|f| f["kind"] == "rst_sent")
        .collect();
    if !probed(report) {
        // The listener's stack sent nothing, and nothing saw netfilter.
        assert!(sent.is_empty(), "{}", report.touching(&service.to_string()));
        return;
    }
    assert_eq!(sent.len(), 1, "{}", report.touching(&service.to_string()));
    let finding = sent[0];
    assert_eq!(finding["cause"], "firewall_reject", "{finding:#}");
    assert_eq!(
        finding["evidence"]["hook"],
        "nf_send_reset (netfilter REJECT)"
    );
    assert!(
        finding["evidence"]["segment_flags"]
            .as_str()
            .is_some_and(|f| f.contains(flags)),
        "{finding:#}"
    );
    let story = finding["explanation"].as_str().unwrap();
    assert!(
        story.contains("A netfilter rule on this host answered"),
        "{story}"
    );
}

fn firewall_findings(report: &Report, client: SocketAddr, inode: u64) -> Vec<&Value> {
    report
        .in_namespace_at(&client.to_string(), inode)
        .into_iter()
        .filter(|f| f["kind"] == "rst_received")
        .collect()
}

#[test]
fn a_connect_a_reject_rule_answers_is_firewall_reject_even_with_a_listener() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let service: SocketAddr = "127.0.0.1:7651".parse().unwrap();
    // The port has a listener: only the rule stands between it and the client.
    let _listener = ns.enter(|| TcpListener::bind(service).unwrap());
    reject_with_reset(&ns, service.port());
    let agent = Agent::start(&[]);
    let client = ns.enter(|| {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .unwrap();
        socket
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let local = socket.local_addr().unwrap().as_socket().unwrap();
        let err = socket.connect(&service.into()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        local
    });
    let report = agent.finish();

    let found = firewall_findings(&report, client, ns.inode());
    assert_eq!(found.len(), 1, "{}", report.touching(&service.to_string()));
    let finding = found[0];
    assert_eq!(finding["cause"], "firewall_reject", "{finding:#}");
    assert_eq!(finding["remote"], service.to_string());
    assert_eq!(finding["evidence"]["socket_state"], "SYN_SENT");
    assert_known_as_expected(&report, finding);
    assert_eq!(finding["process"]["pid"], our_pid());
    let story = finding["explanation"].as_str().unwrap();
    assert!(story.contains("reject with tcp reset"), "{story}");
    assert!(story.contains("ECONNREFUSED"), "{story}");
    assert_rule_seen_answering(&report, service, ns.inode(), "SYN");
}

#[test]
fn an_established_connection_a_reject_rule_cuts_is_firewall_reject() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let service: SocketAddr = "127.0.0.1:7652".parse().unwrap();
    let (_listener, mut client, _accepted) = ns.enter(|| {
        let listener = TcpListener::bind(service).unwrap();
        let client = TcpStream::connect(service).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (listener, client, accepted)
    });
    let local = client.local_addr().unwrap();
    let agent = Agent::start(&[]);
    reject_with_reset(&ns, service.port());
    client.write_all(b"still there?").unwrap();
    sleep(Duration::from_millis(200));
    let mut buf = [0u8; 8];
    let err = client.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let report = agent.finish();

    let found = firewall_findings(&report, local, ns.inode());
    assert_eq!(found.len(), 1, "{}", report.touching(&local.to_string()));
    let finding = found[0];
    assert_eq!(finding["cause"], "firewall_reject", "{finding:#}");
    assert_eq!(finding["evidence"]["socket_state"], "ESTABLISHED");
    assert_known_as_expected(&report, finding);
    let story = finding["explanation"].as_str().unwrap();
    assert!(story.contains("ECONNRESET"), "{story}");
    assert_rule_seen_answering(&report, service, ns.inode(), "ACK");
}
