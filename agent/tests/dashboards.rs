//! Every PromQL expression of the Grafana dashboard and of the alert rules, run on a real
//! Prometheus (Debian's, on loopback) scraping real `tcpwhy daemon`s while scenarios run: each
//! must parse and return the series its scenario produces.

mod support;

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{daemon::Daemon, netns::TestNetns, require_bpf, scenarios, unique_ipv4};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// HTTP/1.0 GET (no chunked encoding to undo): (status, body).
fn http_get(addr: SocketAddr, target: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    write!(stream, "GET {target} HTTP/1.0\r\nHost: prometheus\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((
        head.split_whitespace().nth(1)?.parse().ok()?,
        body.to_string(),
    ))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    fn start(targets: &[SocketAddr]) -> Prometheus {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("tcpwhy-prometheus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: tcpwhy\n    static_configs:\n      - targets: [{}]\n",
            repo_file("dashboards/tcpwhy.rules.yml").display(),
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (cargo xtask setup installs it)");
        let prometheus = Prometheus { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(addr, "/-/ready").is_none_or(|(s, _)| s != 200) {
            assert!(Instant::now() < deadline, "prometheus never became ready");
            sleep(Duration::from_millis(200));
        }
        prometheus
    }

    /// Waits until every target has at least `samples` scrapes stored.
    fn wait_for_scrapes(&self, targets: usize, samples: u32) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let expr = format!("count_over_time(up[5m]) >= {samples}");
        while self.query(&expr).map(|s| s.len()).unwrap_or(0) < targets {
            assert!(
                Instant::now() < deadline,
                "prometheus is not scraping the daemons"
            );
            sleep(Duration::from_millis(200));
        }
    }

    /// An instant query: Ok(result vector) or Err(Prometheus's error).
    fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let target = format!("/api/v1/query?query={}", percent_encode(expr));
        let (status, body) = http_get(self.addr, &target).ok_or("no answer")?;
        let json: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || json["status"] != "success" {
            return Err(format!("{status}: {}", json["error"]));
        }
        Ok(json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The dashboard's queries, with Grafana's variables set as a user would: all hosts, 1m.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("dashboards/tcpwhy.json")).unwrap(),
    )
    .unwrap();
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_string();
            panel["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| {
                    let expr = t["expr"]
                        .as_str()
                        .unwrap()
                        .replace("$__rate_interval", "1m")
                        .replace("$instance", ".*");
                    (title.clone(), expr)
                })
        })
        .collect()
}

/// The alert rules' expressions by alert name.
fn rule_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_file("dashboards/tcpwhy.rules.yml")).unwrap();
    let mut found = Vec::new();
    let mut alert = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            alert = name.to_string();
        } else if let Some(expr) = line.strip_prefix("expr: ") {
            found.push((alert.clone(), expr.to_string()));
        }
    }
    found
}

#[test]
fn dashboard_is_provisionable_with_a_datasource_variable() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("dashboards/tcpwhy.json")).unwrap(),
    )
    .unwrap();
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource")
    );
    for panel in dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
    {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
    }
    assert_eq!(dashboard_queries().len(), 11);
    assert_eq!(rule_queries().len(), 4);
}

#[test]
fn alert_rules_pass_promtool() {
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo_file("dashboards/tcpwhy.rules.yml"))
        .output()
        .expect("promtool (cargo xtask setup installs prometheus)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("SUCCESS: 4 rules found"), "{text}");
}

