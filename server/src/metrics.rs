//! Per-shard metrics: counters and histograms kept in `Cell`s on the shard that counts
//! them, gathered into one Prometheus text page on demand.
//!
//! Lives on: every shard (`ShardMetrics` is a field of [`Shard`]). Nothing here is shared:
//! the data path bumps plain `Cell`s (no atomics, no locks); a scrape asks every shard
//! for a [`ShardSnapshot`] over the shard channels (`ShardMsg::Ops`) and encodes the sum
//! with `prometheus-client` ([`render`]).
//!
//! ```text
//!  request ──▶ BrokerService::call ──▶ RequestProbe::start ── dispatch ── finish
//!                                         (topic slot Rc)                │
//!                              ShardMetrics (Cells, per shard) ◀─────────┘
//!  GET /metrics (shard 0) ──▶ gather(Ops::Metrics) ──▶ ShardSnapshot × shards ──▶ render
//! ```
//!
//! What is counted where: requests, put and get counts and latencies on the shard that
//! holds the client connection (a forwarded request is counted once, with the forward
//! included in its latency); storage counters, consumer lag and queue offsets on the shard
//! that owns the log. A pull's latency includes its long-poll hold, if it was held.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use ramjet_proto::codes::{request, response};
use ramjet_proto::Header;

