//! Retransmits and connection states, turned into findings a user can act on.

pub mod connects;
pub mod retransmits;
pub mod states;
pub mod summary;

use std::time::Duration;

/// "3.2 s", "450 ms": durations as the explanations say them.
pub fn human(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// Roughly how long the kernel keeps retrying a SYN or SYN-ACK before giving up: the timer
/// starts at 1 s and doubles, so `retries` retransmits end after 2^(retries+1) - 1 seconds.
pub fn give_up_after(retries: i64) -> Duration {
    let retries = retries.clamp(0, 20) as u32;
    Duration::from_secs((1u64 << (retries + 1)) - 1)
}
