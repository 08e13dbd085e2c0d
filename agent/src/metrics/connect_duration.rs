//! `tcpwhy_connect_duration_seconds{direction}`: a histogram of handshake times whose buckets
//! the kernel counts (it sees every connection; the agent only copies its totals at each fold),
//! so it is exposed by a collector of its own rather than by observing values one by one.
//! `direction` is its only label: destinations and listeners are unbounded, and go to the JSON
//! report.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus::{
    core::{Collector, Desc},
    proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType},
};
use tcpwhy_common::latency::{LATENCY_BUCKETS, LatencyKind};

const NAME: &str = "tcpwhy_connect_duration_seconds";
const HELP: &str = "TCP handshake times: connect() from SYN_SENT to ESTABLISHED (direction=connect), and the SYN-ACK's round trip of accepted connections (direction=accept).";

/// The `le` bounds: every other octave of microseconds, 16 µs to 67 s, each the start of a
/// kernel bucket, so the counts below one are exact.
const OCTAVES: [u32; 12] = [4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26];

/// The directions, with the kind of kernel histogram each one copies.
pub const DIRECTIONS: [(&str, LatencyKind); 2] = [
    ("connect", LatencyKind::Connect),
    ("accept", LatencyKind::Accept),
];

/// A direction's kernel totals: the half-octave bucket counts, then the sum of µs.
type Totals = Vec<u64>;

#[derive(Clone)]
pub struct ConnectDurations {
    desc: Arc<Desc>,
    totals: Arc<Mutex<[Totals; 2]>>,
}

impl ConnectDurations {
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self {
            desc: Arc::new(Desc::new(
                NAME.into(),
                HELP.into(),
                vec!["direction".into()],
                Default::default(),
            )?),
            totals: Arc::default(),
        })
    }

    /// Replaces the totals of `kind` with what the kernel counted since attach.
    pub fn set(&self, kind: LatencyKind, totals: Totals) {
        if let Some(i) = DIRECTIONS.iter().position(|(_, k)| *k == kind) {
            self.totals.lock().unwrap_or_else(PoisonError::into_inner)[i] = totals;
        }
    }
}

fn histogram(totals: &[u64]) -> Histogram {
    let bucket = |i: usize| totals.get(i).copied().unwrap_or(0);
    let mut histogram = Histogram::default();
    histogram.set_bucket(
        OCTAVES
            .iter()
            .map(|&octave| {
                let mut b = Bucket::default();
                // Kernel bucket 2n starts at 2^n µs: the ones before it hold the values below.
                b.set_cumulative_count((0..2 * octave as usize).map(bucket).sum());
                b.set_upper_bound((1u64 << octave) as f64 / 1e6);
                b
            })
            .collect(),
    );
    histogram.set_sample_count((0..LATENCY_BUCKETS).map(bucket).sum());
    histogram.set_sample_sum(bucket(LATENCY_BUCKETS) as f64 / 1e6);
    histogram
}

impl Collector for ConnectDurations {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        let metrics = DIRECTIONS
            .iter()
            .zip(totals.iter())
            .map(|((direction, _), totals)| {
                let mut label = LabelPair::default();
                label.set_name("direction".into());
                label.set_value((*direction).into());
                let mut metric = Metric::from_label(vec![label]);
                metric.set_histogram(histogram(totals));
                metric
            })
            .collect();
        let mut family = MetricFamily::default();
        family.set_name(NAME.into());
        family.set_help(HELP.into());
        family.set_field_type(MetricType::HISTOGRAM);
        family.set_metric(metrics);
        vec![family]
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder, Registry, TextEncoder};
    use tcpwhy_common::latency::bucket_of;

    use super::*;

    #[test]
    fn kernel_buckets_become_cumulative_buckets_in_seconds() {
        let durations = ConnectDurations::new().unwrap();
        let mut totals = vec![0u64; LATENCY_BUCKETS + 1];
        for us in [20_000, 21_000, 100] {
            totals[bucket_of(us)] += 1;
            totals[LATENCY_BUCKETS] += us;
        }
        durations.set(LatencyKind::Connect, totals);
        let registry = Registry::new();
        registry.register(Box::new(durations.clone())).unwrap();
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        for line in [
            r#"tcpwhy_connect_duration_seconds_bucket{direction="connect",le="0.000256"} 1"#,
            r#"tcpwhy_connect_duration_seconds_bucket{direction="connect",le="0.016384"} 1"#,
            r#"tcpwhy_connect_duration_seconds_bucket{direction="connect",le="0.065536"} 3"#,
            r#"tcpwhy_connect_duration_seconds_bucket{direction="connect",le="+Inf"} 3"#,
            r#"tcpwhy_connect_duration_seconds_sum{direction="connect"} 0.0411"#,
            r#"tcpwhy_connect_duration_seconds_count{direction="accept"} 0"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
