//! The daemon's settings, each declared once: the field below is the flag, the environment
//! variable (through clap) and the TOML key (through serde), with its documentation; the accessor
//! next to it holds the default. A flag or variable wins over the file, the file over the default.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::{Deserialize, Deserializer, de::Error as _};
use tcpwhy_common::{maps::EVENTS_RING_BYTES, reset::DEFAULT_RECORDS_PER_WINDOW};

use crate::probes::method::Method;

/// The kernel's smallest ring buffer is a page.
const MIN_RING_BYTES: u32 = 4096;
/// 64 times the default, and a bound on memory: the ring is mapped into the daemon, so a few
/// GiB would be that much resident memory.
const MAX_RING_BYTES: u32 = 64 << 20;

#[derive(Debug, Default, Clone, PartialEq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address for /metrics and /healthz [default: 127.0.0.1:9977].
    #[arg(long, env = "TCPWHY_LISTEN", value_name = "ADDR:PORT")]
    #[serde(default, deserialize_with = "parsed")]
    pub listen: Option<SocketAddr>,

    /// Where the JSON event stream goes: `stdout`, a file path (appended), or `off`
    /// [default: stdout].
    #[arg(long, env = "TCPWHY_EVENTS", value_name = "SINK")]
    #[serde(default, deserialize_with = "parsed")]
    pub events: Option<EventSink>,

    /// Event stream rate limit; a burst beyond it is counted and reported, not written
    /// [default: 100].
    #[arg(long, env = "TCPWHY_EVENTS_PER_SECOND", value_name = "N")]
    pub events_per_second: Option<u32>,

    /// Listeners that get their own `listener` label; the rest share `other` [default: 20].
    #[arg(long, env = "TCPWHY_LISTENER_LABEL_LIMIT", value_name = "N")]
    pub listener_label_limit: Option<usize>,

    /// Probe attach methods, in order of preference (the global `--probe-methods` flag and
    /// `TCPWHY_PROBE_METHODS` set it) [default: tp_btf,tracepoint,fentry,kprobe].
    #[arg(skip)]
    #[serde(default, deserialize_with = "parsed_list")]
    pub probe_methods: Option<Vec<Method>>,

    /// Size of the kernel→agent event ring buffer in bytes (a power of two, 4096 to 64 MiB);
    /// events that do not fit are counted in tcpwhy_events_lost_total [default: 1048576].
    #[arg(long, env = "TCPWHY_RING_BUFFER_BYTES", value_name = "BYTES")]
    pub ring_buffer_bytes: Option<u32>,

    /// Resets each CPU reports one by one per second (a window of 2^30 ns); past it, the
    /// kernel counts them by cause evidence and service end, so that a storm costs the agent
    /// little. Counts and findings stay exact; only the detail of single resets is lost
    /// [default: 1024].
    #[arg(long, env = "TCPWHY_RESET_RECORDS_PER_SECOND", value_name = "N")]
    pub reset_records_per_second: Option<u32>,

    /// Measure each tcpwhy program's run time and run count while running, for
    /// tcpwhy_bpf_program_run_seconds_total (system-wide, a few ns per program run; the same
    /// as kernel.bpf_stats_enabled=1 but only while tcpwhy runs) [default: false].
    #[arg(long, env = "TCPWHY_BPF_STATS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub bpf_stats: Option<bool>,
}

