//! A shard's counters (`ShardMetrics`): per-code requests, per-topic puts and per-(topic,
//! group) gets, latency histograms, and the rate samples behind per-minute rates.
//!
//! Bounded whatever clients send: a series is created only by [`super::series`] for a
//! validated request on a topic (and group) the broker knows, at most
//! [`ShardMetrics::series_budget`] of them per shard; everything else counts in one folded
//! series per family (label [`OTHER`]). Request codes outside the request table fold into
//! one code ([`UNKNOWN_CODE`]). Rate samples hold counter values in a fixed ring per series,
//! never copies of keys.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;

/// Label value of the folded series: counts of topics or groups that have no series of
/// their own. `~` is outside the topic and group name alphabet, so no real name collides.
pub const OTHER: &str = "~other";

/// Request code under which codes outside the request table are counted (rendered
/// `code="other"`).
pub const UNKNOWN_CODE: i32 = i32::MIN;

/// Rate samples kept per series: the one-minute window needs samples up to 60 s plus one
/// [`SAMPLE_INTERVAL`] old.
const SERIES_SAMPLES: usize = 8;

/// Counters of one series (a topic's puts, or a (topic, group)'s gets).
#[derive(Debug, Default)]
pub struct Series {
    /// Messages counted.
    pub messages: Cell<u64>,
    /// Bytes counted (request body bytes for puts, record bytes for gets).
    pub bytes: Cell<u64>,
    /// Sequence number of the first rate sample taken after the series was created.
    born: u64,
    /// `messages` at sample `seq`, at index `seq % SERIES_SAMPLES`.
    ring: Cell<[u64; SERIES_SAMPLES]>,
}

impl Series {
    fn new(born: u64) -> Series {
        Series { born, ..Series::default() }
    }

    /// Adds `messages` and `bytes`.
    pub fn add(&self, messages: u64, bytes: u64) {
        self.messages.set(self.messages.get() + messages);
        self.bytes.set(self.bytes.get() + bytes);
    }

    /// `messages` at sample `seq`; 0 for samples taken before the series existed.
    fn at(&self, seq: u64) -> u64 {
        if seq < self.born {
            0
        } else {
            self.ring.get()[(seq % SERIES_SAMPLES as u64) as usize]
        }
    }

    fn record(&self, seq: u64) {
        let mut ring = self.ring.get();
        ring[(seq % SERIES_SAMPLES as u64) as usize] = self.messages.get();
        self.ring.set(ring);
    }
}

/// Put counters of one topic.
pub type PutCounters = Series;
/// Get counters of one (topic, group).
pub type GetCounters = Series;

/// One rate sample of the shard's totals.
#[derive(Debug, Clone, Copy)]
struct Mark {
    seq: u64,
    at: Instant,
    put_messages: u64,
    get_messages: u64,
}

/// How often [`background_loop`] samples the totals.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Samples of the totals kept: 10 minutes and one.
const SAMPLES_MAX: usize = 61;

/// One shard's metrics.
///
/// Lives on: every shard.
#[derive(Debug)]
pub struct ShardMetrics {
    pub(super) puts: RefCell<HashMap<String, Rc<Series>>>,
    pub(super) gets: RefCell<HashMap<String, HashMap<String, Rc<Series>>>>,
    /// Puts of topics without a series of their own.
    pub(super) put_other: Rc<Series>,
    /// Gets of (topic, group)s without a series of their own.
    pub(super) get_other: Rc<Series>,
    /// Series in `puts` and `gets` together.
    pub(super) series: Cell<usize>,
    /// Messages stored since start (every put, folded or not).
    put_total: Cell<u64>,
    /// Request body bytes of the stored sends since start.
    put_bytes_total: Cell<u64>,
    /// Messages pulled since start.
    get_total: Cell<u64>,
    pub(super) requests: RefCell<HashMap<(i32, i32), u64>>,
    /// Send (10/310/320) latency as seen by the accepting shard, seconds.
    pub send_latency: LocalHistogram,
    /// Pull (11) latency as seen by the accepting shard, seconds (holds included).
    pub pull_latency: LocalHistogram,
    /// Records per append (a batch send is one append).
    pub append_records: LocalHistogram,
    /// Pulls parked by long polling.
    pub long_poll_holds: Cell<u64>,
    /// Client requests this shard forwarded to the owner shard (a cross-shard hop).
    pub forwarded: Cell<u64>,
    marks: RefCell<VecDeque<Mark>>,
    /// Sequence number of the next rate sample.
    next_seq: Cell<u64>,
    /// When the shard started, for `runtime`.
    pub started: Instant,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            puts: RefCell::default(),
            gets: RefCell::default(),
            put_other: Rc::default(),
            get_other: Rc::default(),
            series: Cell::new(0),
            put_total: Cell::new(0),
            put_bytes_total: Cell::new(0),
            get_total: Cell::new(0),
            requests: RefCell::default(),
            send_latency: LocalHistogram::new(&LATENCY_BOUNDS_SECONDS),
            pull_latency: LocalHistogram::new(&LATENCY_BOUNDS_SECONDS),
            append_records: LocalHistogram::new(&BATCH_BOUNDS_RECORDS),
            long_poll_holds: Cell::new(0),
            forwarded: Cell::new(0),
            marks: RefCell::default(),
            next_seq: Cell::new(0),
            started: Instant::now(),
        }
    }
}

