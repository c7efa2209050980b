//! Recovery of one commit log at open: find the segments, replay the records after the
//! checkpoint into the consume queues, and decide where the log ends.
//!
//! Lives on: the owner shard of the log (runs once, inside `LogStore::open`).
//!
//! Procedure:
//!
//! 1. List `{root}/commitlog/{log_id:03}/`; 20-digit names are segments. Open them in
//!    order; each must end where the next starts. A last segment shorter than the
//!    configured size (a crash while creating it) is allocated up to it.
//! 2. Start at the checkpoint position `P` (records before it are durable and indexed).
//! 3. Read slot after slot. A slot is a record (length, magic, PHYSICALOFFSET equal to its
//!    own global offset, fields adding up to TOTALSIZE, body CRC when the stop was
//!    unclean), a blank filler (go to the next segment), or the end: zeros or damage.
//! 4. At the end `X`, decide with the table below. "Valid after" means a valid record or
//!    filler found by searching forward from `X` byte by byte (within
//!    [`RESYNC_WINDOW_BYTES`] in the same segment) and at the start of every later segment.
//! 5. Truncate: zero the segment from `X` on (truncate, re-allocate, `fdatasync`), remove
//!    later segment files, `fsync` the directory. The log then ends, and appends resume,
//!    at `X`.
//!
//! Decision table (legend: clean = no abort marker; zero = header of zeros at `X`;
//! bad = any other invalid slot; later = segment files after `X`'s segment exist):
//!
//! | stop   | slot at X | later | valid after X | decision                                   |
//! |--------|-----------|-------|---------------|--------------------------------------------|
//! | clean  | zero      | no    | (not read)    | end at X; nothing to repair                |
//! | clean  | zero      | yes   | no            | end at X; remove later segments            |
//! | clean  | bad       | any   | no            | torn tail (unexpected): truncate at X, warn |
//! | unclean| zero      | any   | no            | zero-filled tail: truncate at X            |
//! | unclean| bad       | any   | no            | torn tail: truncate at X, warn             |
//! | any    | zero, bad | any   | yes           | corruption: refuse to open (`Corrupt`)     |
//!
//! `tests/recovery.rs::recovery_decision_table_every_row` builds every input combination
//! (20: stop × slot × later × where a valid record follows) on disk and checks the
//! decision against this table.
//!
//! Why "valid after" means corruption: the writer writes sequentially and a record is
//! acknowledged (sync mode) only after its `fdatasync`, so a torn write only damages the
//! tail. A bad record followed by good ones is damage inside data that was durable; we
//! stop rather than silently drop the good records. Caveat: a power cut that persists a
//! later sector of one unsynced write but loses an earlier one also looks like this; the
//! operator then decides (the error names the position).
//!
//! The `clean, zero, no later` row trusts the clean shutdown and reads nothing past `X`,
//! so a clean open costs one read per log. Every other row reads the search window.

use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use ramjet_proto::message::{
    classify_slot, decode_record, Slot as SlotKind, StoredMessage, PHYSICAL_OFFSET_POS,
};
use std::collections::BTreeMap;

use crate::commit_log::{RecoveredState, BLANK_SIZE_BYTES};
use crate::config::{BLOCK_SIZE_BYTES, RECORD_SIZE_BYTES_MAX};
use crate::error::StoreError;
use crate::io::Io;
use crate::log_offset::log_offset_of;
use crate::segment::{align_down, align_up, segment_starts, Segment};

/// How far past a bad slot recovery searches for valid records in the same segment.
/// Covers what can be written but unsynced at a crash (`UNSYNCED_BYTES_MAX` plus one write
/// round) with room to spare.
pub const RESYNC_WINDOW_BYTES: u64 = 128 * 1024 * 1024;
/// Bytes read at a time while scanning.
const SCAN_READ_BYTES: u64 = 1024 * 1024;
/// Bytes of a record header the resync search checks: up to PHYSICALOFFSET's end.
const RESYNC_HEADER_BYTES: u64 = 36;

