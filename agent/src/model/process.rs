//! The process a socket belongs to, and how tcpwhy learned it.

use serde::Serialize;

use super::workload::Workload;

/// How a socket's owner was learned. Never from `current` in softirq context, where it names
/// whatever task the interrupt landed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerSource {
    /// Recorded by the kernel side on a state change only a system call makes (connect, listen,
    /// close).
    Syscall,
    /// An accepted socket, which inherits its listener's recorded owner.
    Listener,
    /// A socket older than tcpwhy: the process holding its listener (found through sock_diag and
    /// the fd tables).
    ListenerSocket,
    /// A live socket found by its endpoints in the fd tables.
    Socket,
    /// The kernel side recorded an owner by a way this agent does not know.
    Unknown,
}

impl OwnerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerSource::Syscall => "syscall",
            OwnerSource::Listener => "listener",
            OwnerSource::ListenerSocket => "listener_socket",
            OwnerSource::Socket => "socket",
            OwnerSource::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Process {
    pub pid: u32,
    pub comm: String,
    #[serde(skip)]
    pub source: OwnerSource,
    /// Its cgroup, unit, container and pod, where known.
    #[serde(flatten)]
    pub workload: Workload,
}

impl Process {
    /// A process from the kernel side's 16-byte, NUL-padded `comm`.
    pub fn from_raw(pid: u32, comm: &[u8; 16], source: OwnerSource) -> Self {
        let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        Self {
            pid,
            comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
            source,
            workload: Workload::default(),
        }
    }
}
