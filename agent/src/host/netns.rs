//! Network namespaces on this host: finding them, and running code inside one.
//!
//! Containers put listeners in their own namespaces, with their own counters and sysctls. They
//! are found through processes' `/proc/<pid>/ns/net` links and through the bind mounts that
//! `ip netns` and CNI plugins keep in `/run/netns` (a namespace can live there with no process in
//! it). A namespace held only by an open descriptor is not found.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::PathBuf,
};

use anyhow::{Context, Result, bail};

/// A network namespace, named by its inode number (what `lsns` and the kernel's `net->ns.inum`
/// call it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub inode: u64,
    /// A path that opens it: `/proc/<pid>/ns/net` or a bind mount such as `/run/netns/<name>`.
    pub path: PathBuf,
}

impl Namespace {
    /// Runs `work` on a thread that has joined this namespace. Sockets created there (netlink
    /// included), `/proc/thread-self/net` and `/proc/sys/net` opened there belong to the namespace
    /// and keep doing so after the thread ends.
    pub fn run_in<T: Send>(&self, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let handle = File::open(&self.path).with_context(|| {
            format!(
                "opening network namespace {} ({})",
                self.inode,
                self.path.display()
            )
        })?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns on a valid namespace fd affects only this thread.
                    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        let err = std::io::Error::last_os_error();
                        let needs = if err.raw_os_error() == Some(libc::EPERM) {
                            " (entering a namespace needs CAP_SYS_ADMIN)"
                        } else {
                            ""
                        };
                        bail!(
                            "cannot enter network namespace {}: {err}{needs}",
                            self.inode
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

/// Directories where tools keep namespaces alive with bind mounts.
const BIND_MOUNT_DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];

/// Every network namespace with a process or a bind mount, each once.
pub fn list() -> Vec<Namespace> {
    let mut found: BTreeMap<u64, PathBuf> = BTreeMap::new();
    for dir in BIND_MOUNT_DIRS {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Ok(meta) = fs::metadata(entry.path()) {
                found.entry(meta.ino()).or_insert(entry.path());
            }
        }
    }
    for pid in pids() {
        if let Some(inode) = namespace_of(pid) {
            found
                .entry(inode)
                .or_insert_with(|| PathBuf::from(format!("/proc/{pid}/ns/net")));
        }
    }
    found
        .into_iter()
        .map(|(inode, path)| Namespace { inode, path })
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
