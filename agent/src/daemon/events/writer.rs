//! The event stream's writer thread: writes queued lines in batches, counts the lines it could
//! not write (saying so once per failure streak, with the file's name), and reopens its file on
//! request so that log rotation works.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{Receiver, RecvTimeoutError, Sender},
    },
    time::Duration,
};

use crate::settings::unusable_event_file;

/// One write per this many bytes at most, whatever the queue holds.
const BATCH_BYTES: usize = 64 * 1024;
/// How soon a reopen request is seen when no line comes.
const IDLE_WAKE: Duration = Duration::from_millis(200);

pub enum Sink {
    Stdout,
    File { path: PathBuf, file: File },
}

impl Sink {
    fn name(&self) -> String {
        match self {
            Sink::Stdout => "stdout".to_string(),
            Sink::File { path, .. } => path.display().to_string(),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(bytes)?;
                stdout.flush()
            }
            Sink::File { file, .. } => file.write_all(bytes),
        }
    }
}

/// Opens the event file for appending. Only a regular file will do ([`unusable_event_file`]);
/// the settings checked the path, this checks what was opened, so that a FIFO swapped in since
/// fails (non-blocking) instead of hanging.
pub fn open_file(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("key `events`: cannot open {}: {e}", path.display()))?;
    let opened = file
        .metadata()
        .map_err(|e| format!("key `events`: {}: {e}", path.display()))?;
    match unusable_event_file(opened.file_type()) {
        Some(kind) => Err(format!(
            "key `events`: {} is {kind}, not a regular file",
            path.display()
        )),
        None => Ok(file),
    }
}

/// A request, from the SIGHUP handler, to reopen the event file.
#[derive(Clone, Default)]
pub struct Reopen(Arc<AtomicBool>);

impl Reopen {
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

pub struct Writer {
    sink: Sink,
    failures: Arc<AtomicU64>,
    reopen: Reopen,
    failing: bool,
}

impl Writer {
    pub fn new(sink: Sink, failures: Arc<AtomicU64>, reopen: Reopen) -> Self {
        Self {
            sink,
            failures,
            reopen,
            failing: false,
        }
    }

    /// Writes until every sender is gone, then says so on `done`.
    pub fn spawn(mut self, lines: Receiver<String>, done: Sender<()>) {
        std::thread::Builder::new()
            .name("tcpwhy-events".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(BATCH_BYTES);
                loop {
                    let first = match lines.recv_timeout(IDLE_WAKE) {
                        Ok(line) => line,
                        Err(RecvTimeoutError::Timeout) => {
                            self.reopen_if_asked();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    let mut count = 0;
                    for line in std::iter::once(first).chain(lines.try_iter()) {
                        batch.extend_from_slice(line.as_bytes());
                        batch.push(b'\n');
                        count += 1;
                        if batch.len() >= BATCH_BYTES {
                            break;
                        }
                    }
                    self.reopen_if_asked();
                    self.write(&batch, count);
                    batch.clear();
                }
                let _ = done.send(());
            })
            .expect("spawning the event writer thread");
    }

    fn write(&mut self, batch: &[u8], lines: u64) {
        match self.sink.write_all(batch) {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(events = %self.sink.name(), "writing events again");
            }
            Ok(()) => {}
            Err(err) => {
                self.failures.fetch_add(lines, Ordering::Relaxed);
                if !self.failing {
                    self.failing = true;
                    tracing::error!(
                        events = %self.sink.name(),
                        %err,
                        "cannot write the event stream; events are dropped (counted in \
                         tcpwhy_events_dropped_total) until writes succeed again"
                    );
                }
            }
        }
    }

    fn reopen_if_asked(&mut self) {
        if !self.reopen.take() {
            return;
        }
        match &mut self.sink {
            Sink::Stdout => tracing::info!("SIGHUP: events go to stdout, nothing to reopen"),
            Sink::File { path, file } => match open_file(path) {
                Ok(reopened) => {
                    *file = reopened;
                    self.failing = false;
                    tracing::info!(events = %path.display(), "SIGHUP: event file reopened");
                }
                Err(err) => {
                    tracing::error!("SIGHUP: {err}; still writing to the file open before")
                }
            },
        }
    }
}
