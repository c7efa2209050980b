//! `LogStore`: one commit log and the consume queues of every `(topic, queue id)` mapped
//! to it. The storage API the broker calls.
//!
//! Lives on: the owner shard of the log. `!Send`: `Rc` and `RefCell` inside, no locks or
//! atomics; no `RefCell` borrow is held across an `.await` (each call is a synchronous
//! decide step, then I/O, then a synchronous complete step).
//!
//! ```text
//!  LogStore ─ Rc<LogState> ┬─ RefCell<CommitLog>      positions, pending chunks, tail cache
//!     │                    ├─ RefCell<ConsumeQueues>  topic → queue id → bounded entry tail
//!     │                    ├─ RefCell<Index>          runs on disk, entries since checkpoint
//!     │                    ├─ PositionWatch flushed   sync-mode appends wait here
//!     │                    └─ Rc<dyn Io>              the I/O seam
//!     ├── writer task       (log_writer.rs: group commit)
//!     └── checkpointer task (persists consume queues, writes the checkpoint)
//! ```
//!
//! Files of log `L` under the store root:
//!
//! ```text
//! {root}/store.meta                          log count, fixed at creation
//! {root}/commitlog/{L:03}/{start:020}        segments
//! {root}/commitlog/{L:03}.checkpoint         checkpoint (two slots)
//! {root}/commitlog/{L:03}.abort              abort marker: present while open
//! {root}/consumequeue/{topic}/{queue id}/{first byte:020}
//! {root}/index/{L:03}/{first position:020}   index runs (index.rs)
//! ```
//!
//! Lookups by key, unique id and time are in `query.rs`; retention and the disk-full
//! refusal in `retention.rs`; opening (replay of derived data) in `replay.rs`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use glommio::Task;
use ramjet_proto::message::{
    classify_slot, patch_record, MessageError, RecordView, Slot, SlotHead,
};

use crate::checkpoint::{write_checkpoint, Checkpoint};
use crate::commit_log::{CommitLog, LogStats, ReadSource};
use crate::config::{
    FlushMode, StoreConfig, ASYNC_BACKPRESSURE_BYTES, BLOCK_SIZE_BYTES, PENDING_BYTES_MAX,
    RECORD_SIZE_BYTES_MAX, RECORD_SIZE_BYTES_MIN, SEGMENT_SIZE_BYTES_MIN, TOPIC_BYTES_MAX,
};
use crate::consume_queue::{
    enters_consume_queue, persist_job, queue_dir, read_entries_from_files, run_persist_job,
    ConsumeQueue, ConsumeQueueEntry,
};
use crate::error::StoreError;
use crate::index::{index_dir, is_indexed, record_keys, write_run};
use crate::io::{DmaIo, Io};
use crate::log_offset::{log_offset_of, split_log_offset, LOG_ID_MAX};
use crate::log_state::LogState;
use crate::log_writer::run_writer;
use crate::recovery::RecoveryReport;
use crate::replay::{create_marker, recover_store, Recovered};
use crate::store_meta::read_meta;
use crate::watch::{PositionWatch, Signal};

/// Consume-queue entries one pull scans at most when a tags filter skips entries
/// (RocketMQ's `maxFilterMessageCount`), unless `max_count` is larger.
pub const SCAN_ENTRIES_MAX: u32 = 16_000;
/// Largest span of log one cold read covers when it serves several records at once.
pub const COLD_READ_BYTES_MAX: u64 = 1024 * 1024;

/// One append: one record or a batch for one queue, stored contiguously.
#[derive(Debug, Clone)]
pub struct AppendBatch {
    /// Topic of every record.
    pub topic: String,
    /// Queue of every record.
    pub queue_id: i32,
    /// One or more records from `proto::message::encode_record`, back to back.
    pub records: BytesMut,
    /// The consume-queue tags code of each record.
    pub tags_codes: Vec<i64>,
}

/// Where an append landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// Global log offset of the first record.
    pub first_log_offset: i64,
    /// Queue offset of the first record.
    pub first_queue_offset: i64,
    /// Global log offset of each record.
    pub record_offsets: Vec<i64>,
    /// STORETIMESTAMP written into every record, ms.
    pub store_timestamp: i64,
}

