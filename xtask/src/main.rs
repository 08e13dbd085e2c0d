//! Project tasks: `cargo xtask setup | build | diagnose | test | package | bench | soak | vm-test | fuzz`.
//!
//! Everything the build, the tests and the packaging need is installed by `setup`, which every
//! other task runs first: CI and fresh machines start with nothing installed by hand.

mod bench;
mod fuzz;
mod package;
mod programs;
mod rootfs;
mod run;
mod setup;
mod soak;
mod sockets;
mod vm;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, set up, run and test tcpwhy")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the build, the tests, the kernel matrix, the benchmarks and the packaging
    /// need (Debian packages, nightly rust-src, bpf-linker); does nothing when everything is
    /// present.
    Setup,
    /// Set up, then build target/release/tcpwhy with the eBPF programs embedded.
    Build,
    /// Set up, build, and run `tcpwhy diagnose` (as root) with the given arguments.
    Diagnose {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then check that setup provides every program the tests run, check formatting
    /// and lints, build the packages, run every test (unit, end-to-end, packages, alert rules),
    /// fuzz each parser for a few seconds, run a 1-minute soak and the kernel matrix.
    Test,
    /// Set up, build, and write target/package/tcpwhy_<version>_amd64.deb and
    /// target/package/tcpwhy-<version>-oci.tar.
    Package,
    /// Measure what tcpwhy costs: workloads timed without and with the agent in the same run,
    /// kernel time per program run, agent CPU per 1000 events (as root).
    Bench {
        /// Only this part of the bench.
        #[arg(long)]
        only: Option<bench::Part>,
    },
    /// Every storm at once against `tcpwhy daemon` for N minutes, in network namespaces it
    /// creates (as root, under the host-test lock): memory must stay bounded, counts must equal
    /// the kernel's, /metrics must answer within 100 ms. Prints a table a minute.
    Soak {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// The soak's refusing client: refused connects to ADDR at RATE per second until killed.
    #[command(hide = true)]
    SoakRefuse {
        addr: std::net::SocketAddr,
        rate: u32,
    },
    /// Run the reset, queue, connection, drop and firewall scenarios on real Debian kernels under qemu,
    /// check which attach method each probe used, and write the README's kernel support table;
    /// then boot each kernel with a Debian system under systemd and check the package's unit
    /// there.
    VmTest {
        /// Which kernel line: 5.10, 6.1, 6.12 or all.
        #[arg(long, default_value = "all")]
        kernel: String,
        /// Only the systemd guests, not the scenarios (nor the table).
        #[arg(long)]
        systemd: bool,
        /// Only the idle daemon's measurement (CPU and reads at 0 and 50 quiet namespaces).
        #[arg(long, conflicts_with = "systemd")]
        idle: bool,
    },
    /// Set up, then run the fuzz targets in fuzz/ (one per parser of untrusted bytes) for a
    /// bounded time each; a crash fails and names its reproducer.
    Fuzz {
        /// How long to run each target (libFuzzer would take 0 as "forever").
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
        seconds: u32,
        /// Only this target (`cargo fuzz list` in fuzz/ lists them).
        target: Option<String>,
    },
}

fn main() -> ExitCode {
    match run_task(Cli::parse().task) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_task(task: Task) -> Result<ExitCode> {
    match task {
        Task::Setup => setup::ensure()?,
        Task::Build => {
            setup::ensure()?;
            build()?;
        }
        Task::Diagnose { args } => {
            setup::ensure()?;
            build()?;
            let mut command = run::command("target/release/tcpwhy");
            command.arg("diagnose").args(&args);
            return run::exit_code_of(&mut command);
        }
        Task::Test => {
            setup::ensure()?;
            let deb = test()?;
            vm_test("all", vm::Guests::All, &deb)?;
        }
        Task::Package => {
            setup::ensure()?;
            build()?;
            package::build()?;
        }
        Task::Bench { only } => {
            setup::ensure()?;
            build()?;
            bench::run(only)?;
        }
        Task::Soak { minutes } => {
            setup::ensure()?;
            build()?;
            soak::run(minutes)?;
        }
        Task::SoakRefuse { addr, rate } => soak::refuse_forever(addr, rate)?,
        Task::VmTest {
            kernel, idle: true, ..
        } => {
            setup::ensure()?;
            build()?;
            vm::run(&kernel, vm::Guests::Idle, Path::new(""))?;
        }
        Task::VmTest {
            kernel, systemd, ..
        } => {
            setup::ensure()?;
            build()?;
            let [deb, _] = package::build()?;
            let guests = if systemd {
                vm::Guests::Systemd
            } else {
                vm::Guests::All
            };
            vm_test(&kernel, guests, &deb)?;
        }
        Task::Fuzz { seconds, target } => {
            setup::ensure()?;
            fuzz::run(target.as_deref(), seconds)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn build() -> Result<()> {
    run::step("building tcpwhy (release, eBPF programs embedded)", |c| {
        c.args(["build", "--release", "--package", "tcpwhy"])
    })
}

/// The soak `cargo xtask test` runs (after the host tests, before the kernel matrix).
const TEST_SOAK_MINUTES: u64 = 1;

/// Returns the Debian package it built (the systemd guests install it).
fn test() -> Result<PathBuf> {
    programs::check()?;
    run::step("checking formatting", |c| {
        c.args(["fmt", "--all", "--check"])
    })?;
    fuzz::check_format()?;
    run::step("linting (clippy, warnings are errors)", |c| {
        c.args([
            "clippy",
            "--release",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    // The programs only build with nightly for the BPF target, as agent/build.rs builds them.
    run::checked(
        "linting the eBPF programs (nightly, BPF target)",
        run::command("rustup")
            .current_dir(run::workspace_root().join("agent-ebpf"))
            .args(["run", "nightly", "cargo", "clippy", "--release"])
            .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
            .args(["--", "-D", "warnings"])
            .env_remove("RUSTC")
            .env_remove("RUSTC_WORKSPACE_WRAPPER"),
    )?;
    build()?;
    let [deb, _] = package::build()?;
    run::step("running every test", |c| {
        c.args(["test", "--release"])
            .env("TCPWHY_PACKAGE_DIR", package::output_dir())
    })?;
    fuzz::run(None, fuzz::TEST_SECONDS)?;
    eprintln!("xtask: soaking the daemon for {TEST_SOAK_MINUTES} minute...");
    soak::run(TEST_SOAK_MINUTES)?;
    Ok(deb)
}

/// The kernel matrix and the systemd guests, then the README table from what the matrix showed.
fn vm_test(selection: &str, guests: vm::Guests, deb: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let results = vm::run(selection, guests, deb)?;
    if selection == "all" && guests == vm::Guests::All {
        let host = run::output(run::command("target/release/tcpwhy").args([
            "diagnose",
            "--duration",
            "1",
            "--format",
            "json",
        ]))?;
        let host: serde_json::Value = serde_json::from_slice(&host)?;
        vm::write_support_table(&vm::support_table(&results, &host))?;
    }
    eprintln!(
        "xtask: vm-test: passed in {:.0} s ({} scenario runs)",
        started.elapsed().as_secs_f64(),
        results.len()
    );
    Ok(())
}
