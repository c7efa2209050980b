//! The typed internal API of a shard: what subsystems (transactions, delay delivery,
//! send-back, admin) ask of the shard that owns a queue, without building request frames.
//!
//! Each operation has a local form (this shard owns the queue) and a routed form that
//! sends a typed [`ShardMsg`] to the owner and awaits its typed reply; both return
//! [`BrokerError`], which handlers map to a response code once.

use ramjet_storage::{AppendBatch, AppendResult, GetRequest, GetResult};

use super::{Shard, ShardMsg};
use crate::error::BrokerError;

/// A read of one queue from `offset`, with owned names so it can cross shards.
#[derive(Debug, Clone)]
pub struct QueueRead {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// First queue offset to read.
    pub offset: i64,
    /// Most records.
    pub max_count: u32,
    /// Most bytes (at least one record is always returned).
    pub max_bytes: u32,
}

impl Shard {
    /// Appends on this shard (which must own the queue) and wakes the queue's waiters.
    ///
    /// # Errors
    /// The store's error, or a queue this shard does not own.
    pub async fn append_local(&self, batch: AppendBatch) -> Result<AppendResult, BrokerError> {
        let (topic, queue_id) = (batch.topic.clone(), batch.queue_id);
        let store = self.store_for(&topic, queue_id).cloned().ok_or_else(|| {
            BrokerError::NotOwned { topic: topic.clone(), queue_id, shard: self.id }
        })?;
        let result = store.append(batch).await?;
        self.long_poll.borrow_mut().notify(&topic, queue_id);
        Ok(result)
    }

    /// Appends records on whichever shard owns their queue (internal re-puts: scheduled
    /// delivery, retries, committed transactions).
    ///
    /// # Errors
    /// The owner's store error, or a shard that is gone.
    pub async fn append_routed(&self, batch: AppendBatch) -> Result<AppendResult, BrokerError> {
        let owner = self.shard_for(&batch.topic, batch.queue_id);
        if owner == self.id {
            return self.append_local(batch).await;
        }
        let (tx, rx) = flume::bounded(1);
        self.peers[owner]
            .send_async(ShardMsg::Append { batch, reply: tx })
            .await
            .map_err(|_| BrokerError::ShardGone(owner))?;
        rx.recv_async().await.map_err(|_| BrokerError::ShardGone(owner))?
    }

    /// Reads a queue this shard owns (no tag filter).
    ///
    /// # Errors
    /// The store's error, or a queue this shard does not own.
    pub async fn read_local(&self, read: &QueueRead) -> Result<GetResult, BrokerError> {
        let store = self.store_for(&read.topic, read.queue_id).cloned().ok_or_else(|| {
            BrokerError::NotOwned {
                topic: read.topic.clone(),
                queue_id: read.queue_id,
                shard: self.id,
            }
        })?;
        let get = GetRequest {
            topic: &read.topic,
            queue_id: read.queue_id,
            queue_offset: read.offset,
            max_count: read.max_count,
            max_bytes: read.max_bytes,
            tags_filter: None,
        };
        Ok(store.get_messages(get).await?)
    }

    /// Reads a queue on whichever shard owns it.
    ///
    /// # Errors
    /// The owner's store error, or a shard that is gone.
    pub async fn read_routed(&self, read: QueueRead) -> Result<GetResult, BrokerError> {
        let owner = self.shard_for(&read.topic, read.queue_id);
        if owner == self.id {
            return self.read_local(&read).await;
        }
        let (tx, rx) = flume::bounded(1);
        self.peers[owner]
            .send_async(ShardMsg::ReadQueue { read, reply: tx })
            .await
            .map_err(|_| BrokerError::ShardGone(owner))?;
        rx.recv_async().await.map_err(|_| BrokerError::ShardGone(owner))?
    }
}