/// A pull from one queue.
#[derive(Debug, Clone)]
pub struct GetRequest<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Queue id.
    pub queue_id: i32,
    /// First queue offset wanted.
    pub queue_offset: i64,
    /// Most messages returned.
    pub max_count: u32,
    /// Most record bytes returned (at least one message is returned regardless).
    pub max_bytes: u32,
    /// Tags codes to keep (None = all). Entries whose code is not in the set are skipped,
    /// and next_offset moves past them; if entries were scanned but none matched, status
    /// is NoMatchedMessage.
    pub tags_filter: Option<&'a [i64]>,
}

/// Outcome of a pull, as RocketMQ's `GetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// Entries were scanned but none matched the tags filter.
    NoMatchedMessage,
    /// At least one message.
    Found,
    /// The queue is empty (max offset 0), or was never written: storage does not know
    /// topics, so like RocketMQ (which creates a queue on lookup) it answers this for an
    /// unknown queue.
    NoMessageInQueue,
    /// The offset is below the queue's min offset; next_offset is the min.
    OffsetTooSmall,
    /// The offset equals the max offset (nothing new: long-poll); next_offset is it.
    OffsetOverflowOne,
    /// The offset is past the max offset; next_offset is the max.
    OffsetOverflowBadly,
    /// Not produced by `LogStore` (see `NoMessageInQueue`); kept for the server's mapping.
    NoMatchedLogicQueue,
}

/// A pull's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetResult {
    /// What happened.
    pub status: GetStatus,
    /// Where the consumer should pull next.
    pub next_offset: i64,
    /// The queue's min offset.
    pub min_offset: i64,
    /// The queue's max offset (next to write).
    pub max_offset: i64,
    /// Whole stored records.
    pub messages: Vec<Bytes>,
    /// Tags code of each message, parallel to `messages`.
    pub tags_codes: Vec<i64>,
}

/// One commit log and the consume queues of every `(topic, queue id)` mapped to it.
///
/// Lives on: the owner shard of the log.
///
/// ```no_run
/// # async fn example() -> Result<(), ramjet_storage::StoreError> {
/// use ramjet_storage::{open_or_create_meta, LogStore, StoreConfig};
/// let config = StoreConfig::new("/var/tmp/ramjet-store");
/// let log_count = open_or_create_meta(&config.root, 4)?; // before executors start
/// let store = LogStore::open(&config, 0).await?; // on the shard that owns log 0
/// assert_eq!(store.max_offset("TopicTest", 0), 0);
/// store.close().await?;
/// # let _ = log_count;
/// # Ok(()) }
/// ```
pub struct LogStore {
    pub(crate) shared: Rc<LogState>,
    tasks: RefCell<Vec<Task<()>>>,
    report: RecoveryReport,
    closed: Cell<bool>,
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since_epoch.map_or(0, |d| d.as_millis() as i64)
}

/// Checks that a topic can be a directory name.
fn validate_topic(topic: &str) -> Result<(), StoreError> {
    let bad = topic.is_empty()
        || topic == "."
        || topic == ".."
        || topic.len() > TOPIC_BYTES_MAX
        || topic.bytes().any(|b| b == b'/' || b == 0);
    if bad {
        return Err(StoreError::InvalidTopic { topic: topic.chars().take(300).collect() });
    }
    Ok(())
}

/// Splits a batch into record lengths, checking each record's size, magic, queue id and
/// topic against the batch.
fn record_lengths(batch: &AppendBatch) -> Result<Vec<usize>, StoreError> {
    let records = &batch.records[..];
    let mut lengths = Vec::with_capacity(batch.tags_codes.len());
    let mut at = 0;
    while at < records.len() {
        let record = records.get(at..).unwrap_or_default();
        let head = SlotHead::read(record)
            .ok_or(StoreError::InvalidBatch { reason: "truncated record header" })?;
        let total = usize::try_from(head.total_size)
            .map_err(|_| StoreError::InvalidBatch { reason: "negative TOTALSIZE" })?;
        if total > RECORD_SIZE_BYTES_MAX {
            return Err(StoreError::MessageTooLarge);
        }
        if total < RECORD_SIZE_BYTES_MIN || total > record.len() {
            return Err(StoreError::InvalidBatch { reason: "TOTALSIZE out of range" });
        }
        let record = record.get(..total).unwrap_or_default();
        let view = RecordView::new(record).map_err(|error| match error {
            MessageError::BadMagic { .. } => {
                StoreError::InvalidBatch { reason: "bad record magic" }
            }
            _ => StoreError::InvalidBatch { reason: "TOTALSIZE shorter than the fixed fields" },
        })?;
        if view.queue_id() != batch.queue_id {
            return Err(StoreError::InvalidBatch {
                reason: "record queue id differs from the batch",
            });
        }
        if view.topic().ok() != Some(batch.topic.as_bytes()) {
            return Err(StoreError::InvalidBatch { reason: "record topic differs from the batch" });
        }
        lengths.push(total);
        at += total;
    }
    if lengths.is_empty() {
        return Err(StoreError::InvalidBatch { reason: "no records" });
    }
    if lengths.len() != batch.tags_codes.len() {
        return Err(StoreError::InvalidBatch { reason: "one tags code per record" });
    }
    Ok(lengths)
}