impl ShardMetrics {
    /// The put series of `topic`, if it has one (no allocation).
    pub fn put_series(&self, topic: &str) -> Option<Rc<Series>> {
        self.puts.borrow().get(topic).cloned()
    }

    /// The get series of `(topic, group)`, if it has one (no allocation).
    pub fn get_series(&self, topic: &str, group: &str) -> Option<Rc<Series>> {
        self.gets.borrow().get(topic).and_then(|g| g.get(group)).cloned()
    }

    /// Creates the put series of `topic` (the caller checked that the topic exists and
    /// that the budget allows one more series).
    pub(super) fn insert_put(&self, topic: &str) -> Rc<Series> {
        let mut puts = self.puts.borrow_mut();
        if let Some(s) = puts.get(topic) {
            return s.clone();
        }
        let s = Rc::new(Series::new(self.next_seq.get()));
        puts.insert(topic.to_string(), s.clone());
        self.series.set(self.series.get() + 1);
        s
    }

    /// Creates the get series of `(topic, group)` (checked as [`Self::insert_put`]).
    pub(super) fn insert_get(&self, topic: &str, group: &str) -> Rc<Series> {
        let mut gets = self.gets.borrow_mut();
        let groups = gets.entry(topic.to_string()).or_default();
        if let Some(s) = groups.get(group) {
            return s.clone();
        }
        let s = Rc::new(Series::new(self.next_seq.get()));
        groups.insert(group.to_string(), s.clone());
        self.series.set(self.series.get() + 1);
        s
    }

    /// Counts stored messages in `series` (or the folded series).
    pub fn count_put(&self, series: Option<&Series>, messages: u64, bytes: u64) {
        series.unwrap_or(&self.put_other).add(messages, bytes);
        self.put_total.set(self.put_total.get() + messages);
        self.put_bytes_total.set(self.put_bytes_total.get() + bytes);
    }

    /// Counts pulled messages in `series` (or the folded series).
    pub fn count_get(&self, series: Option<&Series>, messages: u64, bytes: u64) {
        series.unwrap_or(&self.get_other).add(messages, bytes);
        self.get_total.set(self.get_total.get() + messages);
    }

    /// Messages stored, their bytes, and messages pulled since start, folded and removed
    /// series included.
    pub fn totals(&self) -> (u64, u64, u64) {
        (self.put_total.get(), self.put_bytes_total.get(), self.get_total.get())
    }

    /// Drops the series `keep_put` / `keep_get` reject (their topic or group is gone).
    pub(super) fn retain(
        &self,
        keep_put: impl Fn(&str) -> bool,
        keep_get: impl Fn(&str, &str) -> bool,
    ) {
        let mut puts = self.puts.borrow_mut();
        puts.retain(|t, _| keep_put(t));
        let mut gets = self.gets.borrow_mut();
        gets.retain(|t, groups| {
            groups.retain(|g, _| keep_get(t, g));
            !groups.is_empty()
        });
        self.series.set(puts.len() + gets.values().map(HashMap::len).sum::<usize>());
    }

    /// Counts one request and its response code (`-1`: no response, one-way). `known`:
    /// the code is in the request table; other codes count under [`UNKNOWN_CODE`].
    pub fn count_request(&self, code: i32, known: bool, response_code: i32) {
        let code = if known { code } else { UNKNOWN_CODE };
        *self.requests.borrow_mut().entry((code, response_code)).or_default() += 1;
    }

    /// A pull was parked (long polling).
    pub fn long_poll_parked(&self) {
        self.long_poll_holds.set(self.long_poll_holds.get() + 1);
    }

    fn mark_now(&self) -> Mark {
        Mark {
            seq: self.next_seq.get(),
            at: Instant::now(),
            put_messages: self.put_total.get(),
            get_messages: self.get_total.get(),
        }
    }

    /// Takes a rate sample now: the totals, and each series' counter into its ring.
    pub fn sample(&self) {
        let mark = self.mark_now();
        for s in self.puts.borrow().values() {
            s.record(mark.seq);
        }
        for s in self.gets.borrow().values().flat_map(HashMap::values) {
            s.record(mark.seq);
        }
        self.next_seq.set(mark.seq + 1);
        let mut marks = self.marks.borrow_mut();
        marks.push_back(mark);
        while marks.len() > SAMPLES_MAX {
            marks.pop_front();
        }
    }

