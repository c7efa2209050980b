//! Consume queues: per `(topic, queue id)`, the index from queue offset to the record's
//! place in the commit log.
//!
//! Lives on: the owner shard of the queue (inside its log's `LogStore`).
//!
//! Entry (20 bytes, big-endian, RocketMQ's `CQ_STORE_UNIT_SIZE`):
//!
//! ```text
//! off size field
//!   0    8 log_offset  i64, the record's global log offset (log id in bits 56..62)
//!   8    4 size        i32, the record's TOTALSIZE
//!  12    8 tags_code   i64, hash of TAGS (or what the broker chose), for filtering
//! ```
//!
//! Entry `n` (queue offset `n`) is at byte `n * 20` of the queue's file chain
//! `{root}/consumequeue/{topic}/{queue_id}/{first byte:020}`. A file holds
//! [`CONSUME_QUEUE_FILE_ENTRIES`] = 307,200 entries = 6,144,000 bytes, RocketMQ's 300,000
//! rounded up so that a file is a whole number of 4 KiB blocks (6,144,000 = 1,500 × 4,096 =
//! 307,200 × 20) and direct I/O never straddles files. Unwritten entries read as zero; size
//! 0 is never valid, so the first zero entry ends the chain.
//!
//! In memory each queue keeps a bounded tail of its entries (`ConsumeQueue`); files are
//! written lazily, at checkpoints (see `checkpoint.rs`): entries for records before the
//! checkpoint position are on disk, later ones are rebuilt from the log on open. After a
//! checkpoint the tail is trimmed to `consume_queue_memory_entries`; pulls and lookups
//! below it read the files (direct reads of whole blocks). Within a queue, entries are in
//! log order, so "entries before position P" is a prefix.
//!
//! A queue's chain may start past file 0 (retention deletes files wholly below the min
//! offset, keeping the file of the newest entry) and its first file may hold zeros below
//! the queue's start offset (a queue rebuilt from a log whose head was deleted); loading
//! skips leading zeros.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ramjet_proto::message::{
    SYSFLAG_TRANSACTION_MASK, SYSFLAG_TRANSACTION_PREPARED, SYSFLAG_TRANSACTION_ROLLBACK,
};
use zerocopy::byteorder::big_endian::{I32, I64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::config::BLOCK_SIZE_BYTES;
use crate::error::StoreError;
use crate::io::{Io, OpenMode};
use crate::log_offset::split_log_offset;
use crate::segment::{align_down, align_up, file_name, parse_file_name};

/// Whether a record with this SYSFLAG gets a consume-queue entry: all but PREPARED and
/// ROLLBACK transaction records (RocketMQ's `doAppend` and `CommitLogDispatcher`).
pub(crate) fn enters_consume_queue(sys_flag: i32) -> bool {
    let kind = sys_flag & SYSFLAG_TRANSACTION_MASK;
    kind != SYSFLAG_TRANSACTION_PREPARED && kind != SYSFLAG_TRANSACTION_ROLLBACK
}

/// Entries per consume-queue file.
pub const CONSUME_QUEUE_FILE_ENTRIES: u64 = 307_200;
/// Bytes of one entry.
pub const CONSUME_QUEUE_ENTRY_SIZE_BYTES: u64 = 20;
/// Bytes per consume-queue file: a multiple of both 20 and `BLOCK_SIZE_BYTES`.
pub const CONSUME_QUEUE_FILE_SIZE_BYTES: u64 =
    CONSUME_QUEUE_FILE_ENTRIES * CONSUME_QUEUE_ENTRY_SIZE_BYTES;
const _: () = assert!(CONSUME_QUEUE_FILE_SIZE_BYTES % BLOCK_SIZE_BYTES == 0);

/// Bytes read at a time when loading a consume-queue file: a multiple of both the block
/// size and the entry size (20,480 = lcm(4,096, 20)), so no entry straddles two reads.
const LOAD_READ_BYTES: u64 = 51 * 20_480;
const _: () = assert!(LOAD_READ_BYTES % BLOCK_SIZE_BYTES == 0 && LOAD_READ_BYTES % 20 == 0);

/// One consume-queue entry, exactly as stored.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ConsumeQueueEntry {
    log_offset: I64,
    size: I32,
    tags_code: I64,
}

const _: () = assert!(std::mem::size_of::<ConsumeQueueEntry>() == 20);

