//! The message index of one log: message keys (`KEYS`, space-separated words) and unique
//! ids (`UNIQ_KEY`) to the global log offsets of the records that carry them, for
//! QUERY_MESSAGE and lookups by unique id. Keys are indexed as `topic#key`, as
//! RocketMQ's `IndexService` does; lookups return candidate offsets (32-bit hashes
//! collide) and the caller reads each record and compares the real key.
//!
//! Lives on: the owner shard of its log (inside `LogStore`).
//!
//! Design: an append-only set of immutable, sorted *runs*. Entries of records appended
//! since the last checkpoint are kept in memory (`pending`, in log order); each
//! checkpoint sorts those before its position `P` into one run file covering log
//! positions `[E, P)`, where `E` is the previous run's end, so the runs are contiguous.
//! The checkpoint then records `index_end = P` (or keeps the old `E` when there was
//! nothing to index: records in `[E, P)` carry no keys). Only each run's header and
//! fence (the first key hash of each 4 KiB entry block, 4 bytes per 204 entries) stay in
//! memory; a lookup reads the one or two blocks of each run that may hold its hash.
//!
//! Files: `{root}/index/{log_id:03}/{first position:020}`, written as `….tmp`,
//! `fdatasync`ed, renamed, directory synced. Big-endian throughout.
//!
//! ```text
//! block 0, header (the rest of the 4 KiB block is zero)
//! off size field
//!   0    4 magic          "RJIX"
//!   4    4 version        1
//!   8    8 first_position u64, log position the run covers from
//!  16    8 end_position   u64, log position it covers to (exclusive)
//!  24    8 entry_count    u64
//!  32    8 min_store_ms   i64, smallest STORETIMESTAMP of its entries
//!  40    8 max_store_ms   i64, largest
//!  48    4 block_count    u32, entry blocks
//!  52    4 fence_crc32c   over the fence's block_count × 4 bytes
//!  56    4 header_crc32c  over bytes 0..56
//!
//! blocks 1 ..= F, fence: block_count × u32, the first key hash of each entry block,
//!                        zero-padded to whole blocks (F = ceil(block_count × 4 / 4096))
//!
//! entry block (4 KiB), sorted by (key_hash, log_offset) across blocks
//! off   size      field
//!    0  204 × 20  entries: key_hash u32, log_offset i64 (global), store_ms i64
//! 4080     4      count     u32, entries used (1..=204)
//! 4084     4      crc32c    over bytes 0..4084
//! ```
//!
//! Recovery (`replay.rs`): the runs found must form a contiguous chain that starts at or
//! below the log's first position and ends at or past the checkpoint's `index_end`;
//! then the log is replayed from the checkpoint as usual and records at or past the
//! chain's end are indexed again into `pending`. Otherwise (a run lost or damaged, or a
//! version-1 checkpoint) every run is deleted and the index is rebuilt from the log's
//! first segment. Retention deletes runs that end at or below the log's first position.

use std::path::{Path, PathBuf};

use ramjet_proto::message::{SYSFLAG_TRANSACTION_MASK, SYSFLAG_TRANSACTION_ROLLBACK};
use zerocopy::byteorder::big_endian::{I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::config::BLOCK_SIZE_BYTES;
use crate::error::StoreError;
use crate::io::{Io, OpenMode};
use crate::log_offset::split_log_offset;
use crate::segment::{file_name, parse_file_name};

const INDEX_MAGIC: [u8; 4] = *b"RJIX";
const INDEX_VERSION: u32 = 1;
/// Entries per 4 KiB entry block: 204 × 20 = 4,080 bytes, then count and CRC.
pub const INDEX_BLOCK_ENTRIES: usize = 204;
const BLOCK: usize = BLOCK_SIZE_BYTES as usize;
const COUNT_AT: usize = INDEX_BLOCK_ENTRIES * 20;
const CRC_AT: usize = COUNT_AT + 4;
const _: () = assert!(CRC_AT + 4 <= BLOCK);
/// Bytes written per `write_at` when writing a run.
const WRITE_CHUNK_BYTES: usize = 4 << 20;
/// Index keys a single record contributes at most (the rest are ignored).
pub const KEYS_PER_RECORD_MAX: usize = 64;

/// One index entry, as stored in a run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub(crate) struct IndexEntry {
    key_hash: U32,
    log_offset: I64,
    store_ms: I64,
}

const _: () = assert!(std::mem::size_of::<IndexEntry>() == 20);