/// What recovery needs to know.
pub(crate) struct RecoveryOptions<'a> {
    pub(crate) io: &'a dyn Io,
    pub(crate) dir: &'a Path,
    pub(crate) log_id: u32,
    pub(crate) segment_size_bytes: u64,
    /// The checkpoint position.
    pub(crate) start: u64,
    /// No abort marker was found.
    pub(crate) clean: bool,
}

/// What recovery did, for the log line and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The previous run closed cleanly.
    pub clean: bool,
    /// Position recovery started from (the checkpoint).
    pub start: u64,
    /// Position the log ends at.
    pub end: u64,
    /// Records replayed into consume queues.
    pub records_replayed: u64,
    /// Where a torn or zero-filled tail was cut, if it was.
    pub truncated_at: Option<u64>,
    /// Segment files removed after the end.
    pub segments_removed: u64,
    /// Consume queues were inconsistent with the log and rebuilt from its start.
    pub consume_queues_rebuilt: bool,
    /// Index runs were missing or damaged, and the index was rebuilt from the log.
    pub index_rebuilt: bool,
}

/// One slot of the log.
enum Slot {
    Record(Box<StoredMessage>),
    Blank,
    Zero,
    Bad(String),
}

/// Buffered reads over one segment.
struct SegmentReader {
    segment: Rc<Segment>,
    buf: Bytes,
    buf_position: u64,
}

impl SegmentReader {
    fn new(segment: Rc<Segment>) -> Self {
        SegmentReader { segment, buf: Bytes::new(), buf_position: 0 }
    }

    /// The `len` bytes at `position` (which must lie in the segment).
    async fn get(&mut self, position: u64, len: u64) -> Result<Bytes, StoreError> {
        let end = position + len;
        assert!(end <= self.segment.end());
        let have_end = self.buf_position + self.buf.len() as u64;
        if position < self.buf_position || end > have_end {
            let first = align_down(position);
            let last = align_up(end.max(first + SCAN_READ_BYTES)).min(self.segment.end());
            self.buf = self.segment.read(first, (last - first) as usize).await?;
            self.buf_position = first;
        }
        let from = (position - self.buf_position) as usize;
        Ok(self.buf.slice(from..from + len as usize))
    }
}

