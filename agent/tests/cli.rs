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
    let output = tcpwhy().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("Exit codes"));
}

#[test]
fn text_report_groups_by_cause_with_explanation_and_advice() {
    if !require_bpf() {
        return;
    }
    let ip = IpAddr::V4(unique_ipv4());
    let server = SocketAddr::new(ip, 7);
    let mut child = tcpwhy()
        .args(["diagnose", "--duration", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
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
        text.contains("probes: tcp:tcp_send_reset (tracepoint)"),
        "{text}"
    );
    assert!(text.contains("  why: 3 SYNs arrived for"), "{text}");
    assert!(
        text.contains("  advice:\n    - check that the service is running"),
        "{text}"
    );
}
