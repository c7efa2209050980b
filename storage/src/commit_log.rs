//! The in-memory side of one commit log: positions, the pending region, the tail cache,
//! and the open segments. Pure, synchronous state; the writer task (`log_writer.rs`) and
//! `LogStore` do the I/O around it (decide here, do there).
//!
//! Lives on: the owner shard of the log.
//!
//! ```text
//! log positions ─────────────────────────────────────────────────────────────────────►
//!
//!            chunks (Bytes, one per append batch or blank filler), contiguous
//!          ┌────────┬───────┬──────────┬────────┬──────┬─────────┐
//!          │ batch  │ batch │ batch    │ BLANK  │batch │ batch   │
//!          └────────┴───────┴──────────┴────────┴──────┴─────────┘
//!          ▲                     ▲                     ▲          ▲
//!   cache_start             flushed ≤ written     (segment roll)  dirty
//!          │◄─ tail cache: evictable once written ─►│◄ pending: never evicted ─►│
//! ```
//!
//! Invariants (asserted in `assert_invariants`): `cache_start ≤ flushed ≤ written ≤ dirty`
//! (flushed may be below `cache_start` once cold chunks are evicted), chunks are
//! contiguous and end at `dirty`, `written` is a chunk boundary, and `dirty - written ≤
//! PENDING_BYTES_MAX + BATCH_SIZE_BYTES_MAX`.
//!
//! A record lives inside exactly one chunk, so a hot read is a zero-copy `Bytes::slice`.
//! The same `Bytes` serves the writer (copied once into an aligned DMA buffer) and readers.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use ramjet_proto::message::{BLANK_MAGIC, SLOT_HEAD_BYTES};

use crate::config::{BATCH_SIZE_BYTES_MAX, PENDING_BYTES_MAX, WRITE_BYTES_MAX};
use crate::segment::{align_down, Segment};

/// Bytes of the blank filler that ends a segment: i32 remaining, i32 `BLANK_MAGIC` (a slot
/// head and nothing more, as `classify_slot` expects).
pub const BLANK_SIZE_BYTES: u64 = SLOT_HEAD_BYTES as u64;

/// Counters of one log, for tests, metrics and the bench.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Append calls accepted.
    pub appends: u64,
    /// Records appended.
    pub records: u64,
    /// Record bytes appended (fillers excluded).
    pub bytes_appended: u64,
    /// Write calls issued to segments.
    pub writes: u64,
    /// Bytes handed to segment writes (block-aligned, so including rewritten head blocks).
    pub bytes_written: u64,
    /// `fdatasync` calls on segments.
    pub fdatasyncs: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Hot reads served from the tail cache.
    pub cache_reads: u64,
    /// Cold reads issued to segments.
    pub disk_reads: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Latency of segment writes (one per group commit).
    pub write_latency: LatencyCounts,
    /// Latency of segment `fdatasync`s.
    pub fdatasync_latency: LatencyCounts,
}

/// Upper bounds of [`LatencyCounts`] buckets, microseconds (100 µs .. 10 s; the last
/// bucket counts everything slower). The same bounds as the broker's latency histograms.
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A fixed-bucket latency histogram (plain counts: it lives on one shard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyCounts {
    /// Count per bucket of [`LATENCY_BOUNDS_US`], then one for slower.
    pub buckets: [u64; 17],
    /// Sum of observed latencies, µs.
    pub sum_us: u64,
    /// Observations.
    pub count: u64,
}

impl LatencyCounts {
    /// Records one latency.
    pub fn observe(&mut self, elapsed: std::time::Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US.partition_point(|&b| b < us);
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
    }
}

/// A contiguous piece of the log held in memory. `span` is the log bytes it covers: the
/// length of `bytes`, except for a blank filler, whose 8 bytes stand for the rest of its
/// segment (those bytes are never written; they read as zero).
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) position: u64,
    pub(crate) span: u64,
    pub(crate) bytes: Bytes,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.position + self.span
    }
}