fn be_i64(bytes: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// Reads and classifies the slot at `position`.
async fn read_slot(
    reader: &mut SegmentReader,
    log_id: u32,
    position: u64,
    check_crc: bool,
) -> Result<Slot, StoreError> {
    let room = reader.segment.end() - position;
    if room < BLANK_SIZE_BYTES {
        return Ok(Slot::Bad(format!("{room} bytes left in the segment, less than a filler")));
    }
    let header = reader.get(position, BLANK_SIZE_BYTES).await?;
    let total = match classify_slot(&header, room, RECORD_SIZE_BYTES_MAX) {
        Ok(SlotKind::Zero) => return Ok(Slot::Zero),
        Ok(SlotKind::Blank) => return Ok(Slot::Blank),
        Ok(SlotKind::Record { total_size }) => total_size,
        Err(error) => return Ok(Slot::Bad(error.to_string())),
    };
    let bytes = reader.get(position, total as u64).await?;
    let message = match decode_record(&bytes, check_crc) {
        Ok(message) => message,
        Err(error) => return Ok(Slot::Bad(error.to_string())),
    };
    let expected = log_offset_of(log_id, position);
    if message.physical_offset != expected {
        let found = message.physical_offset;
        return Ok(Slot::Bad(format!("PHYSICALOFFSET {found} where {expected} belongs")));
    }
    Ok(Slot::Record(Box::new(message)))
}

/// Opens the segments found in the log directory, in order.
async fn open_segments(options: &RecoveryOptions<'_>) -> Result<Vec<Rc<Segment>>, StoreError> {
    let dir = options.dir;
    let starts = segment_starts(options.io, dir).await?;
    let corrupt = |position: u64, reason: String| StoreError::Corrupt {
        log_id: options.log_id,
        position,
        reason,
    };
    let mut segments = Vec::with_capacity(starts.len());
    for (index, &start) in starts.iter().enumerate() {
        if start % BLOCK_SIZE_BYTES != 0 {
            return Err(corrupt(start, "segment start not block-aligned".to_string()));
        }
        let capacity = match starts.get(index + 1) {
            Some(next) => next - start,
            None => options.segment_size_bytes,
        };
        let segment = Segment::open(options.io, dir, start, capacity).await?;
        if starts.get(index + 1).is_some() && segment.capacity != capacity {
            let reason = format!("segment of {} bytes overlaps the next", segment.capacity);
            return Err(corrupt(start, reason));
        }
        segments.push(Rc::new(segment));
    }
    Ok(segments)
}

/// Searches for a valid record or filler after the bad slot at `position`: byte by byte
/// within the window in its segment, then at the start of each later segment.
async fn find_valid_after(
    segments: &[Rc<Segment>],
    index: usize,
    log_id: u32,
    position: u64,
) -> Result<Option<u64>, StoreError> {
    let Some(segment) = segments.get(index) else { return Ok(None) };
    let mut reader = SegmentReader::new(segment.clone());
    let limit = segment.end().min(position + RESYNC_WINDOW_BYTES);
    let mut window_start = position + 1;
    while window_start + BLANK_SIZE_BYTES <= limit {
        let window_end = (window_start + SCAN_READ_BYTES).min(limit);
        let read_end = (window_end + RESYNC_HEADER_BYTES).min(segment.end());
        let bytes = reader.get(window_start, read_end - window_start).await?;
        for candidate in window_start..window_end {
            let at = (candidate - window_start) as usize;
            if looks_like_slot(&bytes, at, log_id, candidate, segment.end()) {
                let mut probe = SegmentReader::new(segment.clone());
                if let Slot::Record(_) | Slot::Blank =
                    read_slot(&mut probe, log_id, candidate, true).await?
                {
                    return Ok(Some(candidate));
                }
            }
        }
        window_start = window_end;
    }
    for later in segments.iter().skip(index + 1) {
        let mut probe = SegmentReader::new(later.clone());
        if let Slot::Record(_) | Slot::Blank =
            read_slot(&mut probe, log_id, later.start, true).await?
        {
            return Ok(Some(later.start));
        }
    }
    Ok(None)
}

/// Cheap filter for the resync search: a record's magic and self-referencing
/// PHYSICALOFFSET, or a filler whose length reaches exactly to the segment end.
/// (`read_slot` then checks the candidate in full, so this filter only saves reads.)
fn looks_like_slot(bytes: &[u8], at: usize, log_id: u32, position: u64, segment_end: u64) -> bool {
    let Some(slot) = bytes.get(at..) else { return false };
    match classify_slot(slot, segment_end - position, RECORD_SIZE_BYTES_MAX) {
        Ok(SlotKind::Record { .. }) => {
            be_i64(slot, PHYSICAL_OFFSET_POS) == Some(log_offset_of(log_id, position))
        }
        Ok(SlotKind::Blank) => true,
        Ok(SlotKind::Zero) | Err(_) => false,
    }
}

/// Where the scan stopped.
struct Stop {
    index: usize,
    position: u64,
    reason: Option<String>, // None: a zero header
}

/// Replays records from `options.start`, calling `on_record(position, message)` for each;
/// returns where the log ends. `on_record` returning `false` aborts with `Corrupt`.
pub(crate) async fn recover(
    options: &RecoveryOptions<'_>,
    on_record: &mut dyn FnMut(u64, &StoredMessage) -> bool,
) -> Result<(RecoveredState, RecoveryReport), StoreError> {
    let log_id = options.log_id;
    let corrupt = |position: u64, reason: String| StoreError::Corrupt { log_id, position, reason };
    let segments = open_segments(options).await?;
    let mut report =
        RecoveryReport { clean: options.clean, start: options.start, ..Default::default() };
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        if options.start > 0 {
            return Err(corrupt(options.start, "checkpoint past an empty log".to_string()));
        }
        return Ok((empty_state(options.segment_size_bytes), report));
    };
    let mut position = options.start.max(first.start);
    if position > last.end() {
        return Err(corrupt(position, format!("checkpoint past the log end {}", last.end())));
    }
    let mut index =
        segments.iter().position(|segment| position < segment.end()).unwrap_or(segments.len());
    let check_crc = !options.clean;
    let mut stop = None;
    while let Some(segment) = segments.get(index) {
        let mut reader = SegmentReader::new(segment.clone());
        let reason = loop {
            match read_slot(&mut reader, log_id, position, check_crc).await? {
                Slot::Record(message) => {
                    if !on_record(position, &message) {
                        return Err(corrupt(
                            position,
                            "record disagrees with its consume queue".to_string(),
                        ));
                    }
                    report.records_replayed += 1;
                    position += message.total_size as u64;
                }
                Slot::Blank => break None,
                Slot::Zero => break Some(None),
                Slot::Bad(reason) => break Some(Some(reason)),
            }
        };
        match reason {
            None => {
                position = segment.end();
                index += 1;
            }
            Some(reason) => {
                stop = Some(Stop { index, position, reason });
                break;
            }
        }
    }
    let state = match stop {
        None => {
            // Every segment ends with a filler: the next append creates a new one.
            report.end = position;
            RecoveredState {
                segments: segments.iter().map(|s| (s.start, s.clone())).collect(),
                end: position,
                active_start: position,
                active_end: position + options.segment_size_bytes,
                tail_block: Vec::new(),
            }
        }
        Some(stop) => finish_at(options, &segments, stop, &mut report).await?,
    };
    Ok((state, report))
}

