//! `cargo xtask bench`: what tcpwhy costs, measured against a floor in the same run.
//!
//! Three workloads on loopback (refused connects: one RST each way; short connections: the state
//! changes of a whole connection; SYNs an nftables rule drops in a namespace: the drop path),
//! each timed bare (before and after the others), with `tcpwhy
//! daemon` (default attach methods: BTF tracepoints first, then classic tracepoints first) and with bpftrace counting three
//! tracepoints in kernel maps, the floor a user gets for free. Reported: the workload's cost per
//! operation and its throughput relative to bare, the kernel-measured time per run of each
//! program by tracepoint, the agent's CPU time per thousand events, and events lost. Then the
//! daemon alone: idle CPU (no traffic, then many namespaces), resident memory, and a storm of
//! refused connects.

mod bpftrace;
mod daemon;
mod drops;
mod idle;
mod storm;

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener, TcpStream},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use self::{bpftrace::Bpftrace, daemon::Daemon};

const ROUNDS: usize = 3;

/// A part of the bench that runs alone (`--only`), to iterate on it.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Part {
    /// The daemon's idle CPU and memory.
    Idle,
}

struct Workload {
    name: &'static str,
    operations: u32,
    run: fn(u32) -> Result<()>,
}

const WORKLOADS: [Workload; 3] = [
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
    Workload {
        name: "dropped SYN (nftables drop rule in a namespace)",
        operations: 5000,
        run: drops::dropped_syns,
    },
];

fn refused_connects(n: u32) -> Result<()> {
    (0..n).try_for_each(|_| refused_connect())
}

fn refused_connect() -> Result<()> {
    let closed = SocketAddr::from(([127, 0, 0, 211], 9));
    if TcpStream::connect(closed).is_ok() {
        bail!("something listens on {closed}");
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

/// Time per operation of each round.
fn samples(workload: &Workload) -> Result<Vec<Duration>> {
    (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            (workload.run)(workload.operations)?;
            Ok(started.elapsed() / workload.operations)
        })
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median time per operation of every workload.
fn time_workloads() -> Result<Vec<Duration>> {
    WORKLOADS.iter().map(|w| Ok(median(samples(w)?))).collect()
}

/// What the kernel measured for the programs on one tracepoint.
#[derive(Default)]
pub struct ProgramCost {
    runs: f64,
    seconds: f64,
}

/// By tracepoint.
pub type Costs = BTreeMap<String, ProgramCost>;

/// One configuration's results.
struct Column {
    name: &'static str,
    per_op: Vec<Duration>,
    costs: Costs,
    note: String,
}

/// The daemon's methods with classic tracepoints first (the default is BTF tracepoints first).
const CLASSIC_FIRST: &str = "tracepoint,tp_btf,fentry,kprobe";

fn with_daemon(name: &'static str, probe_methods: Option<&str>) -> Result<Column> {
    let daemon = Daemon::start(probe_methods)?;
    let per_op = time_workloads()?;
    let (costs, note) = daemon.results()?;
    Ok(Column {
        name,
        per_op,
        costs,
        note,
    })
}

fn with_bpftrace() -> Result<Column> {
    let bpftrace = Bpftrace::start()?;
    let per_op = time_workloads()?;
    Ok(Column {
        name: "bpftrace, 3 counters",
        per_op,
        costs: bpftrace.costs()?,
        note: String::new(),
    })
}

/// Bare samples from before and after the others, so that drift on a shared machine shows in
/// neither direction alone.
fn bare(before: &[Vec<Duration>]) -> Result<Vec<Duration>> {
    WORKLOADS
        .iter()
        .zip(before)
        .map(|(workload, earlier)| {
            let mut all = samples(workload)?;
            all.extend(earlier);
            Ok(median(all))
        })
        .collect()
}

pub fn run(only: Option<Part>) -> Result<()> {
    // First, before the workloads leave thousands of TIME_WAIT sockets for a minute.
    let idle = idle::measure()?;
    if let Some(Part::Idle) = only {
        print_idle(&idle);
        return Ok(());
    }
    println!("tcpwhy benchmark: median of {ROUNDS} rounds per workload and configuration\n");
    let bare_before = WORKLOADS.iter().map(samples).collect::<Result<Vec<_>>>()?;
    let columns = [
        with_daemon("tcpwhy daemon", None)?,
        with_daemon("tcpwhy, classic tracepoints first", Some(CLASSIC_FIRST))?,
        with_bpftrace()?,
    ];
    let bare = bare(&bare_before)?;
    drops::remove();

    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    println!("| workload | bare | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(columns.len()));
    for (i, workload) in WORKLOADS.iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| {
                format!(
                    "{:.1} µs/op ({:.2})",
                    micros(c.per_op[i]),
                    bare[i].as_secs_f64() / c.per_op[i].as_secs_f64()
                )
            })
            .collect();
        println!(
            "| {} | {:.1} µs/op | {} |",
            workload.name,
            micros(bare[i]),
            cells.join(" | ")
        );
    }
    println!("\n(in parentheses: throughput relative to bare)\n");

    println!("| tracepoint: ns per run (runs) | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(columns.len()));
    let tracepoints: std::collections::BTreeSet<&String> = columns
        .iter()
        .flat_map(|c| c.costs.iter())
        .filter(|(_, cost)| cost.runs > 0.0)
        .map(|(tracepoint, _)| tracepoint)
        .collect();
    for tracepoint in tracepoints {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match c.costs.get(tracepoint) {
                Some(cost) if cost.runs > 0.0 => {
                    format!("{:.0} ({:.0})", cost.seconds * 1e9 / cost.runs, cost.runs)
                }
                _ => "-".to_string(),
            })
            .collect();
        println!("| {tracepoint} | {} |", cells.join(" | "));
    }
    for column in &columns {
        if !column.note.is_empty() {
            println!("\n{}: {}", column.name, column.note);
        }
    }
    print_idle(&idle);
    print_storm(storm::measure()?);
    Ok(())
}

fn print_idle(idle: &idle::Idle) {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "\n| tcpwhy daemon, idle | CPU, no traffic | CPU, {} namespaces with a listener each | RSS steady | RSS peak |",
        idle::NAMESPACES
    );
    println!("|---|---|---|---|---|");
    println!(
        "| measured | {:.2} % of a core | {:.2} % of a core | {:.1} MiB | {:.1} MiB |",
        idle.quiet.percent,
        idle.with_namespaces.percent,
        mib(idle.rss_steady),
        mib(idle.rss_peak)
    );
    println!(
        "\nTCP state changes on the host meanwhile: {:.0} and {:.0} (more than a few dozen: \
         others' traffic, not idle)",
        idle.quiet.host_state_changes, idle.with_namespaces.host_state_changes
    );
}

fn print_storm((full, loss_starts): (storm::Storm, Option<storm::Storm>)) {
    println!(
        "\n| storm: refused connects, {} clients | connects/s | reset events | lost |",
        storm::CLIENTS
    );
    println!("|---|---|---|---|");
    let row = |name: &str, s: &storm::Storm| {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            s.rate, s.events, s.lost
        )
    };
    row("as fast as they can", &full);
    match loss_starts {
        Some(paced) => row("lowest paced rate that lost events", &paced),
        None if full.lost > 0.0 => {
            println!("| (loss starts above three quarters of the fastest rate) | | | |")
        }
        None => {}
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
