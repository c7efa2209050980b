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
//! In memory every entry of the live range is kept in a `Vec` (20 bytes per message);
//! files are written lazily, at checkpoints (see `checkpoint.rs`): entries for records
//! before the checkpoint position are on disk, later ones are rebuilt from the log on open.
//! Within a queue, entries are in log order, so "entries before position P" is a prefix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use zerocopy::byteorder::big_endian::{I32, I64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::config::BLOCK_SIZE_BYTES;
use crate::error::StoreError;
use crate::io::{Io, OpenMode};
use crate::log_offset::split_log_offset;
use crate::segment::{align_down, align_up, file_name, parse_file_name};

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

/// The in-memory consume queue of one `(topic, queue id)`.
#[derive(Debug, Default)]
pub(crate) struct ConsumeQueue {
    /// Entry `i` has queue offset `i` (retention will add a base offset).
    pub(crate) entries: Vec<ConsumeQueueEntry>,
    /// `entries[..persisted]` are durable in the queue's files.
    pub(crate) persisted: usize,
}

impl ConsumeQueue {
    pub(crate) fn min_offset(&self) -> i64 {
        0
    }

    /// The next queue offset to write.
    pub(crate) fn max_offset(&self) -> i64 {
        self.entries.len() as i64
    }

    /// How many entries refer to records before log position `position`.
    pub(crate) fn count_before(&self, position: u64) -> usize {
        self.entries.partition_point(|entry| entry.position() < position)
    }
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
    pub(crate) persisted: usize,
}

/// Prepares writing `queue.entries[queue.persisted..count]`: the bytes from the block that
/// holds the first new entry (rewriting its already-persisted head) to the last new entry.
pub(crate) fn persist_job(
    root: &Path,
    topic: &str,
    queue_id: i32,
    queue: &ConsumeQueue,
    count: usize,
) -> Option<PersistJob> {
    if count <= queue.persisted {
        return None;
    }
    let all = queue.entries.get(..count)?.as_bytes();
    let first_byte = align_down(queue.persisted as u64 * CONSUME_QUEUE_ENTRY_SIZE_BYTES);
    Some(PersistJob {
        topic: topic.to_string(),
        queue_id,
        dir: queue_dir(root, topic, queue_id),
        first_byte,
        bytes: all.get(first_byte as usize..)?.to_vec(),
        persisted: count,
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

/// Reads a queue's entries from its files, up to the first zero entry or gap.
pub(crate) async fn load_entries(
    io: &dyn Io,
    dir: &Path,
    starts: &[u64],
) -> Result<Vec<ConsumeQueueEntry>, StoreError> {
    let mut entries = Vec::new();
    for (index, &start) in starts.iter().enumerate() {
        if start != index as u64 * CONSUME_QUEUE_FILE_SIZE_BYTES {
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
            for entry in chunk {
                if entry.size() <= 0 {
                    return Ok(entries);
                }
                entries.push(*entry);
            }
            pos += len;
        }
        if size < CONSUME_QUEUE_FILE_SIZE_BYTES {
            break;
        }
    }
    Ok(entries)
}

/// What `load_queues` found.
pub(crate) struct LoadedQueues {
    pub(crate) queues: ConsumeQueues,
    /// Directories of this log's queues, for a rebuild that must delete them.
    pub(crate) dirs: Vec<PathBuf>,
}

/// Loads the persisted entries of every queue that belongs to `log_id` (by `log_for`),
/// keeping those for records before `position` (the checkpoint). Entries at or after it,
/// or invalid ones, are zeroed on disk so that they can never be read back as valid.
pub(crate) async fn load_queues(
    io: &dyn Io,
    root: &Path,
    log_id: u32,
    log_count: u32,
    position: u64,
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
            let starts = list_queue_files(io, &dir).await?;
            let mut entries = load_entries(io, &dir, &starts).await?;
            let on_disk = entries.len();
            let keep = valid_prefix(&entries, log_id, position);
            entries.truncate(keep);
            let files_needed =
                (keep as u64 * CONSUME_QUEUE_ENTRY_SIZE_BYTES) / CONSUME_QUEUE_FILE_SIZE_BYTES + 1;
            if on_disk > keep || starts.len() as u64 > files_needed {
                truncate_queue_files(io, &dir, &starts, keep).await?;
            }
            let queue = ConsumeQueue { persisted: entries.len(), entries };
            loaded.queues.entry(topic.clone()).or_default().insert(queue_id, queue);
            loaded.dirs.push(dir);
        }
    }
    Ok(loaded)
}

/// Entries that are sane (this log, positive size, increasing positions) and before
/// `position`.
fn valid_prefix(entries: &[ConsumeQueueEntry], log_id: u32, position: u64) -> usize {
    let mut previous = None;
    for (index, entry) in entries.iter().enumerate() {
        let sane = split_log_offset(entry.log_offset())
            .is_some_and(|(id, p)| id == log_id && p < position)
            && entry.size() > 0
            && match previous {
                Some(prev) => prev < entry.position(),
                None => true,
            };
        if !sane {
            return index;
        }
        previous = Some(entry.position());
    }
    entries.len()
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

    #[test]
    fn entries_persist_across_files_and_blocks_and_truncate() {
        // Goal: the byte and block arithmetic of lazy persistence, across a file boundary
        // (307,200 entries per file) and mid-block starts. Method: persist 100,001 entries,
        // then up to 310,000, load them back; then truncate at 200,000 and load again.
        let dir = tempfile::Builder::new().tempdir_in("/var/tmp").unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("probe"), [1u8; 4096]).unwrap();
        let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .unwrap();
        executor.run(async move {
            DmaIo::probe_device(&root.join("probe")).await.unwrap();
            let io = DmaIo;
            let mut queue =
                ConsumeQueue { entries: (0..310_000).map(entry).collect(), persisted: 0 };
            for count in [100_001, 310_000] {
                let job = persist_job(&root, "T", 3, &queue, count).unwrap();
                run_persist_job(&io, &job).await.unwrap();
                queue.persisted = job.persisted;
            }
            let dir = queue_dir(&root, "T", 3);
            let starts = list_queue_files(&io, &dir).await.unwrap();
            assert_eq!(starts, vec![0, CONSUME_QUEUE_FILE_SIZE_BYTES]);
            let loaded = load_entries(&io, &dir, &starts).await.unwrap();
            assert_eq!(loaded.len(), 310_000);
            assert!(loaded == queue.entries);
            assert_eq!(valid_prefix(&loaded, 2, 100 + 5_000 * 300), 5_000);
            assert_eq!(valid_prefix(&loaded, 1, u64::MAX >> 8), 0);
            truncate_queue_files(&io, &dir, &starts, 200_000).await.unwrap();
            let starts = list_queue_files(&io, &dir).await.unwrap();
            assert_eq!(starts, vec![0]);
            let loaded = load_entries(&io, &dir, &starts).await.unwrap();
            assert_eq!(loaded.len(), 200_000);
            assert_eq!(loaded.last(), Some(&entry(199_999)));
        });
    }
}
