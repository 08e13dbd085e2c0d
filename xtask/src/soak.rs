//! `cargo xtask soak --minutes N`: every storm at once against one `tcpwhy daemon`, in network
//! namespaces the soak creates: refused connects from several processes, listeners overflowing
//! in namespaces created and deleted, connects timing out to ever new destinations, slow HTTP
//! clients on the daemon's port, and its event stream going to a pipe nobody reads.
//!
//! It asserts that the daemon's memory stays under [`RSS_BOUND`], that its counts of resets sent
//! and queue drops equal what the namespaces' own kernel counters say the soak caused, and that
//! `/metrics` answers within [`SCRAPE_BOUND`] at every sample (one a second). Host end-to-end
//! tests share loopback: run it under the host-test lock, as `cargo xtask test` is.

mod daemon;
mod netns;
mod storms;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use self::{
    daemon::{Daemon, Metrics},
    netns::{Netns, TcpCounters, join},
    storms::{RefusingClients, Stop},
};

pub use self::storms::refuse_forever;

/// The daemon's resident memory may never exceed this.
const RSS_BOUND: u64 = 128 * 1024 * 1024;
/// Every `/metrics` answer must come within this.
const SCRAPE_BOUND: Duration = Duration::from_millis(100);
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// After the storms stop: the daemon drains its rings every 100 ms and folds kernel totals
/// every second.
const DAEMON_CATCHES_UP: Duration = Duration::from_secs(3);

/// The daemon's counts, as of a scrape or grown over a stretch of the soak.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    resets_sent: f64,
    /// Resets, connect failures and queue drops: every event the metrics count.
    events: f64,
    /// Events the stream's writer could not take (the stalled reader).
    stream_dropped: f64,
    evictions: f64,
    queue_drops: f64,
    /// Events the kernel could not hand over (ring buffer full).
    lost: f64,
}

impl Totals {
    fn since(self, earlier: Totals) -> Totals {
        Totals {
            resets_sent: self.resets_sent - earlier.resets_sent,
            events: self.events - earlier.events,
            stream_dropped: self.stream_dropped - earlier.stream_dropped,
            evictions: self.evictions - earlier.evictions,
            queue_drops: self.queue_drops - earlier.queue_drops,
            lost: self.lost - earlier.lost,
        }
    }
}

/// The daemon's counts over every scrape so far. Queue-drop series of listeners gone for a
/// while are removed from the exposition, so each series' last value is kept.
#[derive(Default)]
struct Counted {
    now: Totals,
    queue_drops: HashMap<String, f64>,
}