impl ConsumeQueueEntry {
    /// An entry for a record of `size` bytes at global `log_offset`.
    pub fn new(log_offset: i64, size: i32, tags_code: i64) -> Self {
        ConsumeQueueEntry {
            log_offset: I64::new(log_offset),
            size: I32::new(size),
            tags_code: I64::new(tags_code),
        }
    }
    /// The record's global log offset.
    pub fn log_offset(&self) -> i64 {
        self.log_offset.get()
    }
    /// The record's size.
    pub fn size(&self) -> i32 {
        self.size.get()
    }
    /// The tags code.
    pub fn tags_code(&self) -> i64 {
        self.tags_code.get()
    }
    /// The log position (global offset without the log id).
    pub(crate) fn position(&self) -> u64 {
        split_log_offset(self.log_offset()).map_or(0, |(_, position)| position)
    }
}

/// The in-memory part of the consume queue of one `(topic, queue id)`: a bounded tail.
///
/// ```text
/// queue offsets ──────────────────────────────────────────────────────────────────►
///   start      min              base             persisted              max
///     │ (files) │◄── on disk only ─►│◄──────── entries (in memory) ───────────►│
///     │         │                   │  durable in files   │ since last checkpoint│
/// ```
///
/// Invariants (asserted in `assert_invariants`): `start ≤ base ≤ persisted ≤ max`,
/// `start ≤ min ≤ max`, and `base` is at or below the first entry of the 4 KiB block that
/// holds entry `persisted` (unless `base == start`), so the next persist job can rewrite
/// that block from memory. Entries below `base` are read from the files (direct reads).
/// After each checkpoint the tail is trimmed to `memory_entries` entries (never dropping
/// unpersisted ones), so memory per queue is bounded by that plus what one checkpoint
/// interval appends.
#[derive(Debug, Default, Clone)]
pub(crate) struct ConsumeQueue {
    /// Queue offset of `entries[0]`.
    pub(crate) base: i64,
    /// Entries `base..max_offset()`.
    pub(crate) entries: Vec<ConsumeQueueEntry>,
    /// Entries below this queue offset are durable in the queue's files.
    pub(crate) persisted: i64,
    /// The smallest readable queue offset: the chain start, raised by retention past
    /// entries whose records were deleted.
    pub(crate) min: i64,
    /// The first queue offset this queue ever held (0, or where a queue rebuilt after
    /// retention begins); the files hold zeros below it.
    pub(crate) start: i64,
}

/// Entries of one 4 KiB block (rounded up): the tail must keep at least this many.
pub const CONSUME_QUEUE_MEMORY_ENTRIES_MIN: usize = 256;

impl ConsumeQueue {
    /// An empty queue whose first entry will have queue offset `start`.
    pub(crate) fn starting_at(start: i64) -> Self {
        ConsumeQueue { base: start, entries: Vec::new(), persisted: start, min: start, start }
    }

    pub(crate) fn assert_invariants(&self) {
        let max = self.max_offset();
        assert!(self.start <= self.base && self.base <= self.persisted && self.persisted <= max);
        assert!(self.start <= self.min && self.min <= max);
        assert!(self.base <= block_first_offset(self.persisted) || self.base == self.start);
    }

    /// The smallest readable queue offset.
    pub(crate) fn min_offset(&self) -> i64 {
        self.min
    }

    /// The next queue offset to write.
    pub(crate) fn max_offset(&self) -> i64 {
        self.base + self.entries.len() as i64
    }

    /// Appends the entry of queue offset `max_offset()`.
    pub(crate) fn push(&mut self, entry: ConsumeQueueEntry) {
        self.entries.push(entry);
    }

    /// The in-memory entry at `offset`, if it is in the tail.
    pub(crate) fn in_memory(&self, offset: i64) -> Option<&ConsumeQueueEntry> {
        self.entries.get(usize::try_from(offset.checked_sub(self.base)?).ok()?)
    }

    /// The in-memory entries from `offset` (which must be at least `base`) on.
    pub(crate) fn tail_from(&self, offset: i64) -> &[ConsumeQueueEntry] {
        let skip = usize::try_from(offset - self.base).unwrap_or(0);
        self.entries.get(skip..).unwrap_or_default()
    }

