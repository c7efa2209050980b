//! Snapshots: what a shard sends back for a scrape.

use crate::shard::Shard;

use super::*;

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
    /// (topic, messages, bytes); topic [`OTHER`] for the folded series.
    pub puts: Vec<(String, u64, u64)>,
    /// (topic, group, messages, bytes); (topic, group) [`OTHER`] for the folded series.
    pub gets: Vec<(String, String, u64, u64)>,
    /// Messages stored since start, folded series and pruned series included.
    pub put_total: u64,
    /// Request body bytes of those messages.
    pub put_bytes_total: u64,
    /// Messages pulled since start, as `put_total`.
    pub get_total: u64,
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
    /// Client requests forwarded to another shard since start.
    pub forwarded: u64,
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

/// Takes this shard's snapshot (after dropping the series of removed topics and groups).
///
/// Bounded: at most [`ShardMetrics::series_budget`] put and get series plus one folded
/// series each, and as many consumer-position and topic-offset rows.
pub fn snapshot(shard: &Shard) -> ShardSnapshot {
    prune(shard);
    let m = &shard.metrics;
    let mut puts: Vec<(String, u64, u64)> =
        m.puts.borrow().iter().map(|(t, c)| (t.clone(), c.messages.get(), c.bytes.get())).collect();
    if m.put_other.messages.get() > 0 {
        puts.push((OTHER.to_string(), m.put_other.messages.get(), m.put_other.bytes.get()));
    }
    let mut gets = Vec::new();
    for (t, groups) in m.gets.borrow().iter() {
        for (g, c) in groups {
            gets.push((t.clone(), g.clone(), c.messages.get(), c.bytes.get()));
        }
    }
    if m.get_other.messages.get() > 0 {
        let (msgs, bytes) = (m.get_other.messages.get(), m.get_other.bytes.get());
        gets.push((OTHER.to_string(), OTHER.to_string(), msgs, bytes));
    }
    let (put_total, put_bytes_total, get_total) = m.totals();
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
        put_total,
        put_bytes_total,
        get_total,
        requests,
        send_latency: m.send_latency.snapshot(),
        pull_latency: m.pull_latency.snapshot(),
        append_records: m.append_records.snapshot(),
        long_poll_holds: m.long_poll_holds.get(),
        forwarded: m.forwarded.get(),
        connections: shard.connections.borrow().len(),
        logs,
        lags: lags(shard),
        topic_offsets: topic_offsets(shard),
        rates: m.rates(),
        replication_lag: shard.replica.lag_bytes(shard),
    }
}

/// Committed positions of groups with a valid name on topics in the topic table (an offset
/// commit for anything else is no series), at most the series budget of them.
fn lags(shard: &Shard) -> Vec<LagSnapshot> {
    let entries = shard.offsets.borrow().all();
    let table = shard.topic_table();
    entries
        .into_iter()
        .filter_map(|(key, queue_id, consumer_offset)| {
            let (topic, group) = key.split_once('@')?;
            if !is_series_name(group) || table.get(topic).is_none() {
                return None;
            }
            let store = shard.store_for(topic, queue_id)?;
            Some(LagSnapshot {
                group: group.to_string(),
                topic: topic.to_string(),
                queue_id,
                broker_offset: store.max_offset(topic, queue_id),
                consumer_offset,
            })
        })
        .take(ShardMetrics::series_budget(shard))
        .collect()
}

fn topic_offsets(shard: &Shard) -> Vec<(String, i64)> {
    let table = shard.topic_table();
    let mut out = Vec::new();
    for (topic, config) in table.iter() {
        let mut sum = 0;
        for q in 0..config.write_queue_nums.max(config.read_queue_nums) {
            if let Some(s) = shard.store_for(topic, q) {
                sum += s.max_offset(topic, q);
            }
        }
        out.push((topic.clone(), sum));
        if out.len() >= ShardMetrics::series_budget(shard) {
            break;
        }
    }
    out
}
