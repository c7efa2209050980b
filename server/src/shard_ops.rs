//! Operator queries answered by every shard for the queues it owns: metrics snapshots,
//! topic and consume statistics, consumer offsets, offset resets, settings updates.
//!
//! Lives on: every shard. [`gather`] sends one [`OpsQuery`] to each shard over the shard
//! channels (`ShardMsg::Ops`) and collects one [`OpsReply`] per shard; each shard answers
//! with [`answer`], touching only state it owns (its logs, consume queues and consumer
//! offsets), so per-queue state is always read or changed on the queue's owner.
//!
//! ```text
//!   handler (any shard) ──gather──▶ shard 0: answer ─┐
//!                               ├─▶ shard 1: answer ─┼─▶ Vec<OpsReply>, merged by the caller
//!                               └─▶ shard n: answer ─┘
//! ```

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use ramjet_proto::admin_body::{OffsetWrapper, TopicOffset};
use ramjet_storage::{GetRequest, GetStatus, LogStore};

use crate::live_settings::LiveSettings;
use crate::metrics::ShardSnapshot;
use crate::shard::{Shard, ShardMsg};

/// A question for every shard.
#[derive(Debug, Clone)]
pub enum OpsQuery {
    /// This shard's metrics.
    Metrics,
    /// Offsets of the owned queues `0..queues` of `topic`.
    TopicStats {
        /// Topic.
        topic: String,
        /// Queue count.
        queues: i32,
    },
    /// `group`'s progress on the owned queues of `topics` (topic, queue count).
    ConsumeStats {
        /// Consumer group.
        group: String,
        /// Topics and their queue counts.
        topics: Vec<(String, i32)>,
    },
    /// Every committed offset on the shard.
    AllOffsets,
    /// Moves `group`'s offsets on the owned queues of `topic` to the first message stored
    /// at or after `timestamp` (ms); `force` also moves them forward.
    ResetOffset {
        /// Consumer group.
        group: String,
        /// Topic.
        topic: String,
        /// Queue count.
        queues: i32,
        /// Store time, ms.
        timestamp: i64,
        /// Move forward too (else only backward).
        force: bool,
    },
    /// Messages of `topic` carrying `key` (a word of KEYS, or the UNIQ_KEY when `unique`)
    /// stored in `[begin_ms, end_ms]`, newest first, at most `max_count` per shard.
    QueryMessage {
        /// Topic.
        topic: String,
        /// Key.
        key: String,
        /// Look up the client's unique id instead of KEYS.
        unique: bool,
        /// Most records.
        max_count: usize,
        /// Earliest store time, ms.
        begin_ms: i64,
        /// Latest store time, ms.
        end_ms: i64,
    },
    /// Install new live settings.
    Settings(Arc<LiveSettings>),
    /// Install a reloaded ACL configuration (only sent when ACL is on).
    AclConfig(Arc<crate::acl::config::AclConfig>),
    /// This shard's ACL denial counts, by account.
    AclDenials,
    /// Write a server-initiated request with a body to the client connection from `peer`
    /// held by this shard (RESET_CONSUMER_CLIENT_OFFSET).
    Push {
        /// The client's address.
        peer: std::net::SocketAddr,
        /// The request.
        header: ramjet_proto::Header,
        /// Its body.
        body: Bytes,
    },
    /// Totals and last-minute rate of a put (`topic`) or get (`topic@group`) key.
    KeyStats {
        /// Puts (else gets).
        put: bool,
        /// `topic` or `topic@group`.
        key: String,
    },
}

/// One shard's answer.
#[derive(Debug)]
pub enum OpsReply {
    /// Metrics snapshot.
    Metrics(Box<ShardSnapshot>),
    /// (queue id, offsets).
    TopicStats(Vec<(i32, TopicOffset)>),
    /// (topic, queue id, progress) and the group's pull rate on this shard.
    ConsumeStats(Vec<(String, i32, OffsetWrapper)>, f64),
    /// (topic@group, queue id, offset).
    Offsets(Vec<(String, i32, i64)>),
    /// (queue id, new offset).
    Reset(Vec<(i32, i64)>),
    /// Whole stored records.
    Records(Vec<Bytes>),
    /// (messages, bytes, rate per second over the last minute).
    KeyStats(u64, u64, f64),
    /// ACL denials by account (empty when ACL is off).
    AclDenials(Vec<(String, u64)>),
    /// Done.
    Done,
    /// The shard is gone or failed.
    Failed(String),
}

