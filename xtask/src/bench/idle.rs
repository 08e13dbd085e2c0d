//! What the daemon costs with nothing happening: CPU with no traffic, and with many network
//! namespaces holding one listener each (every namespace is watched), and its resident memory.

use std::{
    fs::File,
    net::TcpListener,
    os::fd::AsRawFd,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::daemon::{Daemon, metric_sum};

/// Long enough for the 10 ms clock ticks the kernel counts CPU time in to resolve 0.1 %.
const MEASURED_FOR: Duration = Duration::from_secs(20);
pub const NAMESPACES: usize = 50;
/// The daemon looks for new namespaces every second; this leaves it time to watch them all.
const SETTLE: Duration = Duration::from_secs(3);

pub struct Idle {
    pub quiet: CpuShare,
    pub with_namespaces: CpuShare,
    /// Bytes: resident after the quiet period, and at the peak so far.
    pub rss_steady: u64,
    pub rss_peak: u64,
}

/// TIME_WAIT sockets left by earlier traffic (a bench run just before leaves tens of thousands
/// for a minute) make every socket dump the daemon takes longer: idle is measured without them.
const TIME_WAIT_ENDS_WITHIN: Duration = Duration::from_secs(65);

pub fn measure() -> Result<Idle> {
    wait_for_time_wait_to_end()?;
    let daemon = Daemon::start(None)?;
    std::thread::sleep(SETTLE);
    let quiet = cpu_share(&daemon)?;
    let (rss_steady, _) = daemon.memory()?;
    let namespaces = BenchNamespaces::create(NAMESPACES)?;
    std::thread::sleep(SETTLE);
    let with_namespaces = cpu_share(&daemon)?;
    drop(namespaces);
    let (_, rss_peak) = daemon.memory()?;
    Ok(Idle {
        quiet,
        with_namespaces,
        rss_steady,
        rss_peak,
    })
}

/// Waits, saying so, until the host's TIME_WAIT sockets are down to a few (`/proc/net/sockstat`'s
/// `tw`), or their 60 s have passed.
fn wait_for_time_wait_to_end() -> Result<()> {
    const FEW: u64 = 100;
    let time_wait = || -> Result<u64> {
        let sockstat = std::fs::read_to_string("/proc/net/sockstat")?;
        let tcp = sockstat
            .lines()
            .find(|l| l.starts_with("TCP:"))
            .unwrap_or("");
        // `TCP: inuse N orphan N tw N ...`: names and values in pairs after the label.
        let mut words = tcp.split_whitespace().skip(1);
        Ok(std::iter::from_fn(|| Some((words.next()?, words.next()?)))
            .find(|(name, _)| *name == "tw")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0))
    };
    let deadline = Instant::now() + TIME_WAIT_ENDS_WITHIN;
    let left = time_wait()?;
    if left > FEW {
        eprintln!(
            "xtask: bench: waiting for {left} TIME_WAIT sockets from earlier traffic to end (at most 60 s)"
        );
        while time_wait()? > FEW && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    Ok(())
}

pub struct CpuShare {
    /// Percent of one core.
    pub percent: f64,
    /// TCP state changes the daemon counted on the host meanwhile: the machine is shared, and
    /// others' traffic makes the daemon work (the bench's own scrapes make a few dozen).
    pub host_state_changes: f64,
}

/// The daemon's CPU over [`MEASURED_FOR`].
fn cpu_share(daemon: &Daemon) -> Result<CpuShare> {
    let changes = || -> Result<f64> {
        Ok(metric_sum(
            &daemon.scrape()?,
            "tcpwhy_state_transitions_total",
        ))
    };
    let changes_before = changes()?;
    let (cpu_before, started) = (daemon.cpu()?, Instant::now());
    std::thread::sleep(MEASURED_FOR);
    let used = daemon.cpu()? - cpu_before;
    let percent = used.as_secs_f64() * 100.0 / started.elapsed().as_secs_f64();
    Ok(CpuShare {
        percent,
        host_state_changes: changes()? - changes_before,
    })
}

/// Network namespaces made with `ip netns`, each with a listener this process holds; deleted on
/// drop.
struct BenchNamespaces {
    names: Vec<String>,
    _listeners: Vec<TcpListener>,
}

impl BenchNamespaces {
    fn create(count: usize) -> Result<BenchNamespaces> {
        let mut namespaces = BenchNamespaces {
            names: Vec::new(),
            _listeners: Vec::new(),
        };
        for i in 0..count {
            let name = format!("tcpwhy-bench-{}-{i}", std::process::id());
            ip_netns(&["add", &name])?;
            namespaces.names.push(name.clone());
            namespaces._listeners.push(listen_in(&name)?);
        }
        Ok(namespaces)
    }
}

impl Drop for BenchNamespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip_netns(&["delete", name]);
        }
    }
}

fn ip_netns(args: &[&str]) -> Result<()> {
    let status = Command::new("ip")
        .arg("netns")
        .args(args)
        .status()
        .context("running ip netns")?;
    if !status.success() {
        bail!("ip netns {} failed", args.join(" "));
    }
    Ok(())
}

/// A listener created from a thread inside the namespace, so that it belongs there.
fn listen_in(name: &str) -> Result<TcpListener> {
    let namespace = File::open(format!("/run/netns/{name}"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: setns on a valid namespace descriptor changes only this thread.
                if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    bail!("entering {name}: {}", std::io::Error::last_os_error());
                }
                Ok(TcpListener::bind("0.0.0.0:8080")?)
            })
            .join()
            .unwrap_or_else(|_| bail!("listening in {name}: the thread panicked"))
    })
}
