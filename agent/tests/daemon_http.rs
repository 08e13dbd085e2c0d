//! The daemon's HTTP endpoints under abuse from a local user, and what they say: idle connections
//! by the thousand, slow clients, HEAD, and `/healthz` on a degraded daemon.

mod support;

use std::{
    io::Read,
    net::TcpStream,
    os::unix::process::CommandExt,
    thread::sleep,
    time::{Duration, Instant},
};

use support::{daemon::Daemon, require_bpf};

/// systemd's default soft limit on descriptors.
const SYSTEMD_NOFILE: libc::rlim_t = 1024;

fn set_nofile(limit: libc::rlim_t) -> std::io::Result<()> {
    let limits = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit reads a valid struct; async-signal-safe, so fine in pre_exec.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limits) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The test itself needs more descriptors than the daemon may have.
fn raise_own_nofile() {
    let mut limits = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid struct.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limits) },
        0
    );
    limits.rlim_cur = limits.rlim_max;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limits) }, 0);
    assert!(limits.rlim_cur > 2 * SYSTEMD_NOFILE, "{}", limits.rlim_cur);
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces), from field 3 on.
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn idle_connections_by_the_thousand_neither_lock_out_scrapes_nor_burn_cpu() {
    if !require_bpf() {
        return;
    }
    raise_own_nofile();
    let daemon = Daemon::start_with(&[], |command| {
        // SAFETY: the closure only calls setrlimit.
        unsafe { command.pre_exec(|| set_nofile(SYSTEMD_NOFILE)) };
    });
    let idle: Vec<TcpStream> = (0..1100)
        .filter_map(|_| TcpStream::connect_timeout(&daemon.addr, Duration::from_millis(200)).ok())
        .collect();
    assert!(idle.len() >= 1000, "only {} connects completed", idle.len());

    let before = cpu_ticks(daemon.pid());
    let asked = Instant::now();
    let (status, body) = daemon.get("/metrics").expect("/metrics answers");
    let took = asked.elapsed();
    assert_eq!(status, 200);
    assert!(body.contains("tcpwhy_resets_total"), "{body}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(daemon.get("/healthz").map(|(status, _)| status), Some(200));

    // With the idle connections still open, the daemon is not spinning on accept().
    sleep(Duration::from_secs(2));
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let used = cpu_ticks(daemon.pid()) - before;
    assert!(
        used < ticks_per_second / 2,
        "{used} ticks of CPU in ~2 s with idle connections open"
    );
    drop(idle);
}

#[test]
fn a_client_that_sends_nothing_is_disconnected() {
    if !require_bpf() {
        return;
    }
    let daemon = Daemon::start(&[]);
    let mut silent = TcpStream::connect(daemon.addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 64];
    let read = silent.read(&mut buffer);
    let waited = started.elapsed();
    // Closed (EOF, or a reset) by the server, well before our own 15 s timeout.
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?} after {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[test]
fn head_is_answered_and_healthz_names_what_is_degraded() {
    if !require_bpf() {
        return;
    }
    let full = Daemon::start(&[]);
    assert_eq!(full.request("HEAD", "/metrics"), Some((200, String::new())));
    assert_eq!(full.get("/healthz?strict"), Some((200, "ok\n".to_string())));
    assert_eq!(
        full.request("POST", "/metrics").map(|(status, _)| status),
        Some(405)
    );

    // tp_btf alone cannot attach the tracepoints without a BTF program (retransmits).
    let partial = Daemon::start(&["--probe-methods", "tp_btf"]);
    let (status, body) = partial.get("/healthz").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("degraded: no probe attached for ") && body.contains("retransmits"),
        "{body}"
    );
    assert!(!body.contains("resets_sent"), "{body}");
    let (status, strict_body) = partial.get("/healthz?strict").unwrap();
    assert_eq!(status, 503);
    assert_eq!(strict_body, body);
}
