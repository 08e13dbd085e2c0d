//! A storm of refused connects from several clients at once: the highest rate this machine
//! reaches, whether the daemon lost events at it, and if so the rate at which loss starts.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::Result;

use super::{
    daemon::{Daemon, metric_sum},
    refused_connect,
};

pub const CLIENTS: u32 = 4;
const LASTING: Duration = Duration::from_secs(5);
/// Fractions of the highest rate tried, lowest first, when the highest lost events.
const PACED: [f64; 3] = [0.25, 0.5, 0.75];

/// One storm: connects per second reached, and the daemon's reset events and lost events.
pub struct Storm {
    pub rate: f64,
    pub events: f64,
    pub lost: f64,
}

/// The storm at full speed, and the first paced storm that lost events, if the full one did.
pub fn measure() -> Result<(Storm, Option<Storm>)> {
    let daemon = Daemon::start(None)?;
    let full = storm(&daemon, None)?;
    if full.lost == 0.0 {
        return Ok((full, None));
    }
    for fraction in PACED {
        let paced = storm(&daemon, Some(full.rate * fraction))?;
        if paced.lost > 0.0 {
            return Ok((full, Some(paced)));
        }
    }
    Ok((full, None))
}

fn storm(daemon: &Daemon, rate: Option<f64>) -> Result<Storm> {
    let before = daemon.scrape()?;
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| scope.spawn(|| client(rate.map(|r| r / f64::from(CLIENTS)), &done)))
            .collect();
        clients
            .into_iter()
            .try_for_each(|c| c.join().expect("storm client panicked"))
    })?;
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500)); // one fold of the kernel totals
    let after = daemon.scrape()?;
    let growth = |name| metric_sum(&after, name) - metric_sum(&before, name);
    Ok(Storm {
        rate,
        events: growth("tcpwhy_resets_total"),
        lost: growth("tcpwhy_events_lost_total"),
    })
}

/// Refused connects for [`LASTING`], at `rate` per second when given, else as fast as it can.
fn client(rate: Option<f64>, done: &AtomicU64) -> Result<()> {
    let started = Instant::now();
    let mut made = 0u32;
    while started.elapsed() < LASTING {
        refused_connect()?;
        made += 1;
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(f64::from(made) / rate);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    done.fetch_add(u64::from(made), Ordering::Relaxed);
    Ok(())
}
