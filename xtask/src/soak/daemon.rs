//! The daemon under soak: its event stream goes to a pipe nobody reads, and it is read only
//! through `/metrics` and /proc.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::run::workspace_root;

/// Far above what the storms cause, so that the stream's writer (not its rate limit) meets the
/// stalled reader.
const EVENTS_PER_SECOND: &str = "1000000";
/// Every churned namespace's listener gets a label of its own, so that the soak can tell when
/// the daemon watches it and has counted its drops.
const LISTENER_LABELS: &str = "100000";
/// Seconds of events at the storms' rate: the daemon shares two cores with the storms and
/// other work, and a ring that overflows while it waits for a core loses events (counted).
const RING_BUFFER_BYTES: &str = "8388608";

pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    /// The read end of the event stream's pipe: held open, never read.
    _stalled_reader: ChildStdout,
}

impl Daemon {
    pub fn start() -> Result<Daemon> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut child = Command::new(workspace_root().join("target/release/tcpwhy"))
            .args(["daemon", "--listen", &addr.to_string()])
            .args([
                "--events",
                "stdout",
                "--events-per-second",
                EVENTS_PER_SECOND,
            ])
            .args(["--listener-label-limit", LISTENER_LABELS])
            .args(["--ring-buffer-bytes", RING_BUFFER_BYTES])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tcpwhy daemon")?;
        let stalled_reader = child.stdout.take().context("the daemon's stdout")?;
        let daemon = Daemon {
            child,
            addr,
            _stalled_reader: stalled_reader,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while daemon.scrape().is_err() {
            if Instant::now() > deadline {
                bail!("the daemon did not serve /metrics within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(daemon)
    }

    /// `/metrics`, and how long the answer took.
    pub fn scrape(&self) -> Result<(Metrics, Duration)> {
        scrape(self.addr)
    }

    /// Resident memory now.
    pub fn rss_bytes(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("the daemon is gone")?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
            .context("no VmRSS")?;
        Ok(kib * 1024)
    }
}

/// `/metrics` of the daemon at `addr`, and how long the answer took.
pub fn scrape(addr: SocketAddr) -> Result<(Metrics, Duration)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let took = started.elapsed();
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP body")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!("/metrics answered {}", head.lines().next().unwrap_or(""));
    }
    Ok((Metrics::parse(body), took))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// One exposition: every series (name and labels as written) with its value.
pub struct Metrics(HashMap<String, f64>);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (series, value) = l.rsplit_once(' ')?;
                    Some((series.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// The series of family `name` whose labels contain every one of `labels` (`key="value"`).
    pub fn series<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [&'a str],
    ) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0.iter().filter_map(move |(series, value)| {
            let rest = series.strip_prefix(name)?;
            let matches = (rest.is_empty() || rest.starts_with('{'))
                && labels.iter().all(|label| rest.contains(label));
            matches.then_some((series.as_str(), *value))
        })
    }

    /// The sum of those series.
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.series(name, labels).map(|(_, value)| value).sum()
    }
}
