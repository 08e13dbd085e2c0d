//! Reading the host: network namespaces and entering them, sock_diag dumps, TcpExt counters,
//! packets received,
//! per-namespace sysctls, the processes that hold sockets and the workloads they run in. No
//! decisions are made here.

pub mod addresses;
pub mod namespace;
pub mod netdev;
pub mod netns;
pub mod netstat;
pub mod owners;
pub mod sock_diag;
pub mod workload;