    /// The queue offset of the first entry whose record is at or after log position
    /// `position`: every entry below it refers to a record before `position`. Entries
    /// below `base` are persisted, so (checkpoints being in log order) before any later
    /// checkpoint position; callers pass positions at or after the last checkpoint.
    pub(crate) fn offset_before(&self, position: u64) -> i64 {
        self.base + self.entries.partition_point(|entry| entry.position() < position) as i64
    }

    /// Drops persisted entries from the front so that at most `memory_entries` stay in
    /// memory, keeping the block that the next persist job rewrites.
    pub(crate) fn trim(&mut self, memory_entries: usize) {
        let keep_from = (self.max_offset() - memory_entries as i64)
            .min(block_first_offset(self.persisted))
            .min(self.persisted);
        if keep_from > self.base {
            self.entries.drain(..(keep_from - self.base) as usize);
            self.base = keep_from;
        }
        self.assert_invariants();
    }
}

/// The queue offset of the first entry with bytes in the 4 KiB block holding entry
/// `offset`'s first byte. Entry 300 starts at byte 6,000, in block [4,096, 8,192); the
/// first entry with bytes there is entry 204 (bytes 4,080..4,100).
pub(crate) fn block_first_offset(offset: i64) -> i64 {
    let byte = align_down(offset.max(0) as u64 * CONSUME_QUEUE_ENTRY_SIZE_BYTES);
    (byte / CONSUME_QUEUE_ENTRY_SIZE_BYTES) as i64
}

/// Every consume queue of one log: topic → queue id → queue.
pub(crate) type ConsumeQueues = HashMap<String, HashMap<i32, ConsumeQueue>>;

/// The directory of one queue's files.
pub(crate) fn queue_dir(root: &Path, topic: &str, queue_id: i32) -> PathBuf {
    root.join(topic).join(queue_id.to_string())
}

/// Durable-write work for one queue, prepared synchronously from the in-memory entries.
pub(crate) struct PersistJob {
    pub(crate) topic: String,
    pub(crate) queue_id: i32,
    pub(crate) dir: PathBuf,
    /// Chain byte offset of `bytes[0]`; block-aligned.
    pub(crate) first_byte: u64,
    pub(crate) bytes: Vec<u8>,
    /// `persisted` once the job is done.
    pub(crate) persisted: i64,
}

/// Prepares writing entries `queue.persisted..end`: the bytes from the block that holds
/// the first new entry (rewriting its already-persisted head, or zeros below the queue's
/// start) to the last new entry.
pub(crate) fn persist_job(
    root: &Path,
    topic: &str,
    queue_id: i32,
    queue: &ConsumeQueue,
    end: i64,
) -> Option<PersistJob> {
    if end <= queue.persisted {
        return None;
    }
    queue.assert_invariants();
    let entry_size = CONSUME_QUEUE_ENTRY_SIZE_BYTES;
    let first_byte = align_down(queue.persisted as u64 * entry_size);
    let end_byte = end as u64 * entry_size;
    let mut bytes = vec![0u8; (end_byte - first_byte) as usize];
    let from = block_first_offset(queue.persisted).max(queue.base);
    for (offset, entry) in (from..end).zip(queue.tail_from(from)) {
        let entry_byte = offset as u64 * entry_size;
        let source = entry.as_bytes();
        // The first entry may start before the block: copy only its bytes inside it.
        let skip = first_byte.saturating_sub(entry_byte) as usize;
        let at = (entry_byte + skip as u64 - first_byte) as usize;
        bytes.get_mut(at..at + source.len() - skip)?.copy_from_slice(source.get(skip..)?);
    }
    Some(PersistJob {
        topic: topic.to_string(),
        queue_id,
        dir: queue_dir(root, topic, queue_id),
        first_byte,
        bytes,
        persisted: end,
    })
}

