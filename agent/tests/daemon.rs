//! `tcpwhy daemon`: metrics, events, configuration errors and a clean stop, against the real
//! kernel.

mod support;

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr, TcpListener},
    process::Command,
    thread::sleep,
    time::Duration,
};

use serde_json::Value;
use support::{
    daemon::{Daemon, metric},
    netns::TestNetns,
    require_bpf, scenarios, unique_ipv4,
};

/// Long enough for the 1 s fold of kernel totals and several 100 ms queue samples.
const SETTLE: Duration = Duration::from_millis(1500);

fn ours<'a>(events: &'a [Value], kind: &str, cause: &str, local: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["cause"] == cause && e["local"] == local)
        .collect()
}

#[test]
fn metrics_and_events_follow_a_scenario() {
    if !require_bpf() {
        return;
    }
    // The namespace exists before the daemon, as a container's would: drops in a namespace born
    // less than a rescan (1 s) ago fall into its baseline.
    let ns = TestNetns::new();
    let daemon = Daemon::start(&[]);
    let before = daemon.scrape();
    let sent_before = metric(
        &before,
        "tcpwhy_resets_total",
        &[("direction", "sent"), ("cause", "no_listener")],
    )
    .unwrap_or(0.0);

    // Four refused connects to an address of our own.
    let ip = IpAddr::V4(unique_ipv4());
    let server = SocketAddr::new(ip, 7);
    let clients: Vec<SocketAddr> = (0..4)
        .map(|_| scenarios::refused_connect(ip, server))
        .collect();

    // An overflowing listener in a namespace of our own: its series are ours alone.
    let listen_at: SocketAddr = "127.0.0.1:7800".parse().unwrap();
    let (_listener, _pending) = ns.enter(|| scenarios::overflowing_listener(listen_at, 1, 5));
    sleep(SETTLE);
    let after = daemon.scrape();
    let events = daemon.events();

    // Refused connects are counted in the kernel (no record each): the fold brings them here.
    let refused = |text: &str| {
        metric(
            text,
            "tcpwhy_connect_failures_total",
            &[("result", "refused")],
        )
        .unwrap_or(0.0)
    };
    assert!(
        refused(&after) - refused(&before) >= 4.0,
        "{} then {}",
        refused(&before),
        refused(&after)
    );

    // The event stream has exactly the scenario's resets, with their endpoints.
    let sent = ours(&events, "rst_sent", "no_listener", &server.to_string());
    assert_eq!(sent.len(), 4, "{sent:#?}");
    let remotes: BTreeSet<String> = sent
        .iter()
        .map(|e| e["remote"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = clients.iter().map(|c| c.to_string()).collect();
    assert_eq!(remotes, expected);
    assert!(
        sent.iter()
            .all(|e| e["count"] == 1 && e["timestamp"].is_string())
    );
    for client in &clients {
        assert_eq!(
            ours(
                &events,
                "rst_received",
                "connection_refused",
                &client.to_string()
            )
            .len(),
            1
        );
    }
    // The counter moved by at least the scenario (other tests may add resets of their own).
    let sent_after = metric(
        &after,
        "tcpwhy_resets_total",
        &[("direction", "sent"), ("cause", "no_listener")],
    )
    .unwrap();
    assert!(
        sent_after - sent_before >= 4.0,
        "{sent_before} -> {sent_after}"
    );

    // The listener's own series: drops counted exactly as the event stream reported them.
    let inode = ns.inode().to_string();
    let labels = [
        ("cause", "accept_queue_overflow"),
        ("listener", "127.0.0.1:7800"),
        ("namespace", inode.as_str()),
    ];
    let dropped = metric(&after, "tcpwhy_queue_drops_total", &labels).expect("queue drop series");
    let streamed: u64 = ours(
        &events,
        "queue_drop",
        "accept_queue_overflow",
        "127.0.0.1:7800",
    )
    .iter()
    .map(|e| e["count"].as_u64().unwrap())
    .sum();
    assert!(dropped >= 3.0, "{dropped}");
    assert_eq!(dropped, streamed as f64);
    let gauge = [
        ("listener", "127.0.0.1:7800"),
        ("namespace", inode.as_str()),
    ];
    assert_eq!(
        metric(&after, "tcpwhy_listen_queue_length", &gauge),
        Some(2.0)
    );
    assert_eq!(
        metric(&after, "tcpwhy_listen_queue_limit", &gauge),
        Some(1.0)
    );
    assert!(
        metric(
            &after,
            "tcpwhy_state_transitions_total",
            &[("from", "CLOSE"), ("to", "SYN_SENT")]
        )
        .unwrap()
            >= 4.0
    );
    assert_eq!(
        metric(&after, "tcpwhy_coverage", &[("capability", "resets_sent")]),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &after,
            "tcpwhy_probe_attached",
            &[("probe", "tcp:tcp_send_reset"), ("method", "tp_btf")]
        ),
        Some(1.0)
    );

    // promtool finds nothing to say about the exposition.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (cargo xtask setup installs prometheus)");
    std::io::Write::write_all(promtool.stdin.as_mut().unwrap(), after.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.stdout.is_empty() && checked.stderr.is_empty(),
        "{checked:?}"
    );
}

/// The ids of the BPF programs, maps and links a process holds, from its fdinfo.
fn bpf_objects(pid: u32) -> BTreeSet<(String, u64)> {
    let mut found = BTreeSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(fd.path()).unwrap_or_default();
        for line in text.lines() {
            for kind in ["prog_id", "map_id", "link_id"] {
                if let Some(id) = line.strip_prefix(&format!("{kind}:")) {
                    found.insert((kind.to_string(), id.trim().parse().unwrap()));
                }
            }
        }
    }
    found
}

