//! bpftrace counting the same three tracepoints in kernel maps: the floor a user gets for free,
//! which tcpwhy's cost is held against. The kernel times its programs as it times tcpwhy's.

use std::{
    io::BufReader,
    os::fd::{FromRawFd, OwnedFd},
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Costs, ProgramCost};

/// State changes by (old, new), retransmits, and resets sent by reason.
const SCRIPT: &str = "\
tracepoint:sock:inet_sock_set_state { @transitions[args->oldstate, args->newstate] = count(); }
tracepoint:tcp:tcp_retransmit_skb { @retransmits = count(); }
tracepoint:tcp:tcp_send_reset { @resets[args->reason] = count(); }
";
const PROBES: usize = 3;

pub struct Bpftrace {
    child: Child,
    /// Held so that bpftrace never blocks writing; read to the end when it exits.
    output: BufReader<ChildStdout>,
    /// The kernel times every program while this is open.
    _run_time_stats: OwnedFd,
}

impl Bpftrace {
    /// Starts bpftrace and waits until its programs are attached.
    pub fn start() -> Result<Bpftrace> {
        let run_time_stats = enable_run_time_stats()?;
        let mut child = Command::new("bpftrace")
            .args(["-e", SCRIPT])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting bpftrace (Debian package bpftrace)")?;
        let output = BufReader::new(child.stdout.take().context("bpftrace's stdout")?);
        let bpftrace = Bpftrace {
            child,
            output,
            _run_time_stats: run_time_stats,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while bpftrace.attached()?.len() < PROBES {
            if Instant::now() > deadline {
                bail!("bpftrace did not attach its {PROBES} probes");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(bpftrace)
    }

    /// (program id, tracepoint) of bpftrace's attached programs.
    fn attached(&self) -> Result<Vec<(u64, String)>> {
        let pid = u64::from(self.child.id());
        Ok(bpftool(&["perf", "show"])?
            .as_array()
            .context("bpftool perf show: not a list")?
            .iter()
            .filter(|link| link["pid"].as_u64() == Some(pid))
            .filter_map(|link| {
                Some((
                    link["prog_id"].as_u64()?,
                    link["tracepoint"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    /// The kernel's time per program, by tracepoint.
    pub fn costs(&self) -> Result<Costs> {
        let mut costs = Costs::new();
        for (id, tracepoint) in self.attached()? {
            let program = bpftool(&["prog", "show", "id", &id.to_string()])?;
            costs.insert(
                tracepoint,
                ProgramCost {
                    runs: program["run_cnt"].as_f64().unwrap_or(0.0),
                    seconds: program["run_time_ns"].as_f64().unwrap_or(0.0) / 1e9,
                },
            );
        }
        Ok(costs)
    }
}

impl Drop for Bpftrace {
    fn drop(&mut self) {
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        // On exit bpftrace prints its maps: drain them so that it can finish.
        let _ = std::io::copy(&mut self.output, &mut std::io::sink());
        let _ = self.child.wait();
    }
}

fn bpftool(args: &[&str]) -> Result<Value> {
    let output = Command::new("bpftool")
        .arg("--json")
        .args(args)
        .output()
        .context("running bpftool (Debian package bpftool)")?;
    if !output.status.success() {
        bail!(
            "bpftool {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// `BPF_ENABLE_STATS` with `BPF_STATS_RUN_TIME`: on until the returned descriptor is closed.
fn enable_run_time_stats() -> Result<OwnedFd> {
    const BPF_ENABLE_STATS: libc::c_long = 32;
    const BPF_STATS_RUN_TIME: u32 = 0;
    let attr = BPF_STATS_RUN_TIME;
    // SAFETY: `attr` is a valid `bpf_attr.enable_stats` of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_ENABLE_STATS,
            &attr as *const u32,
            size_of::<u32>() as u32,
        )
    };
    if fd < 0 {
        bail!(
            "enabling BPF run-time statistics: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: a descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
