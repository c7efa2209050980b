//! Histograms kept in `Cell`s on the shard that observes into them, and their snapshots.

use std::cell::Cell;

/// Upper bounds of the latency histograms, seconds (100 µs .. 10 s).
pub const LATENCY_BOUNDS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Upper bounds of the records-per-append histogram.
pub const BATCH_BOUNDS_RECORDS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A histogram on one shard: per-bucket counts (the last bucket is +Inf), sum and count.
///
/// Lives on: the shard that observes into it.
#[derive(Debug)]
pub struct LocalHistogram {
    bounds: &'static [f64],
    buckets: Vec<Cell<u64>>,
    sum: Cell<f64>,
    count: Cell<u64>,
}

impl LocalHistogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> LocalHistogram {
        LocalHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| Cell::new(0)).collect(),
            sum: Cell::new(0.0),
            count: Cell::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|&b| b < v);
        if let Some(b) = self.buckets.get(i) {
            b.set(b.get() + 1);
        }
        self.sum.set(self.sum.get() + v);
        self.count.set(self.count.get() + 1);
    }

    /// The current values.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            buckets: self.buckets.iter().map(Cell::get).collect(),
            sum: self.sum.get(),
            count: self.count.get(),
        }
    }
}

/// A histogram's values, sendable across shards and summable.
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    bounds: &'static [f64],
    buckets: Vec<u64>,
    /// Sum of observed values.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl HistogramSnapshot {
    /// A snapshot of a storage latency histogram (same bounds, µs turned into seconds).
    pub fn from_counts(c: &ramjet_storage::LatencyCounts) -> HistogramSnapshot {
        const _: () =
            assert!(ramjet_storage::LATENCY_BOUNDS_US.len() == LATENCY_BOUNDS_SECONDS.len());
        HistogramSnapshot {
            bounds: &LATENCY_BOUNDS_SECONDS,
            buckets: c.buckets.to_vec(),
            sum: c.sum_us as f64 / 1e6,
            count: c.count,
        }
    }

    /// Adds `other` (same bounds) into `self`.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.buckets.is_empty() {
            *self = other.clone();
            return;
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// `(upper bound, count in bucket)` pairs, +Inf last, as the encoder wants them.
    pub(super) fn pairs(&self) -> Vec<(f64, u64)> {
        let bounds = self.bounds.iter().copied().chain(std::iter::once(f64::INFINITY));
        bounds.zip(self.buckets.iter().copied()).collect()
    }

    /// The value under which `q` (0..1) of the observations fall, by bucket upper bound.
    pub fn quantile(&self, q: f64) -> f64 {
        let target = (self.count as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (bound, n) in self.pairs() {
            seen += n;
            if seen >= target.max(1) {
                return bound;
            }
        }
        0.0
    }
}
