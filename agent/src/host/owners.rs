//! Which process holds a socket, and how close it is to its file-descriptor limit.
//!
//! Resolving a socket inode means walking processes' fd tables, the costly part of `ss -p`. It is
//! done only for listeners that have a story to tell, only over processes in the listener's
//! namespace, and the answers are cached by the caller.

use std::{
    collections::{HashMap, HashSet},
    fs,
    path::Path,
};

use serde::Serialize;

use super::workload;
use crate::model::{OwnerSource, Process};

/// A process, with what its fd table and cgroup say about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessFacts {
    #[serde(flatten)]
    pub process: Process,
    /// Open file descriptors now.
    pub open_fds: u64,
    /// RLIMIT_NOFILE soft limit; None when unlimited or unreadable.
    pub fd_limit: Option<u64>,
}

/// Finds the process holding socket `inode` among `pids`, and the descriptor it holds it by.
pub fn find_socket_owner(
    inode: u32,
    pids: impl IntoIterator<Item = u32>,
) -> Option<(ProcessFacts, u32)> {
    let target = format!("socket:[{inode}]");
    pids.into_iter()
        .find_map(|pid| descriptor_of(pid, &target).map(|fd| (process_facts(pid), fd)))
}

/// The processes holding any of `inodes`, in one walk of the fd tables of `pids`.
pub fn socket_owners(
    inodes: &HashSet<u32>,
    pids: impl IntoIterator<Item = u32>,
) -> HashMap<u32, ProcessFacts> {
    let mut found = HashMap::new();
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let held: Vec<u32> = fds
            .filter_map(Result::ok)
            .filter_map(|fd| {
                let link = fs::read_link(fd.path()).ok()?;
                let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
                inode.parse().ok()
            })
            .filter(|inode| inodes.contains(inode) && !found.contains_key(inode))
            .collect();
        if !held.is_empty() {
            let facts = process_facts(pid);
            for inode in held {
                found.insert(inode, facts.clone());
            }
        }
        if found.len() == inodes.len() {
            break;
        }
    }
    found
}

fn descriptor_of(pid: u32, target: &str) -> Option<u32> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    fds.filter_map(Result::ok)
        .find(|fd| fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target))
        .and_then(|fd| fd.file_name().to_str()?.parse().ok())
}

/// What /proc says of `pid`, which was found holding a socket.
pub fn process_facts(pid: u32) -> ProcessFacts {
    let proc = Path::new("/proc").join(pid.to_string());
    ProcessFacts {
        process: Process {
            pid,
            comm: fs::read_to_string(proc.join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default(),
            source: OwnerSource::Socket,
            workload: workload::of_process(pid),
        },
        open_fds: fs::read_dir(proc.join("fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0),
        fd_limit: fs::read_to_string(proc.join("limits"))
            .ok()
            .and_then(|l| parse_fd_limit(&l)),
    }
}

/// The soft limit from the `Max open files` line of `/proc/<pid>/limits`.
fn parse_fd_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::{net::TcpListener, os::fd::AsRawFd};

    use super::*;

    #[test]
    fn parses_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_fd_limit(limits), Some(1024));
    }

    #[test]
    fn finds_the_process_holding_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let link = fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
        let inode: u32 = link
            .to_str()
            .unwrap()
            .trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse()
            .unwrap();
        let (facts, fd) = find_socket_owner(inode, [std::process::id()]).unwrap();
        assert_eq!(facts.process.pid, std::process::id());
        assert_eq!(fd, listener.as_raw_fd() as u32);
        assert!(facts.open_fds > 0);
    }
}
