//! Reading sysctls of the agent's network namespace.

use std::path::PathBuf;

/// Reads an integer sysctl such as `net.ipv4.tcp_abort_on_overflow`; None if absent.
pub fn read_int(name: &str) -> Option<i64> {
    let path = PathBuf::from("/proc/sys").join(name.replace('.', "/"));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
