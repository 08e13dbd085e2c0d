//! Harness for the end-to-end tests: runs the real `tcpwhy diagnose` against the real kernel
//! while a test reproduces a scenario on loopback, then reads the JSON report.
//!
//! Tests run in parallel on a host with other traffic, so each scenario uses its own loopback
//! addresses ([`unique_ipv4`]) or ports and asserts only on findings for its own endpoints.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod daemon;
pub mod delay_line;
pub mod netns;
pub mod scenarios;

use std::{
    io::{BufRead, BufReader, Read},
    net::{Ipv4Addr, SocketAddr},
    process::{Child, ChildStderr, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;

/// True when the kernel side can be exercised: root (or the BPF capabilities). Under CI the
/// absence is a failure, never a skip.
pub fn require_bpf() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI=true but the tests are not running as root: BPF cannot be loaded");
    }
    eprintln!("SKIPPED (not root): this end-to-end test needs to load BPF programs");
    false
}

/// A running `tcpwhy diagnose`.
pub struct Agent {
    child: Child,
    stderr: BufReader<ChildStderr>,
    stderr_seen: String,
}

impl Agent {
    /// Starts the agent and waits for its "attached ..." line.
    pub fn start(extra_args: &[&str]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tcpwhy"))
            .args(["diagnose", "--duration", "120", "--format", "json"])
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tcpwhy");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut stderr_seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut line = String::new();
            let n = stderr
                .read_line(&mut line)
                .expect("reading tcpwhy's stderr");
            stderr_seen.push_str(&line);
            if line.starts_with("attached ") {
                break;
            }
            if n == 0 || Instant::now() > deadline {
                let _ = child.kill();
                panic!("tcpwhy never attached; stderr:\n{stderr_seen}");
            }
        }
        Agent {
            child,
            stderr,
            stderr_seen,
        }
    }

    /// Lets in-flight events arrive, ends the window with SIGINT and returns the report.
    pub fn finish(mut self) -> Report {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        self.stderr_seen.push_str(&rest);
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "tcpwhy exited with {status}; stderr:\n{}",
            self.stderr_seen
        );
        let json: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("report is not JSON ({e}):\n{stdout}"));
        Report {
            json,
            agent_log: self.stderr_seen,
        }
    }
}

pub struct Report {
    pub json: Value,
    /// The agent's stderr (set TCPWHY_LOG=debug to make it talk), shown when a lookup fails.
    pub agent_log: String,
}

impl Report {
    pub fn findings(&self) -> &Vec<Value> {
        self.json["findings"]
            .as_array()
            .expect("findings is an array")
    }

    /// The findings of one kind and cause whose local endpoint is `local`.
    pub fn find(&self, kind: &str, cause: &str, local: &str) -> Vec<&Value> {
        self.findings()
            .iter()
            .filter(|f| f["kind"] == kind && f["cause"] == cause && f["local"] == local)
            .collect()
    }

    /// The one finding of a kind and cause at `local`, with a readable failure.
    pub fn one(&self, kind: &str, cause: &str, local: &str) -> &Value {
        let found = self.find(kind, cause, local);
        assert_eq!(
            found.len(),
            1,
            "expected one {kind}/{cause} finding at {local}; findings touching it:\n{}",
            self.touching(local)
        );
        found[0]
    }

    /// Every finding whose local or remote endpoint is `endpoint`, for failure messages.
    pub fn touching(&self, endpoint: &str) -> String {
        self.findings()
            .iter()
            .filter(|f| f["local"] == endpoint || f["remote"] == endpoint)
            .map(|f| serde_json::to_string_pretty(f).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The findings of one kind and cause at `local` inside namespace `inode`.
    pub fn in_namespace(&self, kind: &str, cause: &str, local: &str, inode: u64) -> Vec<&Value> {
        self.find(kind, cause, local)
            .into_iter()
            .filter(|f| in_namespace(f, inode))
            .collect()
    }

    /// Every finding at `local` inside namespace `inode`, whatever its kind and cause.
    pub fn in_namespace_at(&self, local: &str, inode: u64) -> Vec<&Value> {
        self.findings()
            .iter()
            .filter(|f| f["local"] == local && in_namespace(f, inode))
            .collect()
    }

    /// The one finding of a kind and cause at `local` inside namespace `inode`.
    pub fn one_in(&self, kind: &str, cause: &str, local: &str, inode: u64) -> &Value {
        let found = self.in_namespace(kind, cause, local, inode);
        assert_eq!(
            found.len(),
            1,
            "expected one {kind}/{cause} finding at {local} in namespace {inode}; all findings:\n{}\nagent log:\n{}",
            serde_json::to_string_pretty(self.findings()).unwrap(),
            self.agent_log
        );
        found[0]
    }

    pub fn probe(&self, name: &str) -> &Value {
        self.json["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no probe {name} in {}", self.json["probes"]))
    }
}

/// A loopback address no other test in this run uses: 127.<pid-derived>.<counter>.1.
pub fn unique_ipv4() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    Ipv4Addr::new(
        127,
        (10 + pid % 240) as u8,
        (n % 250) as u8,
        (1 + (pid / 240) % 250) as u8,
    )
}

/// A port on `ip` that nothing listens on (bound once by the kernel's choice, then released).
pub fn free_port(ip: std::net::IpAddr) -> u16 {
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// The pid the agent should name for sockets this test process owns.
pub fn our_pid() -> u64 {
    u64::from(std::process::id())
}

/// Whether `finding` happened in namespace `inode` (queue findings name it `namespace`, the
/// others `netns`).
pub fn in_namespace(finding: &Value, inode: u64) -> bool {
    finding["evidence"]["namespace"] == inode || finding["evidence"]["netns"] == inode
}