/// Writes a job's bytes into the queue's files (creating and allocating them as needed),
/// `fdatasync`s each file touched, and syncs directories it created.
pub(crate) async fn run_persist_job(io: &dyn Io, job: &PersistJob) -> Result<(), StoreError> {
    io.create_dir_all(job.dir.clone()).await.map_err(|e| StoreError::io("mkdir", &job.dir, &e))?;
    let end_byte = job.first_byte + job.bytes.len() as u64;
    let mut chain_pos = job.first_byte;
    let mut created = false;
    while chain_pos < end_byte {
        let file_start = chain_pos - chain_pos % CONSUME_QUEUE_FILE_SIZE_BYTES;
        let file_end = (file_start + CONSUME_QUEUE_FILE_SIZE_BYTES).min(end_byte);
        let path = job.dir.join(file_name(file_start));
        let file = io
            .open(path.clone(), OpenMode::Create)
            .await
            .map_err(|e| StoreError::io("open", &path, &e))?;
        if file.size().await.map_err(|e| StoreError::io("size", &path, &e))? == 0 {
            file.allocate(CONSUME_QUEUE_FILE_SIZE_BYTES)
                .await
                .map_err(|e| StoreError::io("allocate", &path, &e))?;
            created = true;
        }
        let source = job
            .bytes
            .get((chain_pos - job.first_byte) as usize..(file_end - job.first_byte) as usize)
            .unwrap_or_default();
        let mut buf = file.alloc_buffer(align_up(source.len() as u64) as usize);
        buf.as_bytes_mut()[..source.len()].copy_from_slice(source);
        let len = buf.len();
        let written = file
            .write_at(buf, chain_pos - file_start)
            .await
            .map_err(|e| StoreError::io("write", &path, &e))?;
        if written != len {
            let message = format!("short write: {written} of {len} bytes");
            return Err(StoreError::Io { op: "write", path, errno: 0, message });
        }
        file.fdatasync().await.map_err(|e| StoreError::io("fdatasync", &path, &e))?;
        chain_pos = file_end;
    }
    if created {
        io.sync_dir(job.dir.clone()).await.map_err(|e| StoreError::io("sync_dir", &job.dir, &e))?;
        if let Some(parent) = job.dir.parent() {
            io.sync_dir(parent.to_path_buf())
                .await
                .map_err(|e| StoreError::io("sync_dir", parent, &e))?;
        }
    }
    Ok(())
}

/// A queue's files as found on disk, sorted by start.
pub(crate) async fn list_queue_files(io: &dyn Io, dir: &Path) -> Result<Vec<u64>, StoreError> {
    let names =
        io.list_dir(dir.to_path_buf()).await.map_err(|e| StoreError::io("list", dir, &e))?;
    let mut starts: Vec<u64> = names.iter().filter_map(|name| parse_file_name(name)).collect();
    starts.sort_unstable();
    Ok(starts)
}

/// Calls `visit(queue offset, entry)` for each entry of a queue's file chain, in order,
/// from the first file: contiguous files only (a gap ends the chain), and each file up
/// to its first zero entry (entries are never zero, so a zero one is unwritten), except
/// that zero entries before the first non-zero one are skipped (a queue that begins at a
/// non-zero offset, or whose head files were deleted by retention). `visit` returning
/// `false` stops the walk. Memory: one read buffer.
pub(crate) async fn walk_entries(
    io: &dyn Io,
    dir: &Path,
    starts: &[u64],
    visit: &mut dyn FnMut(i64, &ConsumeQueueEntry) -> bool,
) -> Result<(), StoreError> {
    let Some(&first_start) = starts.first() else { return Ok(()) };
    let mut seen = false;
    for (index, &start) in starts.iter().enumerate() {
        if start % CONSUME_QUEUE_FILE_SIZE_BYTES != 0
            || start != first_start + index as u64 * CONSUME_QUEUE_FILE_SIZE_BYTES
        {
            break; // A gap: what follows is not reachable by queue offset.
        }
        let path = dir.join(file_name(start));
        let file = io
            .open(path.clone(), OpenMode::Existing)
            .await
            .map_err(|e| StoreError::io("open", &path, &e))?;
        let size = file.size().await.map_err(|e| StoreError::io("size", &path, &e))?;
        let size = align_down(size.min(CONSUME_QUEUE_FILE_SIZE_BYTES));
        let mut pos = 0;
        while pos < size {
            let len = LOAD_READ_BYTES.min(size - pos);
            let bytes = file
                .read_at(pos, len as usize)
                .await
                .map_err(|e| StoreError::io("read", &path, &e))?;
            let usable = bytes.get(..bytes.len() - bytes.len() % 20).unwrap_or_default();
            let Ok(chunk) = <[ConsumeQueueEntry]>::ref_from_bytes(usable) else { break };
            let first_offset = ((start + pos) / CONSUME_QUEUE_ENTRY_SIZE_BYTES) as i64;
            for (index, entry) in chunk.iter().enumerate() {
                if entry.size() == 0 && entry.log_offset() == 0 && entry.tags_code() == 0 {
                    if seen {
                        return Ok(());
                    }
                    continue;
                }
                seen = true;
                if !visit(first_offset + index as i64, entry) {
                    return Ok(());
                }
            }
            pos += len;
        }
        if size < CONSUME_QUEUE_FILE_SIZE_BYTES {
            break;
        }
    }
    Ok(())
}