fn empty_state(segment_size_bytes: u64) -> RecoveredState {
    RecoveredState {
        segments: BTreeMap::new(),
        end: 0,
        active_start: 0,
        active_end: segment_size_bytes,
        tail_block: Vec::new(),
    }
}

/// Applies the decision table at the stop position.
async fn finish_at(
    options: &RecoveryOptions<'_>,
    segments: &[Rc<Segment>],
    stop: Stop,
    report: &mut RecoveryReport,
) -> Result<RecoveredState, StoreError> {
    let log_id = options.log_id;
    let later = stop.index + 1 < segments.len();
    let trusted = options.clean && stop.reason.is_none() && !later;
    if !trusted {
        if let Some(valid) = find_valid_after(segments, stop.index, log_id, stop.position).await? {
            let what = stop.reason.unwrap_or_else(|| "zero-filled header".to_string());
            let reason = format!("{what}; a valid record or filler follows at {valid}");
            return Err(StoreError::Corrupt { log_id, position: stop.position, reason });
        }
    }
    let segment = segments.get(stop.index).cloned().ok_or_else(|| StoreError::Corrupt {
        log_id,
        position: stop.position,
        reason: "stop outside the segments".to_string(),
    })?;
    if !trusted {
        if let Some(reason) = &stop.reason {
            tracing::warn!(log_id, position = stop.position, %reason, "commit log: truncating torn tail");
        }
        segment.truncate_at(stop.position).await?;
        report.truncated_at = Some(stop.position);
    }
    for removed in segments.iter().skip(stop.index + 1) {
        let path = removed.path();
        tracing::warn!(log_id, path = %path.display(), "commit log: removing segment past the end");
        options.io.remove(path.clone()).await.map_err(|e| StoreError::io("remove", &path, &e))?;
        report.segments_removed += 1;
    }
    if report.segments_removed > 0 {
        let dir = options.dir;
        options
            .io
            .sync_dir(dir.to_path_buf())
            .await
            .map_err(|e| StoreError::io("sync_dir", dir, &e))?;
    }
    let head = align_down(stop.position);
    let tail_block = if head < stop.position {
        segment.read(head, (stop.position - head) as usize).await?.to_vec()
    } else {
        Vec::new()
    };
    report.end = stop.position;
    Ok(RecoveredState {
        segments: segments.iter().take(stop.index + 1).map(|s| (s.start, s.clone())).collect(),
        end: stop.position,
        active_start: segment.start,
        active_end: segment.end(),
        tail_block,
    })
}
