//! What the report says about handshake times and round trips: per destination, per listener,
//! quantiles estimated from the kernel's half-octave histograms.
//!
//! A quantile is interpolated linearly inside the bucket that holds it, and never above the
//! largest value seen. A bucket spans a third to a half of its lower bound, so an estimate is
//! within that of the truth (at most half of it for one value alone, much closer when the
//! values spread over the bucket); the maximum is exact.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use tcpwhy_common::latency::{LATENCY_BUCKETS, LatencyHistogram, LatencyKind, bucket_lower_us};

/// Rows kept in each list; the report says how many more there were.
pub const ROWS: usize = 50;

/// One histogram the kernel kept: its kind, namespace and endpoint.
#[derive(Debug, Clone)]
pub struct Measured {
    pub kind: LatencyKind,
    pub netns: u64,
    /// The remote endpoint of connects, the local one of accepts; port 0 for SRTT at close
    /// (per remote address).
    pub endpoint: SocketAddr,
    pub histogram: LatencyHistogram,
}

/// The quantiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Values counted in a histogram.
pub fn count(histogram: &LatencyHistogram) -> u64 {
    histogram.buckets.iter().sum()
}

/// The value (µs) below which a fraction `q` of the values lie, estimated from the buckets.
pub fn quantile_us(histogram: &LatencyHistogram, q: f64) -> f64 {
    let total = count(histogram);
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).max(1.0);
    let mut below = 0u64;
    for (bucket, &in_bucket) in histogram.buckets.iter().enumerate() {
        if in_bucket == 0 {
            continue;
        }
        if (below + in_bucket) as f64 >= rank {
            let lower = bucket_lower_us(bucket) as f64;
            let upper = if bucket + 1 < LATENCY_BUCKETS {
                bucket_lower_us(bucket + 1) as f64
            } else {
                histogram.max_us as f64
            };
            let within = (rank - below as f64) / in_bucket as f64;
            let estimate = lower + within * (upper - lower);
            return estimate.min(histogram.max_us as f64).max(lower);
        }
        below += in_bucket;
    }
    histogram.max_us as f64
}

