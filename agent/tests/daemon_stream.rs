//! The daemon's event stream when its reader misbehaves (stalls, goes away) and when logrotate
//! moves its file: the metrics keep answering and counting, and the daemon keeps running.

mod support;

use std::{
    net::{IpAddr, SocketAddr},
    process::Stdio,
    thread::sleep,
    time::{Duration, Instant},
};

use support::{
    daemon::{Daemon, metric},
    require_bpf, scenarios, unique_ipv4,
};
use tcpwhy_common::reset::RECORD_WINDOW_SHIFT;

/// Long enough for the 1 s fold of kernel totals and several 100 ms samples.
const SETTLE: Duration = Duration::from_millis(1500);

fn refused_resets(metrics: &str) -> f64 {
    metric(
        metrics,
        "tcpwhy_resets_total",
        &[("direction", "sent"), ("cause", "no_listener")],
    )
    .unwrap_or(0.0)
}

fn dropped(metrics: &str, reason: &str) -> f64 {
    metric(
        metrics,
        "tcpwhy_events_dropped_total",
        &[("reason", reason)],
    )
    .unwrap()
}

/// `count` refused connects to a server address of their own; two events each.
fn refused_connects(count: usize) -> SocketAddr {
    let ip = IpAddr::V4(unique_ipv4());
    let server = SocketAddr::new(ip, 7);
    for _ in 0..count {
        scenarios::refused_connect(ip, server);
    }
    server
}

fn signal(daemon: &Daemon, signal: libc::c_int) {
    // SAFETY: kill with the pid of a child we own.
    assert_eq!(unsafe { libc::kill(daemon.pid() as i32, signal) }, 0);
}

#[test]
fn a_stalled_stdout_reader_neither_freezes_nor_starves_the_metrics() {
    if !require_bpf() {
        return;
    }
    // A pipe nobody reads: it fills after a few dozen lines and then every write blocks.
    let mut daemon = Daemon::start_with(
        &["--events", "stdout", "--events-per-second", "1000000"],
        |command| {
            command.stdout(Stdio::piped());
        },
    );
    let _unread = daemon.take_stdout().unwrap();
    let before = daemon.scrape();
    // Past the per-event rate the kernel aggregates resets into a line per service a drain:
    // two bursts, a rate window apart, make more lines than the queue holds.
    let connects = 1500;
    refused_connects(connects / 2);
    sleep(Duration::from_nanos(1 << RECORD_WINDOW_SHIFT));
    refused_connects(connects / 2);
    sleep(SETTLE);

    let asked = Instant::now();
    let after = daemon.scrape();
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(daemon.get("/healthz").map(|(status, _)| status), Some(200));
    // Every reset counted, though most of the events could not be written.
    let counted = refused_resets(&after) - refused_resets(&before);
    assert!(counted >= connects as f64, "{counted} of {connects}");
    let behind = dropped(&after, "writer_behind");
    assert!(behind > 0.0, "nothing dropped for the stalled reader");
    assert!(daemon.is_running());
}

#[test]
fn a_reader_that_goes_away_costs_events_not_the_daemon() {
    if !require_bpf() {
        return;
    }
    let mut daemon = Daemon::start_with(&["--events", "stdout"], |command| {
        command.stdout(Stdio::piped());
    });
    drop(daemon.take_stdout());
    refused_connects(5);
    sleep(SETTLE);
    assert!(daemon.is_running(), "{}", daemon.log());
    let metrics = daemon.scrape();
    assert!(dropped(&metrics, "write_failed") >= 1.0, "{metrics}");
    let log = daemon.log();
    assert!(
        log.contains("cannot write the event stream") && log.contains("stdout"),
        "{log}"
    );
}

#[test]
fn sighup_reopens_the_event_file_and_usr_signals_are_ignored() {
    if !require_bpf() {
        return;
    }
    let mut daemon = Daemon::start(&[]);
    let before_rotation = refused_connects(2).to_string();
    sleep(SETTLE);
    let rotated = daemon.events.with_extension("jsonl.1");
    std::fs::rename(&daemon.events, &rotated).unwrap();
    for sent in [libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2] {
        signal(&daemon, sent);
    }
    sleep(Duration::from_millis(500));
    let after_rotation = refused_connects(2).to_string();
    sleep(SETTLE);

    assert!(daemon.is_running(), "{}", daemon.log());
    assert_eq!(daemon.get("/healthz").map(|(status, _)| status), Some(200));
    let locals_in = |events: &[serde_json::Value], local: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == "rst_sent" && e["local"] == local)
            .count()
    };
    let new_file = daemon.events();
    assert_eq!(locals_in(&new_file, &after_rotation), 2, "{new_file:#?}");
    assert_eq!(locals_in(&new_file, &before_rotation), 0);
    let old_file: Vec<serde_json::Value> = std::fs::read_to_string(&rotated)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    std::fs::remove_file(&rotated).unwrap();
    assert_eq!(locals_in(&old_file, &before_rotation), 2);
    assert_eq!(locals_in(&old_file, &after_rotation), 0);
    let (status, _) = daemon.stop();
    assert!(status.success(), "{status}");
}
