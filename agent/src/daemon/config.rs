//! The daemon's settings: a TOML file, each setting overridable by a flag or an environment
//! variable (flag and environment win over the file, the file over the defaults).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use tcpwhy_common::maps::EVENTS_RING_BYTES;

use crate::probes::method::Method;

/// Where the JSON event stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSink {
    Stdout,
    File(PathBuf),
    Off,
}

impl EventSink {
    pub fn parse(value: &str) -> EventSink {
        match value {
            "stdout" | "-" => EventSink::Stdout,
            "off" | "none" => EventSink::Off,
            path => EventSink::File(PathBuf::from(path)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub events: EventSink,
    pub events_per_second: u32,
    pub listener_label_limit: usize,
    pub probe_methods: Vec<Method>,
    /// Size of the kernel→user event ring buffer: a power of two, at least one page.
    pub ring_buffer_bytes: u32,
    /// Have the kernel measure run time and count of every BPF program while the daemon runs
    /// (costs some nanoseconds per program run, system-wide; off by default).
    pub bpf_stats: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9977)),
            events: EventSink::Stdout,
            events_per_second: 100,
            listener_label_limit: 20,
            probe_methods: Method::DEFAULT_ORDER.to_vec(),
            ring_buffer_bytes: EVENTS_RING_BYTES,
            bpf_stats: false,
        }
    }
}

/// The file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    events: Option<String>,
    events_per_second: Option<u32>,
    listener_label_limit: Option<usize>,
    probe_methods: Option<Vec<String>>,
    ring_buffer_bytes: Option<u32>,
    bpf_stats: Option<bool>,
}

/// Settings given on the command line or in the environment (already merged by clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub events: Option<String>,
    pub events_per_second: Option<u32>,
    pub listener_label_limit: Option<usize>,
    pub probe_methods: Option<Vec<Method>>,
    pub ring_buffer_bytes: Option<u32>,
    pub bpf_stats: Option<bool>,
}

/// A configuration that cannot be used; the message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            config.apply_file(&text, path)?;
        }
        config.apply(overrides);
        // Values are checked after merging; name where they may have come from.
        let origin = file
            .map(|f| format!("{} (or its flag / environment variable)", f.display()))
            .unwrap_or_else(|| "the command line or environment".to_string());
        let bytes = config.ring_buffer_bytes;
        if !bytes.is_power_of_two() || bytes < 4096 {
            return Err(ConfigError(format!(
                "{origin}: key `ring_buffer_bytes` must be a power of two of at least 4096, not {bytes}"
            )));
        }
        if config.events_per_second == 0 {
            return Err(ConfigError(format!(
                "{origin}: key `events_per_second` must be at least 1 (use events = \"off\" to disable the stream)"
            )));
        }
        Ok(config)
    }

    fn apply_file(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            ConfigError(format!("{}: {}", path.display(), e.to_string().trim_end()))
        })?;
        let bad =
            |key: &str, why: String| ConfigError(format!("{}: key `{key}`: {why}", path.display()));
        if let Some(listen) = file.listen {
            self.listen = listen
                .parse()
                .map_err(|_| bad("listen", format!("{listen:?} is not an address:port")))?;
        }
        if let Some(events) = file.events {
            self.events = EventSink::parse(&events);
        }
        if let Some(rate) = file.events_per_second {
            self.events_per_second = rate;
        }
        if let Some(limit) = file.listener_label_limit {
            self.listener_label_limit = limit;
        }
        if let Some(stats) = file.bpf_stats {
            self.bpf_stats = stats;
        }
        if let Some(bytes) = file.ring_buffer_bytes {
            self.ring_buffer_bytes = bytes;
        }
        if let Some(methods) = file.probe_methods {
            self.probe_methods = methods
                .iter()
                .map(|m| m.parse().map_err(|e: String| bad("probe_methods", e)))
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    fn apply(&mut self, overrides: Overrides) {
        if let Some(listen) = overrides.listen {
            self.listen = listen;
        }
        if let Some(events) = overrides.events {
            self.events = EventSink::parse(&events);
        }
        if let Some(rate) = overrides.events_per_second {
            self.events_per_second = rate;
        }
        if let Some(limit) = overrides.listener_label_limit {
            self.listener_label_limit = limit;
        }
        if let Some(stats) = overrides.bpf_stats {
            self.bpf_stats = stats;
        }
        if let Some(bytes) = overrides.ring_buffer_bytes {
            self.ring_buffer_bytes = bytes;
        }
        if let Some(methods) = overrides.probe_methods {
            self.probe_methods = methods;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_file(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        config.apply_file(text, Path::new("/etc/tcpwhy/tcpwhy.toml"))?;
        Ok(config)
    }

    #[test]
    fn file_then_overrides() {
        let mut config =
            from_file("listen = \"0.0.0.0:9100\"\nevents = \"/var/log/tcpwhy.jsonl\"\n").unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(
            config.events,
            EventSink::File("/var/log/tcpwhy.jsonl".into())
        );
        config.apply(Overrides {
            events: Some("off".into()),
            ..Overrides::default()
        });
        assert_eq!(config.events, EventSink::Off);
        assert_eq!(config.listen.port(), 9100, "not overridden");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file_and_key() {
        let err = from_file("listen_addr = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/tcpwhy/tcpwhy.toml") && err.contains("listen_addr"),
            "{err}"
        );
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