impl Quantiles {
    pub fn of(histogram: &LatencyHistogram) -> Self {
        // Whole microseconds: the kernel counts no finer.
        let ms = |us: f64| us.round() / 1000.0;
        Self {
            p50_ms: ms(quantile_us(histogram, 0.5)),
            p99_ms: ms(quantile_us(histogram, 0.99)),
            max_ms: ms(histogram.max_us as f64),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConnectRow {
    pub namespace: u64,
    pub remote: SocketAddr,
    pub connects: u64,
    #[serde(flatten)]
    pub quantiles: Quantiles,
}

#[derive(Debug, Serialize)]
pub struct AcceptRow {
    pub namespace: u64,
    /// The local endpoint the connections were accepted on.
    pub listener: SocketAddr,
    pub connects: u64,
    #[serde(flatten)]
    pub quantiles: Quantiles,
}

#[derive(Debug, Serialize)]
pub struct SrttRow {
    pub namespace: u64,
    /// The peer's address: the round trip is the path's, whichever port.
    pub remote: IpAddr,
    pub connections: u64,
    #[serde(flatten)]
    pub quantiles: Quantiles,
}

/// Rows beyond [`ROWS`] per list.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct LeftOut {
    pub connects: usize,
    pub accepts: usize,
    pub srtt_at_close: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct LatencyReport {
    /// connect() SYN_SENT → ESTABLISHED, per destination, slowest p99 first.
    pub connects: Vec<ConnectRow>,
    /// Accepted connections' handshakes (the SYN-ACK's round trip), per listener.
    pub accepts: Vec<AcceptRow>,
    /// The smoothed RTT of connections as they left ESTABLISHED, per remote address.
    pub srtt_at_close: Vec<SrttRow>,
    pub left_out: LeftOut,
    /// Histograms the kernel's bounded map let go (least recently used): their counts are
    /// missing here, never mixed into another row.
    pub histograms_evicted: u64,
    /// What is not measured on this kernel, and why.
    pub unmeasured: Vec<String>,
}

impl LatencyReport {
    pub fn new(measured: &[Measured], histograms_evicted: u64, unmeasured: Vec<String>) -> Self {
        let rows = |kind: LatencyKind| {
            let mut rows: Vec<(&Measured, Quantiles, u64)> = measured
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| (m, Quantiles::of(&m.histogram), count(&m.histogram)))
                .filter(|(_, _, count)| *count > 0)
                .collect();
            rows.sort_by(|a, b| b.1.p99_ms.total_cmp(&a.1.p99_ms).then(b.2.cmp(&a.2)));
            let left_out = rows.len().saturating_sub(ROWS);
            rows.truncate(ROWS);
            (rows, left_out)
        };
        let (connects, connects_left) = rows(LatencyKind::Connect);
        let (accepts, accepts_left) = rows(LatencyKind::Accept);
        let (srtts, srtts_left) = rows(LatencyKind::SrttAtClose);
        Self {
            connects: connects
                .into_iter()
                .map(|(m, quantiles, connects)| ConnectRow {
                    namespace: m.netns,
                    remote: m.endpoint,
                    connects,
                    quantiles,
                })
                .collect(),
            accepts: accepts
                .into_iter()
                .map(|(m, quantiles, connects)| AcceptRow {
                    namespace: m.netns,
                    listener: m.endpoint,
                    connects,
                    quantiles,
                })
                .collect(),
            srtt_at_close: srtts
                .into_iter()
                .map(|(m, quantiles, connections)| SrttRow {
                    namespace: m.netns,
                    remote: m.endpoint.ip(),
                    connections,
                    quantiles,
                })
                .collect(),
            left_out: LeftOut {
                connects: connects_left,
                accepts: accepts_left,
                srtt_at_close: srtts_left,
            },
            histograms_evicted,
            unmeasured,
        }
    }
}

/// What cannot be measured, for the report: `set_state_attached`, whether the state-change
/// probe runs; `srtt_readable`, whether the kernel's BTF locates `tcp_sock.srtt_us`.
pub fn unmeasured(set_state_attached: bool, srtt_readable: bool) -> Vec<String> {
    if !set_state_attached {
        return vec![
            "sock:inet_sock_set_state is not attached: no handshake or round-trip time is \
             measured"
                .into(),
        ];
    }
    if !srtt_readable {
        return vec![
            "tcp_sock.srtt_us is not in the kernel's BTF: accepted connections' handshakes and \
             the SRTT at close are not measured (connect times are)"
                .into(),
        ];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use tcpwhy_common::latency::bucket_of;

    use super::*;

    fn histogram(values_us: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::EMPTY;
        for &us in values_us {
            h.buckets[bucket_of(us)] += 1;
            h.sum_us += us;
            h.max_us = h.max_us.max(us);
        }
        h
    }

    #[test]
    fn quantiles_fall_in_the_bucket_of_the_true_value_and_never_above_the_max() {
        // 20 ms RTTs, one slow handshake of 1 s.
        let mut values = vec![20_100; 99];
        values.push(1_000_000);
        let q = Quantiles::of(&histogram(&values));
        assert!((16.384..24.576).contains(&q.p50_ms), "{q:?}");
        assert!((16.384..=24.576).contains(&q.p99_ms), "{q:?}");
        assert_eq!(q.max_ms, 1000.0);
        let one = Quantiles::of(&histogram(&[20_100]));
        assert!(one.p50_ms <= 20.1 && one.p50_ms >= 16.384, "{one:?}");
    }

    #[test]
    fn what_a_kernel_cannot_measure_is_said() {
        assert!(unmeasured(true, true).is_empty());
        let [without_srtt] = unmeasured(true, false).try_into().unwrap();
        assert!(without_srtt.contains("tcp_sock.srtt_us"), "{without_srtt}");
        assert!(without_srtt.contains("connect times are"), "{without_srtt}");
        let [without_probe] = unmeasured(false, true).try_into().unwrap();
        assert!(
            without_probe.contains("sock:inet_sock_set_state"),
            "{without_probe}"
        );
    }

    #[test]
    fn rows_are_capped_slowest_first_and_the_rest_counted() {
        let measured: Vec<Measured> = (0..ROWS as u64 + 3)
            .map(|i| Measured {
                kind: LatencyKind::Connect,
                netns: 1,
                endpoint: SocketAddr::from(([10, 0, 0, 1], 1000 + i as u16)),
                histogram: histogram(&[1000 * (i + 1)]),
            })
            .collect();
        let report = LatencyReport::new(&measured, 0, Vec::new());
        assert_eq!(report.connects.len(), ROWS);
        assert_eq!(report.left_out.connects, 3);
        assert_eq!(report.connects[0].remote.port(), 1000 + ROWS as u16 + 2);
        assert!(report.accepts.is_empty());
    }
}