impl IndexEntry {
    pub(crate) fn new(key_hash: u32, log_offset: i64, store_ms: i64) -> Self {
        IndexEntry {
            key_hash: U32::new(key_hash),
            log_offset: I64::new(log_offset),
            store_ms: I64::new(store_ms),
        }
    }
    fn key_hash(&self) -> u32 {
        self.key_hash.get()
    }
    fn log_offset(&self) -> i64 {
        self.log_offset.get()
    }
    fn store_ms(&self) -> i64 {
        self.store_ms.get()
    }
    fn position(&self) -> u64 {
        split_log_offset(self.log_offset()).map_or(0, |(_, position)| position)
    }
}

/// The header of a run, at the start of block 0.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RunHeader {
    magic: [u8; 4],
    version: U32,
    first_position: zerocopy::byteorder::big_endian::U64,
    end_position: zerocopy::byteorder::big_endian::U64,
    entry_count: zerocopy::byteorder::big_endian::U64,
    min_store_ms: I64,
    max_store_ms: I64,
    block_count: U32,
    fence_crc32c: U32,
    header_crc32c: U32,
}

const _: () = assert!(std::mem::size_of::<RunHeader>() == 60);
const HEADER_CRC_COVERED_BYTES: usize = 56;

/// The hash of index key `topic#key`: CRC-32C of its UTF-8 bytes.
pub fn key_hash(topic: &str, key: &str) -> u32 {
    let crc = crc32c::crc32c(topic.as_bytes());
    let crc = crc32c::crc32c_append(crc, b"#");
    crc32c::crc32c_append(crc, key.as_bytes())
}

/// Whether a record with this SYSFLAG is indexed: all but ROLLBACK records (RocketMQ's
/// `IndexService.buildIndex`).
pub(crate) fn is_indexed(sys_flag: i32) -> bool {
    sys_flag & SYSFLAG_TRANSACTION_MASK != SYSFLAG_TRANSACTION_ROLLBACK
}

/// The index keys of a record's properties: its `UNIQ_KEY`, then each space-separated
/// word of `KEYS` (RocketMQ's `IndexService.buildIndex`), at most `KEYS_PER_RECORD_MAX`.
pub fn record_keys(properties: &[u8]) -> Vec<String> {
    use ramjet_proto::message::{property, property_value};
    let mut keys = Vec::new();
    if let Some(uniq) = property_value(properties, property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX) {
        if !uniq.is_empty() {
            keys.push(uniq);
        }
    }
    if let Some(words) = property_value(properties, property::KEYS) {
        // Stop at the cap: de-duplication compares against at most KEYS_PER_RECORD_MAX keys,
        // so a message with thousands of words costs linear time, not quadratic.
        for word in words.split(' ').filter(|w| !w.is_empty()) {
            if keys.len() >= KEYS_PER_RECORD_MAX {
                break;
            }
            if !keys.iter().any(|k| k == word) {
                keys.push(word.to_string());
            }
        }
    }
    keys.truncate(KEYS_PER_RECORD_MAX);
    keys
}

/// A run on disk: what stays in memory of it.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) path: PathBuf,
    pub(crate) first_position: u64,
    pub(crate) end_position: u64,
    min_store_ms: i64,
    max_store_ms: i64,
    /// First key hash of each entry block.
    fence: Vec<u32>,
    /// Blocks before the first entry block (header + fence).
    entry_block_first: u64,
}

/// The index of one log: runs on disk and the entries appended since the last one.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) runs: Vec<std::rc::Rc<Run>>,
    /// Entries not yet in a run, in log order.
    pub(crate) pending: Vec<IndexEntry>,
    /// The runs cover log positions below this; `pending` holds entries at or above it.
    pub(crate) end: u64,
}

impl Index {
    /// The same runs and end, with nothing pending (a fresh replay pass).
    pub(crate) fn clone_runs(&self) -> Index {
        Index { runs: self.runs.clone(), pending: Vec::new(), end: self.end }
    }

    /// Entries held in memory (pending) plus fence words, for the memory bound.
    pub(crate) fn memory_entries(&self) -> usize {
        self.pending.len() + self.runs.iter().map(|run| run.fence.len()).sum::<usize>()
    }

    /// Adds the entries of a record at `log_offset` (position `position`).
    pub(crate) fn add(&mut self, topic: &str, keys: &[String], log_offset: i64, store_ms: i64) {
        for key in keys {
            self.pending.push(IndexEntry::new(key_hash(topic, key), log_offset, store_ms));
        }
    }

    /// The pending entries for records before `position` (a prefix, as pending is in log
    /// order).
    pub(crate) fn pending_before(&self, position: u64) -> usize {
        self.pending.partition_point(|entry| entry.position() < position)
    }
}

