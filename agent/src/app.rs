//! The `tcpwhy` command: parses the command line, runs the command, maps failures to exit codes.

use std::{io::Write, path::PathBuf, process::ExitCode};

use anyhow::Context;

use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

use crate::{
    cli::{Cli, Command, Format},
    daemon::{self, DaemonError},
    diagnose::{diagnose, text},
    engine::{Engine, session::StartError},
    generate,
    probes::{load::EventFlow, method::Method},
    settings::Settings,
    watch,
};

/// Exit codes scripts can rely on.
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let matches = Cli::command().subcommand(generate::command()).get_matches();
    if let Some((generate::SUBCOMMAND, args)) = matches.subcommand() {
        let dir: &PathBuf = args.get_one("dir").expect("a required argument");
        return match generate::write_all(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                report_failure(format_args!("writing under {}: {err}", dir.display()));
                ExitCode::from(EXIT_FAILURE)
            }
        };
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    init_logging(matches!(cli.command, Command::Daemon { .. }));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            report_failure(format_args!("cannot start the async runtime: {err}"));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Usage(message)) => {
            report_failure(format_args!("{message}"));
            ExitCode::from(EXIT_USAGE)
        }
        Err(RunError::Other(err)) => {
            report_failure(format_args!("{err:#}"));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Says why tcpwhy fails; a closed stderr must not turn that into a panic.
fn report_failure(message: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "tcpwhy: {message}");
}

/// Logs go to stderr. Under systemd (JOURNAL_STREAM set) journald adds timestamps and colours
/// would be noise, so neither is written; `TCPWHY_LOG` sets the level (`info` for the daemon,
/// `warn` for diagnose, whose stderr is for people).
fn init_logging(daemon: bool) {
    let default = if daemon { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("TCPWHY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!journald && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if journald {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

enum RunError {
    /// Bad usage, configuration or privileges: exit code 2.
    Usage(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(err: anyhow::Error) -> Self {
        RunError::Other(err)
    }
}

impl From<StartError> for RunError {
    fn from(err: StartError) -> Self {
        match err {
            StartError::MissingPrivileges(_) => RunError::Usage(err.to_string()),
            StartError::Other(err) => RunError::Other(err),
        }
    }
}

impl From<DaemonError> for RunError {
    fn from(err: DaemonError) -> Self {
        match err {
            DaemonError::Config(message) => RunError::Usage(message),
            DaemonError::Start(err) => err.into(),
            DaemonError::Runtime(err) => RunError::Other(err),
        }
    }
}

/// A reader that went away before the report (`tcpwhy diagnose | head -1`) is not a failure:
/// the report had nowhere to go.
fn print_report(report: &str) -> Result<(), RunError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(report.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written.context("writing the report to stdout")?),
    }
}

async fn run(cli: Cli) -> Result<(), RunError> {
    match cli.command {
        Command::Diagnose {
            duration,
            format,
            filter,
        } => {
            let methods = cli
                .probe_methods
                .unwrap_or_else(|| Method::DEFAULT_ORDER.to_vec());
            let flow = EventFlow {
                port: filter.port,
                ..EventFlow::default()
            };
            let engine = Engine::start(&methods, flow)?;
            let mut report = diagnose(engine, Command::duration(duration)).await?;
            report.findings.retain(|f| filter.matches(f));
            let rendered = match format {
                Format::Text => text::render(&report),
                Format::Json => {
                    serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
                        + "
"
                }
            };
            print_report(&rendered)
        }
        Command::Watch { format, filter } => {
            let methods = cli
                .probe_methods
                .unwrap_or_else(|| Method::DEFAULT_ORDER.to_vec());
            let flow = EventFlow {
                port: filter.port,
                ..EventFlow::default()
            };
            let engine = Engine::start(&methods, flow)?;
            Ok(watch::watch(engine, format, filter).await?)
        }
        Command::Daemon {
            config,
            settings,
            filter,
        } => {
            let given = Settings {
                probe_methods: cli.probe_methods,
                ..settings
            };
            let settings = Settings::load(given, config.as_deref())
                .map_err(|e| RunError::Usage(e.to_string()))?;
            Ok(daemon::run(settings, filter).await?)
        }
    }
}
