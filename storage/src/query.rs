//! Lookups beside pulls: messages by key and by unique id (the index), the queue offset
//! of a point in time, and a queue's earliest store time. For QUERY_MESSAGE (12),
//! VIEW_MESSAGE_BY_ID by unique key, SEARCH_OFFSET_BY_TIMESTAMP (29) and
//! GET_EARLIEST_MSG_STORETIME (32).
//!
//! Lives on: the owner shard of the log (methods of `LogStore`).
//!
//! Every lookup is a synchronous decide step (what to read, from the in-memory state)
//! followed by direct reads; no `RefCell` borrow is held across an `.await`.

use bytes::Bytes;
use ramjet_proto::message::{decode_record, property, property_value, RecordView, StoredMessage};

use crate::consume_queue::{queue_dir, read_entries_from_files, ConsumeQueueEntry};
use crate::error::StoreError;
use crate::index::{key_hash, lookup_pending, lookup_run, Lookup};
use crate::log_offset::split_log_offset;
use crate::log_store::LogStore;

/// Index candidates one key lookup collects at most, whatever `max_count` asks.
pub const QUERY_RESULTS_MAX: usize = 64 * 1024;

/// A lookup by message key.
#[derive(Debug, Clone, Copy)]
pub struct KeyQuery<'a> {
    /// Topic.
    pub topic: &'a str,
    /// One key (a word of `KEYS`, or a `UNIQ_KEY`).
    pub key: &'a str,
    /// Most offsets returned.
    pub max_count: usize,
    /// Earliest store time wanted, ms (inclusive).
    pub begin_ms: i64,
    /// Latest store time wanted, ms (inclusive).
    pub end_ms: i64,
}

