//! Running commands with progress lines. Every failure names the program, and a program that is
//! not installed is named as such.

use std::{
    io,
    path::PathBuf,
    process::{Command, ExitCode, Output, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

/// Runs `cargo` with the arguments `configure` adds, announcing it and timing it.
pub fn step(what: &str, configure: impl FnOnce(&mut Command) -> &mut Command) -> Result<()> {
    let mut cargo = command(env!("CARGO"));
    configure(&mut cargo);
    checked(what, &mut cargo)
}

/// Runs a command, failing with `what` when it fails. Its stdout goes to stderr: steps are
/// progress, and stdout belongs to the command the user asked for (`cargo xtask diagnose --
/// --format json | jq` must see JSON only).
pub fn checked(what: &str, command: &mut Command) -> Result<()> {
    eprintln!("xtask: {what}...");
    let started = Instant::now();
    let status = command
        .stdout(Stdio::from(io::stderr()))
        .status()
        .map_err(|err| cannot_run(command, err))
        .with_context(|| what.to_string())?;
    if !status.success() {
        bail!("{what} failed: {} exited with {status}", program(command));
    }
    eprintln!(
        "xtask: {what}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs a command quietly and returns its stdout; a failure carries its stderr.
pub fn output(command: &mut Command) -> Result<Vec<u8>> {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().map_err(|err| cannot_run(command, err))?;
    if !status.success() {
        bail!(
            "{command:?} exited with {status}: {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(stdout)
}

/// [`output`] as text.
pub fn output_text(command: &mut Command) -> Result<String> {
    Ok(String::from_utf8_lossy(&output(command)?).into_owned())
}

fn program(command: &Command) -> String {
    command.get_program().to_string_lossy().into_owned()
}

fn cannot_run(command: &Command, err: io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "{} is not installed (`cargo xtask setup` installs what the tasks run)",
            program(command)
        )
    } else {
        anyhow::anyhow!("cannot run {}: {err}", program(command))
    }
}

/// A command run from the workspace root.
pub fn command(program: &str) -> Command {
    let mut command = Command::new(program);
    command.current_dir(workspace_root());
    command
}

pub fn workspace_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command and passes its exit code on.
pub fn exit_code_of(command: &mut Command) -> Result<ExitCode> {
    let status = command.status().map_err(|err| cannot_run(command, err))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}