    /// The oldest sample no older than `window` plus one interval (else the oldest kept)
    /// among those `usable` accepts.
    fn base(&self, now: Instant, window: Duration, usable: impl Fn(&Mark) -> bool) -> Option<Mark> {
        let marks = self.marks.borrow();
        let mut candidates = marks.iter().filter(|m| usable(m));
        let first = candidates.clone().next().copied();
        candidates.find(|m| now.duration_since(m.at) <= window + SAMPLE_INTERVAL).copied().or(first)
    }

    /// Per second growth of `value` from `base` to `now`.
    fn per_second(
        now: Instant,
        base: Option<Mark>,
        value_now: u64,
        value_at: impl Fn(&Mark) -> u64,
    ) -> f64 {
        let Some(b) = base else { return 0.0 };
        let secs = now.duration_since(b.at).as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            value_now.saturating_sub(value_at(&b)) as f64 / secs
        }
    }

    /// Rates of this shard for the runtime-info windows.
    pub fn rates(&self) -> Rates {
        let now = Instant::now();
        let w = [Duration::from_secs(10), Duration::from_secs(60), Duration::from_secs(600)];
        let base = w.map(|d| self.base(now, d, |_| true));
        Rates {
            put: base.map(|b| Self::per_second(now, b, self.put_total.get(), |m| m.put_messages)),
            get: base.map(|b| Self::per_second(now, b, self.get_total.get(), |m| m.get_messages)),
        }
    }

    /// Messages per second of one topic's puts (`topic`) or one group's gets
    /// (`topic@group`) over the last minute; 0 for a key without a series.
    pub fn key_rate(&self, put: bool, key: &str) -> f64 {
        let Some(series) = self.series_of(put, key) else { return 0.0 };
        let now = Instant::now();
        let next = self.next_seq.get();
        let in_ring = |m: &Mark| m.seq + SERIES_SAMPLES as u64 >= next;
        let base = self.base(now, Duration::from_secs(60), in_ring);
        Self::per_second(now, base, series.messages.get(), |m| series.at(m.seq))
    }

    fn series_of(&self, put: bool, key: &str) -> Option<Rc<Series>> {
        if put {
            self.put_series(key)
        } else {
            let (topic, group) = key.split_once('@')?;
            self.get_series(topic, group)
        }
    }

    /// Totals of a key since its series was created: `(messages, bytes)`.
    pub fn key_totals(&self, put: bool, key: &str) -> (u64, u64) {
        self.series_of(put, key).map_or((0, 0), |s| (s.messages.get(), s.bytes.get()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_hold_counter_values_and_rates_come_from_them() {
        let m = ShardMetrics::default();
        let s = m.insert_put("t");
        m.count_put(Some(&s), 5, 50);
        m.sample();
        m.count_put(Some(&s), 7, 70);
        m.count_put(None, 1, 10);
        assert_eq!(s.at(0), 5);
        assert_eq!(m.key_totals(true, "t"), (12, 120));
        assert_eq!(m.totals(), (13, 130, 0));
        assert_eq!(m.put_other.messages.get(), 1);
        assert!(m.key_rate(true, "t") > 0.0);
        assert_eq!(m.key_rate(true, "nope"), 0.0);
        // A series created after sample 0 reads 0 there.
        let g = m.insert_get("t", "g");
        assert_eq!(g.at(0), 0);
        for _ in 0..100 {
            m.sample();
        }
        assert_eq!(m.marks.borrow().len(), SAMPLES_MAX);
        assert_eq!(s.at(m.next_seq.get() - 1), 12);
    }

    #[test]
    fn retain_drops_series_and_recounts() {
        let m = ShardMetrics::default();
        m.insert_put("a");
        m.insert_put("b");
        m.insert_get("a", "g1");
        m.insert_get("b", "g2");
        assert_eq!(m.series.get(), 4);
        m.retain(|t| t == "a", |t, g| t == "a" && g == "g1");
        assert_eq!(m.series.get(), 2);
        assert!(m.put_series("b").is_none());
        assert!(m.get_series("b", "g2").is_none());
        assert!(m.gets.borrow().get("b").is_none(), "an empty topic entry goes too");
    }

    #[test]
    fn unknown_request_codes_fold_into_one() {
        let m = ShardMetrics::default();
        for code in 100_000..100_500 {
            m.count_request(code, false, 3);
        }
        m.count_request(10, true, 0);
        assert_eq!(m.requests.borrow().len(), 2);
        assert_eq!(m.requests.borrow()[&(UNKNOWN_CODE, 3)], 500);
    }
}
