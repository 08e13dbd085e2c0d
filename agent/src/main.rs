//! tcpwhy: explains why TCP connections are reset, from eBPF probes.

mod cli;
mod diagnose;
mod events;
mod explain;
mod findings;
mod kernel;
mod listeners;
mod netns;
mod probes;
mod queues;
mod session;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::{
    cli::{Cli, Command, Format},
    diagnose::{
        text,
        watch::{WatchOptions, watch},
    },
    session::{Session, StartError},
};

/// Exit codes scripts can rely on.
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TCPWHY_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tcpwhy: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Start(err @ StartError::MissingPrivileges(_))) => {
            eprintln!("tcpwhy: {err}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(RunError::Start(StartError::Other(err))) | Err(RunError::Other(err)) => {
            eprintln!("tcpwhy: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

enum RunError {
    Start(StartError),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(err: anyhow::Error) -> Self {
        RunError::Other(err)
    }
}

async fn run(cli: Cli) -> Result<(), RunError> {
    match cli.command {
        Command::Diagnose { duration, format } => {
            let session = Session::start(&cli.probe_methods).map_err(RunError::Start)?;
            let report = watch(
                session,
                &WatchOptions {
                    duration: Command::duration(duration),
                },
            )
            .await?;
            match format {
                Format::Text => print!("{}", text::render(&report)),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
                ),
            }
            Ok(())
        }
    }
}
