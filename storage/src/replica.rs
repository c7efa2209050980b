//! Replication support: reading a log's raw bytes on a master, and appending a master's
//! bytes at the same positions on a slave, so that the two logs stay byte-identical.
//!
//! Lives on: the owner shard of the log (both halves are `LogStore` methods; the server's
//! replication shard reaches them through the owner's channel).
//!
//! ```text
//!  master log  ──read_raw(P, N)──▶ [P, E): whole records, at most one blank filler (last)
//!                                     │  (zero-copy slices of the tail cache, or one
//!                                     │   direct read trimmed to record boundaries)
//!                                     ▼
//!  slave log   ──place_replicated(P, bytes)──▶ same positions: P must equal the slave's
//!               end; every record is checked (magic, TOTALSIZE, PHYSICALOFFSET = its own
//!               offset, fits its segment with room for a filler); a filler must end
//!               exactly at the slave's segment end; consume queues and index entries are
//!               added as recovery's replay adds them; the bytes become pending chunks of
//!               the normal writer.
//!               ──wait_replicated(E)──▶ durable under the slave's flush mode
//! ```
//!
//! [`LogStore::read_raw`] serves only `written` bytes (they survive a crash of the
//! process); [`LogStore::read_raw_appended`] also serves pending ones, so a slave can
//! write a range while the master's own write of it is in flight. Such a slave may then
//! hold bytes that a master restarted after a `kill -9` lost; every span says how far the
//! master had written when it was read ([`RawSpan::written`]), so the slave can tell
//! those bytes (never acknowledged by a SYNC_MASTER, which also waits for its own write)
//! from bytes the master had written.
//!
//! Invariant: on the slave, a replicated range is placed only at the log's end and only
//! as whole records and fillers, so the chunk invariants of `commit_log.rs` hold as for
//! ordinary appends.

use std::time::Duration;

use bytes::Bytes;
use ramjet_proto::message::{
    classify_slot, decode_record, Slot, SlotError, SlotHead, StoredMessage,
};

use crate::checkpoint::{write_checkpoint, Checkpoint};
use crate::commit_log::{CommitLog, ReadSource, BLANK_SIZE_BYTES};
use crate::config::{FlushMode, PENDING_BYTES_MAX, RECORD_SIZE_BYTES_MAX};
use crate::consume_queue::{enters_consume_queue, ConsumeQueue, ConsumeQueueEntry};
use crate::error::StoreError;
use crate::index::{is_indexed, record_keys};
use crate::log_offset::log_offset_of;
use crate::log_store::LogStore;
use crate::replay::recover_store;
use crate::store_meta::read_meta;

/// Largest replicated range one `place_replicated` accepts (two largest batches).
pub const REPLICA_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Raw log bytes read on a master for a slave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSpan {
    /// Log position (not the global offset) of the first byte.
    pub position: u64,
    /// The bytes, back to back: whole records and at most one blank filler, last.
    pub pieces: Vec<Bytes>,
    /// The position after the span: `position + len`, or the next segment's start when
    /// the span ends with a filler. Equals `position` when nothing was available.
    pub end: u64,
    /// The log's written position when the span was read (may be below `end` for
    /// [`LogStore::read_raw_appended`]).
    pub written: u64,
}

impl RawSpan {
    /// Bytes in the span.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.pieces.iter().all(Bytes::is_empty)
    }
}

/// Where a log stands, for the replication handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaPosition {
    /// Start of the oldest segment on disk (0 for an empty log).
    pub start: u64,
    /// The next position to write (`dirty`).
    pub end: u64,
    /// Durable under the flush mode: written (async flush) or fdatasynced (sync flush).
    pub durable: u64,
    /// Written to the segment files (survives a crash of the process).
    pub written: u64,
    /// The end when this process opened the log.
    pub opened: u64,
}

/// What one `place_replicated` added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaPlaced {
    /// The log's end after the range.
    pub end: u64,
    /// Records placed.
    pub records: u64,
    /// `(topic, queue id)` of every consume queue that grew, for long-poll wake-ups.
    pub queues: Vec<(String, i32)>,
}

/// One slot of a replicated range.
enum RawSlot {
    Record(usize),
    Blank,
}

