//! Per-shard addresses of ramjet brokers: which connection lands on the shard that owns a
//! queue, so a send or pull runs where it arrives instead of hopping between the broker's
//! shards (two thread wake-ups).
//!
//! Lives on: the executor of the client that owns it (inside [`crate::client::Client`]).
//!
//! A ramjet broker advertises `ramjetShardAddrs` (one `ip:port` per shard, in shard order)
//! and `ramjetCommitLogs` in GET_BROKER_RUNTIME_INFO; the owner of `(topic, queueId)` is
//! `(crc32c(topic) + queueId) % commitLogs % shards` (the broker's `log_for` and
//! `shard_of_log`). Any other broker (Apache RocketMQ, a ramjet with `perShardPorts=false`
//! or one shard) lacks the keys: its queues use the broker address, after one query.
//! The table holds one entry per broker address the client sends to.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ramjet_proto::body::KvTable;

/// How long a broker whose shard map could not be learned or used goes without one
/// before the client asks again.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The shard layout of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    /// Per-shard addresses, by shard.
    pub addrs: Vec<String>,
    /// Commit logs of the broker's store.
    pub logs: u32,
}

impl ShardMap {
    /// The layout advertised in a runtime-info table; `None` when it names fewer than two
    /// shards or no logs (then the broker address is the only one).
    pub fn from_runtime_info(table: &KvTable) -> Option<ShardMap> {
        let addrs: Vec<String> = table
            .table
            .get("ramjetShardAddrs")?
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        let logs: u32 = table.table.get("ramjetCommitLogs")?.trim().parse().ok()?;
        (addrs.len() >= 2 && logs >= 1).then_some(ShardMap { addrs, logs })
    }

    /// The address of the shard that owns `(topic, queue_id)`.
    pub fn addr_for(&self, topic: &str, queue_id: i32) -> &str {
        let log = crc32c::crc32c(topic.as_bytes()).wrapping_add(queue_id as u32) % self.logs;
        &self.addrs[log as usize % self.addrs.len()]
    }
}

/// What the client knows of one broker's shards.
#[derive(Debug, Clone)]
pub enum ShardState {
    /// A query is under way: use the broker address meanwhile.
    Asking,
    /// The broker's layout.
    Known(ShardMap),
    /// No layout (not advertised, or a shard address failed): the broker address until
    /// the instant given.
    Absent(Instant),
}

/// Shard states by broker address.
#[derive(Debug, Default)]
pub struct ShardTable {
    brokers: HashMap<String, ShardState>,
}

/// What to do for a queue of a broker.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Send to this address.
    Use(String),
    /// Ask the broker for its layout first (the state is now `Asking`).
    Ask,
}

impl ShardTable {
    /// The address to use for `(topic, queue_id)` on `broker`.
    pub fn lookup(&mut self, broker: &str, topic: &str, queue_id: i32, now: Instant) -> Lookup {
        match self.brokers.get(broker) {
            Some(ShardState::Known(map)) => Lookup::Use(map.addr_for(topic, queue_id).to_string()),
            Some(ShardState::Asking) => Lookup::Use(broker.to_string()),
            Some(ShardState::Absent(until)) if now < *until => Lookup::Use(broker.to_string()),
            _ => {
                self.brokers.insert(broker.to_string(), ShardState::Asking);
                Lookup::Ask
            }
        }
    }

    /// The answer of a query: the layout, or none (retried after [`RETRY_AFTER`]).
    pub fn learned(&mut self, broker: &str, map: Option<ShardMap>, now: Instant) {
        let state = match map {
            Some(m) => ShardState::Known(m),
            None => ShardState::Absent(now + RETRY_AFTER),
        };
        self.brokers.insert(broker.to_string(), state);
    }

    /// A shard address of `broker` could not be connected: use the broker address for a
    /// while (a restarted broker has new per-shard ports; the next query learns them).
    pub fn failed(&mut self, broker: &str, now: Instant) {
        self.brokers.insert(broker.to_string(), ShardState::Absent(now + RETRY_AFTER));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> KvTable {
        KvTable { table: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn a_layout_is_read_only_when_it_names_shards() {
        let t = table(&[("ramjetShardAddrs", "1.1.1.1:1,1.1.1.1:2"), ("ramjetCommitLogs", "8")]);
        let m = ShardMap::from_runtime_info(&t).expect("layout");
        assert_eq!(m.logs, 8);
        assert_eq!(m.addrs, ["1.1.1.1:1", "1.1.1.1:2"]);
        assert!(ShardMap::from_runtime_info(&table(&[("ramjetCommitLogs", "8")])).is_none());
        let one = table(&[("ramjetShardAddrs", "1.1.1.1:1"), ("ramjetCommitLogs", "8")]);
        assert!(ShardMap::from_runtime_info(&one).is_none());
        let empty = table(&[("ramjetShardAddrs", ""), ("ramjetCommitLogs", "8")]);
        assert!(ShardMap::from_runtime_info(&empty).is_none());
        let zero = table(&[("ramjetShardAddrs", "a:1,b:2"), ("ramjetCommitLogs", "0")]);
        assert!(ShardMap::from_runtime_info(&zero).is_none());
    }

    #[test]
    fn the_owner_is_the_brokers_placement() {
        let m = ShardMap { addrs: vec!["a:1".into(), "b:2".into()], logs: 4 };
        let base = crc32c::crc32c(b"TopicTest");
        for q in 0..8 {
            let log = base.wrapping_add(q as u32) % 4;
            assert_eq!(m.addr_for("TopicTest", q), m.addrs[log as usize % 2]);
        }
    }

    #[test]
    fn one_query_per_broker_and_a_failure_falls_back_for_a_while() {
        let mut t = ShardTable::default();
        let now = Instant::now();
        assert_eq!(t.lookup("b:1", "t", 0, now), Lookup::Ask);
        assert_eq!(t.lookup("b:1", "t", 0, now), Lookup::Use("b:1".into()), "asking");
        t.learned("b:1", Some(ShardMap { addrs: vec!["s:1".into(), "s:2".into()], logs: 2 }), now);
        assert!(matches!(t.lookup("b:1", "t", 0, now), Lookup::Use(a) if a.starts_with("s:")));
        t.failed("b:1", now);
        assert_eq!(t.lookup("b:1", "t", 0, now), Lookup::Use("b:1".into()));
        assert_eq!(t.lookup("b:1", "t", 0, now + RETRY_AFTER), Lookup::Ask);
        t.learned("b:1", None, now);
        assert_eq!(t.lookup("b:1", "t", 0, now), Lookup::Use("b:1".into()));
    }
}