impl Settings {
    pub fn listen(&self) -> SocketAddr {
        self.listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9977)))
    }

    pub fn events(&self) -> EventSink {
        self.events.clone().unwrap_or(EventSink::Stdout)
    }

    pub fn events_per_second(&self) -> u32 {
        self.events_per_second.unwrap_or(100)
    }

    pub fn listener_label_limit(&self) -> usize {
        self.listener_label_limit.unwrap_or(20)
    }

    pub fn probe_methods(&self) -> Vec<Method> {
        self.probe_methods
            .clone()
            .unwrap_or_else(|| Method::DEFAULT_ORDER.to_vec())
    }

    pub fn ring_buffer_bytes(&self) -> u32 {
        self.ring_buffer_bytes.unwrap_or(EVENTS_RING_BYTES)
    }

    pub fn reset_records_per_second(&self) -> u32 {
        self.reset_records_per_second
            .unwrap_or(DEFAULT_RECORDS_PER_WINDOW)
    }

    pub fn bpf_stats(&self) -> bool {
        self.bpf_stats.unwrap_or(false)
    }

    /// `given` (flags and environment) over the settings in `file`, checked.
    pub fn load(given: Settings, file: Option<&Path>) -> Result<Settings, SettingsError> {
        let from_file = match file {
            Some(path) => Self::read(path)?,
            None => Settings::default(),
        };
        let settings = given.over(from_file);
        // Values are checked after merging; name where they may have come from.
        let origin = file
            .map(|f| format!("{} (or its flag / environment variable)", f.display()))
            .unwrap_or_else(|| "the command line or environment".to_string());
        let bytes = settings.ring_buffer_bytes();
        if !bytes.is_power_of_two() || !(MIN_RING_BYTES..=MAX_RING_BYTES).contains(&bytes) {
            return Err(SettingsError(format!(
                "{origin}: key `ring_buffer_bytes` must be a power of two from {MIN_RING_BYTES} \
                 to {MAX_RING_BYTES}, not {bytes}"
            )));
        }
        if settings.probe_methods().is_empty() {
            return Err(SettingsError(format!(
                "{origin}: key `probe_methods` must name at least one method (tracepoint, \
                 tp_btf, fentry, kprobe)"
            )));
        }
        if let EventSink::File(path) = settings.events() {
            if let Some(kind) = std::fs::metadata(&path)
                .ok()
                .and_then(|m| unusable_event_file(m.file_type()))
            {
                return Err(SettingsError(format!(
                    "{origin}: key `events`: {} is {kind}, not a regular file; use a regular \
                     file, `stdout` or `off`",
                    path.display()
                )));
            }
        }
        if settings.events_per_second() == 0 {
            return Err(SettingsError(format!(
                "{origin}: key `events_per_second` must be at least 1 (use events = \"off\" to disable the stream)"
            )));
        }
        Ok(settings)
    }

    fn read(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text, path)
    }

    /// Parses the text of the TOML file at `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Settings, SettingsError> {
        toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .and_then(|span| key_at(text, span.start))
                .map(|key| format!(" key `{key}`:"))
                .unwrap_or_default();
            SettingsError(format!(
                "{}:{key} {}",
                path.display(),
                e.message().trim_end()
            ))
        })
    }

    /// Each setting from `self` where set, else from `fallback`.
    fn over(self, fallback: Settings) -> Settings {
        Settings {
            listen: self.listen.or(fallback.listen),
            events: self.events.or(fallback.events),
            events_per_second: self.events_per_second.or(fallback.events_per_second),
            listener_label_limit: self.listener_label_limit.or(fallback.listener_label_limit),
            probe_methods: self.probe_methods.or(fallback.probe_methods),
            ring_buffer_bytes: self.ring_buffer_bytes.or(fallback.ring_buffer_bytes),
            reset_records_per_second: self
                .reset_records_per_second
                .or(fallback.reset_records_per_second),
            bpf_stats: self.bpf_stats.or(fallback.bpf_stats),
        }
    }
}

/// The key of the `key = value` line that holds byte `at` of `text`.
fn key_at(text: &str, at: usize) -> Option<&str> {
    let line_start = text[..at.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    Some(key.trim())
}

/// A value written as a string and parsed as the flag would be, so that the file and the
/// command line accept the same spellings.
fn parsed<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map(Some)
        .map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
}

fn parsed_list<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Where the JSON event stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSink {
    Stdout,
    File(PathBuf),
    Off,
}

impl FromStr for EventSink {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(match value {
            "stdout" | "-" => EventSink::Stdout,
            "off" | "none" => EventSink::Off,
            path => EventSink::File(PathBuf::from(path)),
        })
    }
}

/// What a non-regular file is, if it is one: a FIFO blocks the daemon until someone reads it,
/// and a device such as /dev/full fails every write.
pub fn unusable_event_file(file_type: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_file() {
        None
    } else if file_type.is_fifo() {
        Some("a FIFO")
    } else if file_type.is_char_device() || file_type.is_block_device() {
        Some("a device")
    } else if file_type.is_socket() {
        Some("a socket")
    } else {
        Some("a directory or another special file")
    }
}

/// Settings that cannot be used; the message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/tcpwhy/tcpwhy.toml";

    fn from_file(text: &str) -> Result<Settings, SettingsError> {
        Settings::parse(text, Path::new(FILE))
    }

    #[test]
    fn flags_over_file_over_defaults() {
        let file =
            from_file("listen = \"0.0.0.0:9100\"\nevents = \"/var/log/tcpwhy.jsonl\"\n").unwrap();
        assert_eq!(file.listen().port(), 9100);
        assert_eq!(
            file.events(),
            EventSink::File("/var/log/tcpwhy.jsonl".into())
        );
        let flags = Settings {
            events: Some(EventSink::Off),
            ..Settings::default()
        };
        let settings = flags.over(file);
        assert_eq!(settings.events(), EventSink::Off);
        assert_eq!(settings.listen().port(), 9100, "not overridden");
        assert_eq!(settings.events_per_second(), 100, "the default");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file_and_key() {
        let err = from_file("listen_addr = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(FILE) && err.contains("listen_addr"), "{err}");
        let err = from_file("listen = \"nowhere\"\n").unwrap_err().to_string();
        assert!(
            err.contains("key `listen`") && err.contains("nowhere"),
            "{err}"
        );
        let err = from_file("probe_methods = [\"uprobe\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `probe_methods`"), "{err}");
        let err = from_file("events_per_second = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("events_per_second"), "{err}");
    }
}