/// A pull's entries, chosen synchronously from the consume queue.
struct Selection {
    result: GetResult,
    entries: Vec<ConsumeQueueEntry>,
    /// Cold entries to read from the files first: (first queue offset, count).
    from_files: Option<(i64, usize)>,
}

/// Picks the entries a pull returns from `candidates` (queue offsets from `offset` on):
/// skips entries the tags filter rejects, stops at `max_count` entries, at `max_bytes`
/// (after the first), or after scanning `SCAN_ENTRIES_MAX` (or `max_count`). Sets the
/// result's next offset, and its status to `Found` when an entry was chosen.
fn choose_entries<'e>(
    request: &GetRequest<'_>,
    result: &mut GetResult,
    offset: i64,
    candidates: impl Iterator<Item = &'e ConsumeQueueEntry>,
) -> Vec<ConsumeQueueEntry> {
    let scan_max = request.max_count.max(SCAN_ENTRIES_MAX) as usize;
    let count_max = request.max_count.max(1) as usize;
    let mut entries = Vec::new();
    let mut bytes = 0u64;
    let mut next = offset;
    for entry in candidates.take(scan_max) {
        if entries.len() >= count_max {
            break;
        }
        if request.tags_filter.is_some_and(|codes| !codes.contains(&entry.tags_code())) {
            next += 1;
            continue;
        }
        let size = entry.size() as u64;
        if !entries.is_empty() && bytes + size > u64::from(request.max_bytes) {
            break;
        }
        bytes += size;
        entries.push(*entry);
        next += 1;
    }
    result.next_offset = next;
    if !entries.is_empty() {
        result.status = GetStatus::Found;
    }
    entries
}

impl LogStore {
    /// Opens (or creates) log `log_id` under `config.root` with production I/O (glommio
    /// `DmaFile`, O_DIRECT), recovering it as `recovery.rs` describes, and starts its
    /// writer. Call `open_or_create_meta` first.
    ///
    /// # Errors
    /// `Meta` when the store meta is missing or `log_id` is not below its log count;
    /// `Corrupt` when recovery finds damage it will not truncate; `Io`.
    pub async fn open(config: &StoreConfig, log_id: u32) -> Result<Rc<LogStore>, StoreError> {
        let meta = config.root.join("store.meta");
        DmaIo::probe_device(&meta).await.map_err(|e| StoreError::io("open", &meta, &e))?;
        LogStore::open_with_io(config, log_id, Rc::new(DmaIo)).await
    }