/// Sends `query` to every shard (answering locally for this one) and collects the answers,
/// in shard order.
///
/// # Cancel safety
/// Dropping the future abandons the answers; the shards still run the query.
pub async fn gather(shard: &Rc<Shard>, query: OpsQuery) -> Vec<OpsReply> {
    let mut pending = Vec::with_capacity(shard.peers.len());
    for (i, peer) in shard.peers.iter().enumerate() {
        if i == shard.id {
            pending.push(None);
            continue;
        }
        let (tx, rx) = flume::bounded(1);
        let sent = peer.send_async(ShardMsg::Ops { query: query.clone(), reply: tx }).await;
        pending.push(sent.is_ok().then_some(rx));
    }
    let mut out = Vec::with_capacity(pending.len());
    for (i, rx) in pending.into_iter().enumerate() {
        let reply = match rx {
            _ if i == shard.id => answer(shard, query.clone()).await,
            Some(rx) => rx
                .recv_async()
                .await
                .unwrap_or_else(|_| OpsReply::Failed(format!("shard {i} did not answer"))),
            None => OpsReply::Failed(format!("shard {i} is gone")),
        };
        out.push(reply);
    }
    out
}

/// Answers `query` for this shard's queues.
pub async fn answer(shard: &Rc<Shard>, query: OpsQuery) -> OpsReply {
    match query {
        OpsQuery::Metrics => OpsReply::Metrics(Box::new(crate::metrics::snapshot(shard))),
        OpsQuery::TopicStats { topic, queues } => {
            let mut out = Vec::new();
            for (q, store) in owned(shard, &topic, queues) {
                let max = store.max_offset(&topic, q);
                let last = if max > 0 { store_time(&store, &topic, q, max - 1).await } else { 0 };
                let min = store.min_offset(&topic, q);
                out.push((
                    q,
                    TopicOffset { min_offset: min, max_offset: max, last_update_timestamp: last },
                ));
            }
            OpsReply::TopicStats(out)
        }
        OpsQuery::ConsumeStats { group, topics } => consume_stats(shard, &group, &topics).await,
        OpsQuery::AllOffsets => OpsReply::Offsets(shard.offsets.borrow().all()),
        OpsQuery::ResetOffset { group, topic, queues, timestamp, force } => {
            let mut out = Vec::new();
            for (q, store) in owned(shard, &topic, queues) {
                let target = match store.search_offset_by_timestamp(&topic, q, timestamp).await {
                    Ok(o) => o,
                    Err(e) => return OpsReply::Failed(format!("searching {topic}:{q}: {e}")),
                };
                let log = shard.log_for(&topic, q);
                let current = shard.offsets.borrow().get(log, &group, &topic, q);
                let next = match current {
                    Some(c) if !force && c >= 0 && c <= target => c,
                    _ => target,
                };
                shard.offsets.borrow_mut().set(log, &group, &topic, q, next);
                out.push((q, next));
            }
            OpsReply::Reset(out)
        }
        OpsQuery::QueryMessage { topic, key, unique, max_count, begin_ms, end_ms } => {
            let mut out = Vec::new();
            for store in shard.logs.values() {
                let found = if unique {
                    store.find_by_unique_key(&topic, &key).await.map(|r| r.into_iter().collect())
                } else {
                    let q = ramjet_storage::KeyQuery {
                        topic: &topic,
                        key: &key,
                        max_count,
                        begin_ms,
                        end_ms,
                    };
                    store.find_by_key(q).await
                };
                match found {
                    Ok(records) => out.extend(records),
                    Err(e) => return OpsReply::Failed(format!("querying {topic} by key: {e}")),
                }
            }
            OpsReply::Records(out)
        }
        OpsQuery::Settings(settings) => {
            *shard.settings.borrow_mut() = settings;
            OpsReply::Done
        }
        OpsQuery::AclConfig(config) => {
            if let Some(gate) = &shard.acl {
                gate.install(config);
            }
            OpsReply::Done
        }
        OpsQuery::AclDenials => OpsReply::AclDenials(
            shard.acl.as_ref().map(crate::acl::gate::AclGate::denial_rows).unwrap_or_default(),
        ),
        OpsQuery::Push { peer, header, body } => {
            shard.push_with_body(shard.id, peer, header, body);
            OpsReply::Done
        }
        OpsQuery::KeyStats { put, key } => {
            let (m, b) = shard.metrics.key_totals(put, &key);
            OpsReply::KeyStats(m, b, shard.metrics.key_rate(put, &key))
        }
    }
}