/// Reads up to `count` entries from queue offset `from` out of a queue's files (direct
/// reads of whole blocks), stopping early at an unwritten (zero) entry or a missing file.
pub(crate) async fn read_entries_from_files(
    io: &dyn Io,
    dir: &Path,
    from: i64,
    count: usize,
) -> Result<Vec<ConsumeQueueEntry>, StoreError> {
    let mut entries = Vec::with_capacity(count);
    let entry_size = CONSUME_QUEUE_ENTRY_SIZE_BYTES;
    let mut byte = from.max(0) as u64 * entry_size;
    let end_byte = byte + count as u64 * entry_size;
    while byte < end_byte {
        let file_start = byte - byte % CONSUME_QUEUE_FILE_SIZE_BYTES;
        let file_end = (file_start + CONSUME_QUEUE_FILE_SIZE_BYTES).min(end_byte);
        let path = dir.join(file_name(file_start));
        if !io.exists(path.clone()).await.map_err(|e| StoreError::io("stat", &path, &e))? {
            break;
        }
        let file = io
            .open(path.clone(), OpenMode::Existing)
            .await
            .map_err(|e| StoreError::io("open", &path, &e))?;
        let (first, last) = (align_down(byte - file_start), align_up(file_end - file_start));
        let bytes = file
            .read_at(first, (last - first) as usize)
            .await
            .map_err(|e| StoreError::io("read", &path, &e))?;
        let skip = (byte - file_start - first) as usize;
        let want = (file_end - byte) as usize;
        let usable = bytes.get(skip..(skip + want).min(bytes.len())).unwrap_or_default();
        let usable = usable.get(..usable.len() - usable.len() % 20).unwrap_or_default();
        let Ok(chunk) = <[ConsumeQueueEntry]>::ref_from_bytes(usable) else { break };
        for entry in chunk {
            if entry.size() <= 0 {
                return Ok(entries);
            }
            entries.push(*entry);
        }
        if usable.len() < want {
            break;
        }
        byte = file_end;
    }
    Ok(entries)
}

/// What `load_queues` found.
pub(crate) struct LoadedQueues {
    pub(crate) queues: ConsumeQueues,
    /// Directories of this log's queues, for a rebuild that must delete them.
    pub(crate) dirs: Vec<PathBuf>,
}

/// Limits that `load_queues` loads under.
pub(crate) struct LoadLimits {
    /// The checkpoint position: entries for records at or after it are dropped.
    pub(crate) position: u64,
    /// The log's first position still on disk: entries below it are unreadable, and the
    /// queue's min offset moves past them.
    pub(crate) log_start: u64,
    /// Entries kept in memory per queue.
    pub(crate) memory_entries: usize,
}

/// Loads the persisted entries of every queue that belongs to `log_id` (by `log_for`):
/// streams each file chain, keeps the valid entries for records before the checkpoint
/// (the last `memory_entries` of them in memory), and zeroes later or invalid entries on
/// disk so that they can never be read back as valid.
pub(crate) async fn load_queues(
    io: &dyn Io,
    root: &Path,
    log_id: u32,
    log_count: u32,
    limits: &LoadLimits,
) -> Result<LoadedQueues, StoreError> {
    let mut loaded = LoadedQueues { queues: ConsumeQueues::new(), dirs: Vec::new() };
    let topics =
        io.list_dir(root.to_path_buf()).await.map_err(|e| StoreError::io("list", root, &e))?;
    for topic in topics {
        let topic_dir = root.join(&topic);
        let ids = io
            .list_dir(topic_dir.clone())
            .await
            .map_err(|e| StoreError::io("list", &topic_dir, &e))?;
        for id in ids {
            let Ok(queue_id) = id.parse::<i32>() else { continue };
            if crate::placement::log_for(&topic, queue_id, log_count) != log_id {
                continue;
            }
            let dir = topic_dir.join(&id);
            if let Some(queue) = load_queue(io, &dir, log_id, limits).await? {
                loaded.queues.entry(topic.clone()).or_default().insert(queue_id, queue);
            }
            loaded.dirs.push(dir);
        }
    }
    Ok(loaded)
}