    /// [`LogStore::open`] over any I/O implementation (tests inject faults here).
    ///
    /// # Errors
    /// As [`LogStore::open`].
    pub async fn open_with_io(
        config: &StoreConfig,
        log_id: u32,
        io: Rc<dyn Io>,
    ) -> Result<Rc<LogStore>, StoreError> {
        let log_count = read_meta(&config.root)?;
        check_config(config, log_id, log_count)?;
        let log_dir = config.log_dir(log_id);
        let cq_root = config.consume_queue_root();
        for dir in [&log_dir, &cq_root] {
            io.create_dir_all(dir.clone()).await.map_err(|e| StoreError::io("mkdir", dir, &e))?;
        }
        let abort = config.abort_path(log_id);
        let clean =
            !io.exists(abort.clone()).await.map_err(|e| StoreError::io("stat", &abort, &e))?;
        let recovered = recover_store(config, io.as_ref(), log_id, log_count, clean).await?;
        let Recovered { state: recovered, report, queues, checkpoint, index } = recovered;
        tracing::info!(log_id, ?report, "commit log recovered");
        create_marker(io.as_ref(), &abort).await?;
        let end = recovered.end;
        let log = CommitLog::new(
            log_dir,
            config.segment_size_bytes,
            config.tail_cache_bytes as u64,
            recovered,
        );
        let shared = Rc::new(LogState {
            config: config.clone(),
            log_id,
            io,
            log: RefCell::new(log),
            queues: RefCell::new(queues),
            flushed: PositionWatch::new(end),
            written: PositionWatch::new(end),
            appended: PositionWatch::new(end),
            opened_end: end,
            write_awaited: Cell::new(false),
            writer_wake: Signal::default(),
            checkpointer_wake: Signal::default(),
            closing: Cell::new(false),
            poison: RefCell::new(None),
            checkpoint: Cell::new(checkpoint),
            checkpoint_lock: glommio::sync::Semaphore::new(1),
            index: RefCell::new(index),
            writable: Cell::new(true),
            disk_full: Cell::new(false),
            disk_used_per_mille: Cell::new(0),
        });
        let writer = glommio::spawn_local(run_writer(shared.clone()));
        let checkpointer = glommio::spawn_local(run_checkpointer(shared.clone()));
        if report.records_replayed > 0 {
            // Replayed entries (consume queues, index) are only in memory: persist them
            // soon rather than after a whole checkpoint interval of new appends.
            shared.checkpointer_wake.raise();
        }
        Ok(Rc::new(LogStore {
            shared,
            tasks: RefCell::new(vec![writer, checkpointer]),
            report,
            closed: Cell::new(false),
        }))
    }

    /// Appends one record or a batch for one queue, contiguously. Storage patches
    /// QUEUEOFFSET, PHYSICALOFFSET (the global log offset) and STORETIMESTAMP into each
    /// record. Resolves when the data is acknowledged under the flush mode (Async: in memory
    /// and queued for write; Sync: written and fdatasynced). Group commit: appends arriving
    /// while a write is in flight share the next write + fdatasync. The records are readable
    /// by pulls as soon as the append is placed, before it is durable (as in RocketMQ).
    ///
    /// # Errors
    /// `InvalidBatch`, `InvalidTopic`, `MessageTooLarge` (a record over
    /// `RECORD_SIZE_BYTES_MAX`, a batch over `BATCH_SIZE_BYTES_MAX` or a segment),
    /// `Busy` (pending bytes over `PENDING_BYTES_MAX`), `Poisoned`, `Closed`.
    ///
    /// # Cancel safety
    /// The records are placed before the first `.await`: dropping the future in sync mode
    /// drops only the wait for durability; the records are still written.
    pub async fn append(&self, batch: AppendBatch) -> Result<AppendResult, StoreError> {
        let (result, end) = self.append_placed(batch)?;
        match self.shared.config.flush {
            FlushMode::Sync => self.shared.flushed.wait_for(end).await?,
            // An async append resolves without waiting for the disk unless the writer is
            // more than `ASYNC_BACKPRESSURE_BYTES` behind: then it waits for the writer to
            // catch up, so a tight append loop is paced by the disk instead of failing
            // with `Busy` (which stays the hard limit for many concurrent appenders).
            FlushMode::Async => {
                let behind = end.saturating_sub(ASYNC_BACKPRESSURE_BYTES);
                self.shared.written.wait_for(behind).await?;
                glommio::yield_if_needed().await;
            }
        }
        Ok(result)
    }

