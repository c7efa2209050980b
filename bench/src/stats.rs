//! Counting: per-executor recorders, the shared totals they flush into, the
//! once-a-second progress line and the final summary.
//!
//! ```text
//!  executor 0: Recorder ──flush every 100 ms──┐
//!  executor 1: Recorder ──flush every 100 ms──┼──▶ Arc<Mutex<Totals>> ◀── main thread:
//!  ...                                        ┘     (interval + total)     progress each 1 s,
//!                                                                          summary at the end
//! ```
//!
//! Recorders are executor-local (no locking per message); the mutex is taken ten times a
//! second per executor. Latencies are microseconds, recorded in HDR histograms with 3
//! significant digits from 1 µs to 1 hour.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

/// Largest latency tracked, µs (1 hour); larger values are clamped.
const LATENCY_US_MAX: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds are constants within hdrhistogram's limits, so creation cannot fail.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// Counts of one interval or of the whole run.
#[derive(Clone)]
pub struct Counts {
    /// Messages done (sent and acknowledged, or received, or appended).
    pub messages: u64,
    /// Body bytes of those messages.
    pub bytes: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failed requests by kind: the broker's response code, or `timeout`,
    /// `connection`, ...
    pub errors_by_code: BTreeMap<String, u64>,
    /// Latency per request (produce, storage) or per message (consume), µs.
    pub latency_us: Histogram<u64>,
}

impl Counts {
    fn new() -> Counts {
        Counts {
            messages: 0,
            bytes: 0,
            errors: 0,
            errors_by_code: BTreeMap::new(),
            latency_us: histogram(),
        }
    }

    fn add(&mut self, other: &Counts) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.errors += other.errors;
        for (k, v) in &other.errors_by_code {
            *self.errors_by_code.entry(k.clone()).or_default() += v;
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
    }

    fn clear(&mut self) {
        self.messages = 0;
        self.bytes = 0;
        self.errors = 0;
        self.errors_by_code.clear();
        self.latency_us.reset();
    }
}

/// What every executor flushes into.
pub struct Totals {
    interval: Counts,
    total: Counts,
}

/// The shared totals.
pub type SharedTotals = Arc<Mutex<Totals>>;

/// Fresh shared totals.
pub fn shared_totals() -> SharedTotals {
    Arc::new(Mutex::new(Totals { interval: Counts::new(), total: Counts::new() }))
}

/// An executor-local recorder.
pub struct Recorder {
    local: Counts,
    shared: SharedTotals,
    last_flush: Instant,
}

/// How often a recorder hands its counts to the shared totals.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

impl Recorder {
    /// A recorder flushing into `shared`.
    pub fn new(shared: SharedTotals) -> Recorder {
        Recorder { local: Counts::new(), shared, last_flush: Instant::now() }
    }

    /// Records `messages` messages of `bytes` bytes done with latency `latency`.
    pub fn success(&mut self, messages: u64, bytes: u64, latency: Duration) {
        self.local.messages += messages;
        self.local.bytes += bytes;
        self.latency_us(latency.as_micros() as u64);
        self.maybe_flush();
    }

    /// Records one message (consume mode) with a latency already in µs.
    pub fn message(&mut self, bytes: u64, latency_us: u64) {
        self.local.messages += 1;
        self.local.bytes += bytes;
        self.latency_us(latency_us);
    }

    /// Records a failed request.
    pub fn error(&mut self, kind: String) {
        self.local.errors += 1;
        *self.local.errors_by_code.entry(kind).or_default() += 1;
        self.maybe_flush();
    }

    fn latency_us(&mut self, us: u64) {
        self.local.latency_us.saturating_record(us.clamp(1, LATENCY_US_MAX));
    }

