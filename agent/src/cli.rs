//! Command-line interface.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::{analysis::filter::Filter, probes::method::Method, settings::Settings};

/// Explains why TCP connections on this host are reset.
///
/// tcpwhy attaches eBPF probes to the kernel's TCP stack and, for every reset this host sends or
/// receives, works out the cause (no listener, close with unread data, SO_LINGER 0, data after
/// close, peer reset, ...) from the kernel's own reason and the socket's state, names the process,
/// and says what to change.
///
/// Needs root, or CAP_BPF and CAP_PERFMON to load its probes; listen queues in every network
/// namespace also need CAP_SYS_ADMIN, and owners of sockets CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
/// (the systemd unit grants all five).
///
/// Exit codes: 0 success, 1 runtime failure, 2 bad usage or missing privileges.
#[derive(Debug, Parser)]
#[command(name = "tcpwhy", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Probe attach methods to allow, in order of preference
    /// [default: tp_btf,tracepoint,fentry,kprobe].
    ///
    /// Each probe tries these in turn and reports which one attached. A reason-blind
    /// tcp_send_reset tracepoint (Linux < 6.10) always ranks below function probes.
    #[arg(
        long,
        global = true,
        env = "TCPWHY_PROBE_METHODS",
        value_delimiter = ','
    )]
    pub probe_methods: Option<Vec<Method>>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch for a while, then explain every reset seen.
    ///
    /// Prints "attached N probes, watching for S s" to stderr once the probes are in place:
    /// reproduce the problem after that line. Ctrl-C ends the window early and still reports.
    #[command(after_help = concat!(
        "Examples:\n",
        "  tcpwhy diagnose                        # 10 s, text report\n",
        "  tcpwhy diagnose --duration 60 --format json | jq '.findings[] | {cause, count, local}'",
    ))]
    Diagnose {
        /// How long to watch, in seconds (0 = until Ctrl-C; at most a year).
        #[arg(long, short, default_value_t = 10, value_name = "SECONDS",
              value_parser = clap::value_parser!(u64).range(..=MAX_DURATION_SECONDS))]
        duration: u64,

        /// Report format: `text` for people, `json` for scripts (one object on stdout).
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        format: Format,

        #[command(flatten)]
        filter: Filter,
    },
    /// Print each finding as it happens, one line each, until Ctrl-C.
    ///
    /// Resets and queue drops appear within a second of the event; retransmits and connection
    /// states every few seconds, as they change.
    #[command(after_help = concat!(
        "Examples:\n",
        "  tcpwhy watch --port 8080\n",
        "  tcpwhy watch --format json | jq 'select(.kind == \"rst_sent\")'",
    ))]
    Watch {
        /// `text`: one line per finding; `json`: one JSON object per line.
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        format: Format,

        #[command(flatten)]
        filter: Filter,
    },
    /// Run until stopped: Prometheus metrics on /metrics, /healthz, a JSON event stream.
    ///
    /// Meant for systemd (Type=notify: ready once the probes are attached) and Kubernetes
    /// DaemonSets. SIGTERM or SIGINT detach every probe and exit. Each setting comes from the flag,
    /// else the environment variable, else the config file, else the default.
    #[command(after_help = concat!(
        "Examples:\n",
        "  tcpwhy daemon                                  # metrics on 127.0.0.1:9977, events on stdout\n",
        "  tcpwhy daemon --config /etc/tcpwhy/tcpwhy.toml\n",
        "  tcpwhy daemon --listen 0.0.0.0:9977 --events /var/log/tcpwhy/events.jsonl",
    ))]
    Daemon {
        /// TOML configuration file; its keys are the long flags below with `_` for `-`
        /// (listen, events, events_per_second, listener_label_limit, probe_methods,
        /// ring_buffer_bytes, bpf_stats).
        #[arg(long, short, env = "TCPWHY_CONFIG", value_name = "FILE")]
        config: Option<std::path::PathBuf>,

        #[command(flatten)]
        settings: Settings,

        /// Only these findings go to the event stream; metrics count everything.
        #[command(flatten)]
        filter: Filter,
    },
}

/// A year: beyond what anyone watches, and far from the clock's overflow.
const MAX_DURATION_SECONDS: u64 = 365 * 24 * 3600;

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
