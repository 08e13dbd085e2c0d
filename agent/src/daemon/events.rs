//! The JSON event stream: one object per line, the fields of a `diagnose` finding plus a
//! timestamp. A burst is cut by a token bucket; what it cut is counted and reported in its own
//! line once a second (and in `tcpwhy_events_suppressed_total`), never dropped silently.
//!
//! Lines are written by a thread of their own behind a bounded queue, so that a stalled reader
//! (a full pipe, journald under pressure) or a failing disk never holds up the engine or the
//! metrics: a line that finds the queue full, or that cannot be written, is dropped and counted.

mod writer;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, SyncSender, TrySendError},
    },
    time::{Instant, SystemTime},
};

use serde::Serialize;
use serde_json::json;

pub use self::writer::{Reopen, open_file};
use self::writer::{Sink, Writer};
use crate::{model::Finding, settings::EventSink};

/// Lines waiting for the writer; beyond this they are dropped. Seconds of output at the default
/// rate, a fraction of a second of a burst.
const QUEUE_LINES: usize = 1024;

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
    queue: SyncSender<String>,
    bucket: TokenBucket,
    /// "kind/cause" → events cut since the last report.
    suppressed: BTreeMap<String, u64>,
    /// Lines the writer could not write, not yet taken by [`EventStream::take_write_failures`].
    write_failures: Arc<AtomicU64>,
    reopen: Reopen,
    /// Closed by the writer when it has written everything and exited.
    finished: mpsc::Receiver<()>,
}

/// What became of an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Emitted {
    /// Handed to the writer.
    Queued,
    /// Cut by the rate limit.
    Suppressed,
    /// The writer is behind (its queue is full).
    Dropped,
}

impl EventStream {
    /// Opens the sink (a file must be a regular file: a FIFO would block, a device fail) and
    /// starts its writer.
    pub fn open(sink: &EventSink, per_second: u32) -> Result<Option<Self>, String> {
        let sink = match sink {
            EventSink::Off => return Ok(None),
            EventSink::Stdout => Sink::Stdout,
            EventSink::File(path) => Sink::File {
                file: open_file(path)?,
                path: path.clone(),
            },
        };
        Ok(Some(Self::start(sink, per_second, Instant::now())))
    }

    fn start(sink: Sink, per_second: u32, now: Instant) -> Self {
        let (queue, lines) = mpsc::sync_channel(QUEUE_LINES);
        let (done, finished) = mpsc::channel();
        let write_failures = Arc::new(AtomicU64::new(0));
        let reopen = Reopen::default();
        Writer::new(sink, write_failures.clone(), reopen.clone()).spawn(lines, done);
        Self {
            queue,
            bucket: TokenBucket::new(per_second, now),
            suppressed: BTreeMap::new(),
            write_failures,
            reopen,
            finished,
        }
    }

    /// Asks the writer to reopen its file (after log rotation moved it away).
    pub fn reopen(&self) -> Reopen {
        self.reopen.clone()
    }

    pub fn emit(&mut self, now: Instant, finding: &Finding) -> Emitted {
        if !self.bucket.take(now) {
            let key = format!("{}/{}", finding.kind.as_str(), finding.cause.id());
            *self.suppressed.entry(key).or_insert(0) += 1;
            return Emitted::Suppressed;
        }
        let line = EventLine {
            timestamp: timestamp(),
            finding,
        };
        self.send(serde_json::to_string(&line).expect("a finding serializes"))
    }

    /// Queues one line saying what the rate limit cut since the last call, if anything.
    pub fn report_suppressed(&mut self) -> Option<Emitted> {
        if self.suppressed.is_empty() {
            return None;
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
        Some(self.send(line.to_string()))
    }

    /// Lines the writer failed to write since the last call.
    pub fn take_write_failures(&self) -> u64 {
        self.write_failures.swap(0, Ordering::Relaxed)
    }

    fn send(&self, line: String) -> Emitted {
        match self.queue.try_send(line) {
            Ok(()) => Emitted::Queued,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Emitted::Dropped,
        }
    }

    /// Lets the writer finish what is queued, waiting at most `patience` (a stalled reader must
    /// not hold up the exit).
    pub fn close(self, patience: std::time::Duration) {
        let Self {
            queue, finished, ..
        } = self;
        drop(queue);
        let _ = finished.recv_timeout(patience);
    }
}

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::{
        fs::File,
        path::{Path, PathBuf},
    };

    use serde_json::{Map, Value};

    use super::*;
    use crate::model::{Cause, Kind};

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

    fn temporary(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tcpwhy-unit-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_burst_is_cut_counted_and_reported() {
        let path = temporary("burst.jsonl");
        let _ = std::fs::remove_file(&path);
        let sink = Sink::File {
            file: open_file(&path).unwrap(),
            path: path.clone(),
        };
        let start = Instant::now();
        let mut stream = EventStream::start(sink, 3, start);
        let results: Vec<Emitted> = (0..5).map(|_| stream.emit(start, &finding())).collect();
        assert_eq!(results.iter().filter(|r| **r == Emitted::Queued).count(), 3);
        assert_eq!(stream.report_suppressed(), Some(Emitted::Queued));
        // A second later the bucket has refilled.
        assert_eq!(
            stream.emit(start + Duration::from_secs(1), &finding()),
            Emitted::Queued
        );
        stream.close(Duration::from_secs(5));

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
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

    #[test]
    fn lines_that_cannot_be_written_are_counted() {
        let full = File::options().append(true).open("/dev/full").unwrap();
        let sink = Sink::File {
            file: full,
            path: "/dev/full".into(),
        };
        let start = Instant::now();
        let mut stream = EventStream::start(sink, 10, start);
        for _ in 0..4 {
            assert_eq!(stream.emit(start, &finding()), Emitted::Queued);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut failed = 0;
        while failed < 4 && Instant::now() < deadline {
            failed += stream.take_write_failures();
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(failed, 4);
    }

    #[test]
    fn a_fifo_fails_to_open_at_once_and_a_device_is_refused() {
        let fifo = temporary("fifo");
        let _ = std::fs::remove_file(&fifo);
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Nobody reads it: a blocking open would hang here.
        let err = open_file(&fifo).unwrap_err();
        std::fs::remove_file(&fifo).unwrap();
        assert!(err.contains("key `events`"), "{err}");
        let err = open_file(Path::new("/dev/full")).unwrap_err();
        assert!(err.contains("/dev/full is a device"), "{err}");
    }
}