/// Loads one queue's chain (see `load_queues`); `None` when it holds no valid entry.
async fn load_queue(
    io: &dyn Io,
    dir: &Path,
    log_id: u32,
    limits: &LoadLimits,
) -> Result<Option<ConsumeQueue>, StoreError> {
    let starts = list_queue_files(io, dir).await?;
    let memory_entries = limits.memory_entries.max(CONSUME_QUEUE_MEMORY_ENTRIES_MIN);
    let mut tail = std::collections::VecDeque::with_capacity(memory_entries.min(1 << 16));
    let (mut start, mut end, mut min) = (None, 0i64, None);
    let mut previous: Option<u64> = None;
    let mut invalid = false;
    let mut visit = |offset: i64, entry: &ConsumeQueueEntry| {
        let sane = split_log_offset(entry.log_offset())
            .is_some_and(|(id, p)| id == log_id && p < limits.position)
            && entry.size() > 0
            && !matches!(previous, Some(prev) if prev >= entry.position())
            && (start.is_none() || offset == end);
        if !sane {
            invalid = true;
            return false;
        }
        previous = Some(entry.position());
        start.get_or_insert(offset);
        if min.is_none() && entry.position() >= limits.log_start {
            min = Some(offset);
        }
        if tail.len() == memory_entries {
            tail.pop_front();
        }
        tail.push_back(*entry);
        end = offset + 1;
        true
    };
    walk_entries(io, dir, &starts, &mut visit).await?;
    let Some(start) = start else {
        if !starts.is_empty() {
            truncate_queue_files(io, dir, &starts, 0).await?;
        }
        return Ok(None);
    };
    let last_needed = (end as u64 * CONSUME_QUEUE_ENTRY_SIZE_BYTES) / CONSUME_QUEUE_FILE_SIZE_BYTES
        * CONSUME_QUEUE_FILE_SIZE_BYTES;
    if invalid || starts.last().is_some_and(|&last| last > last_needed) {
        truncate_queue_files(io, dir, &starts, end as usize).await?;
    }
    let entries: Vec<ConsumeQueueEntry> = tail.into();
    let base = end - entries.len() as i64;
    let queue = ConsumeQueue { base, entries, persisted: end, min: min.unwrap_or(end), start };
    queue.assert_invariants();
    Ok(Some(queue))
}

