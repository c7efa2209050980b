//! The pull consumer: the caller chooses queues and offsets; this does the calls.
//!
//! Lives on: the executor of its [`Client`].
//!
//! A typical loop: `fetch_queues`, then per queue `query_offset` (or 0), then `pull`
//! with long polling from that offset, following `next_begin_offset`, and
//! `update_offset` now and then. [`OffsetTable`] keeps the offsets between commits.

use std::collections::BTreeMap;
use std::time::Duration;

use ramjet_proto::codes::request;

use crate::client::{now_ms, Client};
use crate::error::ClientError;
use crate::message::{MessageQueue, PullResult};
use crate::protocol::{self, PullArgs, Subscription};

/// Most messages a pull asks for by default (the reference's `pullBatchSize`).
pub const PULL_BATCH_SIZE_DEFAULT: i32 = 32;

/// Pulls messages for one consumer group.
#[derive(Debug)]
pub struct PullConsumer {
    client: Client,
    group: String,
}

impl PullConsumer {
    /// A consumer of `group` on `client`.
    pub fn new(client: Client, group: impl Into<String>) -> PullConsumer {
        PullConsumer { client, group: group.into() }
    }

    /// The client this consumer calls through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The readable queues of `topic`, fetched fresh from the NameServer.
    ///
    /// # Errors
    /// `NoRoute`, transport errors.
    pub async fn fetch_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        Ok(self.client.refresh_route(topic).await?.read_queues.clone())
    }

    /// Pulls up to `max_nums` messages from `queue` starting at `offset`.
    ///
    /// With `suspend_timeout`, the broker may hold the request until a message arrives
    /// or that long passes (long polling); the request then waits that long plus the
    /// configured request timeout. `subscription` is a tag expression (`*`,
    /// `TagA || TagB`) sent with the request; `None` lets the broker use the group's
    /// subscription from the last heartbeat.
    ///
    /// # Errors
    /// `Broker { code, remark }` for refusals (SUBSCRIPTION_NOT_EXIST, ...), transport
    /// errors, undecodable records.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is committed by a pull.
    pub async fn pull(
        &self,
        queue: &MessageQueue,
        offset: i64,
        max_nums: i32,
        suspend_timeout: Option<Duration>,
        subscription: Option<&str>,
    ) -> Result<PullResult, ClientError> {
        let args = PullArgs {
            consumer_group: &self.group,
            queue,
            offset,
            max_nums,
            suspend_timeout_ms: suspend_timeout.map(|d| d.as_millis() as i64),
            subscription,
            commit_offset: None,
            sub_version: now_ms(),
        };
        self.pull_with(&args).await
    }

    /// Pulls with every field of [`PullArgs`] chosen by the caller (commit offset
    /// included). `args.consumer_group` is used as given.
    ///
    /// # Errors
    /// As [`PullConsumer::pull`].
    pub async fn pull_with(&self, args: &PullArgs<'_>) -> Result<PullResult, ClientError> {
        let config = self.client.config();
        let timeout = config.request_timeout
            + Duration::from_millis(args.suspend_timeout_ms.unwrap_or(0).max(0) as u64);
        let broker = self.client.master_addr(&args.queue.broker_name, &args.queue.topic).await?;
        let addr = self.client.queue_addr(&broker, &args.queue.topic, args.queue.queue_id).await;
        let header = protocol::pull_request(args, config.serialize_type);
        let reply = self.client.invoke_with_timeout(&addr, header, &[], timeout).await?;
        let tags = args.subscription.map(protocol::subscription_tags).unwrap_or_default();
        protocol::parse_pull_response(reply, &tags)
    }

    /// The group's stored offset of `queue`; `None` when it has none.
    ///
    /// # Errors
    /// Refusals other than QUERY_NOT_FOUND, transport errors.
    pub async fn query_offset(&self, queue: &MessageQueue) -> Result<Option<i64>, ClientError> {
        self.query_offset_with(queue, None).await
    }

    /// As [`PullConsumer::query_offset`], with the 5.x `setZeroIfNotFound` field
    /// (`Some(false)`: no stored offset is always `None`, never 0).
    ///
    /// # Errors
    /// Refusals other than QUERY_NOT_FOUND, transport errors.
    pub async fn query_offset_with(
        &self,
        queue: &MessageQueue,
        set_zero_if_not_found: Option<bool>,
    ) -> Result<Option<i64>, ClientError> {
        let st = self.client.config().serialize_type;
        let header =
            protocol::query_offset_request_with(&self.group, queue, set_zero_if_not_found, st);
        let offset = protocol::parse_query_offset(self.call(queue, header).await?);
        tracing::debug!(group = %self.group, ?queue, ?offset, "queried consumer offset");
        offset
    }

    /// Stores `offset` as the group's offset of `queue` and waits for the broker.
    ///
    /// # Errors
    /// Refusals, transport errors.
    pub async fn update_offset(
        &self,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<(), ClientError> {
        let st = self.client.config().serialize_type;
        let header = protocol::update_offset_request(&self.group, queue, offset, st);
        tracing::debug!(group = %self.group, ?queue, offset, "update consumer offset");
        protocol::check_success(self.call(queue, header).await?).map(|_| ())
    }

    /// Stores `offset` as the group's offset of `queue` without waiting (one-way).
    ///
    /// # Errors
    /// `NoBrokerAddr`, `Connect`, `ConnectionClosed`.
    pub async fn update_offset_oneway(
        &self,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<(), ClientError> {
        let st = self.client.config().serialize_type;
        let header = protocol::update_offset_request(&self.group, queue, offset, st);
        let addr = self.client.master_addr(&queue.broker_name, &queue.topic).await?;
        self.client.invoke_oneway(&addr, header, &[]).await
    }

    /// The next offset to be written in `queue` (GET_MAX_OFFSET).
    ///
    /// # Errors
    /// Refusals, transport errors.
    pub async fn max_offset(&self, queue: &MessageQueue) -> Result<i64, ClientError> {
        let header = protocol::max_offset_request(queue, self.client.config().serialize_type);
        protocol::parse_offset(self.call(queue, header).await?, request::GET_MAX_OFFSET)
    }

    /// The smallest offset still stored in `queue` (GET_MIN_OFFSET).
    ///
    /// # Errors
    /// Refusals, transport errors.
    pub async fn min_offset(&self, queue: &MessageQueue) -> Result<i64, ClientError> {
        let header = protocol::min_offset_request(queue, self.client.config().serialize_type);
        protocol::parse_offset(self.call(queue, header).await?, request::GET_MIN_OFFSET)
    }

    /// Sends HEART_BEAT for this group (pull consumer, clustering, from first offset)
    /// with `subscriptions` to the master of every broker that serves their topics.
    ///
    /// # Errors
    /// The first refusal or transport error.
    pub async fn heartbeat(&self, subscriptions: &[Subscription]) -> Result<(), ClientError> {
        let mut addrs = Vec::new();
        for s in subscriptions {
            let route = self.client.topic_route(&s.topic).await?;
            for b in &route.data.broker_datas {
                if let Some(addr) = b.master_addr() {
                    addrs.push(addr.to_string());
                }
            }
        }
        addrs.sort();
        addrs.dedup();
        let config = self.client.config();
        for addr in addrs {
            let (header, body) = protocol::heartbeat_request(
                &config.client_id,
                &self.group,
                subscriptions,
                now_ms(),
                config.serialize_type,
            );
            protocol::check_success(self.client.invoke(&addr, header, &body).await?)?;
        }
        Ok(())
    }

    async fn call(
        &self,
        queue: &MessageQueue,
        header: ramjet_proto::Header,
    ) -> Result<ramjet_proto::Frame, ClientError> {
        let addr = self.client.master_addr(&queue.broker_name, &queue.topic).await?;
        self.client.invoke(&addr, header, &[]).await
    }
}

/// Consumer offsets kept between commits: per queue, the next offset to consume and
/// whether it changed since the last commit. Pure state.
///
/// Invariant: an offset only moves forward through `advance`; `reset` may move it
/// anywhere (after OFFSET_ILLEGAL).
#[derive(Debug, Default)]
pub struct OffsetTable {
    entries: BTreeMap<MessageQueue, OffsetEntry>,
}

#[derive(Debug, Clone, Copy)]
struct OffsetEntry {
    offset: i64,
    dirty: bool,
}

impl OffsetTable {
    /// An empty table.
    pub fn new() -> OffsetTable {
        OffsetTable::default()
    }

    /// The next offset to consume from `queue`.
    pub fn get(&self, queue: &MessageQueue) -> Option<i64> {
        self.entries.get(queue).map(|e| e.offset)
    }

    /// Sets the offset of `queue` (a start position or a reset); marks it to commit.
    pub fn reset(&mut self, queue: &MessageQueue, offset: i64) {
        self.entries.insert(queue.clone(), OffsetEntry { offset, dirty: true });
    }

    /// Moves the offset of `queue` forward to `offset`; a smaller value is ignored.
    pub fn advance(&mut self, queue: &MessageQueue, offset: i64) {
        let entry =
            self.entries.entry(queue.clone()).or_insert(OffsetEntry { offset, dirty: true });
        if offset > entry.offset {
            entry.offset = offset;
            entry.dirty = true;
        }
    }

    /// The offsets changed since they were last taken, marking them clean.
    pub fn take_dirty(&mut self) -> Vec<(MessageQueue, i64)> {
        let mut out = Vec::new();
        for (q, e) in &mut self.entries {
            if e.dirty {
                e.dirty = false;
                out.push((q.clone(), e.offset));
            }
        }
        out
    }

    /// Forgets `queue` (it was handed to another consumer).
    pub fn remove(&mut self, queue: &MessageQueue) -> Option<i64> {
        self.entries.remove(queue).map(|e| e.offset)
    }

    /// Every offset held, by queue.
    pub fn snapshot(&self) -> Vec<(MessageQueue, i64)> {
        self.entries.iter().map(|(q, e)| (q.clone(), e.offset)).collect()
    }

    /// Marks `queue` to commit again (its commit failed).
    pub fn mark_dirty(&mut self, queue: &MessageQueue) {
        if let Some(e) = self.entries.get_mut(queue) {
            e.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: i32) -> MessageQueue {
        MessageQueue { topic: "t".into(), broker_name: "b".into(), queue_id: id }
    }

    #[test]
    fn offsets_advance_forward_only_and_commit_once() {
        let mut t = OffsetTable::new();
        t.reset(&q(0), 5);
        t.advance(&q(0), 3);
        assert_eq!(t.get(&q(0)), Some(5));
        t.advance(&q(0), 9);
        t.advance(&q(1), 2);
        assert_eq!(t.take_dirty(), [(q(0), 9), (q(1), 2)]);
        assert!(t.take_dirty().is_empty());
        t.mark_dirty(&q(1));
        assert_eq!(t.take_dirty(), [(q(1), 2)]);
        t.reset(&q(0), 1);
        assert_eq!(t.get(&q(0)), Some(1));
        assert_eq!(t.snapshot(), [(q(0), 1), (q(1), 2)]);
        assert_eq!(t.remove(&q(0)), Some(1));
        assert_eq!(t.get(&q(0)), None);
    }
}
