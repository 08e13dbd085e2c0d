//! `cargo xtask bench`: what tcpwhy costs, measured against a baseline in the same run.
//!
//! Two workloads on loopback (refused connects: one RST each way; short connections: the state
//! changes of a whole connection), each timed without the agent and with `tcpwhy daemon` running
//! (kernel BPF statistics on). Reported: the workload's cost per operation both ways and their
//! ratio, the kernel-measured time per run of each program, the agent's CPU time per thousand
//! events, and events lost.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::run::workspace_root;

const ROUNDS: usize = 3;

struct Workload {
    name: &'static str,
    operations: u32,
    run: fn(u32) -> Result<()>,
}

const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "refused connect (RST sent + received)",
        operations: 5000,
        run: refused_connects,
    },
    Workload {
        name: "short connection (connect, accept, close)",
        operations: 3000,
        run: short_connections,
    },
];

fn refused_connects(n: u32) -> Result<()> {
    let closed: SocketAddr = "127.0.0.211:9".parse()?;
    for _ in 0..n {
        if TcpStream::connect(closed).is_ok() {
            bail!("something listens on {closed}");
        }
    }
    Ok(())
}

fn short_connections(n: u32) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.212:0")?;
    let addr = listener.local_addr()?;
    for _ in 0..n {
        let client = TcpStream::connect(addr)?;
        let (accepted, _) = listener.accept()?;
        drop(accepted);
        drop(client);
    }
    Ok(())
}

/// Median time per operation over `ROUNDS` runs.
fn time_per_op(workload: &Workload) -> Result<Duration> {
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        (workload.run)(workload.operations)?;
        samples.push(started.elapsed() / workload.operations);
    }
    samples.sort();
    Ok(samples[ROUNDS / 2])
}

struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Daemon {
    fn start() -> Result<Daemon> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = Command::new(workspace_root().join("target/release/tcpwhy"))
            .args([
                "daemon",
                "--bpf-stats",
                "--events",
                "off",
                "--listen",
                &addr.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting tcpwhy daemon")?;
        let daemon = Daemon { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while daemon.scrape().is_err() {
            if Instant::now() > deadline {
                bail!("the daemon did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(daemon)
    }

    fn scrape(&self) -> Result<String> {
        let mut stream = TcpStream::connect(self.addr)?;
        write!(stream, "GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default())
    }

    /// User + system CPU time of the daemon so far.
    fn cpu(&self) -> Result<Duration> {
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
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Sum of the series of a metric family, and per program for the BPF statistics.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn per_program(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| {
            let program = l.split("program=\"").nth(1)?.split('"').next()?.to_string();
            Some((program, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

pub fn run() -> Result<()> {
    println!(
        "tcpwhy benchmark: median of {ROUNDS} rounds per workload, baseline and agent in the same run\n"
    );
    let mut baselines = Vec::new();
    for workload in &WORKLOADS {
        baselines.push(time_per_op(workload)?);
    }
    let daemon = Daemon::start()?;
    let before = daemon.scrape()?;
    let cpu_before = daemon.cpu()?;
    let mut with_agent = Vec::new();
    for workload in &WORKLOADS {
        with_agent.push(time_per_op(workload)?);
    }
    std::thread::sleep(Duration::from_millis(1500)); // one fold of the kernel totals
    let after = daemon.scrape()?;
    let cpu = daemon.cpu()? - cpu_before;

    println!("| workload | without agent | with agent | ratio |");
    println!("|---|---|---|---|");
    for ((workload, base), agent) in WORKLOADS.iter().zip(&baselines).zip(&with_agent) {
        println!(
            "| {} | {:.1} µs/op | {:.1} µs/op | {:.2}× |",
            workload.name,
            base.as_secs_f64() * 1e6,
            agent.as_secs_f64() * 1e6,
            agent.as_secs_f64() / base.as_secs_f64()
        );
    }
    let events =
        metric_sum(&after, "tcpwhy_resets_total") - metric_sum(&before, "tcpwhy_resets_total");
    let lost = metric_sum(&after, "tcpwhy_events_lost_total")
        - metric_sum(&before, "tcpwhy_events_lost_total");
    println!(
        "\nagent: {events:.0} reset events, {lost:.0} lost, {:.1} ms CPU ({:.2} ms per 1000 events)",
        cpu.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / events.max(1.0)
    );
    println!("\n| program | runs | ns per run |");
    println!("|---|---|---|");
    let seconds = per_program(&after, "tcpwhy_bpf_program_run_seconds_total");
    let runs = per_program(&after, "tcpwhy_bpf_program_runs_total");
    for (program, total) in &seconds {
        let count = runs.get(program).copied().unwrap_or(0.0);
        if count > 0.0 {
            println!("| {program} | {count:.0} | {:.0} |", total * 1e9 / count);
        }
    }
    Ok(())
}
