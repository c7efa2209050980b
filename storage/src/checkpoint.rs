//! The per-log checkpoint: how far the log is known durable *and* its consume queues are
//! persisted, so recovery replays only the log after it.
//!
//! Lives on: the owner shard of its log.
//!
//! File `{root}/commitlog/{log_id:03}.checkpoint`, two 4 KiB slots written alternately
//! (slot = sequence % 2), so a torn checkpoint write leaves the other slot intact:
//!
//! ```text
//! slot (first 52 bytes of a 4096-byte block; the rest zero), big-endian
//! off size field
//!   0    4 magic            "RJCK"
//!   4    4 version          2 (version 1 lacks index_end and has its CRC at 40)
//!   8    8 sequence         u64, +1 per write; the valid slot with the highest wins
//!  16    8 position         u64 log position P
//!  24    8 entry_count      u64 sum over this log's queues of the queue offset of the
//!                           first entry for a record at or after P (their max offsets)
//!  32    8 written_at_ms    i64 wall clock when written (for operators)
//!  40    8 index_end        u64 end E of the index runs (index.rs): records in [E, P)
//!                           carry no index keys
//!  48    4 crc32c           over bytes 0..48
//! ```
//!
//! Invariant (asserted where it is written): every record before `P` is `fdatasync`ed in
//! the log, and its consume-queue entry is `fdatasync`ed in the queue's files. `P` is a
//! record boundary. No valid slot means `P = 0`: recovery rebuilds every consume queue.
//! `entry_count` lets open check the consume-queue files it loads: a different total means
//! files were lost or damaged, and the queues are rebuilt from the log's start.

use std::path::Path;

use zerocopy::byteorder::big_endian::{I64, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::config::BLOCK_SIZE_BYTES;
use crate::error::StoreError;
use crate::io::{Io, OpenMode};

const CHECKPOINT_MAGIC: [u8; 4] = *b"RJCK";
const CHECKPOINT_VERSION: u32 = 2;
const CHECKPOINT_VERSION_1: u32 = 1;
const SLOT_COUNT: u64 = 2;

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct CheckpointSlot {
    magic: [u8; 4],
    version: U32,
    sequence: U64,
    position: U64,
    entry_count: U64,
    written_at_ms: I64,
    index_end: U64,
    crc32c: U32,
}

const _: () = assert!(std::mem::size_of::<CheckpointSlot>() == 52);
const SLOT_CRC_COVERED_BYTES: usize = 48;
/// Version 1 slots end with the CRC at byte 40 (no `index_end`).
const SLOT_V1_CRC_COVERED_BYTES: usize = 40;

/// A decoded checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Checkpoint {
    pub(crate) sequence: u64,
    pub(crate) position: u64,
    pub(crate) entry_count: u64,
    pub(crate) written_at_ms: i64,
    /// End of the index runs; `u64::MAX` when unknown (a version-1 checkpoint): the index
    /// is then rebuilt from the log.
    pub(crate) index_end: u64,
}

fn encode_slot(checkpoint: &Checkpoint) -> CheckpointSlot {
    let mut slot = CheckpointSlot {
        magic: CHECKPOINT_MAGIC,
        version: U32::new(CHECKPOINT_VERSION),
        sequence: U64::new(checkpoint.sequence),
        position: U64::new(checkpoint.position),
        entry_count: U64::new(checkpoint.entry_count),
        written_at_ms: I64::new(checkpoint.written_at_ms),
        index_end: U64::new(checkpoint.index_end),
        crc32c: U32::new(0),
    };
    let crc = crc32c::crc32c(slot.as_bytes().get(..SLOT_CRC_COVERED_BYTES).unwrap_or_default());
    slot.crc32c = U32::new(crc);
    slot
}

/// Decodes one slot; `None` unless magic, version and CRC all check.
fn decode_slot(bytes: &[u8]) -> Option<Checkpoint> {
    if bytes.get(..4)? != CHECKPOINT_MAGIC {
        return None;
    }
    let version = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?);
    let covered = match version {
        CHECKPOINT_VERSION => SLOT_CRC_COVERED_BYTES,
        CHECKPOINT_VERSION_1 => SLOT_V1_CRC_COVERED_BYTES,
        _ => return None,
    };
    let stored = u32::from_be_bytes(bytes.get(covered..covered + 4)?.try_into().ok()?);
    if stored != crc32c::crc32c(bytes.get(..covered)?) {
        return None;
    }
    let field = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    Some(Checkpoint {
        sequence: field(8)?,
        position: field(16)?,
        entry_count: field(24)?,
        written_at_ms: field(32)? as i64,
        index_end: if version == CHECKPOINT_VERSION { field(40)? } else { u64::MAX },
    })
}

