//! The JSON event stream: one object per line, the fields of a `diagnose` finding plus a
//! timestamp. A burst is cut by a token bucket; what it cut is counted and reported in its own
//! line once a second (and in `tcpwhy_events_suppressed_total`), never dropped silently.

use std::{
    collections::BTreeMap,
    fs::OpenOptions,
    io::{self, Write},
    time::{Instant, SystemTime},
};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;

use crate::{model::Finding, settings::EventSink};

#[derive(Serialize)]
struct EventLine<'a> {
    timestamp: String,
    #[serde(flatten)]
    finding: &'a Finding,
}

struct TokenBucket {
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// Allows `per_second` events a second on average and a burst of as many.
    fn new(per_second: u32, now: Instant) -> Self {
        Self {
            rate: f64::from(per_second),
            tokens: f64::from(per_second),
            refilled: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct EventStream {
    out: Box<dyn Write + Send>,
    bucket: TokenBucket,
    /// "kind/cause" → events cut since the last report.
    suppressed: BTreeMap<String, u64>,
}

/// Whether an event was written or cut by the rate limit.
#[derive(Debug, PartialEq, Eq)]
pub enum Emitted {
    Written,
    Suppressed,
}

impl EventStream {
    pub fn open(sink: &EventSink, per_second: u32) -> Result<Option<Self>> {
        let out: Box<dyn Write + Send> = match sink {
            EventSink::Off => return Ok(None),
            EventSink::Stdout => Box::new(io::stdout()),
            EventSink::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening the event file {}", path.display()))?,
            ),
        };
        Ok(Some(Self::to_writer(out, per_second, Instant::now())))
    }

    fn to_writer(out: Box<dyn Write + Send>, per_second: u32, now: Instant) -> Self {
        Self {
            out,
            bucket: TokenBucket::new(per_second, now),
            suppressed: BTreeMap::new(),
        }
    }

    pub fn emit(&mut self, now: Instant, finding: &Finding) -> Result<Emitted> {
        if !self.bucket.take(now) {
            let key = format!("{}/{}", finding.kind.as_str(), finding.cause.id());
            *self.suppressed.entry(key).or_insert(0) += 1;
            return Ok(Emitted::Suppressed);
        }
        let line = EventLine {
            timestamp: timestamp(),
            finding,
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(Emitted::Written)
    }

    /// Writes one line saying what the rate limit cut since the last call, if anything.
    pub fn report_suppressed(&mut self) -> Result<()> {
        if self.suppressed.is_empty() {
            return Ok(());
        }
        let total: u64 = self.suppressed.values().sum();
        let line = json!({
            "timestamp": timestamp(),
            "kind": "suppressed",
            "count": total,
            "suppressed": std::mem::take(&mut self.suppressed),
            "explanation": format!(
                "{total} events exceeded the event stream's rate limit and were not written; \
                 the metrics still count them"
            ),
        });
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
}

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use serde_json::{Map, Value};

    use super::*;
    use crate::model::{Cause, Kind};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn finding() -> Finding {
        Finding {
            kind: Kind::RstSent,
            cause: Cause::NoListener,
            count: 1,
            local: Some("127.0.0.1:80".into()),
            remote: Some("127.0.0.1:5000".into()),
            process: None,
            kernel_reason: Some("NO_SOCKET".into()),
            first_seen: None,
            last_seen: None,
            peers: Vec::new(),
            explanation: "x".into(),
            advice: vec![],
            evidence: Map::new(),
            related: Vec::new(),
        }
    }

    #[test]
    fn a_burst_is_cut_counted_and_reported() {
        let buffer = Shared::default();
        let start = Instant::now();
        let mut stream = EventStream::to_writer(Box::new(buffer.clone()), 3, start);
        let results: Vec<Emitted> = (0..5)
            .map(|_| stream.emit(start, &finding()).unwrap())
            .collect();
        assert_eq!(
            results.iter().filter(|r| **r == Emitted::Written).count(),
            3
        );
        stream.report_suppressed().unwrap();
        // A second later the bucket has refilled.
        assert_eq!(
            stream
                .emit(start + Duration::from_secs(1), &finding())
                .unwrap(),
            Emitted::Written
        );

        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5, "3 events, 1 suppression report, 1 event");
        assert_eq!(lines[0]["cause"], "no_listener");
        assert_eq!(lines[0]["local"], "127.0.0.1:80");
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[3]["kind"], "suppressed");
        assert_eq!(lines[3]["suppressed"]["rst_sent/no_listener"], 2);
    }
}
