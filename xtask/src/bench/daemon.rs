//! `tcpwhy daemon` as an observer: started with kernel BPF statistics on, read through its
//! `/metrics`.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::Costs;
use crate::run::workspace_root;

/// What the agent itself spent while the workloads ran, and what it saw.
#[derive(Default, Clone, Copy)]
pub struct AgentCost {
    pub events: f64,
    pub lost: f64,
    pub cpu: Duration,
}

impl AgentCost {
    pub fn add(&mut self, other: AgentCost) {
        self.events += other.events;
        self.lost += other.lost;
        self.cpu += other.cpu;
    }
}

impl std::fmt::Display for AgentCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} reset events, {:.0} lost, agent CPU {:.1} ms ({:.2} ms per 1000 events)",
            self.events,
            self.lost,
            self.cpu.as_secs_f64() * 1e3,
            self.cpu.as_secs_f64() * 1e6 / self.events.max(1.0)
        )
    }
}

pub struct Daemon {
    child: Child,
    addr: SocketAddr,
    cpu_at_start: Duration,
    metrics_at_start: String,
}

impl Daemon {
    /// Starts the daemon, with `probe_methods` when given, and waits until it serves metrics.
    pub fn start(probe_methods: Option<&str>) -> Result<Daemon> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = Command::new(workspace_root().join("target/release/tcpwhy"));
        command.args([
            "daemon",
            "--bpf-stats",
            "--events",
            "off",
            "--listen",
            &addr.to_string(),
        ]);
        if let Some(methods) = probe_methods {
            command.args(["--probe-methods", methods]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tcpwhy daemon")?;
        let mut daemon = Daemon {
            child,
            addr,
            cpu_at_start: Duration::ZERO,
            metrics_at_start: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let metrics = loop {
            match daemon.scrape() {
                Ok(metrics) => break metrics,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(_) => bail!("the daemon did not start"),
            }
        };
        daemon.cpu_at_start = daemon.cpu()?;
        daemon.metrics_at_start = metrics;
        Ok(daemon)
    }

    pub fn scrape(&self) -> Result<String> {
        let mut stream = TcpStream::connect(self.addr)?;
        write!(stream, "GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default())
    }

    /// User + system CPU time of the daemon so far (threads that ended included).
    pub fn cpu(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("bad stat")?
            .1
            .split_whitespace()
            .collect();
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let used: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
        Ok(Duration::from_secs_f64(used / ticks))
    }

    /// The kernel's time per program, by tracepoint (a BTF tracepoint program counts for the
    /// tracepoint it attaches to), and what the agent itself spent.
    pub fn results(&self) -> Result<(Costs, AgentCost)> {
        std::thread::sleep(Duration::from_millis(1500)); // one fold of the kernel totals
        let metrics = self.scrape()?;
        let cpu = self.cpu()? - self.cpu_at_start;
        let seconds = per_program(&metrics, "tcpwhy_bpf_program_run_seconds_total");
        let runs = per_program(&metrics, "tcpwhy_bpf_program_runs_total");
        let mut costs = Costs::new();
        for (program, total) in seconds {
            let tracepoint = program.strip_suffix("_btf").unwrap_or(&program).to_string();
            let cost = costs.entry(tracepoint).or_default();
            cost.runs += runs.get(&program).copied().unwrap_or(0.0);
            cost.seconds += total;
        }
        let growth = |name| metric_sum(&metrics, name) - metric_sum(&self.metrics_at_start, name);
        let agent = AgentCost {
            events: growth("tcpwhy_resets_total"),
            lost: growth("tcpwhy_events_lost_total"),
            cpu,
        };
        Ok((costs, agent))
    }

    /// Resident memory now and at its peak (`VmRSS`, `VmHWM`), in bytes.
    pub fn memory(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib = |field: &str| -> Result<u64> {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .with_context(|| format!("no {field} in the daemon's status"))?;
            Ok(line.trim().trim_end_matches(" kB").parse::<u64>()? * 1024)
        };
        Ok((kib("VmRSS:")?, kib("VmHWM:")?))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Sum of the series of a metric family.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn per_program(text: &str, name: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| {
            let program = l.split("program=\"").nth(1)?.split('"').next()?.to_string();
            Some((program, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}
