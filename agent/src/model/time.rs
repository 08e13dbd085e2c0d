//! Times as findings state them. The programs stamp events with CLOCK_MONOTONIC
//! (`bpf_ktime_get_ns()`), which users cannot read; findings say wall-clock time.

use std::time::{Duration, SystemTime};

/// CLOCK_MONOTONIC now, the clock of `bpf_ktime_get_ns()`.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The wall-clock time of a CLOCK_MONOTONIC timestamp, RFC 3339 in UTC with milliseconds.
pub fn wall_clock(monotonic: u64) -> String {
    let ago = Duration::from_nanos(monotonic_ns().saturating_sub(monotonic));
    rfc3339(SystemTime::now() - ago)
}

pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}
