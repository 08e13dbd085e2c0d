//! How far apart the engine's samples are. Each sample wakes the process and costs system calls
//! (and a read per namespace) even when nothing happened; an output that may wait longer for
//! the first sign of activity lets samples drift apart while nothing moves, and any movement
//! brings them back to [`SAMPLE_EVERY`].

use std::time::{Duration, Instant};

use super::SAMPLE_EVERY;

/// Nothing moved for this long: samples may slow down.
const QUIET_AFTER: Duration = Duration::from_secs(1);

/// Whether `period` has passed since `*last`; if so, it starts again from `now`. For work done
/// every so often between samples, which no longer come at a fixed rate.
pub fn due(last: &mut Instant, now: Instant, period: Duration) -> bool {
    let due = now.duration_since(*last) >= period;
    if due {
        *last = now;
    }
    due
}

pub struct Pace {
    /// How far apart samples are once quiet.
    quiet_every: Duration,
    last_moved: Instant,
    next: Instant,
}

impl Pace {
    pub fn new(now: Instant, quiet_every: Duration) -> Self {
        Self {
            quiet_every,
            last_moved: now,
            next: now + SAMPLE_EVERY,
        }
    }

    /// When the next sample is due.
    pub fn next_sample(&self) -> Instant {
        self.next
    }

    /// Something moved between samples (the programs woke the reader): the next sample comes
    /// at the busy pace.
    pub fn moved(&mut self, now: Instant) {
        self.last_moved = now;
        self.next = self.next.min(now + SAMPLE_EVERY);
    }

    /// A sample was taken; `moved`: it found something new.
    pub fn sampled(&mut self, now: Instant, moved: bool) {
        if moved {
            self.last_moved = now;
        }
        let every = if now.duration_since(self.last_moved) >= QUIET_AFTER {
            self.quiet_every
        } else {
            SAMPLE_EVERY
        };
        self.next = now + every;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET_EVERY: Duration = Duration::from_secs(1);

    /// `samples` samples taken on time that found nothing; the last one's time.
    fn quiet_samples(pace: &mut Pace, samples: usize) -> Instant {
        (0..samples)
            .map(|_| {
                let now = pace.next_sample();
                pace.sampled(now, false);
                now
            })
            .last()
            .expect("at least one sample")
    }

    #[test]
    fn samples_slow_down_only_after_a_quiet_second() {
        let start = Instant::now();
        let mut pace = Pace::new(start, QUIET_EVERY);
        let now = quiet_samples(&mut pace, 9);
        assert_eq!(pace.next_sample() - now, SAMPLE_EVERY);
        let now = quiet_samples(&mut pace, 1);
        assert_eq!(now - start, QUIET_AFTER);
        assert_eq!(pace.next_sample() - now, QUIET_EVERY);
    }

    #[test]
    fn a_sample_that_found_something_brings_the_busy_pace_back() {
        let mut pace = Pace::new(Instant::now(), QUIET_EVERY);
        let now = quiet_samples(&mut pace, 20);
        assert_eq!(pace.next_sample() - now, QUIET_EVERY);
        let now = pace.next_sample();
        pace.sampled(now, true);
        assert_eq!(pace.next_sample() - now, SAMPLE_EVERY);
    }

    #[test]
    fn events_between_samples_bring_the_next_sample_forward() {
        let mut pace = Pace::new(Instant::now(), QUIET_EVERY);
        let now = quiet_samples(&mut pace, 20);
        let woken = now + Duration::from_millis(300);
        pace.moved(woken);
        assert_eq!(pace.next_sample(), woken + SAMPLE_EVERY);
        // Still busy at that sample, though it found nothing itself.
        pace.sampled(woken + SAMPLE_EVERY, false);
        assert_eq!(pace.next_sample(), woken + 2 * SAMPLE_EVERY);
    }

    #[test]
    fn an_output_that_keeps_the_busy_pace_never_slows_down() {
        let mut pace = Pace::new(Instant::now(), SAMPLE_EVERY);
        let now = quiet_samples(&mut pace, 50);
        assert_eq!(pace.next_sample() - now, SAMPLE_EVERY);
    }
}
