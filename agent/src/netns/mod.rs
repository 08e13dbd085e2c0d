//! Network namespaces on this host: finding them, and running code inside one.
//!
//! Containers put listeners in their own namespaces, with their own counters and sysctls. They
//! are found through processes' `/proc/<pid>/ns/net` links, so a namespace with no process in it
//! (kept alive only by a bind mount) is not seen.

pub mod netstat;

use std::{
    collections::BTreeMap,
    fs::{self, File},
    os::fd::AsRawFd,
    path::PathBuf,
};

use anyhow::{Context, Result, bail};

/// A network namespace, named by its inode number (what `ip netns identify`, `lsns` and the
/// kernel's `net->ns.inum` call it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub inode: u64,
    /// A process inside it, used to reach it through /proc.
    pub pid: u32,
}

impl Namespace {
    /// The namespace's own `/proc/<pid>/net` directory (netstat, sockstat...).
    pub fn proc_net(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/net", self.pid))
    }

    /// Runs `work` on a thread that has joined this namespace. Sockets created there (netlink
    /// included) and `/proc/sys/net` read there belong to the namespace.
    pub fn run_in<T: Send>(&self, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let handle = File::open(format!("/proc/{}/ns/net", self.pid)).with_context(|| {
            format!(
                "opening network namespace {} (pid {})",
                self.inode, self.pid
            )
        })?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns on a valid namespace fd affects only this thread.
                    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        bail!(
                            "cannot enter network namespace {}: {}",
                            self.inode,
                            std::io::Error::last_os_error()
                        );
                    }
                    work()
                })
                .join()
                .unwrap_or_else(|_| bail!("worker in namespace {} panicked", self.inode))
        })
    }
}

/// The inode of a process's network namespace.
pub fn namespace_of(pid: u32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Every network namespace that has a process, each with its lowest pid.
pub fn list() -> Vec<Namespace> {
    let mut found: BTreeMap<u64, u32> = BTreeMap::new();
    for pid in pids() {
        if let Some(inode) = namespace_of(pid) {
            found.entry(inode).or_insert(pid);
        }
    }
    found
        .into_iter()
        .map(|(inode, pid)| Namespace { inode, pid })
        .collect()
}

/// Pids of every process, in ascending order.
pub fn pids() -> Vec<u32> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_namespace_is_listed_and_enterable() {
        let ours = namespace_of(std::process::id()).unwrap();
        let all = list();
        let ns = all
            .iter()
            .find(|n| n.inode == ours)
            .expect("our namespace is listed");
        let seen_inside = ns.run_in(|| Ok(namespace_of(std::process::id()))).unwrap();
        assert_eq!(seen_inside, Some(ours));
    }
}