use crate::handler::table::Stats;
use crate::net::connection::Response;
use crate::shard::Shard;

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
    fn pairs(&self) -> Vec<(f64, u64)> {
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
    puts: RefCell<HashMap<String, Rc<PutCounters>>>,
    gets: RefCell<HashMap<String, HashMap<String, Rc<GetCounters>>>>,
    requests: RefCell<HashMap<(i32, i32), u64>>,
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

/// What one request needs counted when its response is known.
///
/// Created on the accepting shard before dispatch; holds only `Rc`s to counter slots, no
/// borrows, so it may live across the request's awaits.
pub struct RequestProbe {
    code: i32,
    stats: Stats,
    started: Instant,
    oneway: bool,
    body_bytes: u64,
    put: Option<Rc<PutCounters>>,
    get: Option<Rc<GetCounters>>,
}

/// How the request table says `code` is counted.
fn stats_of(code: i32) -> Stats {
    crate::handler::table::entry(code).map_or(Stats::Other, |e| e.stats)
}

impl RequestProbe {
    /// Starts timing `header`'s request.
    pub fn start(shard: &Shard, header: &Header, body_bytes: usize) -> RequestProbe {
        let code = header.code;
        let ext = &header.ext_fields;
        let stats = stats_of(code);
        let put = if stats == Stats::Put {
            let topic = if code == request::SEND_MESSAGE { ext.get("topic") } else { ext.get("b") };
            topic.map(|t| shard.metrics.put_slot(t))
        } else {
            None
        };
        let get = if stats == Stats::Get {
            match (ext.get("topic"), ext.get("consumerGroup")) {
                (Some(t), Some(g)) => Some(shard.metrics.get_slot(t, g)),
                _ => None,
            }
        } else {
            None
        };
        RequestProbe {
            code,
            stats,
            started: Instant::now(),
            oneway: header.is_oneway(),
            body_bytes: body_bytes as u64,
            put,
            get,
        }
    }

    /// Counts the request with its response.
    pub fn finish(self, shard: &Shard, response: Option<&Response>) {
        let m = &shard.metrics;
        let elapsed = self.started.elapsed().as_secs_f64();
        let code = response.map_or(-1, |r| r.header.code);
        m.count_request(self.code, code);
        if self.stats == Stats::Put {
            m.send_latency.observe(elapsed);
            let stored = response.is_some_and(|r| stored_code(r.header.code)) || self.oneway;
            if let (Some(put), true) = (&self.put, stored) {
                let records = response
                    .and_then(|r| r.header.ext_fields.get("msgId"))
                    .map_or(1, |ids| ids.split(',').count() as u64);
                put.messages.set(put.messages.get() + records);
                put.bytes.set(put.bytes.get() + self.body_bytes);
                m.append_records.observe(records as f64);
            }
        } else if self.stats == Stats::Get {
            m.pull_latency.observe(elapsed);
            if let (Some(get), Some(r)) = (&self.get, response) {
                if r.header.code == response::SUCCESS {
                    get.messages.set(get.messages.get() + count_records(&r.body));
                    get.bytes.set(get.bytes.get() + r.body.len() as u64);
                }
            }
        }
    }
}

/// Send codes under which the message was stored: SUCCESS and the reference's
/// FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT and SLAVE_NOT_AVAILABLE (stored on the master).
fn stored_code(code: i32) -> bool {
    matches!(
        code,
        response::SUCCESS
            | response::FLUSH_DISK_TIMEOUT
            | response::FLUSH_SLAVE_TIMEOUT
            | response::SLAVE_NOT_AVAILABLE
    )
}

/// Number of stored records back to back in a pull body (walks TOTALSIZE fields).
pub fn count_records(body: &[u8]) -> u64 {
    let mut n = 0;
    let mut at = 0usize;
    while let Some(size) = body.get(at..at + 4) {
        let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        if size <= 0 {
            break;
        }
        n += 1;
        at += size as usize;
    }
    n
}

// ---------------------------------------------------------------------------------------
// Snapshots: what a shard sends back for a scrape.

/// One commit log's state.
#[derive(Debug, Clone)]
pub struct LogSnapshot {
    /// Log id.
    pub log: u32,
    /// Storage counters since open.
    pub stats: ramjet_storage::LogStats,
    /// Bytes appended but not yet fdatasynced (the commit pipeline's depth).
    pub unflushed_bytes: i64,
    /// Position within the log of the next append.
    pub end_position: u64,
    /// The log refuses appends after a failed fdatasync.
    pub poisoned: bool,
}

/// A group's position on one queue.
#[derive(Debug, Clone)]
pub struct LagSnapshot {
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// The queue's max offset.
    pub broker_offset: i64,
    /// The group's committed offset.
    pub consumer_offset: i64,
}

/// Everything one shard reports for a scrape. `Send`: plain owned data.
#[derive(Debug, Clone, Default)]
pub struct ShardSnapshot {
    /// Shard id.
    pub shard: usize,
    /// (topic, messages, bytes).
    pub puts: Vec<(String, u64, u64)>,
    /// (topic, group, messages, bytes).
    pub gets: Vec<(String, String, u64, u64)>,
    /// (request code, response code, count).
    pub requests: Vec<(i32, i32, u64)>,
    /// Send latency.
    pub send_latency: HistogramSnapshot,
    /// Pull latency.
    pub pull_latency: HistogramSnapshot,
    /// Records per append.
    pub append_records: HistogramSnapshot,
    /// Parked pulls since start.
    pub long_poll_holds: u64,
    /// Client connections held by the shard.
    pub connections: usize,
    /// Owned logs.
    pub logs: Vec<LogSnapshot>,
    /// Consumer positions on owned queues.
    pub lags: Vec<LagSnapshot>,
    /// (topic, sum of max offsets of owned queues).
    pub topic_offsets: Vec<(String, i64)>,
    /// Rate windows.
    pub rates: Rates,
    /// Master: (slave address, bytes of this shard's logs the slave does not hold yet).
    pub replication_lag: Vec<(String, u64)>,
}

/// Takes this shard's snapshot.
pub fn snapshot(shard: &Shard) -> ShardSnapshot {
    let m = &shard.metrics;
    let puts =
        m.puts.borrow().iter().map(|(t, c)| (t.clone(), c.messages.get(), c.bytes.get())).collect();
    let mut gets = Vec::new();
    for (t, groups) in m.gets.borrow().iter() {
        for (g, c) in groups {
            gets.push((t.clone(), g.clone(), c.messages.get(), c.bytes.get()));
        }
    }
    let requests = m.requests.borrow().iter().map(|(&(c, r), &n)| (c, r, n)).collect();
    let logs = shard
        .logs
        .iter()
        .map(|(&log, s)| {
            let end = s.end_log_offset();
            LogSnapshot {
                log,
                stats: s.stats(),
                unflushed_bytes: (end - s.flushed_log_offset()).max(0),
                end_position: ramjet_storage::split_log_offset(end).map_or(0, |(_, p)| p),
                poisoned: s.poison_reason().is_some(),
            }
        })
        .collect();
    ShardSnapshot {
        shard: shard.id,
        puts,
        gets,
        requests,
        send_latency: m.send_latency.snapshot(),
        pull_latency: m.pull_latency.snapshot(),
        append_records: m.append_records.snapshot(),
        long_poll_holds: m.long_poll_holds.get(),
        connections: shard.connections.borrow().len(),
        logs,
        lags: lags(shard),
        topic_offsets: topic_offsets(shard),
        rates: m.rates(),
        replication_lag: shard.replica.lag_bytes(shard),
    }
}

fn lags(shard: &Shard) -> Vec<LagSnapshot> {
    let entries = shard.offsets.borrow().all();
    entries
        .into_iter()
        .filter_map(|(key, queue_id, consumer_offset)| {
            let (topic, group) = key.split_once('@')?;
            let store = shard.store_for(topic, queue_id)?;
            Some(LagSnapshot {
                group: group.to_string(),
                topic: topic.to_string(),
                queue_id,
                broker_offset: store.max_offset(topic, queue_id),
                consumer_offset,
            })
        })
        .collect()
}

fn topic_offsets(shard: &Shard) -> Vec<(String, i64)> {
    let table = shard.topic_table();
    let mut out = Vec::new();
    for (topic, config) in &table.topics {
        let mut sum = 0;
        for q in 0..config.write_queue_nums.max(config.read_queue_nums) {
            if let Some(s) = shard.store_for(topic, q) {
                sum += s.max_offset(topic, q);
            }
        }
        out.push((topic.clone(), sum));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Rendering.

/// Broker-wide facts shown beside the shard snapshots.
#[derive(Debug, Clone, Default)]
pub struct BrokerFacts {
    /// Cluster name.
    pub cluster: String,
    /// Broker name.
    pub broker_name: String,
    /// Broker id.
    pub broker_id: i64,
    /// Disk capacity of the store's filesystem, bytes.
    pub disk_total_bytes: u64,
    /// Free bytes there.
    pub disk_free_bytes: u64,
    /// Bytes of commit-log segments on disk.
    pub commitlog_bytes: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// The disk ratio past which the broker warns (diskMaxUsedSpaceRatio / 100).
    pub disk_ratio_max: f64,
    /// Seconds since start.
    pub uptime_seconds: f64,
}

#[derive(Debug)]
struct Page {
    facts: BrokerFacts,
    shards: Vec<ShardSnapshot>,
}

/// Encodes the scrape page (Prometheus text format 0.0.4).
pub fn render(facts: BrokerFacts, shards: Vec<ShardSnapshot>) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Page { facts, shards }));
    let mut out = String::new();
    // Writing into a String cannot fail; a collector error would leave a partial page.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Enc<'a> = DescriptorEncoder<'a>;

fn counter<L: prometheus_client::encoding::EncodeLabelSet>(
    e: &mut Enc<'_>,
    name: &str,
    help: &str,
    rows: &[(L, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge<L: prometheus_client::encoding::EncodeLabelSet>(
    e: &mut Enc<'_>,
    name: &str,
    help: &str,
    rows: &[(L, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn histogram<L: prometheus_client::encoding::EncodeLabelSet>(
    e: &mut Enc<'_>,
    name: &str,
    help: &str,
    rows: &[(L, &HistogramSnapshot)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in rows {
        m.encode_family(labels)?.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum,
            h.count,
            &h.pairs(),
            None,
        )?;
    }
    Ok(())
}

type L1 = [(&'static str, String); 1];
type L2 = [(&'static str, String); 2];
type L3 = [(&'static str, String); 3];

impl Collector for Page {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_broker(&mut e)?;
        self.encode_traffic(&mut e)?;
        self.encode_storage(&mut e)?;
        self.encode_consumers(&mut e)
    }
}

fn shard_label(s: &ShardSnapshot) -> L1 {
    [("shard", s.shard.to_string())]
}

impl Page {
    fn encode_broker(&self, e: &mut Enc<'_>) -> Result<(), std::fmt::Error> {
        let f = &self.facts;
        let info: [(&'static str, String); 4] = [
            ("cluster", f.cluster.clone()),
            ("broker", f.broker_name.clone()),
            ("broker_id", f.broker_id.to_string()),
            ("version", env!("CARGO_PKG_VERSION").to_string()),
        ];
        gauge(e, "ramjet_broker_info", "Broker identity (value 1).", &[(info, 1.0)])?;
        gauge(
            e,
            "ramjet_uptime_seconds",
            "Seconds since the broker started.",
            &[([] as [(&str, String); 0], f.uptime_seconds)],
        )?;
        let conns: Vec<(L1, f64)> =
            self.shards.iter().map(|s| (shard_label(s), s.connections as f64)).collect();
        gauge(e, "ramjet_connections", "Client connections held, per shard.", &conns)?;
        let holds: Vec<(L1, u64)> =
            self.shards.iter().map(|s| (shard_label(s), s.long_poll_holds)).collect();
        counter(e, "ramjet_long_poll_holds", "Pulls parked by long polling.", &holds)?;
        let mut req: BTreeMap<(i32, i32), u64> = BTreeMap::new();
        for s in &self.shards {
            for &(c, r, n) in &s.requests {
                *req.entry((c, r)).or_default() += n;
            }
        }
        let rows: Vec<(L2, u64)> = req
            .into_iter()
            .map(|((c, r), n)| {
                let r = if r < 0 { "none".to_string() } else { r.to_string() };
                ([("code", c.to_string()), ("response_code", r)], n)
            })
            .collect();
        counter(
            e,
            "ramjet_requests",
            "Requests by request code and response code (none: one-way).",
            &rows,
        )
    }

    fn encode_traffic(&self, e: &mut Enc<'_>) -> Result<(), std::fmt::Error> {
        let mut puts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut gets: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for s in &self.shards {
            for (t, m, b) in &s.puts {
                let x = puts.entry(t.as_str()).or_default();
                x.0 += m;
                x.1 += b;
            }
            for (t, g, m, b) in &s.gets {
                let x = gets.entry((t.as_str(), g.as_str())).or_default();
                x.0 += m;
                x.1 += b;
            }
        }
        let pm: Vec<(L1, u64)> =
            puts.iter().map(|(t, v)| ([("topic", t.to_string())], v.0)).collect();
        let pb: Vec<(L1, u64)> =
            puts.iter().map(|(t, v)| ([("topic", t.to_string())], v.1)).collect();
        counter(e, "ramjet_put_messages", "Messages stored, per topic.", &pm)?;
        counter(e, "ramjet_put_bytes", "Send request body bytes stored, per topic.", &pb)?;
        let tg = |t: &str, g: &str| [("topic", t.to_string()), ("group", g.to_string())];
        let gm: Vec<(L2, u64)> = gets.iter().map(|((t, g), v)| (tg(t, g), v.0)).collect();
        let gb: Vec<(L2, u64)> = gets.iter().map(|((t, g), v)| (tg(t, g), v.1)).collect();
        counter(e, "ramjet_get_messages", "Messages returned by pulls, per topic and group.", &gm)?;
        counter(
            e,
            "ramjet_get_bytes",
            "Record bytes returned by pulls, per topic and group.",
            &gb,
        )?;
        let mut send = HistogramSnapshot::default();
        let mut pull = HistogramSnapshot::default();
        for s in &self.shards {
            send.merge(&s.send_latency);
            pull.merge(&s.pull_latency);
        }
        let none: [(&str, String); 0] = [];
        histogram(
            e,
            "ramjet_send_latency_seconds",
            "Send request latency.",
            &[(none.clone(), &send)],
        )?;
        histogram(
            e,
            "ramjet_pull_latency_seconds",
            "Pull request latency (long-poll holds included).",
            &[(none, &pull)],
        )
    }

    fn encode_storage(&self, e: &mut Enc<'_>) -> Result<(), std::fmt::Error> {
        let f = &self.facts;
        let mut lag: Vec<(L1, f64)> = Vec::new();
        for (slave, bytes) in self.shards.iter().flat_map(|s| s.replication_lag.iter()) {
            match lag.iter_mut().find(|(l, _)| l[0].1 == *slave) {
                Some((_, total)) => *total += *bytes as f64,
                None => lag.push(([("slave", slave.clone())], *bytes as f64)),
            }
        }
        gauge(
            e,
            "ramjet_replication_lag_bytes",
            "Master: log bytes a connected slave does not hold yet, summed over the logs.",
            &lag,
        )?;
        let mut write = Vec::new();
        let mut sync = Vec::new();
        for s in &self.shards {
            let (mut w, mut f) = (HistogramSnapshot::default(), HistogramSnapshot::default());
            for l in &s.logs {
                w.merge(&HistogramSnapshot::from_counts(&l.stats.write_latency));
                f.merge(&HistogramSnapshot::from_counts(&l.stats.fdatasync_latency));
            }
            write.push((shard_label(s), w));
            sync.push((shard_label(s), f));
        }
        let write_refs: Vec<(L1, &HistogramSnapshot)> =
            write.iter().map(|(l, h)| (l.clone(), h)).collect();
        let sync_refs: Vec<(L1, &HistogramSnapshot)> =
            sync.iter().map(|(l, h)| (l.clone(), h)).collect();
        histogram(
            e,
            "ramjet_storage_write_latency_seconds",
            "Commit-log segment write latency (one write per group commit), per shard.",
            &write_refs,
        )?;
        histogram(
            e,
            "ramjet_storage_fdatasync_latency_seconds",
            "Commit-log segment fdatasync latency, per shard.",
            &sync_refs,
        )?;
        let batch: Vec<(L1, &HistogramSnapshot)> =
            self.shards.iter().map(|s| (shard_label(s), &s.append_records)).collect();
        histogram(e, "ramjet_append_batch_records", "Records per append, per shard.", &batch)?;
        let logs: Vec<(L2, &LogSnapshot)> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.logs
                    .iter()
                    .map(move |l| ([("shard", s.shard.to_string()), ("log", l.log.to_string())], l))
            })
            .collect();
        let stat = |pick: fn(&LogSnapshot) -> u64| -> Vec<(L2, u64)> {
            logs.iter().map(|(lab, l)| (lab.clone(), pick(l))).collect()
        };
        counter(e, "ramjet_storage_appends", "Append calls accepted.", &stat(|l| l.stats.appends))?;
        counter(e, "ramjet_storage_records", "Records appended.", &stat(|l| l.stats.records))?;
        counter(
            e,
            "ramjet_storage_appended_bytes",
            "Record bytes appended.",
            &stat(|l| l.stats.bytes_appended),
        )?;
        counter(
            e,
            "ramjet_storage_writes",
            "Segment writes (group commits).",
            &stat(|l| l.stats.writes),
        )?;
        counter(
            e,
            "ramjet_storage_written_bytes",
            "Bytes written to segments.",
            &stat(|l| l.stats.bytes_written),
        )?;
        counter(
            e,
            "ramjet_storage_fdatasyncs",
            "fdatasync calls on segments.",
            &stat(|l| l.stats.fdatasyncs),
        )?;
        counter(
            e,
            "ramjet_storage_segments_created",
            "Segments created since start.",
            &stat(|l| l.stats.segments_created),
        )?;
        counter(
            e,
            "ramjet_storage_cache_reads",
            "Reads served from the tail cache.",
            &stat(|l| l.stats.cache_reads),
        )?;
        counter(
            e,
            "ramjet_storage_disk_reads",
            "Reads issued to segments.",
            &stat(|l| l.stats.disk_reads),
        )?;
        let g = |pick: fn(&LogSnapshot) -> f64| -> Vec<(L2, f64)> {
            logs.iter().map(|(lab, l)| (lab.clone(), pick(l))).collect()
        };
        gauge(
            e,
            "ramjet_commit_pipeline_bytes",
            "Bytes appended but not yet fdatasynced.",
            &g(|l| l.unflushed_bytes as f64),
        )?;
        gauge(
            e,
            "ramjet_commitlog_end_position_bytes",
            "Position of the next append in the log.",
            &g(|l| l.end_position as f64),
        )?;
        gauge(
            e,
            "ramjet_commitlog_poisoned",
            "1 when the log refuses appends after a failed fdatasync.",
            &g(|l| f64::from(u8::from(l.poisoned))),
        )?;
        let none: [(&str, String); 0] = [];
        let used = f.disk_total_bytes.saturating_sub(f.disk_free_bytes);
        let ratio =
            if f.disk_total_bytes == 0 { 0.0 } else { used as f64 / f.disk_total_bytes as f64 };
        gauge(
            e,
            "ramjet_disk_total_bytes",
            "Capacity of the store's filesystem.",
            &[(none.clone(), f.disk_total_bytes as f64)],
        )?;
        gauge(
            e,
            "ramjet_disk_free_bytes",
            "Free bytes on the store's filesystem.",
            &[(none.clone(), f.disk_free_bytes as f64)],
        )?;
        gauge(
            e,
            "ramjet_commitlog_disk_ratio",
            "Used fraction of the store's filesystem (RocketMQ's commitLogDiskRatio).",
            &[(none.clone(), ratio)],
        )?;
        gauge(
            e,
            "ramjet_disk_ratio_max",
            "diskMaxUsedSpaceRatio / 100: past it the broker warns and retention deletes.",
            &[(none.clone(), f.disk_ratio_max)],
        )?;
        gauge(
            e,
            "ramjet_commitlog_bytes",
            "Bytes of commit-log segments on disk.",
            &[(none.clone(), f.commitlog_bytes as f64)],
        )?;
        gauge(
            e,
            "ramjet_commitlog_segments",
            "Commit-log segment files on disk.",
            &[(none.clone(), f.segments as f64)],
        )?;
        // Declared for replication (slaves), which reports nothing yet.
        gauge(
            e,
            "ramjet_replication_lag_bytes",
            "Commit-log bytes a slave is behind its master (none until replication lands).",
            &[] as &[(L1, f64)],
        )
    }

    fn encode_consumers(&self, e: &mut Enc<'_>) -> Result<(), std::fmt::Error> {
        let mut lag: Vec<(L3, f64)> = Vec::new();
        let mut off: Vec<(L3, f64)> = Vec::new();
        for s in &self.shards {
            for l in &s.lags {
                let labels = [
                    ("group", l.group.clone()),
                    ("topic", l.topic.clone()),
                    ("queue", l.queue_id.to_string()),
                ];
                lag.push((labels.clone(), (l.broker_offset - l.consumer_offset).max(0) as f64));
                off.push((labels, l.consumer_offset as f64));
            }
        }
        lag.sort_by(|a, b| a.0.cmp(&b.0));
        off.sort_by(|a, b| a.0.cmp(&b.0));
        gauge(
            e,
            "ramjet_consumer_lag_messages",
            "Queue max offset minus the group's committed offset.",
            &lag,
        )?;
        gauge(e, "ramjet_consumer_offset", "The group's committed offset.", &off)?;
        let mut topics: BTreeMap<&str, i64> = BTreeMap::new();
        for s in &self.shards {
            for (t, o) in &s.topic_offsets {
                *topics.entry(t.as_str()).or_default() += o;
            }
        }
        let rows: Vec<(L1, f64)> =
            topics.into_iter().map(|(t, o)| ([("topic", t.to_string())], o as f64)).collect();
        gauge(
            e,
            "ramjet_topic_max_offset",
            "Sum of the max offsets of a topic's queues (rocketmq_producer_offset).",
            &rows,
        )
    }
}

/// The broker's scrape page: every shard's snapshot plus the disk facts.
pub async fn scrape(shard: &Rc<Shard>) -> String {
    let replies = crate::shard_ops::gather(shard, crate::shard_ops::OpsQuery::Metrics).await;
    let snaps = replies
        .into_iter()
        .filter_map(|r| match r {
            crate::shard_ops::OpsReply::Metrics(s) => Some(*s),
            _ => None,
        })
        .collect();
    render(broker_facts(shard).await, snaps)
}

/// Identity, disk and uptime facts (the disk walk runs on the blocking pool).
pub async fn broker_facts(shard: &Shard) -> BrokerFacts {
    let root = shard.config.store_path.clone();
    let (total, free, bytes, segments) =
        glommio::executor().spawn_blocking(move || disk_facts(&root)).await;
    BrokerFacts {
        cluster: shard.config.cluster.clone(),
        broker_name: shard.config.broker_name.clone(),
        broker_id: shard.config.broker_id,
        disk_total_bytes: total,
        disk_free_bytes: free,
        commitlog_bytes: bytes,
        segments,
        disk_ratio_max: f64::from(shard.settings.borrow().disk_max_used_space_ratio) / 100.0,
        uptime_seconds: shard.metrics.started.elapsed().as_secs_f64(),
    }
}

/// The HTTP page producer for shard 0's `/metrics`.
pub fn http_render(shard: Rc<Shard>) -> crate::http::Render {
    Rc::new(move || {
        let shard = shard.clone();
        Box::pin(async move { (scrape(&shard).await, CONTENT_TYPE) })
    })
}

/// Least time between two warnings about the same condition.
pub const WARN_INTERVAL: Duration = Duration::from_secs(300);

/// Background work of every shard: rate samples every [`SAMPLE_INTERVAL`], and warnings
/// (at most one per condition per [`WARN_INTERVAL`]) when a threshold the broker knows is
/// crossed: a poisoned log (each shard, its own logs), the disk past
/// `diskMaxUsedSpaceRatio` (shard 0).
pub async fn background_loop(shard: Rc<Shard>) {
    let mut warned_poison: HashMap<u32, Instant> = HashMap::new();
    let mut warned_disk: Option<Instant> = None;
    let due = |last: Option<&Instant>| last.is_none_or(|t| t.elapsed() >= WARN_INTERVAL);
    loop {
        shard.metrics.sample();
        for (&log, store) in &shard.logs {
            match store.poison_reason() {
                Some(reason) if due(warned_poison.get(&log)) => {
                    tracing::error!(log, %reason, "commit log poisoned: appends refused \
                        (SERVICE_NOT_AVAILABLE) until the broker restarts");
                    warned_poison.insert(log, Instant::now());
                }
                _ => {}
            }
        }
        if shard.id == 0 {
            let root = shard.config.store_path.clone();
            let (total, free, _, _) =
                glommio::executor().spawn_blocking(move || disk_facts(&root)).await;
            let max = shard.settings.borrow().disk_max_used_space_ratio;
            let ratio =
                if total == 0 { 0.0 } else { (total - free.min(total)) as f64 / total as f64 };
            if ratio * 100.0 >= f64::from(max) {
                if due(warned_disk.as_ref()) {
                    tracing::warn!(
                        ratio = format!("{ratio:.3}"),
                        max_percent = max,
                        "store disk usage past diskMaxUsedSpaceRatio"
                    );
                    warned_disk = Some(Instant::now());
                }
            } else if warned_disk.take().is_some() {
                tracing::info!(
                    ratio = format!("{ratio:.3}"),
                    "store disk usage back under the limit"
                );
            }
        }
        glommio::timer::sleep(SAMPLE_INTERVAL).await;
    }
}

/// The NameServer's scrape page: every registered broker (value 1) and the topic count.
pub fn render_namesrv(info: &ramjet_proto::body::ClusterInfo, topics: usize) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(NamesrvPage { info: info.clone(), topics }));
    let mut out = String::new();
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct NamesrvPage {
    info: ramjet_proto::body::ClusterInfo,
    topics: usize,
}

impl Collector for NamesrvPage {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut rows: Vec<([(&'static str, String); 4], f64)> = Vec::new();
        for (cluster, names) in &self.info.cluster_addr_table {
            for name in names {
                let Some(b) = self.info.broker_addr_table.get(name) else { continue };
                for (id, addr) in &b.broker_addrs {
                    let labels = [
                        ("cluster", cluster.clone()),
                        ("broker", name.clone()),
                        ("broker_id", id.to_string()),
                        ("addr", addr.clone()),
                    ];
                    rows.push((labels, 1.0));
                }
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        gauge(
            &mut e,
            "ramjet_namesrv_broker_registered",
            "A broker registered with this NameServer (value 1; gone once it expires).",
            &rows,
        )?;
        let none: [(&str, String); 0] = [];
        gauge(
            &mut e,
            "ramjet_namesrv_topics",
            "Topics with a route.",
            &[(none, self.topics as f64)],
        )
    }
}

/// Disk facts of the store: filesystem capacity and free space (statvfs), segment bytes and
/// count (a directory walk). Blocking; run it on the blocking pool.
pub fn disk_facts(store: &std::path::Path) -> (u64, u64, u64, u64) {
    let (total, free) = statvfs(store).unwrap_or((0, 0));
    let mut bytes = 0;
    let mut segments = 0;
    if let Ok(logs) = std::fs::read_dir(store.join("commitlog")) {
        for log in logs.flatten() {
            let Ok(files) = std::fs::read_dir(log.path()) else { continue };
            for f in files.flatten() {
                if let Ok(md) = f.metadata() {
                    if md.is_file() {
                        bytes += md.len();
                        segments += 1;
                    }
                }
            }
        }
    }
    (total, free, bytes, segments)
}

/// (capacity, free) bytes. Free counts blocks reserved for root too (`f_bfree`), as the
/// reference's `File.getFreeSpace()` and storage's retention ratio do, so the gauge and
/// the cleaning thresholds agree.
fn statvfs(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-struct that
    // statvfs fills; nothing is retained after the call.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        let frsize = st.f_frsize as u64;
        Some((st.f_blocks as u64 * frsize, st.f_bfree as u64 * frsize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = LocalHistogram::new(&LATENCY_BOUNDS_SECONDS);
        h.observe(0.00005);
        h.observe(0.002);
        h.observe(100.0);
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        let pairs = s.pairs();
        assert_eq!(pairs.first(), Some(&(0.0001, 1)));
        assert_eq!(pairs.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(s.quantile(0.5), 0.0025);
    }

    #[test]
    fn records_are_counted_by_total_size() {
        let mut body = Vec::new();
        for size in [20i32, 30] {
            body.extend_from_slice(&size.to_be_bytes());
            body.resize(body.len() + size as usize - 4, 0);
        }
        assert_eq!(count_records(&body), 2);
        assert_eq!(count_records(&body[..10]), 1, "a torn tail counts its header only");
        assert_eq!(count_records(&[]), 0);
    }

    #[test]
    fn page_renders_counters_and_histograms() {
        let mut s = ShardSnapshot { shard: 0, ..Default::default() };
        s.puts.push(("t".into(), 3, 300));
        s.requests.push((10, 0, 3));
        s.send_latency = LocalHistogram::new(&LATENCY_BOUNDS_SECONDS).snapshot();
        let text = render(BrokerFacts::default(), vec![s]);
        assert!(text.contains("ramjet_put_messages_total{topic=\"t\"} 3"), "{text}");
        assert!(
            text.contains("ramjet_requests_total{code=\"10\",response_code=\"0\"} 3"),
            "{text}"
        );
        assert!(text.contains("ramjet_send_latency_seconds_bucket{le=\"+Inf\"} 0"), "{text}");
    }
}
