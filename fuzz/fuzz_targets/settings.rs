//! The daemon's TOML config file: a file that parses renders back to TOML that parses to the same
//! settings, and a file that does not is rejected with an error naming the file.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tcpwhy::parsers::{EventSink, Settings};

const FILE: &str = "/etc/tcpwhy/tcpwhy.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Settings::parse(text, Path::new(FILE)) {
        Ok(settings) => {
            let rendered = render(&settings);
            let again = Settings::parse(&rendered, Path::new(FILE))
                .unwrap_or_else(|err| panic!("re-reading {rendered:?}: {err}"));
            assert_eq!(again, settings, "{rendered}");
        }
        Err(err) => assert!(err.to_string().starts_with(FILE), "{err}"),
    }
});

/// The settings as a config file would spell them.
fn render(settings: &Settings) -> String {
    let mut table = toml::Table::new();
    let mut set = |key: &str, value: toml::Value| {
        table.insert(key.to_string(), value);
    };
    if let Some(listen) = settings.listen {
        set("listen", listen.to_string().into());
    }
    if let Some(events) = &settings.events {
        let events = match events {
            EventSink::Stdout => "stdout".to_string(),
            EventSink::Off => "off".to_string(),
            EventSink::File(path) => path.to_str().expect("parsed from UTF-8").to_string(),
        };
        set("events", events.into());
    }
    if let Some(rate) = settings.events_per_second {
        set("events_per_second", i64::from(rate).into());
    }
    if let Some(limit) = settings.listener_label_limit {
        let limit = i64::try_from(limit).expect("TOML integers are i64");
        set("listener_label_limit", limit.into());
    }
    if let Some(methods) = &settings.probe_methods {
        let names: Vec<toml::Value> = methods.iter().map(|m| m.to_string().into()).collect();
        set("probe_methods", names.into());
    }
    if let Some(bytes) = settings.ring_buffer_bytes {
        set("ring_buffer_bytes", i64::from(bytes).into());
    }
    if let Some(on) = settings.bpf_stats {
        set("bpf_stats", on.into());
    }
    toml::to_string(&table).expect("a table of plain values renders")
}
