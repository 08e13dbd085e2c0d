//! Network namespaces the soak creates, work done inside them, and their own TCP counters.

use std::{
    collections::HashMap,
    fs::File,
    os::fd::AsRawFd,
    process::Command,
    thread::{self, JoinHandle},
};

use anyhow::{Context, Result, bail};

use crate::run::output;

/// A named network namespace (`ip netns add`), deleted when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates the namespace with its loopback up.
    pub fn create(name: String) -> Result<Netns> {
        output(Command::new("ip").args(["netns", "add", &name]))?;
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// The namespace's inode number, as the daemon's `namespace` label shows it.
    pub fn inode(&self) -> Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(std::fs::metadata(format!("/run/netns/{}", self.name))?.ino())
    }

    /// `ip -n NAME ...`
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        output(Command::new("ip").args(["-n", &self.name]).args(args))?;
        Ok(())
    }

    /// An nftables command run inside the namespace.
    pub fn nft(&self, script: &str) -> Result<()> {
        output(Command::new("ip").args(["netns", "exec", &self.name, "nft", script]))?;
        Ok(())
    }

    /// Runs `work` on a thread of its own that has entered the namespace: its sockets, /proc/sys
    /// and /proc/thread-self/net are the namespace's.
    pub fn spawn<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<JoinHandle<Result<T>>> {
        let handle = File::open(format!("/run/netns/{}", self.name))
            .with_context(|| format!("opening namespace {}", self.name))?;
        let name = self.name.clone();
        Ok(thread::spawn(move || {
            // SAFETY: setns on a descriptor we own; it changes only this thread's namespace.
            if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!(
                    "entering namespace {name}: {}",
                    std::io::Error::last_os_error()
                );
            }
            work()
        }))
    }

    /// Runs `work` inside the namespace and waits for it.
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        join(self.spawn(work)?)
    }

    /// The namespace's TCP counters now.
    pub fn counters(&self) -> Result<TcpCounters> {
        self.run(TcpCounters::of_this_thread)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(err) = output(Command::new("ip").args(["netns", "delete", &self.name])) {
            eprintln!("xtask: soak: {err:#}");
        }
    }
}

pub fn join<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("a soak thread panicked"))?
}

/// The counters the daemon's metrics are compared with (`nstat` names).
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpCounters {
    /// TcpOutRsts: resets sent.
    pub out_rsts: u64,
    /// TcpExtListenOverflows + TcpExtTCPReqQFullDrop + TcpExtTCPReqQFullDoCookies: handshakes
    /// dropped at a full accept or SYN queue.
    pub queue_drops: u64,
}

impl TcpCounters {
    /// The counters of the namespace the calling thread is in.
    pub fn of_this_thread() -> Result<TcpCounters> {
        let snmp = counters_in("/proc/thread-self/net/snmp")?;
        let netstat = counters_in("/proc/thread-self/net/netstat")?;
        let get = |table: &HashMap<String, u64>, name: &str| table.get(name).copied().unwrap_or(0);
        Ok(TcpCounters {
            out_rsts: get(&snmp, "TcpOutRsts"),
            queue_drops: get(&netstat, "TcpExtListenOverflows")
                + get(&netstat, "TcpExtTCPReqQFullDrop")
                + get(&netstat, "TcpExtTCPReqQFullDoCookies"),
        })
    }

    /// What grew since `earlier`.
    pub fn since(self, earlier: TcpCounters) -> TcpCounters {
        TcpCounters {
            out_rsts: self.out_rsts - earlier.out_rsts,
            queue_drops: self.queue_drops - earlier.queue_drops,
        }
    }

    pub fn add(&mut self, other: TcpCounters) {
        self.out_rsts += other.out_rsts;
        self.queue_drops += other.queue_drops;
    }
}

/// `Prefix: names...` / `Prefix: values...` line pairs, as `PrefixName -> value`.
fn counters_in(path: &str) -> Result<HashMap<String, u64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut counters = HashMap::new();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((prefix, names)), Some((_, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(value) = value.parse() {
                counters.insert(format!("{prefix}{name}"), value);
            }
        }
    }
    Ok(counters)
}