/// Classifies the slot at the start of `bytes` ([`classify_slot`]); `Ok(None)` when
/// `bytes` ends before it does. `room` is what is left of the segment at the slot. Zeros
/// are an error here: a range holds only records and fillers.
fn raw_slot(bytes: &[u8], room: u64) -> Result<Option<RawSlot>, String> {
    match classify_slot(bytes, room, RECORD_SIZE_BYTES_MAX) {
        Ok(Slot::Blank) => Ok(Some(RawSlot::Blank)),
        Ok(Slot::Record { total_size }) => {
            Ok((bytes.len() >= total_size).then_some(RawSlot::Record(total_size)))
        }
        Ok(Slot::Zero) => Err(SlotError::BadMagic { magic: 0 }.to_string()),
        Err(SlotError::Short { .. }) => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

impl LogStore {
    /// Where the log stands: oldest segment, end, durable and written positions.
    pub fn replica_position(&self) -> ReplicaPosition {
        let shared = &self.shared;
        let log = shared.log.borrow();
        let durable = match shared.config.flush {
            FlushMode::Async => shared.written.position(),
            FlushMode::Sync => shared.flushed.position(),
        };
        ReplicaPosition {
            start: log.start_position(),
            end: log.dirty,
            durable,
            written: shared.written.position(),
            opened: shared.opened_end,
        }
    }

    /// Size of new segments (a slave must use its master's).
    pub fn segment_size_bytes(&self) -> u64 {
        self.shared.config.segment_size_bytes
    }

    /// Master side: the raw log bytes from `position` (a record boundary), at most about
    /// `max_bytes` (at least one whole record or chunk), up to the written position.
    /// When `position` is the written position, waits up to `wait` for more; an empty
    /// span means nothing arrived.
    ///
    /// # Errors
    /// `ReplicaMismatch` when `position` is past the end or before the oldest segment, or
    /// the bytes there are not a record; `Io` on a failed read; `Poisoned`.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn read_raw(
        &self,
        position: u64,
        max_bytes: usize,
        wait: Duration,
    ) -> Result<RawSpan, StoreError> {
        self.read_raw_upto(position, max_bytes, wait, false).await
    }

    /// As [`LogStore::read_raw`], but up to the appended end: pending bytes (in memory,
    /// not yet written) are served from the tail cache too, so a slave receives a range
    /// while the master's write of it is in flight. Waits at the appended end.
    ///
    /// # Errors
    /// As [`LogStore::read_raw`].
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn read_raw_appended(
        &self,
        position: u64,
        max_bytes: usize,
        wait: Duration,
    ) -> Result<RawSpan, StoreError> {
        self.read_raw_upto(position, max_bytes, wait, true).await
    }

    async fn read_raw_upto(
        &self,
        position: u64,
        max_bytes: usize,
        wait: Duration,
        appended: bool,
    ) -> Result<RawSpan, StoreError> {
        let shared = &self.shared;
        let watch = if appended { &shared.appended } else { &shared.written };
        let span = |pieces: Vec<Bytes>, end: u64| RawSpan {
            position,
            pieces,
            end,
            written: shared.written.position(),
        };
        let limit = watch.position();
        if position > limit {
            let what = if appended { "appended" } else { "written" };
            return Err(self.mismatch(position, format!("past the {what} end {limit}")));
        }
        if position == limit {
            let more = watch.wait_for(position + 1);
            let timer = async {
                glommio::timer::sleep(wait).await;
                Ok(())
            };
            futures_lite::future::or(more, timer).await?;
            if watch.position() == position {
                return Ok(span(Vec::new(), position));
            }
        }
        let limit = watch.position();
        let cached = shared.log.borrow().cached_span(position, limit, max_bytes as u64);
        if let Some((pieces, end)) = cached {
            return Ok(span(pieces, end));
        }
        // Not cached: written bytes (pending ones are always in the tail cache).
        let written = shared.written.position();
        if position >= written {
            return Err(self.mismatch(position, "pending bytes not in the tail cache".into()));
        }
        let mut read = self.read_raw_from_disk(position, written, max_bytes).await?;
        read.written = shared.written.position();
        Ok(read)
    }

    /// The cold half of `read_raw`: one direct read in the segment holding `position`,
    /// trimmed to whole records (re-read once when the first record is larger).
    async fn read_raw_from_disk(
        &self,
        position: u64,
        limit: u64,
        max_bytes: usize,
    ) -> Result<RawSpan, StoreError> {
        let start = self.shared.log.borrow().start_position();
        if position < start {
            return Err(self.mismatch(position, format!("before the oldest segment at {start}")));
        }
        let mut want = max_bytes.max(BLANK_SIZE_BYTES as usize) as u64;
        for _ in 0..2 {
            let source = self.shared.log.borrow_mut().locate(position, BLANK_SIZE_BYTES);
            let ReadSource::Disk { segment, .. } = source else {
                return Err(self.mismatch(position, "not in any segment".to_string()));
            };
            let len = want.min(limit - position).min(segment.end() - position);
            let bytes = segment.read(position, len as usize).await?;
            let mut at = 0usize;
            let mut end = position;
            while at < bytes.len() {
                let room = segment.end() - end;
                let slot = raw_slot(bytes.get(at..).unwrap_or_default(), room)
                    .map_err(|reason| self.mismatch(end, reason))?;
                match slot {
                    None => break,
                    Some(RawSlot::Record(total)) => {
                        at += total;
                        end += total as u64;
                    }
                    Some(RawSlot::Blank) => {
                        at += BLANK_SIZE_BYTES as usize;
                        end = segment.end();
                        break;
                    }
                }
            }
            if at > 0 {
                return Ok(RawSpan {
                    position,
                    pieces: vec![bytes.slice(..at)],
                    end,
                    written: limit,
                });
            }
            // The first record is larger than the read: read exactly it.
            want = SlotHead::read(&bytes)
                .and_then(|head| u64::try_from(head.total_size).ok())
                .unwrap_or(0);
            if want as usize > RECORD_SIZE_BYTES_MAX || want <= len {
                return Err(self.mismatch(position, "record does not fit the read".to_string()));
            }
        }
        Err(self.mismatch(position, "record does not fit the read".to_string()))
    }

    /// Slave side, for an empty log: start it at `position` (the start of the master's
    /// oldest segment), so the next replicated range lands there.
    ///
    /// # Errors
    /// `ReplicaMismatch` when the log is not empty.
    pub fn start_replica_at(&self, position: u64) -> Result<(), StoreError> {
        let ReplicaPosition { start, end, .. } = self.replica_position();
        if start != 0 || end != 0 {
            return Err(self.mismatch(end, format!("cannot start at {position}: log not empty")));
        }
        if position == 0 {
            return Ok(());
        }
        if position % self.shared.config.segment_size_bytes != 0 {
            return Err(self.mismatch(position, "start is not a segment boundary".to_string()));
        }
        self.shared.log.borrow_mut().start_empty_at(position);
        self.shared.written.advance(position);
        self.shared.flushed.advance(position);
        self.shared.appended.advance(position);
        Ok(())
    }

    /// Slave side: appends the master's bytes `bytes` of log positions `[position, ..)`
    /// at the same positions (the synchronous decide step; [`LogStore::wait_replicated`]
    /// waits for durability). Consume queues and the index grow as on the master.
    ///
    /// # Errors
    /// `ReplicaMismatch` when `position` is not the log's end, a record does not check
    /// out, a queue offset does not follow its queue, or a filler is not where this
    /// log's segment ends (segment sizes differ); `Busy` when too much is pending;
    /// `Poisoned`, `Closed`. Nothing is placed on error.
    pub fn place_replicated(
        &self,
        position: u64,
        bytes: Bytes,
    ) -> Result<ReplicaPlaced, StoreError> {
        let shared = &self.shared;
        if shared.closing.get() {
            return Err(StoreError::Closed);
        }
        if shared.poison.borrow().is_some() {
            return Err(StoreError::Poisoned);
        }
        let (dirty, active_end, pending) = {
            let log = shared.log.borrow();
            (log.dirty, log.active_end(), log.pending_bytes())
        };
        if position != dirty {
            return Err(
                self.mismatch(position, format!("range starts where the log ends at {dirty}"))
            );
        }
        if bytes.len() > REPLICA_BYTES_MAX {
            return Err(StoreError::MessageTooLarge);
        }
        if pending + bytes.len() as u64 > PENDING_BYTES_MAX {
            return Err(StoreError::Busy {
                pending_bytes: pending,
                pending_bytes_max: PENDING_BYTES_MAX,
            });
        }
        let plan = self.plan_replicated(position, active_end, &bytes)?;
        Ok(self.apply_replicated(bytes, plan))
    }

    /// Checks a replicated range without changing anything; returns its slots.
    fn plan_replicated(
        &self,
        position: u64,
        active_end: u64,
        bytes: &Bytes,
    ) -> Result<Vec<PlannedSlot>, StoreError> {
        let segment_size = self.shared.config.segment_size_bytes;
        let mut plan = Vec::new();
        let mut at = 0usize;
        let mut pos = position;
        let mut segment_end = active_end;
        while at < bytes.len() {
            let rest = bytes.get(at..).unwrap_or_default();
            let slot =
                raw_slot(rest, segment_end - pos).map_err(|reason| self.mismatch(pos, reason))?;
            match slot {
                None => return Err(self.mismatch(pos, "range ends inside a record".to_string())),
                Some(RawSlot::Blank) => {
                    plan.push(PlannedSlot::Blank { at });
                    at += BLANK_SIZE_BYTES as usize;
                    pos = segment_end;
                    segment_end += segment_size;
                }
                Some(RawSlot::Record(total)) => {
                    let record = bytes.slice(at..at + total);
                    let message = decode_record(&record, false)
                        .map_err(|e| self.mismatch(pos, e.to_string()))?;
                    let expected = log_offset_of(self.shared.log_id, pos);
                    if message.physical_offset != expected {
                        let found = message.physical_offset;
                        let reason = format!("PHYSICALOFFSET {found} where {expected} belongs");
                        return Err(self.mismatch(pos, reason));
                    }
                    plan.push(PlannedSlot::Record { at, message: Box::new(message) });
                    at += total;
                    pos += total as u64;
                }
            }
        }
        self.check_queue_offsets(&plan)
            .map_err(|(at, reason)| self.mismatch(position + at as u64, reason))?;
        Ok(plan)
    }

    /// Each record entering a consume queue must carry the queue's next offset (a queue
    /// the slave does not know yet starts at its first record's offset).
    fn check_queue_offsets(&self, plan: &[PlannedSlot]) -> Result<(), (usize, String)> {
        let queues = self.shared.queues.borrow();
        let mut next: std::collections::HashMap<(&[u8], i32), i64> = Default::default();
        for slot in plan {
            let PlannedSlot::Record { at, message } = slot else { continue };
            if !enters_consume_queue(message.sys_flag) {
                continue;
            }
            let key = (&message.topic[..], message.queue_id);
            let expected = *next.entry(key).or_insert_with(|| {
                let topic = String::from_utf8_lossy(&message.topic);
                queues
                    .get(topic.as_ref())
                    .and_then(|by_id| by_id.get(&message.queue_id))
                    .map_or(message.queue_offset, ConsumeQueue::max_offset)
            });
            if message.queue_offset != expected {
                let reason = format!(
                    "QUEUEOFFSET {} where {expected} follows in queue {}",
                    message.queue_offset, message.queue_id
                );
                return Err((*at, reason));
            }
            next.insert(key, expected + 1);
        }
        Ok(())
    }

    /// The synchronous complete step: chunks, fillers, consume queues, index.
    fn apply_replicated(&self, bytes: Bytes, plan: Vec<PlannedSlot>) -> ReplicaPlaced {
        let shared = &self.shared;
        let mut placed = ReplicaPlaced::default();
        let mut log = shared.log.borrow_mut();
        let mut queues = shared.queues.borrow_mut();
        let mut run_start: Option<usize> = None;
        let mut at_end = 0usize;
        for slot in plan {
            match slot {
                PlannedSlot::Blank { at } => {
                    if let Some(from) = run_start.take() {
                        log.push_chunk(bytes.slice(from..at));
                    }
                    log.roll();
                    at_end = at + BLANK_SIZE_BYTES as usize;
                }
                PlannedSlot::Record { at, message } => {
                    run_start.get_or_insert(at);
                    let log_offset = message.physical_offset;
                    let size = message.total_size;
                    log.note_store_time(message.store_timestamp);
                    if enters_consume_queue(message.sys_flag) {
                        let topic = String::from_utf8_lossy(&message.topic).into_owned();
                        let by_id = queues.entry(topic.clone()).or_default();
                        let queue = by_id
                            .entry(message.queue_id)
                            .or_insert_with(|| ConsumeQueue::starting_at(message.queue_offset));
                        let tags_code = (shared.config.tags_code_of)(&message);
                        queue.push(ConsumeQueueEntry::new(log_offset, size, tags_code));
                        if !placed.queues.iter().any(|(t, q)| *t == topic && *q == message.queue_id)
                        {
                            placed.queues.push((topic, message.queue_id));
                        }
                    }
                    if shared.config.index_enabled && is_indexed(message.sys_flag) {
                        let keys = record_keys(&message.properties);
                        if !keys.is_empty() {
                            let topic = String::from_utf8_lossy(&message.topic);
                            shared.index.borrow_mut().add(
                                &topic,
                                &keys,
                                log_offset,
                                message.store_timestamp,
                            );
                        }
                    }
                    placed.records += 1;
                    at_end = at + size as usize;
                    log.stats.records += 1;
                    log.stats.bytes_appended += size as u64;
                }
            }
        }
        if let Some(from) = run_start {
            log.push_chunk(bytes.slice(from..at_end));
        }
        log.stats.appends += 1;
        log.assert_invariants();
        placed.end = log.dirty;
        drop(queues);
        drop(log);
        shared.writer_wake.raise();
        shared.appended.advance(placed.end);
        placed
    }

    /// Slave side: cuts the log back to `position`, below its end: the master lost the
    /// tail the slave holds (an async master restarted without it). Drains pending
    /// writes, zeroes the segment from `position` on and removes later segments, then
    /// rebuilds the consume queues and the index from the log as recovery does (a
    /// checkpoint that matches nothing forces the rebuild), and continues at `position`.
    /// Slow (the whole log is replayed), and rare. Returns the new end.
    ///
    /// # Errors
    /// `ReplicaMismatch` when `position` is past the end; `Io`, `Corrupt` from the replay;
    /// `Poisoned`.
    ///
    /// # Cancel safety
    /// Not cancel safe: once files are cut, the in-memory state must be rebuilt.
    pub async fn truncate_replica(&self, position: u64) -> Result<u64, StoreError> {
        let shared = &self.shared;
        let dirty = shared.log.borrow().dirty;
        if position > dirty {
            return Err(self.mismatch(position, format!("cannot truncate past the end {dirty}")));
        }
        if position == dirty {
            return Ok(dirty);
        }
        shared.written.wait_for(dirty).await?;
        shared.flushed.wait_for(dirty).await?;
        let Ok(_permit) = shared.checkpoint_lock.acquire_permit(1).await else {
            return Err(StoreError::Closed); // The semaphore is never closed.
        };
        let segments: Vec<_> = shared.log.borrow().segments.values().cloned().collect();
        let io = shared.io.as_ref();
        let dir = shared.config.log_dir(shared.log_id);
        let first_start = segments.first().map_or(0, |segment| segment.start);
        for segment in &segments {
            if segment.start >= position && segment.start > first_start {
                let path = segment.path();
                io.remove(path.clone()).await.map_err(|e| StoreError::io("remove", &path, &e))?;
            } else if position < segment.end() {
                segment.truncate_at(position.max(segment.start)).await?;
            }
        }
        io.sync_dir(dir.clone()).await.map_err(|e| StoreError::io("sync_dir", &dir, &e))?;
        // Entry count and index end that no store has: both are rebuilt from the log.
        let previous = shared.checkpoint.get();
        let forced = Checkpoint {
            sequence: previous.sequence + 1,
            position: 0,
            entry_count: u64::MAX,
            written_at_ms: previous.written_at_ms,
            index_end: u64::MAX,
        };
        let path = shared.config.checkpoint_path(shared.log_id);
        write_checkpoint(io, &path, &forced).await?;
        let log_count = read_meta(&shared.config.root)?;
        let recovered = recover_store(&shared.config, io, shared.log_id, log_count, false).await?;
        let end = recovered.state.end;
        *shared.log.borrow_mut() = CommitLog::new(
            dir,
            shared.config.segment_size_bytes,
            shared.config.tail_cache_bytes as u64,
            recovered.state,
        );
        *shared.queues.borrow_mut() = recovered.queues;
        *shared.index.borrow_mut() = recovered.index;
        shared.checkpoint.set(recovered.checkpoint);
        shared.written.reset(end);
        shared.flushed.reset(end);
        shared.appended.reset(end);
        shared.checkpointer_wake.raise();
        tracing::warn!(log_id = shared.log_id, from = dirty, to = end, "replica log truncated");
        Ok(end)
    }

    /// Resolves once the log is durable up to `end` under its flush mode (written for
    /// async flush, fdatasynced for sync flush): a slave before it ACKs a range, a
    /// SYNC_MASTER before it answers a send its slave already holds. An async write
    /// awaited this way is not held back for coalescing (`log_writer.rs`).
    ///
    /// # Errors
    /// `Poisoned` when the log fails first.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future only drops interest.
    pub async fn wait_replicated(&self, end: u64) -> Result<(), StoreError> {
        if self.shared.written.position() < end {
            // An acknowledgement waits: the writer does not hold a small write back.
            self.shared.write_awaited.set(true);
            self.shared.writer_wake.raise();
        }
        match self.shared.config.flush {
            FlushMode::Async => self.shared.written.wait_for(end).await,
            FlushMode::Sync => self.shared.flushed.wait_for(end).await,
        }
    }

    fn mismatch(&self, position: u64, reason: String) -> StoreError {
        StoreError::ReplicaMismatch { log_id: self.shared.log_id, position, reason }
    }
}

/// One checked slot of a replicated range.
enum PlannedSlot {
    Record { at: usize, message: Box<StoredMessage> },
    Blank { at: usize },
}
