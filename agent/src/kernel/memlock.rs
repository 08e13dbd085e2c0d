//! Linux before 5.11 charges the memory of BPF maps and programs to the loading user's
//! RLIMIT_MEMLOCK instead of its memory cgroup. Common limits (64 KiB by default, 8 MiB under
//! newer systemd) are too small for tcpwhy's ring buffers, so the limit is raised where the
//! kernel charges it; later kernels do not, and may refuse the raise (EPERM), which is harmless.

use std::io;

use anyhow::{Context, Result};

use super::release::release;

/// The first release that charges BPF memory to memory cgroups instead.
const MEMCG_CHARGED_SINCE: (u32, u32) = (5, 11);

/// Runs `load` with RLIMIT_MEMLOCK raised as far as this process may, on kernels that charge
/// BPF memory to it. When the limit stays finite, a warning says so (programs loaded later may
/// not fit), and a failed load names the limit as its likely cause.
pub fn with_raised_limit<T>(
    warnings: &mut Vec<String>,
    load: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let release = release();
    if !charges_memlock(&release) {
        return load();
    }
    let Err(refused) = raise() else {
        tracing::debug!(
            "RLIMIT_MEMLOCK raised to unlimited: Linux {release} charges BPF memory to it"
        );
        return load();
    };
    let limited = format!(
        "Linux {release} charges BPF maps and programs to RLIMIT_MEMLOCK (kernels before 5.11 \
         do), and tcpwhy could not raise its limit of {} ({refused}; raising it needs \
         CAP_SYS_RESOURCE, or LimitMEMLOCK=infinity in a systemd unit)",
        human_bytes(current().rlim_cur)
    );
    warnings.push(format!(
        "{limited}: probes whose programs do not fit are refused (EPERM)"
    ));
    load().with_context(|| format!("{limited}; the maps may not fit within it"))
}

/// Whether a release string names a kernel older than [`MEMCG_CHARGED_SINCE`]. An unreadable
/// release is taken to be newer: raising the limit there would only fail.
fn charges_memlock(release: &str) -> bool {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>());
    match (numbers.next(), numbers.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => (major, minor) < MEMCG_CHARGED_SINCE,
        _ => false,
    }
}

fn current() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    limit
}

fn set(limit: libc::rlimit) -> io::Result<()> {
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Unlimited if the process may raise its hard limit; otherwise the soft limit up to the hard
/// one, and the reason the hard limit stays.
fn raise() -> Result<(), io::Error> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    let Err(refused) = set(unlimited) else {
        return Ok(());
    };
    let limit = current();
    if limit.rlim_cur < limit.rlim_max {
        let _ = set(libc::rlimit {
            rlim_cur: limit.rlim_max,
            ..limit
        });
    }
    Err(refused)
}

fn human_bytes(bytes: libc::rlim_t) -> String {
    match bytes {
        libc::RLIM_INFINITY => "unlimited".to_string(),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_before_5_11_charge_memlock() {
        assert!(charges_memlock("5.10.0-43-cloud-amd64"));
        assert!(charges_memlock("4.19.0-27-amd64"));
        assert!(!charges_memlock("5.11.0"));
        assert!(!charges_memlock("6.1.0-56-cloud-amd64"));
        assert!(!charges_memlock("6.18.44-fc-v669"));
        assert!(!charges_memlock("unknown"));
    }

    #[test]
    fn limits_are_shown_in_their_unit() {
        assert_eq!(human_bytes(64 << 10), "64 KiB");
        assert_eq!(human_bytes(8 << 20), "8 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(human_bytes(libc::RLIM_INFINITY), "unlimited");
    }
}