/// Reads the newest valid slot; `None` when the file is missing or no slot is valid.
pub(crate) async fn read_checkpoint(
    io: &dyn Io,
    path: &Path,
) -> Result<Option<Checkpoint>, StoreError> {
    if !io.exists(path.to_path_buf()).await.map_err(|e| StoreError::io("stat", path, &e))? {
        return Ok(None);
    }
    let file = io
        .open(path.to_path_buf(), OpenMode::Existing)
        .await
        .map_err(|e| StoreError::io("open", path, &e))?;
    let bytes = file
        .read_at(0, (SLOT_COUNT * BLOCK_SIZE_BYTES) as usize)
        .await
        .map_err(|e| StoreError::io("read", path, &e))?;
    let newest = (0..SLOT_COUNT)
        .filter_map(|slot| bytes.get((slot * BLOCK_SIZE_BYTES) as usize..).and_then(decode_slot))
        .max_by_key(|checkpoint| checkpoint.sequence);
    Ok(newest)
}

/// Writes `checkpoint` into slot `sequence % 2` and `fdatasync`s it.
pub(crate) async fn write_checkpoint(
    io: &dyn Io,
    path: &Path,
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    let file = io
        .open(path.to_path_buf(), OpenMode::Create)
        .await
        .map_err(|e| StoreError::io("open", path, &e))?;
    let size = file.size().await.map_err(|e| StoreError::io("size", path, &e))?;
    if size < SLOT_COUNT * BLOCK_SIZE_BYTES {
        file.allocate(SLOT_COUNT * BLOCK_SIZE_BYTES)
            .await
            .map_err(|e| StoreError::io("allocate", path, &e))?;
        file.fdatasync().await.map_err(|e| StoreError::io("fdatasync", path, &e))?;
        if let Some(dir) = path.parent() {
            io.sync_dir(dir.to_path_buf())
                .await
                .map_err(|e| StoreError::io("sync_dir", dir, &e))?;
        }
    }
    let mut buf = file.alloc_buffer(BLOCK_SIZE_BYTES as usize);
    let slot = encode_slot(checkpoint);
    buf.as_bytes_mut()[..std::mem::size_of::<CheckpointSlot>()].copy_from_slice(slot.as_bytes());
    let at = (checkpoint.sequence % SLOT_COUNT) * BLOCK_SIZE_BYTES;
    let written = file.write_at(buf, at).await.map_err(|e| StoreError::io("write", path, &e))?;
    if written != BLOCK_SIZE_BYTES as usize {
        let message = format!("short write: {written} bytes");
        return Err(StoreError::Io { op: "write", path: path.to_path_buf(), errno: 0, message });
    }
    file.fdatasync().await.map_err(|e| StoreError::io("fdatasync", path, &e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trips_and_any_flip_is_rejected() {
        let checkpoint = Checkpoint {
            sequence: 9,
            position: 1 << 40,
            entry_count: 77,
            written_at_ms: 1234,
            index_end: 1 << 39,
        };
        let slot = encode_slot(&checkpoint);
        assert_eq!(decode_slot(slot.as_bytes()), Some(checkpoint));
        for index in 0..slot.as_bytes().len() {
            for bit in 0..8 {
                let mut bytes = slot.as_bytes().to_vec();
                bytes[index] ^= 1 << bit;
                assert_eq!(decode_slot(&bytes), None, "flip at byte {index} bit {bit}");
            }
        }
        assert_eq!(decode_slot(&[0u8; 52]), None);
        assert_eq!(decode_slot(&slot.as_bytes()[..51]), None);
    }

    #[test]
    fn version_1_slots_still_decode_with_an_unknown_index_end() {
        let mut bytes = vec![0u8; 44];
        bytes[..4].copy_from_slice(b"RJCK");
        bytes[4..8].copy_from_slice(&1u32.to_be_bytes());
        bytes[8..16].copy_from_slice(&3u64.to_be_bytes());
        bytes[16..24].copy_from_slice(&4096u64.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[..40]);
        bytes[40..44].copy_from_slice(&crc.to_be_bytes());
        let checkpoint = decode_slot(&bytes).unwrap();
        assert_eq!((checkpoint.sequence, checkpoint.position), (3, 4096));
        assert_eq!(checkpoint.index_end, u64::MAX);
    }
}