#[test]
fn every_query_returns_the_series_its_scenario_produces() {
    if !require_bpf() {
        return;
    }
    // Namespaces exist before the daemons, as containers' would.
    let ns = TestNetns::new();
    // Daemon A sees everything, measures BPF cost, and has a ring small enough to overflow
    // (every reset sent one by one: past the default budget the kernel would aggregate them).
    let full = Daemon::start(&[
        "--bpf-stats",
        "--ring-buffer-bytes",
        "4096",
        "--reset-records-per-second",
        "1000000",
    ]);
    // Daemon B may only use BTF tracepoints: some capabilities are not covered.
    let partial = Daemon::start(&["--probe-methods", "tp_btf"]);
    let prometheus = Prometheus::start(&[full.addr, partial.addr]);

    // Counters must exist, and be stored, before they grow for increase() and rate() to see the
    // growth (Prometheus starts scraping a few seconds after it is ready).
    prometheus.wait_for_scrapes(2, 2);
    let ip = IpAddr::V4(unique_ipv4());
    let closed = SocketAddr::new(ip, 7);
    scenarios::refused_connect(ip, closed);
    let stored = prometheus.query("count_over_time(up[5m])").unwrap();
    let before = stored
        .iter()
        .map(|s| s["value"][1].as_str().unwrap().parse::<u32>().unwrap())
        .min()
        .unwrap();
    prometheus.wait_for_scrapes(2, before + 2);

    // A full accept queue in the namespace: SYNs dropped now and on each retransmit (1 s, 3 s).
    let listen_at: SocketAddr = "127.0.0.1:7900".parse().unwrap();
    let (_listener, _pending) = ns.enter(|| scenarios::overflowing_listener(listen_at, 1, 6));
    // A surge of refused connects, from several threads at once: more than the alert's 100.
    // Daemon A is stopped meanwhile, as a starved agent would be: its 4 KiB ring fills, the
    // programs aggregate what does not fit, and from thousands of distinct clients the
    // aggregates overflow too, which the programs count as lost.
    let signal = |sig| {
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(full.pid() as i32, sig) }, 0);
    };
    signal(libc::SIGSTOP);
    std::thread::scope(|scope| {
        for _ in 0..12 {
            scope.spawn(|| {
                // 127.A.B.D is this thread's; 127.A.B.d for every other d is no one else's.
                let [a, b, c, ours] = unique_ipv4().octets();
                for d in (1..=250).filter(|d| *d != ours) {
                    let client = IpAddr::V4(Ipv4Addr::new(a, b, c, d));
                    scenarios::refused_connect(client, closed);
                }
            });
        }
    });
    signal(libc::SIGCONT);
    sleep(Duration::from_secs(5));

    let mut failures = Vec::new();
    for (name, expr) in dashboard_queries().into_iter().chain(rule_queries()) {
        match prometheus.query(&expr) {
            Ok(series) if series.is_empty() => {
                failures.push(format!("{name}: no series for {expr}"))
            }
            Ok(_) => {}
            Err(err) => failures.push(format!("{name}: {expr}: {err}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let inode = ns.inode().to_string();
    let overflowing = prometheus.query(&rule_queries()[0].1).unwrap();
    assert!(
        overflowing
            .iter()
            .any(|s| s["metric"]["listener"] == "127.0.0.1:7900"
                && s["metric"]["namespace"] == inode.as_str()),
        "{overflowing:?}"
    );
    let surge = prometheus.query(&rule_queries()[1].1).unwrap();
    assert!(
        surge.iter().any(|s| s["metric"]["cause"] == "no_listener"),
        "{surge:?}"
    );
    let uncovered = prometheus.query(&rule_queries()[2].1).unwrap();
    assert!(
        uncovered
            .iter()
            .all(|s| s["metric"]["instance"] == partial.addr.to_string().as_str()),
        "{uncovered:?}"
    );
    assert!(
        uncovered
            .iter()
            .any(|s| s["metric"]["capability"] == "retransmits"),
        "{uncovered:?}"
    );
    let lost = prometheus.query(&rule_queries()[3].1).unwrap();
    assert!(
        lost.iter()
            .any(|s| s["metric"]["instance"] == full.addr.to_string().as_str()),
        "{lost:?}"
    );
}

#[test]
fn alert_rule_unit_tests_pass_and_show_every_alert_firing_and_silent() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_file("dashboards/tests"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards/tests/*.yml");
    let output = Command::new("promtool")
        .args(["test", "rules"])
        .args(&files)
        .output()
        .expect("promtool (cargo xtask setup installs prometheus)");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // Each `alertname:` is followed by its expectation: `exp_alerts: []` (silent) or a list.
    let mut shown = std::collections::BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if let Some(alert) = pair[0].strip_prefix("alertname: ") {
                let firing = pair[1] != "exp_alerts: []";
                shown.insert((alert.to_string(), firing));
            }
        }
    }
    for (alert, _) in rule_queries() {
        for firing in [true, false] {
            assert!(
                shown.contains(&(alert.clone(), firing)),
                "dashboards/tests never shows {alert} {}",
                if firing { "firing" } else { "silent" }
            );
        }
    }
}