    /// The synchronous decide step of `append`: validate, place, patch, index, queue.
    fn append_placed(&self, batch: AppendBatch) -> Result<(AppendResult, u64), StoreError> {
        let shared = &self.shared;
        if shared.closing.get() {
            return Err(StoreError::Closed);
        }
        if shared.poison.borrow().is_some() {
            return Err(StoreError::Poisoned);
        }
        if !shared.writable.get() {
            return Err(StoreError::NotWritable);
        }
        if shared.disk_full.get() {
            let limit = shared.config.retention.disk_space_warning_level_ratio;
            return Err(StoreError::DiskFull {
                used_per_mille: shared.disk_used_per_mille.get(),
                limit_per_mille: (limit * 1000.0) as u32,
            });
        }
        validate_topic(&batch.topic)?;
        let lengths = record_lengths(&batch)?;
        let AppendBatch { topic, queue_id, mut records, tags_codes } = batch;
        let len = records.len() as u64;
        let mut log = shared.log.borrow_mut();
        if len > log.batch_size_bytes_max() {
            return Err(StoreError::MessageTooLarge);
        }
        let pending_bytes = log.pending_bytes();
        if pending_bytes + len > PENDING_BYTES_MAX {
            return Err(StoreError::Busy { pending_bytes, pending_bytes_max: PENDING_BYTES_MAX });
        }
        let mut queues = shared.queues.borrow_mut();
        let topic_name = topic.clone();
        let queue = match queues.get_mut(&topic) {
            Some(topic_queues) => topic_queues.entry(queue_id).or_default(),
            None => queues.entry(topic).or_default().entry(queue_id).or_default(),
        };
        let position = log.place(len);
        let store_timestamp = now_ms();
        log.note_store_time(store_timestamp);
        let mut first_queue_offset = None;
        let mut record_offsets = Vec::with_capacity(lengths.len());
        let mut at = 0;
        for (&length, &tags_code) in lengths.iter().zip(&tags_codes) {
            let log_offset = log_offset_of(shared.log_id, position + at as u64);
            let record = &mut records[at..at + length];
            // `record_lengths` viewed every record, so the view is there; the keys are read
            // before patching, which leaves the properties as they are.
            let view = RecordView::new(record).ok();
            let sys_flag = view.map_or(0, |view| view.sys_flag());
            // Properties are located only for records the index takes.
            let keys = if shared.config.index_enabled && is_indexed(sys_flag) {
                view.and_then(|view| view.properties().ok()).map(record_keys).unwrap_or_default()
            } else {
                Vec::new()
            };
            // PREPARED and ROLLBACK transaction records stay out of the consume queue and
            // store QUEUEOFFSET 0, as the reference's commit log; the commit record enters it later.
            let enters_queue = enters_consume_queue(sys_flag);
            let queue_offset = if enters_queue { queue.max_offset() } else { 0 };
            patch_record(record, queue_offset, log_offset, store_timestamp);
            if enters_queue {
                queue.push(ConsumeQueueEntry::new(log_offset, length as i32, tags_code));
            }
            if !keys.is_empty() {
                let mut index = shared.index.borrow_mut();
                index.add(&topic_name, &keys, log_offset, store_timestamp);
            }
            first_queue_offset.get_or_insert(queue_offset);
            record_offsets.push(log_offset);
            at += length;
        }
        let first_queue_offset = first_queue_offset.unwrap_or(0);
        log.push_chunk(records.freeze());
        log.stats.appends += 1;
        log.stats.records += lengths.len() as u64;
        log.stats.bytes_appended += len;
        let end = position + len;
        drop(log);
        shared.writer_wake.raise();
        shared.appended.advance(end);
        let first_log_offset = log_offset_of(shared.log_id, position);
        Ok((
            AppendResult { first_log_offset, first_queue_offset, record_offsets, store_timestamp },
            end,
        ))
    }

