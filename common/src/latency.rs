//! How long handshakes take and what round-trip time connections end with, aggregated in the
//! kernel: one histogram per (namespace, endpoint, kind), never a record per connection.
//!
//! Buckets are half-octaves of microseconds: bucket `2n` starts at 2^n µs and bucket `2n + 1`
//! at 1.5 × 2^n µs, so a value is known to within a third to a half of itself, whatever its
//! size, with 56 buckets up to 201 s (1.5 × 2^27 µs), the last one open-ended.

/// What a histogram measures, and which endpoint keys it.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyKind {
    /// SYN_SENT → ESTABLISHED of a connect(), per remote endpoint.
    Connect = 0,
    /// The SYN-ACK's round trip of an accepted connection (the child socket's first smoothed
    /// RTT), per local endpoint it was accepted on.
    Accept = 1,
    /// The smoothed RTT of a connection leaving ESTABLISHED, per remote address (port 0: the
    /// round trip is the path's, whichever port).
    SrttAtClose = 2,
}

impl LatencyKind {
    pub fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            0 => LatencyKind::Connect,
            1 => LatencyKind::Accept,
            2 => LatencyKind::SrttAtClose,
            _ => return None,
        })
    }
}

/// The kinds counted in [`crate::maps::LATENCY_TOTALS`] (the handshakes, for the metric).
pub const TOTAL_KINDS: u32 = 2;

/// Half-octave buckets, the last one open-ended.
pub const LATENCY_BUCKETS: usize = 56;

/// Slots per kind in [`crate::maps::LATENCY_TOTALS`]: the buckets, then the sum of µs.
pub const TOTAL_SLOTS_PER_KIND: u32 = LATENCY_BUCKETS as u32 + 1;

/// One endpoint in one network namespace; addresses: IPv4 in the first 4 bytes, or IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LatencyKey {
    pub netns: u32,
    /// A [`LatencyKind`].
    pub kind: u16,
    /// [`crate::family::AF_INET`] or [`crate::family::AF_INET6`].
    pub family: u16,
    pub port: u16,
    pub _pad: u16,
    pub addr: [u8; 16],
}

/// Durations in microseconds, updated with atomic adds by every CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    pub buckets: [u64; LATENCY_BUCKETS],
    pub sum_us: u64,
    /// Best effort: two CPUs raising it at once may keep the smaller value.
    pub max_us: u64,
}

impl LatencyHistogram {
    pub const EMPTY: LatencyHistogram = LatencyHistogram {
        buckets: [0; LATENCY_BUCKETS],
        sum_us: 0,
        max_us: 0,
    };
}

/// The bucket of a duration of `us` microseconds.
#[inline(always)]
pub fn bucket_of(us: u64) -> usize {
    if us < 2 {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros();
    let upper_half = (us >> (octave - 1)) & 1;
    let bucket = (2 * octave + upper_half as u32) as usize;
    if bucket < LATENCY_BUCKETS {
        bucket
    } else {
        LATENCY_BUCKETS - 1
    }
}

/// The smallest duration (µs) in bucket `bucket`; bucket `b` holds `[lower(b), lower(b + 1))`.
pub fn bucket_lower_us(bucket: usize) -> u64 {
    if bucket < 2 {
        return bucket as u64;
    }
    let octave = (bucket / 2) as u32;
    (1u64 << octave) + (bucket as u64 % 2) * (1u64 << (octave - 1))
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `repr(C)`, integers and byte arrays, explicit padding.
    unsafe impl aya::Pod for super::LatencyKey {}
    unsafe impl aya::Pod for super::LatencyHistogram {}
}

const _: () = assert!(core::mem::size_of::<LatencyKey>() == 28);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_falls_between_its_bucket_bounds() {
        for us in (0..5000).chain([20_000, 1 << 20, (1 << 27) - 1]) {
            let b = bucket_of(us);
            assert!(bucket_lower_us(b) <= us, "{us} in {b}");
            assert!(us < bucket_lower_us(b + 1), "{us} in {b}");
        }
        assert_eq!(bucket_of(1 << 40), LATENCY_BUCKETS - 1);
        let bounds: [u64; 8] = core::array::from_fn(bucket_lower_us);
        assert_eq!(bounds, [0, 1, 2, 3, 4, 6, 8, 12]);
    }
}