/// What one write round writes: whole chunks of one segment.
pub(crate) struct WritePlan {
    /// Start of the segment written (created first when `segment` is `None`).
    pub(crate) segment_start: u64,
    pub(crate) segment: Option<Rc<Segment>>,
    /// Log position of the first new byte (= `written`).
    pub(crate) first: u64,
    /// Log position one past the last new byte (`written` after the round).
    pub(crate) end: u64,
    /// The head of the first block, already on disk, rewritten with it.
    pub(crate) prefix: Vec<u8>,
    /// The bytes to write, contiguous from `first`; they end at or before `end` (a
    /// filler's implied zeros are not written).
    pub(crate) pieces: Vec<Bytes>,
}

/// Where a read is served from.
pub(crate) enum ReadSource {
    Cached(Bytes),
    /// On disk in this segment; the log is written up to `written` (cold reads that
    /// coalesce neighbours must stay below it).
    Disk {
        segment: Rc<Segment>,
        written: u64,
    },
    Missing,
}

/// The in-memory state of one commit log.
pub(crate) struct CommitLog {
    pub(crate) dir: PathBuf,
    segment_size_bytes: u64,
    tail_cache_bytes: u64,
    /// Segments whose files exist, by start position.
    pub(crate) segments: BTreeMap<u64, Rc<Segment>>,
    /// The segment `dirty` is in: appends place records in `[active_start, active_end)`.
    active_start: u64,
    active_end: u64,
    pub(crate) dirty: u64,
    pub(crate) written: u64,
    pub(crate) flushed: u64,
    chunks: VecDeque<Chunk>,
    /// Sum of `chunks[..].bytes.len()`.
    cached_bytes: u64,
    /// Bytes `[align_down(written), written)` of the segment holding `written`.
    tail_block: Vec<u8>,
    /// Store time of the newest record this process placed in each segment, by start
    /// (retention's segment age).
    last_store_ms: BTreeMap<u64, i64>,
    pub(crate) stats: LogStats,
}

/// Where recovery left a log.
pub(crate) struct RecoveredState {
    pub(crate) segments: BTreeMap<u64, Rc<Segment>>,
    pub(crate) end: u64,
    pub(crate) active_start: u64,
    pub(crate) active_end: u64,
    pub(crate) tail_block: Vec<u8>,
}

impl CommitLog {
    pub(crate) fn new(
        dir: PathBuf,
        segment_size_bytes: u64,
        tail_cache_bytes: u64,
        recovered: RecoveredState,
    ) -> CommitLog {
        let end = recovered.end;
        let log = CommitLog {
            dir,
            segment_size_bytes,
            tail_cache_bytes,
            segments: recovered.segments,
            active_start: recovered.active_start,
            active_end: recovered.active_end,
            dirty: end,
            written: end,
            flushed: end,
            chunks: VecDeque::new(),
            cached_bytes: 0,
            tail_block: recovered.tail_block,
            last_store_ms: BTreeMap::new(),
            stats: LogStats::default(),
        };
        log.assert_invariants();
        log
    }

    pub(crate) fn assert_invariants(&self) {
        assert!(self.flushed <= self.written && self.written <= self.dirty);
        // A batch may pass the limit once, and a filler before it spans less than a batch.
        assert!(self.dirty - self.written <= PENDING_BYTES_MAX + 2 * BATCH_SIZE_BYTES_MAX as u64);
        assert!(self.active_start <= self.dirty && self.dirty <= self.active_end);
        assert!(
            self.active_end - self.dirty >= BLANK_SIZE_BYTES || self.dirty == self.active_start
        );
        // Segment boundaries are block-aligned, so the head of `written`'s block is in
        // `written`'s segment.
        assert_eq!(self.tail_block.len() as u64, self.written - align_down(self.written));
        if let Some(last) = self.chunks.back() {
            assert_eq!(last.end(), self.dirty, "chunks end at dirty");
        }
    }

    /// The log position of the oldest segment still on disk (0 while there is none).
    pub(crate) fn start_position(&self) -> u64 {
        self.segments.keys().next().copied().unwrap_or(0)
    }

