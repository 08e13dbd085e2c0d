//! Running commands with progress lines.

use std::{
    process::{Command, ExitCode},
    time::Instant,
};

use anyhow::{Context, Result, bail};

/// Runs `cargo` with the arguments `configure` adds, announcing it and timing it.
pub fn step(what: &str, configure: impl FnOnce(&mut Command) -> &mut Command) -> Result<()> {
    let mut cargo = command(env!("CARGO"));
    configure(&mut cargo);
    checked(what, &mut cargo)
}

/// Runs a command, failing with `what` when it fails.
pub fn checked(what: &str, command: &mut Command) -> Result<()> {
    eprintln!("xtask: {what}...");
    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("{what}: cannot run {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    eprintln!(
        "xtask: {what}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A command run from the workspace root.
pub fn command(program: &str) -> Command {
    let mut command = Command::new(program);
    command.current_dir(workspace_root());
    command
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command and passes its exit code on.
pub fn exit_code_of(command: &mut Command) -> Result<ExitCode> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}