async fn consume_stats(shard: &Rc<Shard>, group: &str, topics: &[(String, i32)]) -> OpsReply {
    let mut out = Vec::new();
    let mut tps = 0.0;
    for (topic, queues) in topics {
        tps += shard.metrics.key_rate(false, &format!("{topic}@{group}"));
        for (q, store) in owned(shard, topic, *queues) {
            let log = shard.log_for(topic, q);
            let committed = shard.offsets.borrow().get(log, group, topic, q).unwrap_or(0).max(0);
            let last =
                if committed > 0 { store_time(&store, topic, q, committed - 1).await } else { 0 };
            let w = OffsetWrapper {
                broker_offset: store.max_offset(topic, q),
                consumer_offset: committed,
                pull_offset: committed,
                last_timestamp: last,
            };
            out.push((topic.clone(), q, w));
        }
    }
    OpsReply::ConsumeStats(out, tps)
}

/// The owned queues among `0..queues` of `topic`, with their logs.
fn owned(shard: &Shard, topic: &str, queues: i32) -> Vec<(i32, Rc<LogStore>)> {
    (0..queues.max(0))
        .filter(|&q| shard.shard_for(topic, q) == shard.id)
        .filter_map(|q| shard.store_for(topic, q).map(|s| (q, s.clone())))
        .collect()
}

/// The stored record at queue offset `offset`, if readable.
async fn record_at(store: &LogStore, topic: &str, queue_id: i32, offset: i64) -> Option<Bytes> {
    let get = GetRequest {
        topic,
        queue_id,
        queue_offset: offset,
        max_count: 1,
        max_bytes: 1,
        tags_filter: None,
    };
    let r = store.get_messages(get).await.ok()?;
    if r.status != GetStatus::Found {
        return None;
    }
    r.messages.into_iter().next()
}

/// STORETIMESTAMP of the message at queue offset `offset` (0 when unreadable).
pub async fn store_time(store: &LogStore, topic: &str, queue_id: i32, offset: i64) -> i64 {
    match record_at(store, topic, queue_id, offset).await {
        Some(r) => ramjet_proto::message::decode_record(&r, false).map_or(0, |m| m.store_timestamp),
        None => 0,
    }
}

/// What shard 0 gets at start for operator work: the subscription groups (loaded before
/// the executors start, so a bad file fails the start) and the metrics listener.
#[derive(Debug)]
pub struct OpsStart {
    /// Loaded subscription groups.
    pub groups: crate::subscription_group::SubscriptionGroups,
    /// Bound `--metrics-port` listener, if asked for.
    pub metrics_listener: Option<std::net::TcpListener>,
}

impl OpsStart {
    /// Loads the groups and binds the metrics port. Blocking; before executors start.
    ///
    /// # Errors
    /// An unreadable group file, or a metrics port that cannot be bound.
    pub fn prepare(config: &crate::config::BrokerConfig) -> Result<OpsStart, String> {
        let groups = crate::subscription_group::SubscriptionGroups::load(&config.store_path)?;
        let metrics_listener = match config.metrics_port {
            Some(port) => {
                Some(crate::http::bind(config.metrics_bind_ip.unwrap_or(config.bind_ip), port)?)
            }
            None => None,
        };
        Ok(OpsStart { groups, metrics_listener })
    }

    /// The metrics endpoint's address, if any.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Splits what shard 0 received (other shards get `None`: empty groups, no listener).
    pub fn split(
        start: Option<OpsStart>,
    ) -> (crate::subscription_group::SubscriptionGroups, Option<std::net::TcpListener>) {
        match start {
            Some(s) => (s.groups, s.metrics_listener),
            None => (Default::default(), None),
        }
    }
}