    /// Reads messages from one queue, as RocketMQ's `DefaultMessageStore::getMessage`. Hot
    /// records come from the tail cache without copying; cold ones from direct reads.
    ///
    /// # Errors
    /// `Io` on a failed cold read; `Corrupt` when an entry does not point at its record.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn get_messages(&self, request: GetRequest<'_>) -> Result<GetResult, StoreError> {
        let Selection { mut result, entries, from_files } = self.select(&request);
        let entries = match from_files {
            None => entries,
            Some((from, count)) => {
                // Cold consume-queue entries: below the in-memory tail, read from the files.
                let dir = queue_dir(
                    &self.shared.config.consume_queue_root(),
                    request.topic,
                    request.queue_id,
                );
                let io = self.shared.io.as_ref();
                let cold = read_entries_from_files(io, &dir, from, count).await?;
                choose_entries(&request, &mut result, from, cold.iter())
            }
        };
        if entries.is_empty() {
            return Ok(result);
        }
        let messages = self.read_entries(&entries).await?;
        result.tags_codes = entries.iter().map(|entry| entry.tags_code()).collect();
        result.messages = messages;
        Ok(result)
    }

    /// The synchronous half of `get_messages`: status, next offset, and entries to read
    /// (or the range of cold entries to read from the consume-queue files first).
    fn select(&self, request: &GetRequest<'_>) -> Selection {
        let queues = self.shared.queues.borrow();
        let queue = queues.get(request.topic).and_then(|topic| topic.get(&request.queue_id));
        let (min_offset, max_offset) = queue.map_or((0, 0), |q| (q.min_offset(), q.max_offset()));
        let offset = request.queue_offset;
        let mut result = GetResult {
            status: GetStatus::NoMessageInQueue,
            next_offset: 0,
            min_offset,
            max_offset,
            messages: Vec::new(),
            tags_codes: Vec::new(),
        };
        let none = |result| Selection { result, entries: Vec::new(), from_files: None };
        let Some(queue) = queue.filter(|_| max_offset > 0) else {
            return none(result);
        };
        let (status, next_offset) = if offset < min_offset {
            (GetStatus::OffsetTooSmall, min_offset)
        } else if offset == max_offset {
            (GetStatus::OffsetOverflowOne, offset)
        } else if offset > max_offset {
            (GetStatus::OffsetOverflowBadly, max_offset)
        } else {
            (GetStatus::NoMatchedMessage, offset)
        };
        result.status = status;
        result.next_offset = next_offset;
        if status != GetStatus::NoMatchedMessage {
            return none(result);
        }
        if offset < queue.base {
            let want = match request.tags_filter {
                None => request.max_count.max(1),
                Some(_) => request.max_count.max(SCAN_ENTRIES_MAX),
            };
            let count = (queue.base - offset).min(i64::from(want)) as usize;
            return Selection { result, entries: Vec::new(), from_files: Some((offset, count)) };
        }
        let entries = choose_entries(request, &mut result, offset, queue.tail_from(offset).iter());
        Selection { result, entries, from_files: None }
    }

    /// Reads the records of `entries`: cached ones by slicing, cold ones by direct reads,
    /// coalescing neighbours in one segment into reads of up to `COLD_READ_BYTES_MAX`.
    async fn read_entries(&self, entries: &[ConsumeQueueEntry]) -> Result<Vec<Bytes>, StoreError> {
        let mut messages = Vec::with_capacity(entries.len());
        let mut index = 0;
        while let Some(entry) = entries.get(index) {
            let (position, size) = (entry.position(), entry.size() as u64);
            let source = self.shared.log.borrow_mut().locate(position, size);
            match source {
                ReadSource::Cached(bytes) => {
                    messages.push(bytes);
                    index += 1;
                }
                ReadSource::Disk { segment, written } => {
                    let limit = segment.end().min(written);
                    let group = cold_group(limit, entries.get(index..).unwrap_or_default());
                    let span_end =
                        group.last().map_or(position + size, |e| e.position() + e.size() as u64);
                    let span = segment.read(position, (span_end - position) as usize).await?;
                    for member in group {
                        let from = (member.position() - position) as usize;
                        messages.push(span.slice(from..from + member.size() as usize));
                    }
                    index += group.len();
                }
                ReadSource::Missing => {
                    return Err(self
                        .corrupt(position, "consume-queue entry points past the log".to_string()));
                }
            }
        }
        for (message, entry) in messages.iter().zip(entries) {
            if SlotHead::read(message).map(|head| head.total_size) != Some(entry.size()) {
                return Err(self.corrupt(
                    entry.position(),
                    "record size differs from its consume-queue entry".to_string(),
                ));
            }
        }
        Ok(messages)
    }

    fn corrupt(&self, position: u64, reason: String) -> StoreError {
        StoreError::Corrupt { log_id: self.shared.log_id, position, reason }
    }

    /// The next queue offset to write in `(topic, queue_id)`; 0 for an unknown queue.
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        let queues = self.shared.queues.borrow();
        queues.get(topic).and_then(|t| t.get(&queue_id)).map_or(0, ConsumeQueue::max_offset)
    }

    /// The smallest queue offset still readable in `(topic, queue_id)`.
    pub fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        let queues = self.shared.queues.borrow();
        queues.get(topic).and_then(|t| t.get(&queue_id)).map_or(0, ConsumeQueue::min_offset)
    }

    /// The whole stored record at a global log offset; `None` when the offset is another
    /// log's, past the end, or not the start of a record (checked by magic, size and the
    /// record's own PHYSICALOFFSET).
    ///
    /// # Errors
    /// `Io` on a failed cold read.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn read_record(&self, log_offset: i64) -> Result<Option<Bytes>, StoreError> {
        let Some((log_id, position)) = split_log_offset(log_offset) else { return Ok(None) };
        if log_id != self.shared.log_id {
            return Ok(None);
        }
        let Some(header) = self.read_span(position, 8).await? else { return Ok(None) };
        // The segment is not known here, so any room will do: only the size is checked.
        let Ok(Slot::Record { total_size }) =
            classify_slot(&header, u64::MAX, RECORD_SIZE_BYTES_MAX)
        else {
            return Ok(None);
        };
        let Some(record) = self.read_span(position, total_size as u64).await? else {
            return Ok(None);
        };
        let physical = RecordView::new(&record).map(|view| view.physical_offset());
        Ok((physical == Ok(log_offset)).then_some(record))
    }

    async fn read_span(&self, position: u64, size: u64) -> Result<Option<Bytes>, StoreError> {
        let source = self.shared.log.borrow_mut().locate(position, size);
        match source {
            ReadSource::Cached(bytes) => Ok(Some(bytes)),
            ReadSource::Disk { segment, .. } => {
                Ok(Some(segment.read(position, size as usize).await?))
            }
            ReadSource::Missing => Ok(None),
        }
    }

    /// Writes everything pending, `fdatasync`s, persists the consume queues, writes the
    /// checkpoint and removes the abort marker, so the next open is clean. Further appends
    /// fail with `Closed`. Idempotent.
    ///
    /// # Errors
    /// `Poisoned` when the log was poisoned (the marker stays: the next open validates the
    /// tail); `Io`.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.closed.get() {
            return Ok(());
        }
        let shared = &self.shared;
        shared.closing.set(true);
        shared.writer_wake.raise();
        shared.checkpointer_wake.raise();
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for task in tasks {
            task.await;
        }
        if shared.poison.borrow().is_some() {
            return Err(StoreError::Poisoned);
        }
        take_checkpoint(shared).await?;
        let abort = shared.config.abort_path(shared.log_id);
        shared.io.remove(abort.clone()).await.map_err(|e| StoreError::io("remove", &abort, &e))?;
        if let Some(dir) = abort.parent() {
            shared
                .io
                .sync_dir(dir.to_path_buf())
                .await
                .map_err(|e| StoreError::io("sync_dir", dir, &e))?;
        }
        self.closed.set(true);
        Ok(())
    }

    /// The log's id.
    pub fn log_id(&self) -> u32 {
        self.shared.log_id
    }

    /// Counters since open.
    pub fn stats(&self) -> LogStats {
        self.shared.log.borrow().stats
    }

    /// Consume-queue entries held in memory, summed over the log's queues (bounded by
    /// `consume_queue_memory_entries` per queue plus what one checkpoint interval adds).
    pub fn consume_queue_entries_in_memory(&self) -> u64 {
        let queues = self.shared.queues.borrow();
        queues.values().flat_map(|by_id| by_id.values()).map(|q| q.entries.len() as u64).sum()
    }

    /// Index entries held in memory: those appended since the last checkpoint plus one
    /// fence word per 204 entries on disk.
    pub fn index_entries_in_memory(&self) -> u64 {
        self.shared.index.borrow().memory_entries() as u64
    }

    /// What recovery did at open.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The error that poisoned the log, if one did.
    pub fn poison_reason(&self) -> Option<StoreError> {
        self.shared.poison.borrow().clone()
    }

    /// Global log offset up to which the log is `fdatasync`ed.
    pub fn flushed_log_offset(&self) -> i64 {
        log_offset_of(self.shared.log_id, self.shared.flushed.position())
    }

    /// Global log offset the next append will get (or the next segment's start).
    pub fn end_log_offset(&self) -> i64 {
        log_offset_of(self.shared.log_id, self.shared.log.borrow().dirty)
    }
}