    /// Bytes appended but not yet written.
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.dirty - self.written
    }

    /// The largest batch a segment of this log can take.
    pub(crate) fn batch_size_bytes_max(&self) -> u64 {
        (BATCH_SIZE_BYTES_MAX as u64).min(self.segment_size_bytes - BLANK_SIZE_BYTES)
    }

    /// Reserves `len` bytes for one batch and returns their position. Rolls to a new
    /// segment first when `len` plus a filler does not fit, pushing the blank filler.
    pub(crate) fn place(&mut self, len: u64) -> u64 {
        assert!(len > 0 && len <= self.batch_size_bytes_max());
        if self.dirty + len + BLANK_SIZE_BYTES > self.active_end {
            self.roll();
        }
        self.dirty
    }

    /// Ends the active segment with a blank filler at `dirty` and moves to the next one.
    pub(crate) fn roll(&mut self) {
        let remaining = self.active_end - self.dirty;
        assert!(remaining >= BLANK_SIZE_BYTES, "a filler always fits (RocketMQ rule)");
        let mut blank = BytesMut::with_capacity(BLANK_SIZE_BYTES as usize);
        blank.put_i32(remaining as i32);
        blank.put_i32(BLANK_MAGIC);
        self.cached_bytes += BLANK_SIZE_BYTES;
        self.chunks.push_back(Chunk {
            position: self.dirty,
            span: remaining,
            bytes: blank.freeze(),
        });
        self.dirty = self.active_end;
        self.active_start = self.active_end;
        self.active_end = self.active_start + self.segment_size_bytes;
    }

    /// One past the last byte of the segment `dirty` is in.
    pub(crate) fn active_end(&self) -> u64 {
        self.active_end
    }

    /// Moves an empty log's start to `position` (a segment boundary of the master's log):
    /// a new slave copies a master whose oldest segments are gone (`replica.rs`).
    pub(crate) fn start_empty_at(&mut self, position: u64) {
        assert!(self.dirty == 0 && self.segments.is_empty() && self.chunks.is_empty());
        self.dirty = position;
        self.written = position;
        self.flushed = position;
        self.active_start = position;
        self.active_end = position + self.segment_size_bytes;
        self.tail_block.clear();
        self.assert_invariants();
    }

    /// Cached bytes from `position` (a record boundary below `limit`, itself a chunk
    /// boundary) as zero-copy slices of whole chunks: at least one chunk, then more while
    /// fewer than `max_bytes` are taken, stopping after a blank filler. Returns the slices
    /// and the log position after them (a filler ends at its segment's end); `None` when
    /// `position` is not cached.
    pub(crate) fn cached_span(
        &self,
        position: u64,
        limit: u64,
        max_bytes: u64,
    ) -> Option<(Vec<Bytes>, u64)> {
        let index = self.chunks.partition_point(|chunk| chunk.end() <= position);
        let first = self.chunks.get(index)?;
        if first.position > position || position >= first.position + first.bytes.len() as u64 {
            return None;
        }
        let mut pieces = Vec::new();
        let mut end = position;
        let mut taken = 0u64;
        for chunk in self.chunks.range(index..) {
            if chunk.end() > limit || (!pieces.is_empty() && taken >= max_bytes) {
                break;
            }
            let from = (end - chunk.position) as usize;
            let piece = chunk.bytes.slice(from..);
            taken += piece.len() as u64;
            pieces.push(piece);
            end = chunk.end();
            if chunk.span != chunk.bytes.len() as u64 {
                break; // A blank filler: the rest of the segment is implied zeros.
            }
        }
        (!pieces.is_empty()).then_some((pieces, end))
    }

    /// Notes that a record stored at `store_ms` was placed in the active segment.
    pub(crate) fn note_store_time(&mut self, store_ms: i64) {
        let newest = self.last_store_ms.entry(self.active_start).or_insert(store_ms);
        *newest = (*newest).max(store_ms);
    }

    /// Store time of the newest record this process placed in the segment at `start`.
    pub(crate) fn last_store_ms(&self, start: u64) -> Option<i64> {
        self.last_store_ms.get(&start).copied()
    }

    /// Drops the segments that end at or before `position` (retention); returns each
    /// one's path and capacity for the caller to remove. Never the active segment.
    pub(crate) fn forget_segments_before(&mut self, position: u64) -> Vec<(PathBuf, u64)> {
        assert!(position <= self.active_start, "retention never deletes the active segment");
        let starts: Vec<u64> = self.segments.range(..position).map(|(&start, _)| start).collect();
        let mut removed = Vec::new();
        for start in starts {
            if let Some(segment) = self.segments.remove(&start) {
                assert!(segment.end() <= position);
                removed.push((segment.path(), segment.capacity));
            }
            self.last_store_ms.remove(&start);
        }
        removed
    }

    /// Appends a chunk at `dirty`.
    pub(crate) fn push_chunk(&mut self, bytes: Bytes) {
        let span = bytes.len() as u64;
        self.cached_bytes += span;
        self.chunks.push_back(Chunk { position: self.dirty, span, bytes });
        self.dirty += span;
    }

    /// Takes the next write round: whole chunks from `written` within one segment, up to
    /// `WRITE_BYTES_MAX` (at least one chunk).
    pub(crate) fn plan_write(&self) -> Option<WritePlan> {
        if self.written == self.dirty {
            return None;
        }
        let index = self.chunks.partition_point(|chunk| chunk.position < self.written);
        let (segment_start, segment, segment_end) =
            match self.segments.range(..=self.written).next_back() {
                Some((_, segment)) if self.written < segment.end() => {
                    (segment.start, Some(segment.clone()), segment.end())
                }
                Some((_, segment)) => {
                    (segment.end(), None, segment.end() + self.segment_size_bytes)
                }
                None => (self.written, None, self.written + self.segment_size_bytes),
            };
        let mut pieces = Vec::new();
        let mut end = self.written;
        for chunk in self.chunks.range(index..) {
            assert_eq!(chunk.position, end, "chunks are contiguous");
            // A blank filler completes its segment, and a segment's chunks end at or
            // before its end, so a chunk never crosses `segment_end`.
            if chunk.position >= segment_end
                || (!pieces.is_empty() && end - self.written >= WRITE_BYTES_MAX)
            {
                break;
            }
            assert!(chunk.end() <= segment_end);
            pieces.push(chunk.bytes.clone());
            end = chunk.end();
        }
        assert!(!pieces.is_empty());
        Some(WritePlan {
            segment_start,
            segment,
            first: self.written,
            end,
            prefix: self.tail_block.clone(),
            pieces,
        })
    }

    /// Records a segment the writer created.
    pub(crate) fn add_segment(&mut self, segment: Rc<Segment>) {
        self.stats.segments_created += 1;
        self.segments.insert(segment.start, segment);
    }

    /// Records a completed write round (and its `fdatasync` when `synced`).
    pub(crate) fn complete_write(&mut self, end: u64, tail_block: Vec<u8>, synced: bool) {
        assert!(end > self.written && end <= self.dirty);
        self.written = end;
        self.tail_block = tail_block;
        if synced {
            self.flushed = end;
        }
        self.evict();
        self.assert_invariants();
    }

    /// Records an `fdatasync` covering everything written.
    pub(crate) fn complete_sync(&mut self, position: u64) {
        assert!(position <= self.written);
        self.flushed = self.flushed.max(position);
    }

    /// Drops the oldest written chunks while the cache holds more than its budget.
    fn evict(&mut self) {
        while self.cached_bytes > self.tail_cache_bytes {
            match self.chunks.front() {
                Some(chunk) if chunk.end() <= self.written => {
                    self.cached_bytes -= chunk.bytes.len() as u64;
                    self.chunks.pop_front();
                }
                _ => break,
            }
        }
    }

    /// Where the `size` bytes at `position` are.
    pub(crate) fn locate(&mut self, position: u64, size: u64) -> ReadSource {
        if position + size > self.dirty {
            return ReadSource::Missing;
        }
        let index = self.chunks.partition_point(|chunk| chunk.end() <= position);
        if let Some(chunk) = self.chunks.get(index) {
            if chunk.position <= position
                && position + size <= chunk.position + chunk.bytes.len() as u64
            {
                let from = (position - chunk.position) as usize;
                self.stats.cache_reads += 1;
                return ReadSource::Cached(chunk.bytes.slice(from..from + size as usize));
            }
        }
        if position + size > self.written {
            return ReadSource::Missing;
        }
        match self.segments.range(..=position).next_back() {
            Some((_, segment)) if position + size <= segment.end() => {
                self.stats.disk_reads += 1;
                ReadSource::Disk { segment: segment.clone(), written: self.written }
            }
            _ => ReadSource::Missing,
        }
    }
}
