//! `cargo xtask bench`: what tcpwhy costs, measured against a floor in the same run.
//!
//! Three workloads on loopback (refused connects: one RST each way; short connections: the state
//! changes of a whole connection; SYNs an nftables rule drops in a namespace: the drop path),
//! timed bare, with `tcpwhy daemon` (default attach methods: BTF tracepoints first; then classic
//! tracepoints first) and with bpftrace counting three tracepoints in kernel maps, the floor a
//! user gets for free. The setups take turns, round after round, so that load from elsewhere
//! shifts them alike. Reported: the workload's cost per operation and its throughput relative to
//! bare, the kernel-measured time per run of each program by tracepoint, the agent's CPU time
//! per thousand events, and events lost. Then the daemon alone: idle CPU (no traffic, then many
//! namespaces), resident memory, and a storm of refused connects.

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

use self::{
    bpftrace::Bpftrace,
    daemon::{AgentCost, Daemon},
};

/// Each a start of the observer and one timing of every workload.
const ROUNDS: usize = 5;

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

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// What the kernel measured for the programs on one tracepoint.
#[derive(Default)]
pub struct ProgramCost {
    runs: f64,
    seconds: f64,
}

/// By tracepoint.
pub type Costs = BTreeMap<String, ProgramCost>;

/// How the workloads run: alone, or beside an observer.
#[derive(Clone, Copy)]
enum Setup {
    Bare,
    /// `tcpwhy daemon` with these probe methods (None: its default).
    Daemon(Option<&'static str>),
    Bpftrace,
}

/// One setup's results over every round.
struct Column {
    name: &'static str,
    setup: Setup,
    /// Time per operation, by workload, one sample per round.
    samples: Vec<Vec<Duration>>,
    costs: Costs,
    agent: Option<AgentCost>,
}

impl Column {
    fn new(name: &'static str, setup: Setup) -> Self {
        Column {
            name,
            setup,
            samples: vec![Vec::new(); WORKLOADS.len()],
            costs: Costs::new(),
            agent: None,
        }
    }

    /// Starts the setup, times every workload once and stops it again.
    fn round(&mut self) -> Result<()> {
        match self.setup {
            Setup::Bare => self.time(),
            Setup::Daemon(probe_methods) => {
                let daemon = Daemon::start(probe_methods)?;
                self.time()?;
                let (costs, agent) = daemon.results()?;
                self.add(costs);
                self.agent.get_or_insert_default().add(agent);
                Ok(())
            }
            Setup::Bpftrace => {
                let bpftrace = Bpftrace::start()?;
                self.time()?;
                self.add(bpftrace.costs()?);
                Ok(())
            }
        }
    }

    fn time(&mut self) -> Result<()> {
        for (workload, samples) in WORKLOADS.iter().zip(&mut self.samples) {
            let started = Instant::now();
            (workload.run)(workload.operations)?;
            samples.push(started.elapsed() / workload.operations);
        }
        Ok(())
    }

    /// Programs are loaded afresh each round: their counts add up.
    fn add(&mut self, costs: Costs) {
        for (tracepoint, cost) in costs {
            let total = self.costs.entry(tracepoint).or_default();
            total.runs += cost.runs;
            total.seconds += cost.seconds;
        }
    }

    fn per_op(&self, workload: usize) -> Duration {
        median(self.samples[workload].clone())
    }
}

/// The daemon's methods with classic tracepoints first (the default is BTF tracepoints first).
const CLASSIC_FIRST: &str = "tracepoint,tp_btf,fentry,kprobe";

/// Every setup runs once per round, in an order that rotates from round to round, so that
/// drift on a shared machine (other builds come and go) lands on all of them alike.
fn measure_overhead() -> Result<Vec<Column>> {
    let mut columns = [
        Column::new("bare", Setup::Bare),
        Column::new("tcpwhy daemon", Setup::Daemon(None)),
        Column::new(
            "tcpwhy, classic tracepoints first",
            Setup::Daemon(Some(CLASSIC_FIRST)),
        ),
        Column::new("bpftrace, 3 counters", Setup::Bpftrace),
    ];
    let n = columns.len();
    for round in 0..ROUNDS {
        for k in 0..n {
            let column = &mut columns[(round + k) % n];
            eprintln!("xtask: bench round {}/{ROUNDS}: {}", round + 1, column.name);
            column.round()?;
        }
    }
    Ok(columns.into())
}

pub fn run(only: Option<Part>) -> Result<()> {
    // First, before the workloads leave thousands of TIME_WAIT sockets for a minute.
    let idle = idle::measure()?;
    if let Some(Part::Idle) = only {
        print_idle(&idle);
        return Ok(());
    }
    let columns = measure_overhead()?;
    drops::remove();
    let (bare, observed) = columns.split_first().expect("a bare column");
    println!(
        "tcpwhy benchmark: median of {ROUNDS} interleaved rounds per workload and configuration\n"
    );

    let names: Vec<&str> = observed.iter().map(|c| c.name).collect();
    println!("| workload | bare | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(observed.len()));
    for (i, workload) in WORKLOADS.iter().enumerate() {
        let bare = bare.per_op(i);
        let cells: Vec<String> = observed
            .iter()
            .map(|c| {
                let per_op = c.per_op(i);
                format!(
                    "{:.1} µs/op ({:.2})",
                    micros(per_op),
                    bare.as_secs_f64() / per_op.as_secs_f64()
                )
            })
            .collect();
        println!(
            "| {} | {:.1} µs/op | {} |",
            workload.name,
            micros(bare),
            cells.join(" | ")
        );
    }
    println!("\n(in parentheses: throughput relative to bare)\n");

    println!("| tracepoint: ns per run (runs) | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(observed.len()));
    let tracepoints: std::collections::BTreeSet<&String> = observed
        .iter()
        .flat_map(|c| c.costs.iter())
        .filter(|(_, cost)| cost.runs > 0.0)
        .map(|(tracepoint, _)| tracepoint)
        .collect();
    for tracepoint in tracepoints {
        let cells: Vec<String> = observed
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
    for column in observed {
        if let Some(agent) = &column.agent {
            println!("\n{}: {agent}", column.name);
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