    /// Flushes when the flush interval has passed.
    pub fn maybe_flush(&mut self) {
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush();
        }
    }

    /// Hands the local counts to the shared totals.
    pub fn flush(&mut self) {
        self.last_flush = Instant::now();
        if let Ok(mut t) = self.shared.lock() {
            t.interval.add(&self.local);
            t.total.add(&self.local);
        }
        self.local.clear();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Prints one progress line for the interval since the last call, on stderr.
pub fn print_progress(shared: &SharedTotals, interval: Duration, elapsed: Duration) {
    let Ok(mut t) = shared.lock() else { return };
    let secs = interval.as_secs_f64().max(1e-9);
    let i = &t.interval;
    eprintln!(
        "[{:>5.1}s] {:>10.0} msgs/s {:>9.2} MB/s  p50 {:>7} us  p99 {:>7} us  errors {}",
        elapsed.as_secs_f64(),
        i.messages as f64 / secs,
        i.bytes as f64 / secs / 1e6,
        i.latency_us.value_at_quantile(0.50),
        i.latency_us.value_at_quantile(0.99),
        i.errors,
    );
    t.interval.clear();
}

/// Takes the counts recorded since the last call (or progress line) and clears them: one
/// measurement window read while the load keeps running. Recorders flush every 100 ms, so
/// a window's edges are that precise.
pub fn take_interval(shared: &SharedTotals) -> Counts {
    let Ok(mut t) = shared.lock() else { return Counts::new() };
    let taken = t.interval.clone();
    t.interval.clear();
    taken
}

/// The final summary of a run.
pub fn summary(shared: &SharedTotals, mode: &str, elapsed: Duration) -> serde_json::Value {
    let empty = Counts::new();
    let guard = shared.lock();
    let t = guard.as_ref().map_or(&empty, |t| &t.total);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let h = &t.latency_us;
    json!({
        "mode": mode,
        "messages": t.messages,
        "bytes": t.bytes,
        "errors": t.errors,
        "errors_by_code": t.errors_by_code,
        "elapsed_s": round3(secs),
        "msgs_per_s": round3(t.messages as f64 / secs),
        "mb_per_s": round3(t.bytes as f64 / secs / 1e6),
        "latency_us": {
            "p50": h.value_at_quantile(0.50),
            "p90": h.value_at_quantile(0.90),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
            "mean": round3(h.mean()),
            "count": h.len(),
        },
    })
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Prints the summary: one JSON object, or a few human lines.
pub fn print_summary(summary: &serde_json::Value, as_json: bool) {
    if as_json {
        println!("{summary}");
        return;
    }
    let l = &summary["latency_us"];
    println!(
        "{}: {} messages, {} bytes in {} s: {} msgs/s, {} MB/s; errors {} {}",
        summary["mode"].as_str().unwrap_or(""),
        summary["messages"],
        summary["bytes"],
        summary["elapsed_s"],
        summary["msgs_per_s"],
        summary["mb_per_s"],
        summary["errors"],
        summary["errors_by_code"],
    );
    println!(
        "latency us: p50 {} p90 {} p99 {} p999 {} max {} mean {}",
        l["p50"], l["p90"], l["p99"], l["p999"], l["max"], l["mean"]
    );
}

/// Fails a run that did nothing but fail, so scripts see a non-zero exit status.
///
/// # Errors
/// No message done and at least one error.
pub fn check_any_success(summary: &serde_json::Value) -> Result<(), String> {
    let messages = summary["messages"].as_u64().unwrap_or(0);
    let errors = summary["errors"].as_u64().unwrap_or(0);
    if messages == 0 && errors > 0 {
        return Err(format!("no message succeeded; errors: {}", summary["errors_by_code"]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorders_flush_into_the_summary() {
        let shared = shared_totals();
        {
            let mut r = Recorder::new(shared.clone());
            r.success(10, 1000, Duration::from_micros(50));
            r.success(10, 1000, Duration::from_micros(150));
            r.error("2".into());
            r.error("timeout".into());
            r.error("2".into());
        }
        let s = summary(&shared, "produce", Duration::from_secs(2));
        assert_eq!(s["messages"], 20);
        assert_eq!(s["bytes"], 2000);
        assert_eq!(s["errors"], 3);
        assert_eq!(s["errors_by_code"]["2"], 2);
        assert_eq!(s["msgs_per_s"], 10.0);
        assert_eq!(s["latency_us"]["count"], 2);
        assert!(s["latency_us"]["max"].as_u64().unwrap() >= 150);
        for key in ["p50", "p99", "p999", "max"] {
            assert!(s["latency_us"][key].is_u64(), "{key}");
        }
    }
}
