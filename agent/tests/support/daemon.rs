//! Runs the real `tcpwhy daemon` for a test: a free loopback port, an event file of its own,
//! HTTP scrapes, and a stop that measures how long the daemon took to exit.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;

pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub events: PathBuf,
    /// The daemon's stderr, shown when it fails.
    log: PathBuf,
}

fn free_loopback_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Daemon {
    /// Starts the daemon and waits until /healthz answers (probes attached).
    pub fn start(extra_args: &[&str]) -> Daemon {
        Self::start_with(extra_args, |_| {})
    }

    /// [`Daemon::start`], with the command adjusted first (limits, stdout).
    pub fn start_with(extra_args: &[&str], adjust: impl FnOnce(&mut Command)) -> Daemon {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let addr = free_loopback_port();
        let events = std::env::temp_dir().join(format!(
            "tcpwhy-events-{}-{}.jsonl",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let log = events.with_extension("log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tcpwhy"));
        command
            .arg("daemon")
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if !extra_args.contains(&"--events") {
            command.arg("--events").arg(&events);
        }
        adjust(&mut command);
        let child = command.spawn().expect("spawning tcpwhy daemon");
        let mut daemon = Daemon {
            child: Some(child),
            addr,
            events,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while daemon
            .get("/healthz")
            .is_none_or(|(status, _)| status != 200)
        {
            let exited = daemon.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "daemon never became healthy ({exited:?}); its stderr:\n{}",
                std::fs::read_to_string(&daemon.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    /// The daemon's stdout, when [`Daemon::start_with`] made it a pipe.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().unwrap().is_none())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// A plain HTTP/1.1 GET: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request("GET", path)
    }

    /// One HTTP/1.1 request, answered within 5 s: (status, body).
    pub fn request(&self, method: &str, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: tcpwhy\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }

    pub fn scrape(&self) -> String {
        let (status, body) = self.get("/metrics").expect("scraping /metrics");
        assert_eq!(status, 200);
        body
    }

    /// Every line of the event stream so far.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("bad event line ({e}): {line}"))
            })
            .collect()
    }

    /// The daemon's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait: the exit status and how long the exit took.
    pub fn stop(mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().unwrap();
        let started = Instant::now();
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = started + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.events);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The value of one series in Prometheus text format, if present.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let Some(rest) = line.strip_prefix(name) else {
                return false;
            };
            let series = rest.split_whitespace().next().unwrap_or("");
            (rest.starts_with('{') || rest.starts_with(' '))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}
