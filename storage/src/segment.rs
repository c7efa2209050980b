//! A commit-log segment: one pre-allocated, direct-I/O file holding a contiguous range of a
//! log's byte stream.
//!
//! Lives on: the owner shard of its log.
//!
//! Files: `{root}/commitlog/{log_id:03}/{start:020}`, `start` being the log position (not
//! the global offset) of the segment's first byte, as RocketMQ names its files.
//!
//! ```text
//! segment file (capacity bytes, fallocated: unwritten blocks read as zero)
//! ┌──────────┬──────────┬─────┬──────────┬───────────────┬──────────────────────────┐
//! │ record 0 │ record 1 │ ... │ record n │ BLANK (8 B)   │ zeros (never written)    │
//! └──────────┴──────────┴─────┴──────────┴───────────────┴──────────────────────────┘
//!                                          i32 remaining,
//!                                          i32 BLANK_MAGIC
//! ```
//!
//! A record never straddles segments: when a batch plus 8 bytes does not fit in what is
//! left, the log writes the 8-byte blank filler (remaining bytes, `BLANK_MAGIC`) and rolls
//! to a new segment starting at `start + capacity`, as RocketMQ's `END_FILE_MIN_BLANK_LENGTH`
//! rule does. So after any record at least 8 bytes remain for a filler.
//!
//! Alignment: every read and write covers whole `BLOCK_SIZE_BYTES` blocks. Reading
//! 100 bytes at position 5000 reads block [4096, 8192) and slices bytes 904..1004 of it;
//! a record ending at 10_000 is written as blocks up to `align_up(10_000)` = 12_288, the
//! last 2_288 bytes being zeros that the next write rewrites.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use crate::config::BLOCK_SIZE_BYTES;
use crate::error::StoreError;
use crate::io::{Io, IoFile, OpenMode};

/// Rounds down to a block boundary.
pub(crate) fn align_down(value: u64) -> u64 {
    value & !(BLOCK_SIZE_BYTES - 1)
}

/// Rounds up to a block boundary.
pub(crate) fn align_up(value: u64) -> u64 {
    align_down(value + BLOCK_SIZE_BYTES - 1)
}

/// The file name of a segment or consume-queue file starting at `start`.
pub(crate) fn file_name(start: u64) -> String {
    format!("{start:020}")
}

/// Parses a 20-digit file name; anything else is not ours.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The starts of the segments in a log directory, sorted (files with other names are
/// not ours and are ignored).
pub(crate) async fn segment_starts(io: &dyn Io, dir: &Path) -> Result<Vec<u64>, StoreError> {
    let names =
        io.list_dir(dir.to_path_buf()).await.map_err(|e| StoreError::io("list", dir, &e))?;
    let mut starts: Vec<u64> = names.iter().filter_map(|name| parse_file_name(name)).collect();
    starts.sort_unstable();
    Ok(starts)
}

/// One open segment.
pub(crate) struct Segment {
    /// Log position of byte 0 of the file.
    pub(crate) start: u64,
    /// Bytes the segment holds; the next segment starts at `start + capacity`.
    pub(crate) capacity: u64,
    pub(crate) file: Rc<dyn IoFile>,
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |error| StoreError::io(op, path, &error)
}

impl Segment {
    /// Creates the file, allocates `capacity` bytes, and makes the new directory entry
    /// durable (`fsync` of the log directory).
    pub(crate) async fn create(
        io: &dyn Io,
        dir: &Path,
        start: u64,
        capacity: u64,
    ) -> Result<Segment, StoreError> {
        let path = dir.join(file_name(start));
        let file =
            io.open(path.clone(), OpenMode::Create).await.map_err(io_error("open", &path))?;
        file.allocate(capacity).await.map_err(io_error("allocate", &path))?;
        file.fdatasync().await.map_err(io_error("fdatasync", &path))?;
        io.sync_dir(dir.to_path_buf()).await.map_err(io_error("sync_dir", dir))?;
        Ok(Segment { start, capacity, file })
    }