/// Zeroes a queue's entries from `keep` on: truncates the file holding entry `keep` at it
/// (re-allocating the file), removes later files, syncs the directory.
pub(crate) async fn truncate_queue_files(
    io: &dyn Io,
    dir: &Path,
    starts: &[u64],
    keep: usize,
) -> Result<(), StoreError> {
    let byte = keep as u64 * CONSUME_QUEUE_ENTRY_SIZE_BYTES;
    let file_start = byte - byte % CONSUME_QUEUE_FILE_SIZE_BYTES;
    for &start in starts {
        let path = dir.join(file_name(start));
        if start > file_start {
            io.remove(path.clone()).await.map_err(|e| StoreError::io("remove", &path, &e))?;
        } else if start == file_start {
            let file = io
                .open(path.clone(), OpenMode::Existing)
                .await
                .map_err(|e| StoreError::io("open", &path, &e))?;
            file.truncate(byte - file_start)
                .await
                .map_err(|e| StoreError::io("truncate", &path, &e))?;
            file.allocate(CONSUME_QUEUE_FILE_SIZE_BYTES)
                .await
                .map_err(|e| StoreError::io("allocate", &path, &e))?;
            file.fdatasync().await.map_err(|e| StoreError::io("fdatasync", &path, &e))?;
        }
    }
    io.sync_dir(dir.to_path_buf()).await.map_err(|e| StoreError::io("sync_dir", dir, &e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::io::DmaIo;
    use crate::log_offset::log_offset_of;

    fn entry(index: u64) -> ConsumeQueueEntry {
        ConsumeQueueEntry::new(log_offset_of(2, 100 + index * 300), 300, index as i64 - 7)
    }

    /// Runs `test` on a glommio executor with a store root on a real filesystem (O_DIRECT)
    /// whose device glommio has probed.
    fn in_store<F, Fut>(test: F)
    where
        F: FnOnce(std::path::PathBuf) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let dir = tempfile::Builder::new().tempdir_in("/var/tmp").unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("probe"), [1u8; 4096]).unwrap();
        let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .unwrap();
        executor.run(async move {
            DmaIo::probe_device(&root.join("probe")).await.unwrap();
            test(root).await;
        });
    }

    fn limits(position: u64, memory_entries: usize) -> LoadLimits {
        LoadLimits { position, log_start: 0, memory_entries }
    }

    #[test]
    fn entries_persist_across_files_and_blocks_and_truncate() {
        // Goal: the byte and block arithmetic of lazy persistence, across a file boundary
        // (307,200 entries per file) and mid-block starts, and the bounded in-memory tail.
        // Method: persist 100,001 entries, then up to 310,000 (trimming the tail to 1,000
        // between), load them back keeping 500 in memory, read cold ones from the files;
        // then truncate at 200,000 and load again.
        in_store(|root| async move {
            let io = DmaIo;
            let mut queue = ConsumeQueue::default();
            for index in 0..310_000 {
                queue.push(entry(index));
            }
            for count in [100_001, 310_000] {
                let job = persist_job(&root, "T", 3, &queue, count).unwrap();
                run_persist_job(&io, &job).await.unwrap();
                queue.persisted = job.persisted;
                queue.trim(1_000);
            }
            assert_eq!(queue.entries.len(), 1_000);
            assert_eq!(queue.base, 309_000);
            let dir = queue_dir(&root, "T", 3);
            let starts = list_queue_files(&io, &dir).await.unwrap();
            assert_eq!(starts, vec![0, CONSUME_QUEUE_FILE_SIZE_BYTES]);
            let loaded = load_queue(&io, &dir, 2, &limits(u64::MAX >> 8, 500)).await.unwrap();
            let loaded = loaded.unwrap();
            assert_eq!((loaded.start, loaded.min, loaded.max_offset()), (0, 0, 310_000));
            assert_eq!((loaded.base, loaded.entries.len()), (309_500, 500));
            assert_eq!(loaded.entries.last(), Some(&entry(309_999)));
            let cold = read_entries_from_files(&io, &dir, 307_190, 20).await.unwrap();
            assert!(cold == (307_190..307_210).map(entry).collect::<Vec<_>>());
            let end = read_entries_from_files(&io, &dir, 309_998, 10).await.unwrap();
            assert_eq!(end.len(), 2);
            // Entries for records at or after the checkpoint position are cut.
            let cut = load_queue(&io, &dir, 2, &limits(100 + 5_000 * 300, 500)).await.unwrap();
            assert_eq!(cut.unwrap().max_offset(), 5_000);
            let starts = list_queue_files(&io, &dir).await.unwrap();
            assert_eq!(starts, vec![0]);
            assert!(load_queue(&io, &dir, 1, &limits(u64::MAX >> 8, 500)).await.unwrap().is_none());
        });
    }

    #[test]
    fn a_queue_starting_past_zero_persists_and_loads() {
        // Goal: a queue rebuilt after retention starts at a non-zero offset; its first file
        // holds zeros below it, and loading skips them. Method: start at 1,234, persist
        // 100 entries, load with a log start that makes the first 10 unreadable.
        in_store(|root| async move {
            let io = DmaIo;
            let mut queue = ConsumeQueue::starting_at(1_234);
            for index in 0..100 {
                queue.push(entry(index));
            }
            let job = persist_job(&root, "S", 0, &queue, 1_334).unwrap();
            run_persist_job(&io, &job).await.unwrap();
            let dir = queue_dir(&root, "S", 0);
            let limits = LoadLimits {
                position: u64::MAX >> 8,
                log_start: 100 + 10 * 300,
                memory_entries: 256,
            };
            let loaded = load_queue(&io, &dir, 2, &limits).await.unwrap().unwrap();
            assert_eq!((loaded.start, loaded.min, loaded.max_offset()), (1_234, 1_244, 1_334));
            assert_eq!(loaded.entries.first(), Some(&entry(0)));
        });
    }
}