fn check_config(config: &StoreConfig, log_id: u32, log_count: u32) -> Result<(), StoreError> {
    let size = config.segment_size_bytes;
    if size < SEGMENT_SIZE_BYTES_MIN || size % BLOCK_SIZE_BYTES != 0 || size > i32::MAX as u64 {
        let reason = format!(
            "segment_size_bytes {size}: must be a multiple of {BLOCK_SIZE_BYTES} in \
             [{SEGMENT_SIZE_BYTES_MIN}, 2^31) (a filler's length is an i32)"
        );
        return Err(StoreError::InvalidConfig { reason });
    }
    if log_id > LOG_ID_MAX || log_id >= log_count {
        let path = config.root.join("store.meta");
        let reason = format!("log id {log_id} but the store has {log_count} logs");
        return Err(StoreError::Meta { path, reason });
    }
    Ok(())
}

/// Neighbouring entries from `entries[0]` on that one cold read can serve: below `limit`
/// (the segment end or the written position), in log order, within `COLD_READ_BYTES_MAX`.
fn cold_group(limit: u64, entries: &[ConsumeQueueEntry]) -> &[ConsumeQueueEntry] {
    let Some(first) = entries.first() else { return entries };
    let start = first.position();
    let mut end = start;
    let mut count = 0;
    for entry in entries {
        let entry_end = entry.position() + entry.size() as u64;
        if entry.position() < end || entry_end > limit || entry_end - start > COLD_READ_BYTES_MAX {
            break;
        }
        end = entry_end;
        count += 1;
    }
    entries.get(..count.max(1)).unwrap_or(entries)
}

