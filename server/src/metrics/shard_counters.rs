//! A shard's counters (`ShardMetrics`): per-code requests, per-topic puts and gets, latency
//! histograms, and the rate samples behind per-minute rates.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;

/// Put counters of one topic.
#[derive(Debug, Default)]
pub struct PutCounters {
    /// Messages stored.
    pub messages: Cell<u64>,
    /// Request body bytes received for them.
    pub bytes: Cell<u64>,
}

/// Get counters of one (topic, group).
#[derive(Debug, Default)]
pub struct GetCounters {
    /// Messages returned by pulls.
    pub messages: Cell<u64>,
    /// Record bytes returned.
    pub bytes: Cell<u64>,
}

/// Sampled totals for rate windows (putTps/getTransferedTps over 10 s, 1 min, 10 min).
#[derive(Debug, Default, Clone)]
struct Sample {
    at: Option<Instant>,
    put_messages: u64,
    get_messages: u64,
    put_by_topic: HashMap<String, u64>,
    get_by_key: HashMap<String, u64>,
}

/// How often [`background_loop`] samples the totals.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Samples kept: 10 minutes and one.
const SAMPLES_MAX: usize = 61;

/// One shard's metrics.
///
/// Lives on: every shard.
#[derive(Debug)]
pub struct ShardMetrics {
    pub(super) puts: RefCell<HashMap<String, Rc<PutCounters>>>,
    pub(super) gets: RefCell<HashMap<String, HashMap<String, Rc<GetCounters>>>>,
    pub(super) requests: RefCell<HashMap<(i32, i32), u64>>,
    /// Send (10/310/320) latency as seen by the accepting shard, seconds.
    pub send_latency: LocalHistogram,
    /// Pull (11) latency as seen by the accepting shard, seconds (holds included).
    pub pull_latency: LocalHistogram,
    /// Records per append (a batch send is one append).
    pub append_records: LocalHistogram,
    /// Pulls parked by long polling.
    pub long_poll_holds: Cell<u64>,
    samples: RefCell<std::collections::VecDeque<Sample>>,
    /// When the shard started, for `runtime`.
    pub started: Instant,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            puts: RefCell::default(),
            gets: RefCell::default(),
            requests: RefCell::default(),
            send_latency: LocalHistogram::new(&LATENCY_BOUNDS_SECONDS),
            pull_latency: LocalHistogram::new(&LATENCY_BOUNDS_SECONDS),
            append_records: LocalHistogram::new(&BATCH_BOUNDS_RECORDS),
            long_poll_holds: Cell::new(0),
            samples: RefCell::default(),
            started: Instant::now(),
        }
    }
}

impl ShardMetrics {
    /// The put counters of `topic` (created on first use; no allocation afterwards).
    pub fn put_slot(&self, topic: &str) -> Rc<PutCounters> {
        if let Some(s) = self.puts.borrow().get(topic) {
            return s.clone();
        }
        self.puts.borrow_mut().entry(topic.to_string()).or_default().clone()
    }

    /// The get counters of `(topic, group)`.
    pub fn get_slot(&self, topic: &str, group: &str) -> Rc<GetCounters> {
        if let Some(s) = self.gets.borrow().get(topic).and_then(|g| g.get(group)) {
            return s.clone();
        }
        let mut gets = self.gets.borrow_mut();
        gets.entry(topic.to_string()).or_default().entry(group.to_string()).or_default().clone()
    }

    /// Counts one request and its response code (`-1`: no response, one-way).
    pub fn count_request(&self, code: i32, response_code: i32) {
        *self.requests.borrow_mut().entry((code, response_code)).or_default() += 1;
    }

    /// A pull was parked (long polling).
    pub fn long_poll_parked(&self) {
        self.long_poll_holds.set(self.long_poll_holds.get() + 1);
    }

    fn totals(&self) -> Sample {
        let put_by_topic: HashMap<String, u64> =
            self.puts.borrow().iter().map(|(t, c)| (t.clone(), c.messages.get())).collect();
        let mut get_by_key = HashMap::new();
        for (topic, groups) in self.gets.borrow().iter() {
            for (group, c) in groups {
                get_by_key.insert(format!("{topic}@{group}"), c.messages.get());
            }
        }
        Sample {
            at: Some(Instant::now()),
            put_messages: put_by_topic.values().sum(),
            get_messages: get_by_key.values().sum(),
            put_by_topic,
            get_by_key,
        }
    }

    /// Takes a rate sample now.
    pub fn sample(&self) {
        let s = self.totals();
        let mut samples = self.samples.borrow_mut();
        samples.push_back(s);
        while samples.len() > SAMPLES_MAX {
            samples.pop_front();
        }
    }

    /// Messages per second over roughly `window`, from the samples and the current totals.
    fn rate(&self, window: Duration, value: impl Fn(&Sample) -> u64) -> f64 {
        let now = self.totals();
        let samples = self.samples.borrow();
        let Some(now_at) = now.at else { return 0.0 };
        let base = samples
            .iter()
            .find(|s| s.at.is_some_and(|t| now_at.duration_since(t) <= window + SAMPLE_INTERVAL))
            .or(samples.front());
        match base.and_then(|b| b.at.map(|t| (b, t))) {
            Some((b, t)) => {
                let secs = now_at.duration_since(t).as_secs_f64();
                if secs <= 0.0 {
                    0.0
                } else {
                    value(&now).saturating_sub(value(b)) as f64 / secs
                }
            }
            None => 0.0,
        }
    }

    /// Rates of this shard for the runtime-info windows.
    pub fn rates(&self) -> Rates {
        let w = [Duration::from_secs(10), Duration::from_secs(60), Duration::from_secs(600)];
        Rates {
            put: w.map(|d| self.rate(d, |s| s.put_messages)),
            get: w.map(|d| self.rate(d, |s| s.get_messages)),
        }
    }

    /// Messages per second of one topic's puts (`topic`) or one group's gets
    /// (`topic@group`) over the last minute.
    pub fn key_rate(&self, put: bool, key: &str) -> f64 {
        self.rate(Duration::from_secs(60), |s| {
            let m = if put { &s.put_by_topic } else { &s.get_by_key };
            m.get(key).copied().unwrap_or(0)
        })
    }

    /// Totals of a key since start: `(messages, bytes)`.
    pub fn key_totals(&self, put: bool, key: &str) -> (u64, u64) {
        if put {
            self.puts.borrow().get(key).map_or((0, 0), |c| (c.messages.get(), c.bytes.get()))
        } else {
            let Some((topic, group)) = key.split_once('@') else { return (0, 0) };
            let gets = self.gets.borrow();
            gets.get(topic)
                .and_then(|g| g.get(group))
                .map_or((0, 0), |c| (c.messages.get(), c.bytes.get()))
        }
    }
}

/// Per-second rates over 10 s, 1 min and 10 min.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    /// Messages stored per second.
    pub put: [f64; 3],
    /// Messages pulled per second.
    pub get: [f64; 3],
}

impl Rates {
    /// Adds another shard's rates.
    pub fn merge(&mut self, o: &Rates) {
        for i in 0..3 {
            self.put[i] += o.put[i];
            self.get[i] += o.get[i];
        }
    }
}
