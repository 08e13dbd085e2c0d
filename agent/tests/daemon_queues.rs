//! `tcpwhy daemon`'s queue-drop metrics against the kernel's own count: several listeners full
//! at once in one namespace must divide its drops, never multiply them.

mod support;

use std::{net::SocketAddr, thread::sleep, time::Duration};

use serde_json::Value;
use support::{daemon::Daemon, netns::TestNetns, require_bpf, scenarios::overflowing_listener};

/// Long enough for the clients' first SYN retransmit (1 s) to be dropped again.
const OVERFLOWING: Duration = Duration::from_millis(1500);
/// Several 100 ms samples: every counted drop is credited and published.
const SETTLE: Duration = Duration::from_millis(1000);

/// TcpExt ListenOverflows of the test namespace, read inside it.
fn listen_overflows(ns: &TestNetns) -> u64 {
    let output = ns
        .exec()
        .args(["cat", "/proc/net/netstat"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let tcp_ext: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let (names, values) = (tcp_ext[0], tcp_ext[1]);
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .map(|(_, value)| value.parse().unwrap())
        .expect("ListenOverflows in /proc/net/netstat")
}

/// Every `tcpwhy_queue_drops_total` series of `cause` in namespace `inode`, whatever its
/// listener label.
fn queue_drops_in(metrics: &str, cause: &str, inode: u64) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("tcpwhy_queue_drops_total{"))
        .filter(|l| {
            l.contains(&format!("cause=\"{cause}\""))
                && l.contains(&format!("namespace=\"{inode}\""))
        })
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn full_listeners_divide_the_namespace_drops_and_the_metrics_sum_to_the_kernel_count() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    let daemon = Daemon::start(&[]);
    let before = listen_overflows(&ns);
    let listeners: Vec<SocketAddr> = (7811..=7813)
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .collect();
    // Backlog 1 holds 2 connections: 3 of each listener's 5 clients are dropped, on every
    // retransmit too.
    let overflowing = ns.enter(|| {
        listeners
            .iter()
            .map(|addr| overflowing_listener(*addr, 1, 5))
            .collect::<Vec<_>>()
    });
    sleep(OVERFLOWING);
    // Closing the clients stops their retransmits: the kernel's count stops moving.
    let sockets: Vec<_> = overflowing
        .into_iter()
        .map(|(listener, _)| listener)
        .collect();
    sleep(SETTLE);
    let kernel = listen_overflows(&ns) - before;
    sleep(SETTLE);
    let metrics = daemon.scrape();

    assert!(kernel >= 9, "3 listeners × 3 SYNs dropped: {kernel}");
    let inode = ns.inode();
    let series = queue_drops_in(&metrics, "accept_queue_overflow", inode);
    let credited: f64 = series.iter().map(|(_, value)| value).sum();
    assert_eq!(credited, kernel as f64, "{series:#?}");
    for addr in &listeners {
        assert!(
            series
                .iter()
                .any(|(labels, _)| labels.contains(&format!("listener=\"{addr}\""))),
            "{addr} has no series: {series:#?}"
        );
    }
    // Who owns each listener, to sum its drops by process, pod, container or unit.
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    for addr in &listeners {
        let owner = format!("tcpwhy_listener_info{{comm=\"{}\",", comm.trim_end());
        let series = format!("listener=\"{addr}\",namespace=\"{inode}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&owner) && l.contains(&series) && l.ends_with(" 1")),
            "no owner for {addr}:\n{metrics}"
        );
    }

    // The stream says how shared drops were divided.
    let events = daemon.events();
    let shared: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["kind"] == "queue_drop"
                && e["evidence"]["namespace"] == inode
                && e["evidence"]["certainty"] == "shared"
        })
        .collect();
    assert!(!shared.is_empty(), "no shared credit: {events:#?}");
    for event in &shared {
        let split = event["evidence"]["split"].as_str().unwrap();
        assert!(
            split.contains("listeners were full at once; the namespace's"),
            "{split}"
        );
        assert!(split.contains("the remainder one each"), "{split}");
        assert!(
            !event["evidence"]["shared_with"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
    drop(sockets);
}
