//! `tcpwhy watch` and the filters: findings printed as they happen, only those asked about.

mod support;

use std::{
    io::{BufRead, BufReader},
    net::{IpAddr, SocketAddr},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{Agent, free_port, require_bpf, scenarios, unique_ipv4};

#[test]
fn watch_prints_each_finding_within_a_second_and_only_the_filtered_port() {
    if !require_bpf() {
        return;
    }
    let ip = IpAddr::V4(unique_ipv4());
    // A port no other test uses: the filter is by port, and tests run side by side.
    let (wanted, other) = (SocketAddr::new(ip, free_port(ip)), SocketAddr::new(ip, 9));
    let port = wanted.port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpwhy"))
        .args(["watch", "--format", "json", "--port", &port])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning tcpwhy watch");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("attached "), "{line}");
    let (lines, lines_in) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });

    scenarios::refused_connect(ip, other);
    let client = scenarios::refused_connect(ip, wanted);
    let started = Instant::now();
    let ours = |f: &Value| f.to_string().contains(&format!("\"{ip}:"));
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 2 && started.elapsed() < Duration::from_secs(5) {
        if let Ok(line) = lines_in.recv_timeout(Duration::from_millis(100)) {
            let finding: Value = serde_json::from_str(&line).expect("a JSON line");
            if ours(&finding) {
                seen.push(finding);
            }
        }
    }
    let took = started.elapsed();
    // Nothing about the other port gets through the filter, even given more time.
    std::thread::sleep(Duration::from_millis(300));
    let late: Vec<Value> = lines_in
        .try_iter()
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(|f| ours(f))
        .collect();
    // SAFETY: kill with a pid we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());

    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let sent = seen
        .iter()
        .find(|f| f["kind"] == "rst_sent")
        .expect("rst_sent");
    assert_eq!(sent["cause"], "no_listener");
    assert_eq!(sent["local"], wanted.to_string());
    let received = seen
        .iter()
        .find(|f| f["kind"] == "rst_received")
        .expect("rst_received");
    assert_eq!(received["cause"], "connection_refused");
    assert_eq!(received["local"], client.to_string());
    assert!(late.is_empty(), "{late:#?}");
}

#[test]
fn diagnose_keeps_only_the_findings_of_the_filtered_process() {
    if !require_bpf() {
        return;
    }
    let ip = IpAddr::V4(unique_ipv4());
    let agent = Agent::start(&["--pid", &std::process::id().to_string()]);
    scenarios::refused_connect(ip, SocketAddr::new(ip, 7));
    let report = agent.finish();
    // Ours: the refused connect this process made. The no_listener reset has no process, so
    // the filter leaves it out.
    let refused: Vec<&Value> = report
        .findings()
        .iter()
        .filter(|f| f["kind"] == "rst_received" && f["remote"] == format!("{ip}:7"))
        .collect();
    assert_eq!(refused.len(), 1, "{:#?}", report.findings());
    assert_eq!(refused[0]["cause"], "connection_refused");
    assert!(
        report
            .findings()
            .iter()
            .all(|f| f["process"]["pid"] == std::process::id()),
        "{:#?}",
        report.findings()
    );
}

#[test]
fn diagnose_filters_a_port_in_the_kernel_and_says_how_many_resets_it_passed_over() {
    if !require_bpf() {
        return;
    }
    let ip = IpAddr::V4(unique_ipv4());
    let (watched, elsewhere) = (SocketAddr::new(ip, 7), SocketAddr::new(ip, 9));
    let agent = Agent::start(&["--port", "7"]);
    scenarios::refused_connect(ip, watched);
    for _ in 0..5 {
        scenarios::refused_connect(ip, elsewhere);
    }
    let report = agent.finish();

    assert_eq!(
        report
            .find("rst_sent", "no_listener", &watched.to_string())
            .len(),
        1,
        "{:#?}",
        report.findings()
    );
    assert!(
        report
            .find("rst_sent", "no_listener", &elsewhere.to_string())
            .is_empty()
    );
    // Each refused connect elsewhere is two resets (sent and received) the ring never carried;
    // other traffic on the host may add more, never fewer.
    let passed_over = report.json["window"]["resets_filtered_out"]
        .as_u64()
        .unwrap();
    assert!(passed_over >= 10, "{:#}", report.json["window"]);
}