/// Persists every consume-queue entry for records before the flushed position, then
/// writes the checkpoint at it. Runs on the checkpointer task, or in `close` after it.
pub(crate) async fn take_checkpoint(shared: &LogState) -> Result<(), StoreError> {
    let Ok(_permit) = shared.checkpoint_lock.acquire_permit(1).await else {
        return Ok(()); // The semaphore is never closed.
    };
    let position = shared.flushed.position();
    let previous = shared.checkpoint.get();
    let index_settled = {
        let index = shared.index.borrow();
        index.pending_before(position) == 0 && index.end == previous.index_end
    };
    if position == previous.position && previous.sequence > 0 && index_settled {
        return Ok(());
    }
    let root = shared.config.consume_queue_root();
    let jobs: Vec<_> = {
        let queues = shared.queues.borrow();
        queues
            .iter()
            .flat_map(|(topic, by_id)| by_id.iter().map(move |(id, queue)| (topic, *id, queue)))
            .filter_map(|(topic, id, queue)| {
                persist_job(&root, topic, id, queue, queue.offset_before(position))
            })
            .collect()
    };
    let memory_entries = shared.config.consume_queue_memory_entries;
    for job in &jobs {
        run_persist_job(shared.io.as_ref(), job).await?;
        let mut queues = shared.queues.borrow_mut();
        if let Some(queue) = queues.get_mut(&job.topic).and_then(|t| t.get_mut(&job.queue_id)) {
            queue.persisted = queue.persisted.max(job.persisted);
            queue.trim(memory_entries);
        }
    }
    persist_index(shared, position).await?;
    let entry_count = shared
        .queues
        .borrow()
        .values()
        .flat_map(|by_id| by_id.values())
        .map(|queue| queue.offset_before(position).max(0) as u64)
        .sum();
    let checkpoint = Checkpoint {
        sequence: previous.sequence + 1,
        position,
        entry_count,
        written_at_ms: now_ms(),
        index_end: shared.index.borrow().end,
    };
    let path = shared.config.checkpoint_path(shared.log_id);
    write_checkpoint(shared.io.as_ref(), &path, &checkpoint).await?;
    shared.checkpoint.set(checkpoint);
    shared.log.borrow_mut().stats.checkpoints += 1;
    Ok(())
}

/// Writes the pending index entries of records before `position` as one run.
async fn persist_index(shared: &LogState, position: u64) -> Result<(), StoreError> {
    let (first, entries) = {
        let index = shared.index.borrow();
        let count = index.pending_before(position);
        (index.end, index.pending.get(..count).unwrap_or_default().to_vec())
    };
    if entries.is_empty() {
        return Ok(());
    }
    let dir = index_dir(&shared.config.root, shared.log_id);
    let run = write_run(shared.io.as_ref(), &dir, first, position, entries).await?;
    let mut index = shared.index.borrow_mut();
    let count = index.pending_before(position);
    index.pending.drain(..count);
    index.runs.push(Rc::new(run));
    index.end = position;
    Ok(())
}

/// Takes a checkpoint whenever the writer says enough log has been flushed since the last.
async fn run_checkpointer(shared: Rc<LogState>) {
    loop {
        shared.checkpointer_wake.wait().await;
        if shared.closing.get() {
            return;
        }
        if let Err(error) = take_checkpoint(&shared).await {
            // The log itself is fine; recovery just replays more of it.
            tracing::warn!(log_id = shared.log_id, %error, "checkpoint failed");
        }
    }
}
