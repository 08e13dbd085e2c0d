//! Command-line interface.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::probes::method::Method;

/// Explains why TCP connections on this host are reset.
///
/// tcpwhy attaches eBPF probes to the kernel's TCP stack and, for every reset this host sends or
/// receives, works out the cause (no listener, close with unread data, SO_LINGER 0, data after
/// close, peer reset, ...) from the kernel's own reason and the socket's state, names the process,
/// and says what to change.
///
/// Needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN to mount tracefs when it is not mounted).
///
/// Exit codes: 0 success, 1 runtime failure, 2 bad usage or missing privileges.
#[derive(Debug, Parser)]
#[command(name = "tcpwhy", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Probe attach methods to allow, in order of preference.
    ///
    /// Each probe tries these in turn and reports which one attached. A reason-blind
    /// tcp_send_reset tracepoint (Linux < 6.10) always ranks below function probes.
    #[arg(
        long,
        global = true,
        env = "TCPWHY_PROBE_METHODS",
        value_delimiter = ',',
        default_value = "tracepoint,tp_btf,fentry,kprobe"
    )]
    pub probe_methods: Vec<Method>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch for a while, then explain every reset seen.
    ///
    /// Prints "attached N probes, watching for S s" to stderr once the probes are in place:
    /// reproduce the problem after that line. Ctrl-C ends the window early and still reports.
    ///
    /// Examples:
    ///   tcpwhy diagnose                        # 10 s, text report
    ///   tcpwhy diagnose --duration 60 --format json | jq '.findings[] | {cause, count, local}'
    Diagnose {
        /// How long to watch, in seconds (0 = until Ctrl-C).
        #[arg(long, short, default_value_t = 10, value_name = "SECONDS")]
        duration: u64,

        /// Report format: `text` for people, `json` for scripts (one object on stdout).
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

impl Command {
    pub fn duration(seconds: u64) -> Option<Duration> {
        (seconds > 0).then(|| Duration::from_secs(seconds))
    }
}