impl Counted {
    fn update(&mut self, metrics: &Metrics) {
        for (series, value) in metrics.series("tcpwhy_queue_drops_total", &[]) {
            self.queue_drops.insert(series.to_string(), value);
        }
        let queue_drops = self.queue_drops.values().sum();
        self.now = Totals {
            resets_sent: metrics.sum("tcpwhy_resets_total", &[r#"direction="sent""#]),
            events: metrics.sum("tcpwhy_resets_total", &[])
                + metrics.sum("tcpwhy_connect_failures_total", &[])
                + queue_drops,
            stream_dropped: metrics.sum("tcpwhy_events_dropped_total", &[]),
            evictions: metrics.sum("tcpwhy_state_evictions_total", &[]),
            queue_drops,
            lost: metrics.sum("tcpwhy_events_lost_total", &[]),
        };
    }
}

/// One minute of the table.
struct Minute {
    rss_max: u64,
    scrape_max: Duration,
}

pub fn run(minutes: u64) -> Result<()> {
    raise_fd_limit();
    let prefix = format!("tcpwhy-soak-{}", std::process::id());
    let daemon = Daemon::start()?;
    let refusing = Netns::create(format!("{prefix}-refused"))?;
    let black_hole = Netns::create(format!("{prefix}-blackhole"))?;
    storms::make_black_hole(&black_hole)?;

    let stop: Stop = Arc::default();
    let churned = Arc::new(Mutex::new(TcpCounters::default()));
    let kernel_before = [
        refusing.counters()?,
        black_hole.counters()?,
        TcpCounters::of_this_thread()?,
    ];
    let (first, _) = daemon.scrape()?;
    let mut counted = Counted::default();
    counted.update(&first);
    let at_start = counted.now;
    let rss_start = daemon.rss_bytes()?;

    let mut clients = RefusingClients::start(&refusing)?;
    let timeouts = black_hole.spawn({
        let stop = stop.clone();
        move || storms::time_out_to_distinct_destinations(stop)
    })?;
    let churn = thread::spawn({
        let (stop, prefix, churned) = (stop.clone(), prefix.clone(), churned.clone());
        let daemon_at = daemon.addr;
        move || storms::churn_overflowing_namespaces(stop, prefix, daemon_at, churned)
    });
    let slow = thread::spawn({
        let (stop, addr) = (stop.clone(), daemon.addr);
        move || storms::hold_slow_http_clients(addr, stop)
    });

    println!(
        "soak: {minutes} min, daemon on {} (events to a pipe nobody reads), RSS bound {} MiB, \
         /metrics bound {} ms",
        daemon.addr,
        RSS_BOUND >> 20,
        SCRAPE_BOUND.as_millis()
    );
    println!(
        "storms: {} processes × {} refused connects/s; listeners overflowing in namespaces \
         created and deleted; {} connects/s timing out to distinct destinations; {} slow HTTP \
         clients",
        storms::REFUSING_CLIENTS,
        storms::REFUSED_PER_SECOND,
        storms::TIMEOUTS_PER_SECOND,
        storms::SLOW_HTTP_CLIENTS
    );
    println!("RSS at start: {:.1} MiB\n", mib(rss_start));
    println!(
        "| minute | RSS max (MiB) | events counted | events lost | /metrics worst (ms) | queue drops counted | stream dropped | evictions |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let watched = watch(&daemon, &mut clients, &mut counted, minutes);
    stop.store(true, Ordering::Relaxed);
    drop(clients);
    let made = join(timeouts)?;
    let cycles = join(churn)?;
    let opened = join(slow)?;
    let minutes_seen = watched?;

    thread::sleep(DAEMON_CATCHES_UP);
    let (last, _) = daemon.scrape()?;
    counted.update(&last);
    let mut kernel = churned.lock().expect("totals").to_owned();
    for (netns_now, before) in [
        refusing.counters()?,
        black_hole.counters()?,
        TcpCounters::of_this_thread()?,
    ]
    .into_iter()
    .zip(kernel_before)
    {
        kernel.add(netns_now.since(before));
    }
    let grown = counted.now.since(at_start);
    let rss_max = minutes_seen.iter().map(|m| m.rss_max).max().unwrap_or(0);
    let scrape_max = minutes_seen
        .iter()
        .map(|m| m.scrape_max)
        .max()
        .unwrap_or_default();
    println!(
        "\n{made} connects timed out to distinct destinations, {cycles} namespaces churned, \
         {opened} slow HTTP connections opened"
    );
    println!(
        "resets sent: daemon {}, kernel (TcpOutRsts) {}; queue drops: daemon {}, kernel \
         (ListenOverflows + TCPReqQFullDrop + TCPReqQFullDoCookies) {}",
        grown.resets_sent, kernel.out_rsts, grown.queue_drops, kernel.queue_drops
    );
    println!(
        "RSS: {:.1} MiB at start, {:.1} MiB at most, {:.1} MiB at the end; /metrics worst {:.1} ms",
        mib(rss_start),
        mib(rss_max),
        mib(daemon.rss_bytes()?),
        scrape_max.as_secs_f64() * 1e3
    );
    verdict(&grown, &kernel, rss_max, scrape_max, made)
}

/// Fails, naming each bound or count that did not hold.
fn verdict(
    grown: &Totals,
    kernel: &TcpCounters,
    rss_max: u64,
    scrape_max: Duration,
    timed_out: u64,
) -> Result<()> {
    let (resets_sent, queue_drops) = (grown.resets_sent as u64, grown.queue_drops as u64);
    let mut failures = Vec::new();
    if rss_max > RSS_BOUND {
        failures.push(format!("RSS reached {:.1} MiB", mib(rss_max)));
    }
    if scrape_max > SCRAPE_BOUND {
        failures.push(format!(
            "/metrics took {:.1} ms",
            scrape_max.as_secs_f64() * 1e3
        ));
    }
    if grown.lost > 0.0 {
        failures.push(format!("{} events lost (ring buffer full)", grown.lost));
    }
    if resets_sent != kernel.out_rsts {
        failures.push("resets sent differ from the kernel's count".to_string());
    }
    if queue_drops != kernel.queue_drops {
        failures.push("queue drops differ from the kernel's count".to_string());
    }
    if queue_drops == 0 || resets_sent == 0 || timed_out == 0 {
        failures.push("a storm caused nothing".to_string());
    }
    if !failures.is_empty() {
        bail!("soak failed: {}", failures.join("; "));
    }
    println!("soak: passed");
    Ok(())
}

/// Samples the daemon every second for `minutes`, printing a table row per minute.
fn watch(
    daemon: &Daemon,
    clients: &mut RefusingClients,
    counted: &mut Counted,
    minutes: u64,
) -> Result<Vec<Minute>> {
    let mut table = Vec::new();
    let started = Instant::now();
    for minute in 1..=minutes {
        let at_start = counted.now;
        let (mut rss_max, mut scrape_max) = (0, Duration::ZERO);
        let ends = started + Duration::from_secs(60 * minute);
        let mut next = Instant::now();
        while Instant::now() < ends {
            clients.check()?;
            let (metrics, took) = daemon.scrape()?;
            counted.update(&metrics);
            scrape_max = scrape_max.max(took);
            rss_max = rss_max.max(daemon.rss_bytes()?);
            next += SAMPLE_EVERY;
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let grown = counted.now.since(at_start);
        println!(
            "| {minute} | {:.1} | {:.0} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} |",
            mib(rss_max),
            grown.events,
            grown.lost,
            scrape_max.as_secs_f64() * 1e3,
            grown.queue_drops,
            grown.stream_dropped,
            grown.evictions
        );
        table.push(Minute {
            rss_max,
            scrape_max,
        });
    }
    Ok(table)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The timeouts storm holds hundreds of sockets at once.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
