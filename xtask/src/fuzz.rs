//! The fuzz targets in `fuzz/` (one per parser of untrusted bytes), each run for a bounded time
//! under cargo-fuzz and libFuzzer. A crash, a hang or a blow-up fails the run and names the
//! reproducer libFuzzer wrote.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

use anyhow::{Result, bail};

use crate::run::{checked, output_text, workspace_root};

/// How long `cargo xtask test` runs each target: enough to replay the seeds and mutate them a
/// hundred thousand times, with every target and the build within about three minutes here.
pub const TEST_SECONDS: u32 = 10;

/// An input that takes longer than this is a hang.
const INPUT_TIMEOUT_SECONDS: u32 = 10;

/// Builds the targets, then runs `only` (else every target) for `seconds` each.
pub fn run(only: Option<&str>, seconds: u32) -> Result<()> {
    let dir = workspace_root().join("fuzz");
    let all = output_text(cargo_fuzz(&dir).arg("list"))?;
    let all: Vec<&str> = all
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let targets = match only {
        Some(target) if all.contains(&target) => vec![target],
        Some(target) => bail!(
            "no fuzz target {target}; the targets are {}",
            all.join(", ")
        ),
        None => all,
    };
    checked(
        "building the fuzz targets (nightly, address sanitizer)",
        cargo_fuzz(&dir).arg("build"),
    )?;
    for target in targets {
        run_target(&dir, target, seconds)?;
    }
    Ok(())
}

/// The fuzz crate is a workspace of its own, which `cargo fmt --all` leaves out.
pub fn check_format() -> Result<()> {
    checked(
        "checking the fuzz targets' formatting",
        crate::run::command(env!("CARGO")).args([
            "fmt",
            "--check",
            "--manifest-path",
            "fuzz/Cargo.toml",
        ]),
    )
}

/// `cargo fuzz` under nightly, which its sanitizer flags need, in the fuzz crate.
fn cargo_fuzz(dir: &Path) -> Command {
    let mut command = Command::new("rustup");
    command
        .current_dir(dir)
        .args(["run", "nightly", "cargo", "fuzz"])
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    command
}

fn run_target(dir: &Path, target: &str, seconds: u32) -> Result<()> {
    // New inputs go to a scratch corpus; the committed seeds are only read.
    let scratch = dir.join("target").join("corpus").join(target);
    fs::create_dir_all(&scratch)?;
    let artifacts = dir.join("artifacts").join(target);
    let started = SystemTime::now();
    let ran = checked(
        &format!("fuzzing {target} for {seconds} s"),
        cargo_fuzz(dir)
            .args(["run", target])
            .arg(&scratch)
            .arg(dir.join("corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}")),
    );
    if let Err(err) = ran {
        let reproducers = written_since(&artifacts, started);
        if reproducers.is_empty() {
            return Err(err);
        }
        let shown: Vec<String> = reproducers
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        bail!(
            "fuzz target {target} failed; reproduce with `cargo fuzz run {target} {}` in fuzz/, \
             fix the bug, and add the input to fuzz/corpus/{target}/",
            shown.join(" ")
        );
    }
    Ok(())
}

/// The files libFuzzer wrote to `dir` (crash-, timeout-, oom-, leak-…) since `since`.
fn written_since(dir: &Path, since: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified >= since)
        })
        .map(|entry| entry.path())
        .collect()
}
