//! The command-line contract other tools depend on: exit codes, the attach line, both formats.

mod support;

use std::{
    net::{IpAddr, SocketAddr},
    process::Command,
};

use support::{require_bpf, scenarios, unique_ipv4};

fn tcpwhy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tcpwhy"))
}

#[test]
fn without_privileges_exit_code_is_2_and_names_what_is_missing() {
    if !require_bpf() {
        return; // dropping privileges needs root to begin with
    }
    // setpriv (util-linux) runs the agent as nobody with no capabilities at all.
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_tcpwhy"))
        .args(["diagnose", "--duration", "1"])
        .output()
        .expect("running setpriv");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("CAP_BPF") && stderr.contains("CAP_PERFMON"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_arguments_exit_with_2_and_say_what_is_wrong() {
    let cases: [(&[&str], &str); 3] = [
        (&["diagnose", "--duration", "ten"], "invalid value 'ten'"),
        (&["diagnose", "--format", "xml"], "invalid value 'xml'"),
        (
            &["--probe-methods", "uprobe", "diagnose"],
            "unknown probe method \"uprobe\"",
        ),
    ];
    for (args, message) in cases {
        let output = tcpwhy().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn help_teaches_the_attach_line_and_exit_codes() {
    let output = tcpwhy().args(["diagnose", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(help.contains("attached N probes"), "{help}");
    assert!(help.contains("--format"), "{help}");
    // Each example on a line of its own, as a user would paste it.
    for command in ["diagnose", "watch", "daemon"] {
        let output = tcpwhy().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        let examples = help.split("Examples:\n").nth(1).unwrap_or_default();
        let lines: Vec<&str> = examples.lines().collect();
        assert!(lines.len() >= 2, "{help}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with(&format!("  tcpwhy {command}"))),
            "{help}"
        );
    }
    let output = tcpwhy().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("Exit codes"));
}

/// `tcpwhy diagnose --duration 3` with the text report, started: the child, its stderr (kept
/// open for the rest of the run) and its first stderr line (the "attached" line scripts wait for).
fn text_diagnose_for_3_s() -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
    String,
) {
    let mut child = tcpwhy()
        .args(["diagnose", "--duration", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    (child, stderr, line)
}

#[test]
fn text_report_groups_by_cause_with_explanation_and_advice() {
    if !require_bpf() {
        return;
    }
    let ip = IpAddr::V4(unique_ipv4());
    let server = SocketAddr::new(ip, 7);
    let (child, _stderr, line) = text_diagnose_for_3_s();
    assert!(
        line.starts_with("attached ") && line.trim_end().ends_with("watching for 3 s"),
        "{line}"
    );
    for _ in 0..3 {
        scenarios::refused_connect(ip, server);
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let header = format!("[rst_sent] no_listener ×3  local {server}");
    assert!(text.contains(&header), "{text}");
    assert!(
        text.contains("probes: tcp:tcp_send_reset (tp_btf)"),
        "{text}"
    );
    assert!(text.contains("  why: 3 SYNs arrived for"), "{text}");
    assert!(
        text.contains("  advice:\n    - check that the service is running"),
        "{text}"
    );
}

#[test]
fn a_huge_duration_is_bad_usage_not_a_panic() {
    let output = tcpwhy()
        .args(["diagnose", "--duration", "18446744073709551615"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--duration"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_reader_that_went_away_is_a_clean_exit() {
    if !require_bpf() {
        return;
    }
    // As `tcpwhy diagnose | true`: the pipe's reader is gone before the report is written.
    let mut child = tcpwhy()
        .args(["diagnose", "--duration", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn control_characters_in_a_process_name_are_escaped_in_the_text_report() {
    if !require_bpf() {
        return;
    }
    let ip = IpAddr::V4(unique_ipv4());
    let (child, _stderr, line) = text_diagnose_for_3_s();
    assert!(line.starts_with("attached "), "{line}");
    // The owner is recorded from the thread that calls listen(), under the name it chose.
    let pair = std::thread::spawn(move || {
        let name = c"ev\n\x1b[31mil";
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) }, 0);
        scenarios::close_with_unread_data(ip, 18)
    })
    .join()
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains('\x1b'), "{text:?}");
    let header = format!(
        "[rst_sent] close_with_unread_data ×1  local {}  remote {}  process ev\\n\\u{{1b}}[31mil (pid {})",
        pair.server,
        pair.client,
        std::process::id()
    );
    assert!(text.contains(&header), "{text}");
    let why = text
        .lines()
        .find(|l| l.starts_with("  why: ") && l.contains(&pair.server.to_string()))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(why.contains("ev\\n\\u{1b}[31mil"), "{why}");
}

/// What the README promises for CAP_BPF + CAP_PERFMON alone: resets are still caught and
/// explained, and the report says which capability each gap comes from (not "not mounted").
#[test]
fn with_only_cap_bpf_and_cap_perfmon_resets_are_explained_and_the_gaps_named() {
    if !require_bpf() {
        return;
    }
    // tracefs mounted, as root leaves it: the gap is that nobody may read it, not that it is
    // missing.
    if !std::path::Path::new("/sys/kernel/tracing/events").is_dir() {
        let mounted = Command::new("mount")
            .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
            .status()
            .expect("running mount");
        assert!(mounted.success());
    }
    let caps = "-all,+bpf,+perfmon";
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_tcpwhy"))
        .args(["diagnose", "--duration", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running setpriv");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.lines().any(|l| l.starts_with("attached ")) {
        let read = std::io::BufRead::read_line(&mut stderr, &mut seen).unwrap();
        assert_ne!(read, 0, "tcpwhy never attached: {seen}");
    }
    let ip = IpAddr::V4(unique_ipv4());
    let port = support::free_port(ip);
    let refused = std::net::TcpStream::connect(SocketAddr::new(ip, port));
    assert!(refused.is_err(), "nothing listens on {ip}:{port}");

    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{seen}\n{report}");
    assert!(report.contains("tcp:tcp_send_reset (tp_btf)"), "{report}");
    assert!(
        report.contains(&format!("[rst_sent] no_listener ×1  local {ip}:{port}")),
        "{report}"
    );
    assert!(
        report.contains(
            "tracefs is mounted at /sys/kernel/tracing but only root may read it, and this \
             process lacks CAP_DAC_READ_SEARCH: classic tracepoints cannot be used (BTF \
             tracepoints and function probes still can)"
        ),
        "{report}"
    );
    assert!(
        report.contains("without CAP_SYS_ADMIN: listen queues go unwatched"),
        "{report}"
    );
    assert!(report.contains("without CAP_SYS_PTRACE: "), "{report}");
    assert!(!report.contains("not mounted"), "{report}");
}
