//! The storms, each inside network namespaces the soak created (the slow HTTP clients excepted:
//! they hold connections to the daemon's own port on loopback).

use std::{
    io::Write,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    os::fd::{AsRawFd, OwnedFd},
    process::{Child, Command},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use crate::sockets::connect_nonblocking;
use anyhow::{Result, bail};

use super::{
    daemon::{Metrics, scrape},
    netns::{Netns, TcpCounters, join},
};

/// Refused connects per second, per client process.
pub const REFUSED_PER_SECOND: u32 = 1000;
pub const REFUSING_CLIENTS: usize = 3;
/// Connects per second to distinct destinations that never answer.
pub const TIMEOUTS_PER_SECOND: u32 = 500;
/// Connections held open to the daemon's HTTP port, sending a byte a second.
pub const SLOW_HTTP_CLIENTS: usize = 40;

/// Where nothing listens in the refusing namespace.
pub const CLOSED_PORT: &str = "127.0.0.1:9";
/// The black-holed subnet of the timeouts namespace (nftables drops everything sent there).
const BLACK_HOLE: &str = "10.77.0.0/16";

/// How long a churned namespace storms, and lingers after it (the daemon samples every 100 ms).
const OVERFLOW_FOR: Duration = Duration::from_secs(5);
/// The churned namespaces' listener ports, one per namespace in turn.
const CHURN_PORTS: std::ops::Range<u16> = 8080..8580;
const SETTLED_AFTER: Duration = Duration::from_millis(500);
/// How long the daemon may take to find a new namespace or count its drops.
const DAEMON_PATIENCE: Duration = Duration::from_secs(30);
/// The overflowing listener's backlog; its clients connect this many times per 100 ms and hold
/// each connection for [`CLIENT_HOLDS`].
const OVERFLOW_BACKLOG: i32 = 4;
const CONNECTS_PER_TICK: usize = 10;
const CLIENT_HOLDS: Duration = Duration::from_secs(2);
/// How long a connect into the black hole waits (one SYN retransmit) before it is given up.
const TIMEOUT_AFTER: Duration = Duration::from_millis(1500);

/// Raised when the soak ends; every storm thread checks it.
pub type Stop = Arc<AtomicBool>;

fn stopped(stop: &Stop) -> bool {
    stop.load(Ordering::Relaxed)
}

/// `xtask soak-refuse`: refused connects to `addr` at `rate` per second until killed.
pub fn refuse_forever(addr: SocketAddr, rate: u32) -> Result<()> {
    let per_tick = (rate / 100).max(1);
    let mut next = Instant::now();
    loop {
        for _ in 0..per_tick {
            if TcpStream::connect(addr).is_ok() {
                bail!("something listens on {addr}");
            }
        }
        next += Duration::from_millis(10);
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Client processes making refused connects inside `netns`, killed when dropped.
pub struct RefusingClients(Vec<Child>);

impl RefusingClients {
    pub fn start(netns: &Netns) -> Result<RefusingClients> {
        let exe = std::env::current_exe()?;
        let mut children = Vec::new();
        for _ in 0..REFUSING_CLIENTS {
            children.push(
                Command::new("ip")
                    .args(["netns", "exec", &netns.name])
                    .arg(&exe)
                    .args(["soak-refuse", CLOSED_PORT, &REFUSED_PER_SECOND.to_string()])
                    .spawn()?,
            );
        }
        Ok(RefusingClients(children))
    }

    /// Fails when a client died (it found something listening, or could not run).
    pub fn check(&mut self) -> Result<()> {
        for child in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                bail!("a refusing client exited: {status}");
            }
        }
        Ok(())
    }
}

impl Drop for RefusingClients {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Prepares `netns` so that every connect into [`BLACK_HOLE`] times out.
pub fn make_black_hole(netns: &Netns) -> Result<()> {
    netns.ip(&["addr", "add", "10.77.0.1/16", "dev", "lo"])?;
    netns.nft(&format!(
        "add table inet soak; add chain inet soak in {{ type filter hook input priority 0; }}; \
         add rule inet soak in ip daddr {BLACK_HOLE} drop"
    ))
}

/// Connects to a new destination of the black hole [`TIMEOUTS_PER_SECOND`] times a second, each
/// given up after [`TIMEOUT_AFTER`]; runs inside the black-hole namespace until `stop`.
pub fn time_out_to_distinct_destinations(stop: Stop) -> Result<u64> {
    let per_tick = (TIMEOUTS_PER_SECOND / 100).max(1);
    let mut pending: std::collections::VecDeque<(Instant, OwnedFd)> = Default::default();
    let mut made = 0u64;
    let mut next = Instant::now();
    while !stopped(&stop) {
        for _ in 0..per_tick {
            made += 1;
            pending.push_back((
                Instant::now(),
                connect_nonblocking(distinct_destination(made))?,
            ));
        }
        while pending
            .front()
            .is_some_and(|(at, _)| at.elapsed() >= TIMEOUT_AFTER)
        {
            pending.pop_front();
        }
        next += Duration::from_millis(10);
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(made)
}

/// The `n`th destination: every address of the black hole, then the next port.
fn distinct_destination(n: u64) -> SocketAddrV4 {
    let host = (n % 65_534) as u32 + 1;
    let port = 1024 + ((n / 65_534) % 60_000) as u16;
    SocketAddrV4::new(Ipv4Addr::from(0x0a4d_0000 | host), port)
}

/// Namespaces created one after another, each with a listener that overflows its accept queue
/// once the daemon `at` watches it, then deleted once the daemon has counted its drops; adds
/// each namespace's counter growth to `totals`. Returns how many there were.
pub fn churn_overflowing_namespaces(
    stop: Stop,
    prefix: String,
    daemon_at: SocketAddr,
    totals: Arc<Mutex<TcpCounters>>,
) -> Result<u64> {
    let mut cycles = 0;
    while !stopped(&stop) {
        cycles += 1;
        let netns = Netns::create(format!("{prefix}-overflow-{cycles}"))?;
        // The kernel reuses a deleted namespace's inode, and with it the daemon's `namespace`
        // label: a port of its own tells this namespace's listener from an earlier one's, and
        // the daemon's count is compared by its growth.
        let port = CHURN_PORTS.start + (cycles % CHURN_PORTS.len() as u64) as u16;
        let inode = format!(r#"namespace="{}""#, netns.inode()?);
        let listener = format!(r#"listener="127.0.0.1:{port}""#);
        let before = netns.counters()?;
        let (go, wait_for_go) = mpsc::channel();
        let overflowing = netns.spawn({
            let stop = stop.clone();
            move || overflow_a_listener(&stop, &wait_for_go, port)
        })?;
        // Its one accepted-but-waiting connection shows in the queue gauge once the daemon
        // watches the namespace; drops before that are not the daemon's to count.
        let watched = wait_for_daemon(daemon_at, |m| {
            m.series("tcpwhy_listen_queue_length", &[&inode, &listener])
                .count()
                > 0
        });
        let counted_before = scrape(daemon_at)?
            .0
            .sum("tcpwhy_queue_drops_total", &[&inode]) as u64;
        let _ = go.send(());
        join(overflowing)?;
        watched?;
        thread::sleep(SETTLED_AFTER);
        let grown = netns.counters()?.since(before);
        totals.lock().expect("totals").add(grown);
        // Deleted only once counted: the daemon samples every 100 ms, but shares the cores.
        let _ = wait_for_daemon(daemon_at, |m| {
            (m.sum("tcpwhy_queue_drops_total", &[&inode]) as u64).saturating_sub(counted_before)
                == grown.queue_drops
        });
    }
    Ok(cycles)
}

/// Polls the daemon's metrics until `seen` holds, for at most [`DAEMON_PATIENCE`].
fn wait_for_daemon(daemon_at: SocketAddr, seen: impl Fn(&Metrics) -> bool) -> Result<()> {
    let deadline = Instant::now() + DAEMON_PATIENCE;
    loop {
        if seen(&scrape(daemon_at)?.0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the daemon did not catch up within {DAEMON_PATIENCE:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Inside a fresh namespace: a listener with a tiny backlog that never accepts, one connection
/// waiting in its queue, and, after `go`, clients connecting faster than it could take them.
fn overflow_a_listener(stop: &Stop, go: &mpsc::Receiver<()>, port: u16) -> Result<()> {
    // Full SYN queues drop instead of answering with cookies, so that the kernel counts every
    // drop in one of the counters compared.
    std::fs::write("/proc/sys/net/ipv4/tcp_syncookies", "0")?;
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    // SAFETY: listen() again on our own socket only changes its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), OVERFLOW_BACKLOG) } != 0 {
        bail!("listen: {}", std::io::Error::last_os_error());
    }
    let _waiting = TcpStream::connect(("127.0.0.1", port))?;
    let target = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let _ = go.recv_timeout(DAEMON_PATIENCE);
    let mut clients: std::collections::VecDeque<(Instant, OwnedFd)> = Default::default();
    let started = Instant::now();
    while started.elapsed() < OVERFLOW_FOR && !stopped(stop) {
        for _ in 0..CONNECTS_PER_TICK {
            clients.push_back((Instant::now(), connect_nonblocking(target)?));
        }
        while clients
            .front()
            .is_some_and(|(at, _)| at.elapsed() >= CLIENT_HOLDS)
        {
            clients.pop_front();
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Connections to the daemon's HTTP port that send their request a byte a second (the daemon
/// closes them after its header timeout; each is then opened again), until `stop`.
pub fn hold_slow_http_clients(addr: SocketAddr, stop: Stop) -> Result<u64> {
    let request = b"GET /metrics HTTP/1.1\r\nHost: soak\r\nX-Slow: ";
    let mut opened = 0u64;
    let mut open = || -> Result<(TcpStream, usize)> {
        opened += 1;
        let stream = TcpStream::connect(addr)?;
        stream.set_nonblocking(true)?;
        Ok((stream, 0))
    };
    let mut clients = (0..SLOW_HTTP_CLIENTS)
        .map(|_| open())
        .collect::<Result<Vec<_>>>()?;
    while !stopped(&stop) {
        for client in &mut clients {
            let (stream, sent) = client;
            let byte = request.get(*sent).copied().unwrap_or(b'x');
            match stream.write(&[byte]) {
                Ok(_) => *sent += 1,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                // Closed by the daemon: its timeouts work; come back.
                Err(_) => *client = open()?,
            }
        }
        thread::sleep(Duration::from_secs(1));
    }
    Ok(opened)
}
