//! A storm of resets past the per-event rate, in a namespace of the test's own: the kernel
//! aggregates what the rate leaves over, and the report must still count every reset the
//! namespace's own counters count, under the cause it would have named each one by.

mod support;

use std::{
    io::Write,
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
};

use serde_json::Value;
use support::{Agent, Report, netns::TestNetns, our_pid, require_bpf, scenarios, unique_ipv4};
use tcpwhy_common::reset::DEFAULT_RECORDS_PER_WINDOW;

/// Refused connects: a reset sent and one received each.
const REFUSED: u64 = 3 * DEFAULT_RECORDS_PER_WINDOW as u64;
/// Connections the server closes with a byte unread: an abort on close each.
const ABORTED: u64 = DEFAULT_RECORDS_PER_WINDOW as u64;

/// One counter of the namespace the calling thread is in, from `/proc/thread-self/net/<file>`
/// (`/proc/net` is the process's namespace, not the thread's).
fn counter(file: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/thread-self/net/{file}")).unwrap();
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let found = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == name);
        if let Some((_, value)) = found {
            return value.parse().unwrap();
        }
    }
    panic!("no {name} in {file}")
}

/// Resets sent (TcpOutRsts) and aborts on close (TCPAbortOnClose) in the calling thread's
/// namespace.
fn reset_counters() -> (u64, u64) {
    (
        counter("snmp", "OutRsts"),
        counter("netstat", "TCPAbortOnClose"),
    )
}

/// The server accepts, lets the client's byte arrive, and closes without reading it.
fn abort_on_close(listener: &TcpListener, server: SocketAddr) {
    let mut client = TcpStream::connect(server).unwrap();
    client.write_all(b"x").unwrap();
    let (accepted, _) = listener.accept().unwrap();
    accepted.peek(&mut [0u8; 1]).unwrap();
    drop(accepted);
}

fn sum_counts(findings: &[&Value]) -> u64 {
    findings.iter().map(|f| f["count"].as_u64().unwrap()).sum()
}

#[test]
fn a_storm_past_the_rate_is_counted_in_full_under_its_causes() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    // Addresses of this test's own: a reset sent without a socket names no namespace, so its
    // findings are told apart by address.
    let ip = IpAddr::V4(unique_ipv4());
    let (refused_at, service) = (SocketAddr::new(ip, 7), SocketAddr::new(ip, 7002));
    let agent = Agent::start(&[]);
    let (before, after) = ns.enter(|| {
        let listener = TcpListener::bind(service).unwrap();
        let before = reset_counters();
        for _ in 0..REFUSED {
            scenarios::refused_connect(refused_at.ip(), refused_at);
        }
        for _ in 0..ABORTED {
            abort_on_close(&listener, service);
        }
        (before, reset_counters())
    });
    let report = agent.finish();
    let inode = ns.inode();
    let (sent_by_kernel, aborts_by_kernel) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(aborts_by_kernel, ABORTED);

    let sent: Vec<&Value> = report
        .findings()
        .iter()
        .filter(|f| {
            f["kind"] == "rst_sent"
                && f["local"]
                    .as_str()
                    .is_some_and(|l| l.starts_with(&format!("{ip}:")))
        })
        .collect();
    assert_eq!(sum_counts(&sent), sent_by_kernel, "{sent:#?}");
    let refused = report.one("rst_sent", "no_listener", &refused_at.to_string());
    assert_eq!(refused["count"], REFUSED);
    let closed = report.one_in(
        "rst_sent",
        "close_with_unread_data",
        &service.to_string(),
        inode,
    );
    assert_eq!(closed["count"], ABORTED);
    assert_eq!(closed["process"]["pid"], our_pid());

    // The client side: each refused connect's reset received, grouped by the service called.
    let received: Vec<&Value> = report
        .findings()
        .iter()
        .filter(|f| {
            f["kind"] == "rst_received"
                && f["remote"] == refused_at.to_string()
                && support::in_namespace(f, inode)
        })
        .collect();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0]["cause"], "connection_refused");
    assert_eq!(received[0]["count"], REFUSED);

    // Past the rate: most were aggregated, and the report says how many.
    let aggregated = aggregated_in(&report);
    assert!(aggregated > REFUSED, "aggregated {aggregated}");
    assert!(
        refused["evidence"]["aggregated_in_kernel"]
            .as_u64()
            .unwrap()
            > 0,
        "{refused:#}"
    );
    assert_eq!(report.json["window"]["events_lost"], 0);
}

fn aggregated_in(report: &Report) -> u64 {
    report.json["window"]["resets_aggregated"].as_u64().unwrap()
}
