//! Rendering: the broker's and the NameServer's Prometheus text pages from snapshots
//! (`prometheus-client` collectors).

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::*;

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

/// The content type of [`render()`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

pub(super) type Enc<'a> = DescriptorEncoder<'a>;

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

pub(super) fn gauge<L: prometheus_client::encoding::EncodeLabelSet>(
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

/// `ramjet_limit_hits_total{limit="<config key>"}`: the process's limit hits.
pub(super) fn encode_limit_hits(e: &mut Enc<'_>) -> Result<(), std::fmt::Error> {
    let rows: Vec<(L1, u64)> = limit_hits::limit_hits()
        .into_iter()
        .map(|(k, n)| ([("limit", k.to_string())], n))
        .collect();
    counter(
        e,
        "ramjet_limit_hits",
        "Times a configured limit was reached (a refusal, a closed connection or a folded \
         series), by its config key.",
        &rows,
    )
}

pub(super) type L1 = [(&'static str, String); 1];
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
        let hops: Vec<(L1, u64)> =
            self.shards.iter().map(|s| (shard_label(s), s.forwarded)).collect();
        counter(
            e,
            "ramjet_forwarded_requests",
            "Client requests forwarded to the owner shard (cross-shard hops), per accepting shard.",
            &hops,
        )?;
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
                let c = if c == UNKNOWN_CODE { "other".to_string() } else { c.to_string() };
                ([("code", c), ("response_code", r)], n)
            })
            .collect();
        counter(
            e,
            "ramjet_requests",
            "Requests by request code (other: not a served code) and response code (none: \
             one-way).",
            &rows,
        )?;
        encode_limit_hits(e)
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