/// The directory of a log's index runs.
pub(crate) fn index_dir(root: &Path, log_id: u32) -> PathBuf {
    root.join("index").join(format!("{log_id:03}"))
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |e| StoreError::io(op, path, &e)
}

/// Writes `entries` (any order) as a run covering `[first_position, end_position)`.
pub(crate) async fn write_run(
    io: &dyn Io,
    dir: &Path,
    first_position: u64,
    end_position: u64,
    mut entries: Vec<IndexEntry>,
) -> Result<Run, StoreError> {
    assert!(first_position < end_position && !entries.is_empty());
    entries.sort_unstable_by_key(|e| (e.key_hash(), e.log_offset()));
    let blocks: Vec<&[IndexEntry]> = entries.chunks(INDEX_BLOCK_ENTRIES).collect();
    let fence: Vec<u32> = blocks.iter().filter_map(|b| b.first()).map(|e| e.key_hash()).collect();
    let fence_bytes: Vec<u8> = fence.iter().flat_map(|h| h.to_be_bytes()).collect();
    let fence_blocks = fence_bytes.len().div_ceil(BLOCK);
    let mut header = RunHeader {
        magic: INDEX_MAGIC,
        version: U32::new(INDEX_VERSION),
        first_position: first_position.into(),
        end_position: end_position.into(),
        entry_count: (entries.len() as u64).into(),
        min_store_ms: I64::new(entries.iter().map(|e| e.store_ms()).min().unwrap_or(0)),
        max_store_ms: I64::new(entries.iter().map(|e| e.store_ms()).max().unwrap_or(0)),
        block_count: U32::new(blocks.len() as u32),
        fence_crc32c: U32::new(crc32c::crc32c(&fence_bytes)),
        header_crc32c: U32::new(0),
    };
    let crc = crc32c::crc32c(header.as_bytes().get(..HEADER_CRC_COVERED_BYTES).unwrap_or(&[]));
    header.header_crc32c = U32::new(crc);
    let mut bytes = vec![0u8; (1 + fence_blocks + blocks.len()) * BLOCK];
    bytes[..std::mem::size_of::<RunHeader>()].copy_from_slice(header.as_bytes());
    bytes[BLOCK..BLOCK + fence_bytes.len()].copy_from_slice(&fence_bytes);
    for (index, block) in blocks.iter().enumerate() {
        let at = (1 + fence_blocks + index) * BLOCK;
        let target = &mut bytes[at..at + BLOCK];
        target[..block.len() * 20].copy_from_slice(block.as_bytes());
        target[COUNT_AT..COUNT_AT + 4].copy_from_slice(&(block.len() as u32).to_be_bytes());
        let crc = crc32c::crc32c(&target[..CRC_AT]);
        target[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
    io.create_dir_all(dir.to_path_buf()).await.map_err(io_err("mkdir", dir))?;
    let path = dir.join(file_name(first_position));
    let tmp = dir.join(format!("{}.tmp", file_name(first_position)));
    let file = io.open(tmp.clone(), OpenMode::Create).await.map_err(io_err("open", &tmp))?;
    file.truncate(0).await.map_err(io_err("truncate", &tmp))?;
    for (index, chunk) in bytes.chunks(WRITE_CHUNK_BYTES).enumerate() {
        let mut buf = file.alloc_buffer(chunk.len());
        buf.as_bytes_mut()[..chunk.len()].copy_from_slice(chunk);
        let at = (index * WRITE_CHUNK_BYTES) as u64;
        let written = file.write_at(buf, at).await.map_err(io_err("write", &tmp))?;
        if written != chunk.len() {
            let message = format!("short write: {written} of {} bytes", chunk.len());
            return Err(StoreError::Io { op: "write", path: tmp, errno: 0, message });
        }
    }
    file.fdatasync().await.map_err(io_err("fdatasync", &tmp))?;
    drop(file);
    io.rename(tmp.clone(), path.clone()).await.map_err(io_err("rename", &tmp))?;
    io.sync_dir(dir.to_path_buf()).await.map_err(io_err("sync_dir", dir))?;
    Ok(Run {
        path,
        first_position,
        end_position,
        min_store_ms: header.min_store_ms.get(),
        max_store_ms: header.max_store_ms.get(),
        fence,
        entry_block_first: 1 + fence_blocks as u64,
    })
}

/// Reads a run's header and fence; `None` when either fails its checks.
async fn read_run(io: &dyn Io, path: &Path) -> Result<Option<Run>, StoreError> {
    let file =
        io.open(path.to_path_buf(), OpenMode::Existing).await.map_err(io_err("open", path))?;
    let head = file.read_at(0, BLOCK).await.map_err(io_err("read", path))?;
    let Ok((header, _)) = RunHeader::read_from_prefix(&head) else { return Ok(None) };
    let covered = head.get(..HEADER_CRC_COVERED_BYTES).unwrap_or_default();
    if header.magic != INDEX_MAGIC
        || header.version.get() != INDEX_VERSION
        || header.header_crc32c.get() != crc32c::crc32c(covered)
    {
        return Ok(None);
    }
    let block_count = header.block_count.get() as usize;
    let fence_len = block_count * 4;
    let fence_blocks = fence_len.div_ceil(BLOCK);
    let fence_bytes =
        file.read_at(BLOCK as u64, fence_blocks * BLOCK).await.map_err(io_err("read", path))?;
    let Some(fence_bytes) = fence_bytes.get(..fence_len) else { return Ok(None) };
    if crc32c::crc32c(fence_bytes) != header.fence_crc32c.get() {
        return Ok(None);
    }
    let fence =
        fence_bytes.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Some(Run {
        path: path.to_path_buf(),
        first_position: header.first_position.get(),
        end_position: header.end_position.get(),
        min_store_ms: header.min_store_ms.get(),
        max_store_ms: header.max_store_ms.get(),
        fence,
        entry_block_first: 1 + fence_blocks as u64,
    }))
}

/// Loads the runs of a log: valid ones sorted by first position. Damaged runs and
/// leftover `.tmp` files are removed.
pub(crate) async fn load_runs(io: &dyn Io, dir: &Path) -> Result<Vec<Run>, StoreError> {
    let names = io.list_dir(dir.to_path_buf()).await.map_err(io_err("list", dir))?;
    let mut runs = Vec::new();
    for name in names {
        let path = dir.join(&name);
        if parse_file_name(&name).is_none() {
            if name.ends_with(".tmp") {
                io.remove(path.clone()).await.map_err(io_err("remove", &path))?;
            }
            continue;
        }
        match read_run(io, &path).await? {
            Some(run) => runs.push(run),
            None => {
                tracing::warn!(path = %path.display(), "index run damaged; removing it");
                io.remove(path.clone()).await.map_err(io_err("remove", &path))?;
            }
        }
    }
    runs.sort_unstable_by_key(|run| run.first_position);
    Ok(runs)
}

/// Whether `runs` form one contiguous chain from at or below `log_start` to at or past
/// `index_end` (an empty set qualifies when `index_end <= log_start`). Returns the
/// chain's end.
pub(crate) fn chain_end(runs: &[Run], log_start: u64, index_end: u64) -> Option<u64> {
    let Some(first) = runs.first() else {
        return (index_end <= log_start).then_some(log_start);
    };
    if first.first_position > log_start {
        return None;
    }
    let mut end = first.end_position;
    for run in runs.iter().skip(1) {
        if run.first_position != end || run.end_position <= run.first_position {
            return None;
        }
        end = run.end_position;
    }
    (end >= index_end).then_some(end)
}

/// Removes every run file (before a rebuild).
pub(crate) async fn remove_runs(io: &dyn Io, dir: &Path, runs: &[Run]) -> Result<(), StoreError> {
    for run in runs {
        io.remove(run.path.clone()).await.map_err(io_err("remove", &run.path))?;
    }
    if !runs.is_empty() {
        io.sync_dir(dir.to_path_buf()).await.map_err(io_err("sync_dir", dir))?;
    }
    Ok(())
}

/// What a lookup wants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookup {
    pub(crate) key_hash: u32,
    pub(crate) begin_ms: i64,
    pub(crate) end_ms: i64,
}