#[test]
fn sigterm_detaches_everything_within_two_seconds() {
    if !require_bpf() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let held = bpf_objects(daemon.pid());
    assert!(held.iter().any(|(kind, _)| kind == "prog_id"), "{held:?}");
    assert!(held.iter().any(|(kind, _)| kind == "link_id"), "{held:?}");
    let (status, took) = daemon.stop();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Nothing pinned, nothing held: every id leaves the kernel (which frees maps and programs
    // asynchronously, hence a short grace period).
    let exists = |kind: &str, id: u64| {
        let object = match kind {
            "prog_id" => "prog",
            "map_id" => "map",
            _ => "link",
        };
        Command::new("bpftool")
            .args([object, "show", "id", &id.to_string()])
            .output()
            .expect("bpftool (cargo xtask setup installs it)")
            .status
            .success()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut left: Vec<&(String, u64)> = held.iter().collect();
    while !left.is_empty() && std::time::Instant::now() < deadline {
        left.retain(|(kind, id)| exists(kind, *id));
        sleep(Duration::from_millis(50));
    }
    assert!(
        left.is_empty(),
        "still in the kernel 2 s after exit: {left:?}"
    );
}

#[test]
fn bad_configuration_exits_2_naming_key_and_file() {
    let dir = std::env::temp_dir().join(format!("tcpwhy-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (text, expected) in [
        ("listen_address = \"127.0.0.1:1\"\n", "listen_address"),
        ("listen = \"not an address\"\n", "key `listen`"),
        ("events_per_second = -3\n", "events_per_second"),
        ("ring_buffer_bytes = 5000\n", "ring_buffer_bytes"),
        ("ring_buffer_bytes = 2147483648\n", "ring_buffer_bytes"),
        (
            "probe_methods = []\n",
            "key `probe_methods` must name at least one method",
        ),
        (
            "events = \"/dev/full\"\n",
            "key `events`: /dev/full is a device",
        ),
    ] {
        let file = dir.join("tcpwhy.toml");
        std::fs::write(&file, text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_tcpwhy"))
            .args(["daemon", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert!(stderr.contains(file.to_str().unwrap()), "{text}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tcpwhy"))
        .args([
            "daemon",
            "--listen",
            &taken.local_addr().unwrap().to_string(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
}

#[test]
fn a_burst_beyond_the_event_rate_is_counted_not_lost() {
    if !require_bpf() {
        return;
    }
    let daemon = Daemon::start(&["--events-per-second", "5"]);
    let ip = IpAddr::V4(unique_ipv4());
    let server = SocketAddr::new(ip, 7);
    for _ in 0..30 {
        scenarios::refused_connect(ip, server);
    }
    sleep(SETTLE);
    let events = daemon.events();
    let written = ours(&events, "rst_sent", "no_listener", &server.to_string()).len();
    assert!(written < 30, "the rate limit cut nothing: {written}");
    let suppressed: u64 = events
        .iter()
        .filter(|e| e["kind"] == "suppressed")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert!(suppressed > 0, "no suppressed report");
    // Scraped after reading the stream: the metric has every suppression the lines report (and
    // those from the last second, not reported yet), over every kind.
    let metrics = daemon.scrape();
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("tcpwhy_events_suppressed_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        counted >= suppressed as f64,
        "metric {counted} < reported {suppressed}"
    );
    // Metrics count every reset, whatever the stream wrote.
    assert!(
        metric(
            &metrics,
            "tcpwhy_resets_total",
            &[("direction", "sent"), ("cause", "no_listener")]
        )
        .unwrap()
            >= 30.0
    );
}

#[test]
fn a_timed_out_connect_is_counted_and_reported_as_a_state_event() {
    if !require_bpf() {
        return;
    }
    let ns = TestNetns::new();
    ns.drop_tcp_to(9999);
    let daemon = Daemon::start(&[]);
    let silent: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let err = ns.enter(|| {
        let socket = std::net::TcpStream::connect_timeout(&silent, Duration::from_millis(2500));
        socket.expect_err("nothing answers")
    });
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    sleep(SETTLE);
    let metrics = daemon.scrape();
    assert!(
        metric(
            &metrics,
            "tcpwhy_connect_failures_total",
            &[("result", "timeout")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(metric(&metrics, "tcpwhy_retransmits_total", &[("kind", "syn")]).unwrap() >= 1.0);
    // Retransmit and state findings go to the stream every 10 s, as they change.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let inode = ns.inode();
    let reported = loop {
        let events = daemon.events();
        let found: Vec<Value> = events
            .into_iter()
            .filter(|e| e["cause"] == "connect_timeout" && e["evidence"]["namespace"] == inode)
            .collect();
        if !found.is_empty() || std::time::Instant::now() > deadline {
            break found;
        }
        sleep(Duration::from_millis(250));
    };
    assert_eq!(reported.len(), 1, "{reported:#?}");
    assert_eq!(reported[0]["kind"], "state");
    assert_eq!(reported[0]["remote"], silent.to_string());
    assert_eq!(reported[0]["count"], 1);
}

#[test]
fn a_fifo_as_the_event_file_is_refused_at_once() {
    let fifo = std::env::temp_dir().join(format!("tcpwhy-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_tcpwhy"))
        .args(["daemon", "--listen", "127.0.0.1:0", "--events"])
        .arg(&fifo)
        .output()
        .unwrap();
    std::fs::remove_file(&fifo).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("key `events`") && stderr.contains("is a FIFO"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_ephemeral_listen_port_is_logged_as_bound() {
    if !require_bpf() {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpwhy"))
        .args(["daemon", "--listen", "127.0.0.1:0", "--events", "off"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut logged = String::new();
    let listen = loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            panic!("the daemon exited: {logged}");
        }
        logged.push_str(&line);
        if line.contains("serving /metrics") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let port: u16 = listen
        .split("listen=127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{listen}"));
    assert_ne!(port, 0, "{listen}");
}

#[test]
fn the_event_stream_keeps_only_the_filtered_port_while_metrics_count_everything() {
    if !require_bpf() {
        return;
    }
    let daemon = Daemon::start(&["--port", "7"]);
    let sent = |text: &str| {
        metric(
            text,
            "tcpwhy_resets_total",
            &[("direction", "sent"), ("cause", "no_listener")],
        )
        .unwrap_or(0.0)
    };
    let before = sent(&daemon.scrape());
    let ip = IpAddr::V4(unique_ipv4());
    scenarios::refused_connect(ip, SocketAddr::new(ip, 7));
    scenarios::refused_connect(ip, SocketAddr::new(ip, 9));
    sleep(SETTLE);
    let after = sent(&daemon.scrape());
    let events = daemon.events();

    assert_eq!(
        ours(&events, "rst_sent", "no_listener", &format!("{ip}:7")).len(),
        1
    );
    assert!(
        ours(&events, "rst_sent", "no_listener", &format!("{ip}:9")).is_empty(),
        "filtered out of the stream: {events:#?}"
    );
    // Other traffic on the host may add to the counter; ours adds at least both.
    assert!(after - before >= 2.0, "{before} → {after}");
}
