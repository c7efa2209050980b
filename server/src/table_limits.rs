//! Bounds on every table a client can grow: topics, subscription groups, consumer-group
//! members and subscriptions, consumer offsets, parked long polls, order locks, and the
//! NameServer's KV config.
//!
//! Lives on: every executor. The limits are installed once per process from its config
//! ([`install`], read with [`limits`]); the hit counters are process-wide atomics touched
//! only when a limit refuses something, never on the data path.
//!
//! | limit | config key | default | when reached |
//! |---|---|---|---|
//! | topics per broker | `topicMaxCount` | 131,072 | create/auto-create answered SYSTEM_ERROR |
//! | subscription groups | `subscriptionGroupMaxCount` | 65,536 | UPDATE_AND_CREATE_SUBSCRIPTIONGROUP answered SYSTEM_ERROR |
//! | client ids per consumer group | `consumerGroupClientMaxCount` | 4,096 | HEART_BEAT answered SYSTEM_ERROR |
//! | subscriptions per consumer group in one heartbeat | `consumerGroupSubscriptionMaxCount` | 1,024 | HEART_BEAT answered SYSTEM_ERROR |
//! | consumer offset entries (group, topic, queue), per broker | `consumerOffsetMaxCount` | 1,048,576 | UPDATE_CONSUMER_OFFSET answered SYSTEM_ERROR; a pull's commit is skipped |
//! | parked long polls, per broker | `pullLongPollingMaxCount` | 65,536 | pull answered PULL_NOT_FOUND at once |
//! | order locks (group, queue) | `orderLockMaxCount` | 65,536 | LOCK_BATCH_MQ grants no new lock |
//! | NameServer KV entries | `kvConfigMaxCount` | 10,000 | PUT_KV_CONFIG answered SYSTEM_ERROR |
//! | NameServer KV namespace / key bytes | `kvConfigKeyMaxBytes` | 255 | PUT_KV_CONFIG answered SYSTEM_ERROR |
//! | NameServer KV value bytes | `kvConfigValueMaxBytes` | 65,536 | PUT_KV_CONFIG answered SYSTEM_ERROR |
//!
//! Per-broker counts that live on every shard (offsets, long polls) are split evenly: each
//! shard holds at most `ceil(max / shards)`.
//!
//! A hit is counted ([`hits`], and on `/metrics` as `ramjet_limit_hits_total{limit=<key>}`)
//! and logged at the first hit and then at powers of two, so an attack cannot flood the log
//! (the same rule as the connection limits).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tracing::warn;

use crate::config::ConfigError;

/// The limits, from broker.conf / namesrv.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLimits {
    /// Topics per broker, system topics included (`topicMaxCount`).
    pub topics_max: usize,
    /// Subscription groups (`subscriptionGroupMaxCount`).
    pub subscription_groups_max: usize,
    /// Client ids in one consumer group (`consumerGroupClientMaxCount`).
    pub group_clients_max: usize,
    /// Subscriptions of one consumer group in one heartbeat
    /// (`consumerGroupSubscriptionMaxCount`).
    pub group_subscriptions_max: usize,
    /// Consumer offset entries per broker (`consumerOffsetMaxCount`).
    pub offset_entries_max: usize,
    /// Parked long polls per broker (`pullLongPollingMaxCount`).
    pub long_poll_waiters_max: usize,
    /// Order locks (`orderLockMaxCount`).
    pub order_locks_max: usize,
    /// NameServer KV entries (`kvConfigMaxCount`).
    pub kv_entries_max: usize,
    /// Bytes of a KV namespace or key (`kvConfigKeyMaxBytes`).
    pub kv_key_bytes_max: usize,
    /// Bytes of a KV value (`kvConfigValueMaxBytes`).
    pub kv_value_bytes_max: usize,
}

impl Default for TableLimits {
    fn default() -> TableLimits {
        TableLimits {
            topics_max: 131_072,
            subscription_groups_max: 65_536,
            group_clients_max: 4096,
            group_subscriptions_max: 1024,
            offset_entries_max: 1 << 20,
            long_poll_waiters_max: 65_536,
            order_locks_max: 65_536,
            kv_entries_max: 10_000,
            kv_key_bytes_max: 255,
            kv_value_bytes_max: 65_536,
        }
    }
}

