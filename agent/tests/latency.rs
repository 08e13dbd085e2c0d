//! Handshake times and round trips, over a path whose delay the test sets (a delay line between
//! two namespaces): the report's quantiles per destination and listener, the SRTT at close, and
//! the daemon's `tcpwhy_connect_duration_seconds` buckets must all show that round trip, and a
//! loopback connection beside it must not.

mod support;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    thread::sleep,
    time::Duration,
};

use serde_json::Value;
use support::{
    Agent,
    daemon::{Daemon, metric},
    delay_line::{CLIENT_IP, DelayedLink, SERVER_IP},
    require_bpf,
};

/// Each way; the round trip is twice this.
const ONE_WAY: Duration = Duration::from_millis(20);
const RTT_MS: f64 = 40.0;
const CONNECTIONS: usize = 5;
const PORT: u16 = 8080;

/// A quantile estimated from half-octave buckets is within a half of the truth; the delay line
/// adds scheduling time on a loaded machine or an emulated guest, never less than the delay.
fn assert_near_rtt(row: &Value, what: &str) {
    let p50 = row["p50_ms"].as_f64().unwrap();
    let max = row["max_ms"].as_f64().unwrap();
    assert!(
        (0.8 * RTT_MS..2.5 * RTT_MS).contains(&p50),
        "{what}: p50 {p50} ms, for a {RTT_MS} ms round trip: {row}"
    );
    assert!(
        max >= RTT_MS,
        "{what}: max {max} ms is below the round trip: {row}"
    );
}

/// `CONNECTIONS` connections from the client namespace to a server in the other one: each
/// sends a request, reads the echo and closes. Also one loopback connection inside the client
/// namespace, with no delay.
fn exchange(link: &DelayedLink) {
    let server: SocketAddr = format!("{SERVER_IP}:{PORT}").parse().unwrap();
    let listener = link.server.enter(|| TcpListener::bind(server).unwrap());
    let echo = std::thread::spawn(move || {
        for _ in 0..CONNECTIONS {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
            // The client closes first; this end reads its FIN, then closes.
            let _ = conn.read(&mut buf);
        }
    });
    link.client.enter(|| {
        for _ in 0..CONNECTIONS {
            let mut conn = TcpStream::connect(server).unwrap();
            conn.write_all(b"hello").unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).unwrap();
        }
        let local = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(local.local_addr().unwrap()).unwrap();
        drop(local.accept().unwrap());
        drop(near);
    });
    echo.join().unwrap();
}

fn row<'a>(rows: &'a Value, field: &str, value: &str, netns: u64) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[field] == value && r["namespace"] == netns)
        .unwrap_or_else(|| panic!("no {field} {value} in namespace {netns}: {rows}"))
}

#[test]
fn report_shows_the_round_trip_of_a_delayed_path() {
    if !require_bpf() {
        return;
    }
    let link = DelayedLink::new(ONE_WAY);
    let agent = Agent::start(&[]);
    exchange(&link);
    // Let the server's side close too (its FIN waits for the delay line).
    sleep(Duration::from_millis(300));
    let report = agent.finish();
    let latency = &report.json["latency"];
    let (client_ns, server_ns) = (link.client.inode(), link.server.inode());
    assert_eq!(
        latency["unmeasured"],
        Value::Array(vec![]),
        "{}",
        report.agent_log
    );

    let connects = row(
        &latency["connects"],
        "remote",
        &format!("{SERVER_IP}:{PORT}"),
        client_ns,
    );
    assert_eq!(connects["connects"], CONNECTIONS as u64, "{connects}");
    assert_near_rtt(connects, "connect");

    let accepts = row(
        &latency["accepts"],
        "listener",
        &format!("{SERVER_IP}:{PORT}"),
        server_ns,
    );
    assert_eq!(accepts["connects"], CONNECTIONS as u64, "{accepts}");
    assert_near_rtt(accepts, "accept");

    let client_srtt = row(&latency["srtt_at_close"], "remote", SERVER_IP, client_ns);
    assert_eq!(
        client_srtt["connections"], CONNECTIONS as u64,
        "{client_srtt}"
    );
    assert_near_rtt(client_srtt, "client's SRTT at close");
    let server_srtt = row(&latency["srtt_at_close"], "remote", CLIENT_IP, server_ns);
    assert_eq!(
        server_srtt["connections"], CONNECTIONS as u64,
        "{server_srtt}"
    );
    assert_near_rtt(server_srtt, "server's SRTT at close");

    // The loopback connection beside them is far quicker (an emulated guest took 10 ms).
    let near = latency["connects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["namespace"] == client_ns && r["remote"].as_str().unwrap().starts_with("127.0.0.1:")
        })
        .unwrap_or_else(|| panic!("no loopback connect: {latency}"));
    assert!(near["max_ms"].as_f64().unwrap() < RTT_MS / 2.0, "{near}");
}

/// The metric's buckets in seconds: between 16.384 ms and 65.536 ms for a 40 ms round trip.
fn in_band(text: &str, direction: &str) -> f64 {
    let bucket = |le: &str| {
        metric(
            text,
            "tcpwhy_connect_duration_seconds_bucket",
            &[("direction", direction), ("le", le)],
        )
        .unwrap_or_else(|| panic!("no {direction} bucket le={le}:\n{text}"))
    };
    bucket("0.065536") - bucket("0.016384")
}

#[test]
fn daemon_histogram_counts_the_delayed_handshakes_in_their_buckets() {
    if !require_bpf() {
        return;
    }
    let link = DelayedLink::new(ONE_WAY);
    let daemon = Daemon::start(&[]);
    let before = daemon.scrape();
    exchange(&link);
    // The daemon copies the kernel's totals every second.
    sleep(Duration::from_millis(2500));
    let after = daemon.scrape();
    for direction in ["connect", "accept"] {
        let grown = in_band(&after, direction) - in_band(&before, direction);
        assert!(
            grown >= CONNECTIONS as f64,
            "{direction}: {grown} handshakes between 16 and 66 ms, expected {CONNECTIONS}:\n{after}"
        );
        let count = |text: &str| {
            metric(
                text,
                "tcpwhy_connect_duration_seconds_count",
                &[("direction", direction)],
            )
            .unwrap()
        };
        assert!(count(&after) - count(&before) >= CONNECTIONS as f64);
    }
    daemon.stop();
}
