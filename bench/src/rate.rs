//! Rate limiting by a token schedule: token `k` may be used at `start + k / rate`.
//!
//! A worker takes the next tokens and waits until the last one's time. A worker that
//! falls behind (a slow reply) does not lose its tokens: the next sends go at once,
//! so the offered rate holds on average, as in wrk2. A worker behind schedule measures
//! latency from the scheduled time, so queueing behind a slow reply counts (no
//! coordinated omission); one ahead of it measures from its actual send.
//!
//! Lives on: one executor (one schedule per connection, shared by its in-flight
//! workers through `Rc`).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Send times for one connection.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    /// Nanoseconds between tokens; `None` = unlimited.
    interval_ns: Option<f64>,
    next_token: Cell<u64>,
}

impl Schedule {
    /// `rate_per_s` tokens a second from `start`; 0 means unlimited.
    pub fn new(start: Instant, rate_per_s: f64) -> Schedule {
        let interval_ns = (rate_per_s > 0.0).then(|| 1e9 / rate_per_s);
        Schedule { start, interval_ns, next_token: Cell::new(0) }
    }

    /// Takes `count` tokens; returns when the last of them is due (`None` when unlimited).
    pub fn take(&self, count: u64) -> Option<Instant> {
        let interval_ns = self.interval_ns?;
        let first = self.next_token.get();
        self.next_token.set(first + count);
        let last = first + count.max(1) - 1;
        Some(self.start + Duration::from_nanos((last as f64 * interval_ns) as u64))
    }
}

/// Splits a total rate over `parts` connections (0 stays 0 = unlimited).
pub fn share(rate_total: u64, parts: usize) -> f64 {
    if rate_total == 0 || parts == 0 {
        return 0.0;
    }
    rate_total as f64 / parts as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_spaced_by_the_rate() {
        let start = Instant::now();
        let s = Schedule::new(start, 1000.0);
        assert_eq!(s.take(1), Some(start));
        assert_eq!(s.take(1), Some(start + Duration::from_millis(1)));
        // A batch of 10 is due when its last token is: tokens 2..=11.
        assert_eq!(s.take(10), Some(start + Duration::from_millis(11)));
        assert_eq!(s.take(1), Some(start + Duration::from_millis(12)));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let s = Schedule::new(Instant::now(), 0.0);
        assert_eq!(s.take(5), None);
        assert_eq!(share(0, 4), 0.0);
        assert_eq!(share(1000, 4), 250.0);
    }
}