impl TableLimits {
    /// Applies one key; false when `key` is not a table limit.
    ///
    /// # Errors
    /// A value that does not parse as a count.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let slot = match key {
            "topicMaxCount" => &mut self.topics_max,
            "subscriptionGroupMaxCount" => &mut self.subscription_groups_max,
            "consumerGroupClientMaxCount" => &mut self.group_clients_max,
            "consumerGroupSubscriptionMaxCount" => &mut self.group_subscriptions_max,
            "consumerOffsetMaxCount" => &mut self.offset_entries_max,
            "pullLongPollingMaxCount" => &mut self.long_poll_waiters_max,
            "orderLockMaxCount" => &mut self.order_locks_max,
            "kvConfigMaxCount" => &mut self.kv_entries_max,
            "kvConfigKeyMaxBytes" => &mut self.kv_key_bytes_max,
            "kvConfigValueMaxBytes" => &mut self.kv_value_bytes_max,
            _ => return Ok(false),
        };
        *slot = crate::config::parse(key, value)?;
        Ok(true)
    }

    /// This shard's part of a per-broker count: `ceil(max / shards)`.
    pub fn per_shard(max: usize, shards: usize) -> usize {
        max.div_ceil(shards.max(1))
    }
}

static LIMITS: OnceLock<TableLimits> = OnceLock::new();

/// Sets the process's limits (each binary, from its config, before serving); the first call
/// wins. Returns false when limits were set already.
pub fn install(limits: TableLimits) -> bool {
    LIMITS.set(limits).is_ok()
}

/// The process's limits (the defaults when [`install`] was not called).
pub fn limits() -> &'static TableLimits {
    LIMITS.get_or_init(TableLimits::default)
}

/// Which table limit refused something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableLimit {
    /// `topicMaxCount`.
    Topics,
    /// `subscriptionGroupMaxCount`.
    SubscriptionGroups,
    /// `consumerGroupClientMaxCount`.
    GroupClients,
    /// `consumerGroupSubscriptionMaxCount`.
    GroupSubscriptions,
    /// `consumerOffsetMaxCount`.
    OffsetEntries,
    /// `pullLongPollingMaxCount`.
    LongPollWaiters,
    /// `orderLockMaxCount`.
    OrderLocks,
    /// `kvConfigMaxCount`.
    KvEntries,
    /// `kvConfigKeyMaxBytes`.
    KvKeyBytes,
    /// `kvConfigValueMaxBytes`.
    KvValueBytes,
}

const LIMIT_COUNT: usize = 10;

impl TableLimit {
    const ALL: [TableLimit; LIMIT_COUNT] = [
        TableLimit::Topics,
        TableLimit::SubscriptionGroups,
        TableLimit::GroupClients,
        TableLimit::GroupSubscriptions,
        TableLimit::OffsetEntries,
        TableLimit::LongPollWaiters,
        TableLimit::OrderLocks,
        TableLimit::KvEntries,
        TableLimit::KvKeyBytes,
        TableLimit::KvValueBytes,
    ];

    /// The config key of the limit.
    pub fn key(self) -> &'static str {
        match self {
            TableLimit::Topics => "topicMaxCount",
            TableLimit::SubscriptionGroups => "subscriptionGroupMaxCount",
            TableLimit::GroupClients => "consumerGroupClientMaxCount",
            TableLimit::GroupSubscriptions => "consumerGroupSubscriptionMaxCount",
            TableLimit::OffsetEntries => "consumerOffsetMaxCount",
            TableLimit::LongPollWaiters => "pullLongPollingMaxCount",
            TableLimit::OrderLocks => "orderLockMaxCount",
            TableLimit::KvEntries => "kvConfigMaxCount",
            TableLimit::KvKeyBytes => "kvConfigKeyMaxBytes",
            TableLimit::KvValueBytes => "kvConfigValueMaxBytes",
        }
    }

    /// The remark of a refused request: `<what> (<key>=<max>)`.
    pub fn remark(self, what: &str, max: usize) -> String {
        format!("{what} ({}={max})", self.key())
    }
}

static HITS: [AtomicU64; LIMIT_COUNT] = [const { AtomicU64::new(0) }; LIMIT_COUNT];

/// Counts a hit of `limit` and logs it the first time and at powers of two.
pub fn report(limit: TableLimit) {
    crate::metrics::limit_hits::count_hit(limit.key());
    let count = HITS[limit as usize].fetch_add(1, Ordering::Relaxed) + 1;
    if count.is_power_of_two() {
        warn!(limit = limit.key(), times = count, "table limit reached; refused");
    }
}

/// How often each limit was reached: `(config key, count)`.
pub fn hits() -> Vec<(&'static str, u64)> {
    TableLimit::ALL.iter().map(|&l| (l.key(), HITS[l as usize].load(Ordering::Relaxed))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_apply_and_hits_count() {
        let mut l = TableLimits::default();
        assert!(l.apply("topicMaxCount", "7").expect("parses"));
        assert_eq!(l.topics_max, 7);
        assert!(!l.apply("listenPort", "1").expect("not ours"));
        assert!(l.apply("orderLockMaxCount", "x").is_err());
        let before = hits()[6].1;
        report(TableLimit::OrderLocks);
        assert_eq!(hits()[6], ("orderLockMaxCount", before + 1));
        assert_eq!(TableLimits::per_shard(10, 3), 4);
        assert_eq!(TableLimits::per_shard(10, 0), 10);
    }
}