impl Lookup {
    fn matches(&self, entry: &IndexEntry) -> bool {
        entry.key_hash() == self.key_hash
            && entry.store_ms() >= self.begin_ms
            && entry.store_ms() <= self.end_ms
    }
}

/// The pending entries matching `lookup`, newest first.
pub(crate) fn lookup_pending(index: &Index, lookup: &Lookup) -> Vec<i64> {
    index.pending.iter().rev().filter(|e| lookup.matches(e)).map(|e| e.log_offset()).collect()
}

/// The entries of `run` matching `lookup` (reads the blocks that may hold the hash).
pub(crate) async fn lookup_run(
    io: &dyn Io,
    run: &Run,
    lookup: &Lookup,
) -> Result<Vec<i64>, StoreError> {
    if run.max_store_ms < lookup.begin_ms || run.min_store_ms > lookup.end_ms {
        return Ok(Vec::new());
    }
    let hash = lookup.key_hash;
    // Blocks whose range can hold `hash`: from the last block starting below it (its
    // tail may hold it) to the last block starting at or below it.
    let first = run.fence.partition_point(|&h| h < hash).saturating_sub(1);
    let last = run.fence.partition_point(|&h| h <= hash);
    if first >= last {
        return Ok(Vec::new());
    }
    let path = &run.path;
    let file = io.open(path.clone(), OpenMode::Existing).await.map_err(io_err("open", path))?;
    let at = (run.entry_block_first + first as u64) * BLOCK_SIZE_BYTES;
    let bytes = file.read_at(at, (last - first) * BLOCK).await.map_err(io_err("read", path))?;
    let mut found = Vec::new();
    for block in bytes.chunks(BLOCK) {
        let (Some(count), Some(crc)) =
            (block.get(COUNT_AT..COUNT_AT + 4), block.get(CRC_AT..CRC_AT + 4))
        else {
            break;
        };
        let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]) as usize;
        let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if count > INDEX_BLOCK_ENTRIES
            || crc != crc32c::crc32c(block.get(..CRC_AT).unwrap_or_default())
        {
            tracing::warn!(path = %path.display(), "index block damaged; skipped");
            continue;
        }
        let Ok(entries) =
            <[IndexEntry]>::ref_from_bytes(block.get(..count * 20).unwrap_or_default())
        else {
            continue;
        };
        found.extend(entries.iter().filter(|e| lookup.matches(e)).map(|e| e.log_offset()));
    }
    found.sort_unstable_by(|a, b| b.cmp(a));
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {

    #[test]
    fn record_keys_stop_at_the_cap_whatever_the_number_of_words() {
        // 100,000 distinct words: the first KEYS_PER_RECORD_MAX - 1 after UNIQ_KEY are kept.
        let words: Vec<String> = (0..100_000).map(|i| format!("k{i}")).collect();
        let keys_value = words.join(" ");
        let props = ramjet_proto::message::encode_properties([
            ("KEYS", keys_value.as_str()),
            ("UNIQ_KEY", "U"),
        ]);
        let keys = super::record_keys(&props);
        assert_eq!(keys.len(), super::KEYS_PER_RECORD_MAX);
        assert_eq!(keys[0], "U");
        assert_eq!(keys[1], "k0");
        assert_eq!(
            keys[super::KEYS_PER_RECORD_MAX - 1],
            format!("k{}", super::KEYS_PER_RECORD_MAX - 2)
        );
    }
    use super::*;

    #[test]
    fn keys_are_uniq_key_then_key_words() {
        use ramjet_proto::message::encode_properties;
        let props = encode_properties([("KEYS", "a  b a"), ("UNIQ_KEY", "U1"), ("TAGS", "t")]);
        assert_eq!(record_keys(&props), vec!["U1", "a", "b"]);
        assert!(record_keys(&encode_properties([("TAGS", "t")])).is_empty());
        assert_ne!(key_hash("T", "a"), key_hash("T", "b"));
        assert_ne!(key_hash("T", "a"), key_hash("U", "a"));
    }

    fn run_at(first: u64, end: u64) -> Run {
        Run {
            path: PathBuf::new(),
            first_position: first,
            end_position: end,
            min_store_ms: 0,
            max_store_ms: 0,
            fence: Vec::new(),
            entry_block_first: 1,
        }
    }

    #[test]
    fn chain_rules() {
        // Table: runs, log start, checkpoint index_end → chain end.
        let cases: &[(&[(u64, u64)], u64, u64, Option<u64>)] = &[
            (&[], 0, 0, Some(0)),         // fresh store
            (&[], 4096, 100, Some(4096)), // every run deleted by retention
            (&[], 0, 100, None),          // the only run was lost
            (&[], 0, u64::MAX, None),     // version-1 checkpoint: rebuild
            (&[(0, 100), (100, 300)], 0, 300, Some(300)),
            (&[(0, 100), (100, 300)], 0, 100, Some(300)), // a run newer than the checkpoint
            (&[(0, 100), (100, 300)], 0, 400, None),      // the last run was lost
            (&[(0, 100), (200, 300)], 0, 300, None),      // a middle run was lost
            (&[(100, 300)], 0, 300, None),                // the first run was lost
            (&[(100, 300)], 150, 300, Some(300)),         // retention deleted older runs
        ];
        for (index, (runs, log_start, index_end, want)) in cases.iter().enumerate() {
            let runs: Vec<Run> = runs.iter().map(|&(f, e)| run_at(f, e)).collect();
            assert_eq!(chain_end(&runs, *log_start, *index_end), *want, "case {index}");
        }
    }
}
