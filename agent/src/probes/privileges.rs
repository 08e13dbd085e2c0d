//! Checks that the agent may load BPF before trying, so that the error names what is missing,
//! and says what goes unobserved when it may load BPF but lacks the rest of what root has.

use std::fs;

const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The capabilities full coverage needs beyond loading probes, and what is lost without each.
const FOR_FULL_COVERAGE: [(u32, &str, &str); 3] = [
    (
        CAP_SYS_ADMIN,
        "CAP_SYS_ADMIN",
        "listen queues go unwatched (entering network namespaces needs it), and tracefs cannot be \
         mounted",
    ),
    (
        CAP_DAC_READ_SEARCH,
        "CAP_DAC_READ_SEARCH",
        "a tracefs only root may read stays closed (classic tracepoints cannot attach), and other \
         users' fd tables cannot be listed",
    ),
    (
        CAP_SYS_PTRACE,
        "CAP_SYS_PTRACE",
        "sockets other users' processes hold are not traced to them through their fd tables",
    ),
];

/// Returns the missing capabilities, described for the user; empty when loading may proceed.
pub fn missing_capabilities() -> Vec<&'static str> {
    let Some(effective) = effective_capabilities() else {
        return vec!["(could not read capabilities from /proc/self/status)"];
    };
    let has = |cap: u32| holds(effective, cap);
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// What goes unobserved for want of a capability, one line per missing capability, for a process
/// that may load probes ([`missing_capabilities`] is empty) but is not fully privileged.
pub fn coverage_lost() -> Vec<String> {
    let Some(effective) = effective_capabilities() else {
        return Vec::new();
    };
    FOR_FULL_COVERAGE
        .iter()
        .filter(|(cap, _, _)| !holds(effective, *cap))
        .map(|(_, name, lost)| format!("without {name}: {lost}"))
        .collect()
}

fn holds(effective: u64, cap: u32) -> bool {
    effective & (1u64 << cap) != 0
}

fn effective_capabilities() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}