    /// Opens an existing segment. A file shorter than `capacity` (a crash while it was
    /// being created) is allocated up to it; a longer one keeps its length.
    pub(crate) async fn open(
        io: &dyn Io,
        dir: &Path,
        start: u64,
        capacity: u64,
    ) -> Result<Segment, StoreError> {
        let path = dir.join(file_name(start));
        let file =
            io.open(path.clone(), OpenMode::Existing).await.map_err(io_error("open", &path))?;
        let size = file.size().await.map_err(io_error("size", &path))?;
        let capacity = if size < capacity {
            file.allocate(capacity).await.map_err(io_error("allocate", &path))?;
            capacity
        } else {
            align_down(size)
        };
        Ok(Segment { start, capacity, file })
    }

    pub(crate) fn end(&self) -> u64 {
        self.start + self.capacity
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.file.path()
    }

    /// Reads `len` bytes at log position `position` (which must lie in this segment).
    pub(crate) async fn read(&self, position: u64, len: usize) -> Result<Bytes, StoreError> {
        assert!(position >= self.start && position + len as u64 <= self.end());
        let offset = position - self.start;
        let first = align_down(offset);
        let last = align_up(offset + len as u64);
        let path = self.path();
        let block = self
            .file
            .read_at(first, (last - first) as usize)
            .await
            .map_err(io_error("read", &path))?;
        let skip = (offset - first) as usize;
        if block.len() < skip + len {
            return Err(StoreError::Io {
                op: "read",
                path,
                errno: 0,
                message: format!("short read: {} of {} bytes", block.len(), last - first),
            });
        }
        Ok(block.slice(skip..skip + len))
    }

    /// Writes whole blocks at byte `offset` of the file.
    pub(crate) async fn write_blocks(
        &self,
        buf: glommio::io::DmaBuffer,
        offset: u64,
    ) -> Result<(), StoreError> {
        let len = buf.len();
        assert!(offset % BLOCK_SIZE_BYTES == 0 && len as u64 % BLOCK_SIZE_BYTES == 0);
        assert!(offset + len as u64 <= self.capacity, "write past the segment end");
        let path = self.path();
        let written = self.file.write_at(buf, offset).await.map_err(io_error("write", &path))?;
        if written != len {
            let message = format!("short write: {written} of {len} bytes at {offset}");
            return Err(StoreError::Io { op: "write", path, errno: 0, message });
        }
        Ok(())
    }

    pub(crate) async fn fdatasync(&self) -> Result<(), StoreError> {
        let path = self.path();
        self.file.fdatasync().await.map_err(io_error("fdatasync", &path))
    }

    /// Drops everything from log position `position` on: the bytes read as zero again and
    /// the blocks stay allocated. Durable on return.
    pub(crate) async fn truncate_at(&self, position: u64) -> Result<(), StoreError> {
        assert!(position >= self.start && position <= self.end());
        let path = self.path();
        self.file.truncate(position - self.start).await.map_err(io_error("truncate", &path))?;
        self.file.allocate(self.capacity).await.map_err(io_error("allocate", &path))?;
        self.fdatasync().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_twenty_digits() {
        assert_eq!(file_name(1 << 30), "00000000001073741824");
        assert_eq!(parse_file_name("00000000001073741824"), Some(1 << 30));
        assert_eq!(parse_file_name("0000000000107374182"), None);
        assert_eq!(parse_file_name("0000000000107374182x"), None);
        assert_eq!(parse_file_name("checkpoint"), None);
    }

    #[test]
    fn alignment_arithmetic() {
        assert_eq!(align_down(5000), 4096);
        assert_eq!(align_up(5000), 8192);
        assert_eq!(align_up(8192), 8192);
        assert_eq!(align_down(0), 0);
    }
}