impl LogStore {
    /// Global log offsets of records whose index key is `topic#key` and whose store time
    /// is in `[begin_ms, end_ms]`, newest first, at most `max_count`. These are
    /// candidates: 32-bit hashes collide, so read each record (`read_record`) and compare
    /// its topic and key, or call [`LogStore::find_by_key`], which does.
    ///
    /// # Errors
    /// `Io` on a failed index read.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn query_by_key(&self, query: KeyQuery<'_>) -> Result<Vec<i64>, StoreError> {
        let lookup = Lookup {
            key_hash: key_hash(query.topic, query.key),
            begin_ms: query.begin_ms,
            end_ms: query.end_ms,
        };
        let max_count = query.max_count.min(QUERY_RESULTS_MAX);
        let (mut found, runs) = {
            let index = self.shared.index.borrow();
            (lookup_pending(&index, &lookup), index.runs.clone())
        };
        for run in runs.iter().rev() {
            if found.len() >= max_count {
                break;
            }
            found.extend(lookup_run(self.shared.io.as_ref(), run, &lookup).await?);
        }
        let log_start = self.log_start_position();
        found.retain(|&offset| split_log_offset(offset).is_some_and(|(_, p)| p >= log_start));
        found.truncate(max_count);
        Ok(found)
    }

    /// The records of `topic` whose `KEYS` holds `key` as a word, or whose `UNIQ_KEY` is
    /// `key`, stored in `[begin_ms, end_ms]`, newest first, at most `max_count`: the index
    /// candidates of [`LogStore::query_by_key`], read and checked.
    ///
    /// # Errors
    /// `Io`.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn find_by_key(&self, query: KeyQuery<'_>) -> Result<Vec<Bytes>, StoreError> {
        let mut records = Vec::new();
        let candidates = self.query_by_key(KeyQuery { max_count: QUERY_RESULTS_MAX, ..query });
        for offset in candidates.await? {
            if records.len() >= query.max_count {
                break;
            }
            let Some(record) = self.read_record(offset).await? else { continue };
            let Ok(message) = decode_record(&record, false) else { continue };
            if message.topic == query.topic.as_bytes() && carries_key(&message, query.key) {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// The newest record of `topic` whose `UNIQ_KEY` (the client's message id) is
    /// `unique_key`, for VIEW_MESSAGE_BY_ID and QUERY_MESSAGE by unique key.
    ///
    /// # Errors
    /// `Io`.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn find_by_unique_key(
        &self,
        topic: &str,
        unique_key: &str,
    ) -> Result<Option<Bytes>, StoreError> {
        let query =
            KeyQuery { topic, key: unique_key, max_count: 32, begin_ms: 0, end_ms: i64::MAX };
        for offset in self.query_by_key(query).await? {
            let Some(record) = self.read_record(offset).await? else { continue };
            let Ok(message) = decode_record(&record, false) else { continue };
            let uniq = property_value(&message.properties, property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX);
            if message.topic == topic.as_bytes() && uniq.as_deref() == Some(unique_key) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// The first queue offset of `(topic, queue_id)` whose record was stored at or after
    /// `timestamp_ms`, clamped to `[min_offset, max_offset]` (RocketMQ's
    /// `getOffsetInQueueByTime`): a binary search over the consume queue reading each
    /// probed record's STORETIMESTAMP. 0 for an unknown queue; the max offset when every
    /// record is older.
    ///
    /// # Errors
    /// `Io`.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn search_offset_by_timestamp(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
    ) -> Result<i64, StoreError> {
        let (mut low, mut high) =
            (self.min_offset(topic, queue_id), self.max_offset(topic, queue_id));
        while low < high {
            let middle = low + (high - low) / 2;
            match self.store_time_at(topic, queue_id, middle).await? {
                Some(stored) if stored >= timestamp_ms => high = middle,
                // Older, or no longer readable (retention): the answer is further on.
                _ => low = middle + 1,
            }
        }
        Ok(low)
    }

    /// The store time of the oldest readable message of `(topic, queue_id)`; `None` when
    /// the queue is empty or unknown.
    ///
    /// # Errors
    /// `Io`.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn earliest_message_store_time(
        &self,
        topic: &str,
        queue_id: i32,
    ) -> Result<Option<i64>, StoreError> {
        let (min, max) = (self.min_offset(topic, queue_id), self.max_offset(topic, queue_id));
        if min >= max {
            return Ok(None);
        }
        self.store_time_at(topic, queue_id, min).await
    }

    /// The consume-queue entry at `offset`, from memory or the files.
    pub(crate) async fn entry_at(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<Option<ConsumeQueueEntry>, StoreError> {
        let in_memory = {
            let queues = self.shared.queues.borrow();
            let Some(queue) = queues.get(topic).and_then(|t| t.get(&queue_id)) else {
                return Ok(None);
            };
            if offset < queue.min_offset() || offset >= queue.max_offset() {
                return Ok(None);
            }
            queue.in_memory(offset).copied()
        };
        if in_memory.is_some() {
            return Ok(in_memory);
        }
        let dir = queue_dir(&self.shared.config.consume_queue_root(), topic, queue_id);
        let entries = read_entries_from_files(self.shared.io.as_ref(), &dir, offset, 1).await?;
        Ok(entries.first().copied())
    }

    /// STORETIMESTAMP of the record at queue offset `offset`; `None` when unreadable.
    async fn store_time_at(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<Option<i64>, StoreError> {
        let Some(entry) = self.entry_at(topic, queue_id, offset).await? else { return Ok(None) };
        let Some(record) = self.read_record(entry.log_offset()).await? else { return Ok(None) };
        Ok(record_store_timestamp(&record))
    }

    /// The log position of the oldest segment still on disk.
    pub(crate) fn log_start_position(&self) -> u64 {
        self.shared.log.borrow().start_position()
    }
}

/// STORETIMESTAMP of an encoded record.
fn record_store_timestamp(record: &[u8]) -> Option<i64> {
    RecordView::new(record).ok().map(|view| view.store_timestamp())
}

/// Whether a record carries `key` as its unique key or as a word of its `KEYS`.
fn carries_key(message: &StoredMessage, key: &str) -> bool {
    let props = &message.properties;
    property_value(props, property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX).as_deref() == Some(key)
        || property_value(props, property::KEYS)
            .is_some_and(|keys| keys.split(' ').any(|w| w == key))
}
