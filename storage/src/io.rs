//! The I/O seam: every file operation the store performs goes through [`Io`] (the file
//! namespace) and the [`IoFile`] handles it opens.
//!
//! Lives on: the owner shard of a log (`!Send`; futures are `Rc`-friendly boxed futures).
//!
//! ```text
//!   LogStore ─┬─ CommitLog ── Segment ──┐
//!             ├─ ConsumeQueue files ────┼──► Rc<dyn Io> ──► DmaIo   (glommio DmaFile, O_DIRECT)
//!             └─ Checkpoint, markers ───┘                └─► FaultyIo (tests: faults injected)
//! ```
//!
//! Production is [`DmaIo`]: glommio `DmaFile`s opened with O_DIRECT (glommio turns direct
//! I/O off only on tmpfs). Writes and reads are block-aligned by the callers
//! (`BLOCK_SIZE_BYTES`); buffers come from [`IoFile::alloc_buffer`] so that they are
//! aligned for direct I/O. Test code substitutes a fault-injecting implementation
//! (`fault_io.rs`), as TigerBeetle's simulator substitutes its storage.
//!
//! Errors are plain `io::Error`; callers turn them into `StoreError::Io` with the path.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

/// A boxed, `!Send` I/O future.
pub type IoFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + 'a>>;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read and write an existing file; fails when it is missing.
    Existing,
    /// Read and write, creating the file when it is missing.
    Create,
}

/// The file namespace: open, list, rename, remove, create and sync directories.
pub trait Io {
    /// Opens `path` for direct I/O.
    fn open(&self, path: PathBuf, mode: OpenMode) -> IoFuture<'_, Rc<dyn IoFile>>;
    /// Names of the entries of a directory (not `.`/`..`), unsorted. A missing directory
    /// gives an empty list.
    fn list_dir(&self, path: PathBuf) -> IoFuture<'_, Vec<String>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: PathBuf) -> IoFuture<'_, ()>;
    /// `fsync`s a directory so that entries created, renamed or removed in it are durable.
    fn sync_dir(&self, path: PathBuf) -> IoFuture<'_, ()>;
    /// Renames a file, replacing `target`.
    fn rename(&self, source: PathBuf, target: PathBuf) -> IoFuture<'_, ()>;
    /// Removes a file; a missing file is not an error.
    fn remove(&self, path: PathBuf) -> IoFuture<'_, ()>;
    /// Whether a file exists.
    fn exists(&self, path: PathBuf) -> IoFuture<'_, bool>;
    /// A file's last modification time, ms since the Unix epoch (retention's fallback age
    /// of a segment whose last store time is not known in memory).
    fn modified_ms(&self, path: PathBuf) -> IoFuture<'_, i64>;
}

/// An open file. Positions and lengths of `read_at` and `write_at` are multiples of the
/// block size (callers align them).
pub trait IoFile {
    /// A zeroed buffer of `size` bytes aligned for direct I/O on this file.
    fn alloc_buffer(&self, size: usize) -> DmaBuffer;
    /// Reads up to `size` bytes at `pos`; shorter only at the end of the file.
    fn read_at(&self, pos: u64, size: usize) -> IoFuture<'_, Bytes>;
    /// Writes `buf` at `pos`; returns the bytes written (less than `buf.len()` is a short
    /// write, which the caller treats as an error).
    fn write_at(&self, buf: DmaBuffer, pos: u64) -> IoFuture<'_, usize>;
    /// `fdatasync`: data written so far survives a power cut.
    fn fdatasync(&self) -> IoFuture<'_, ()>;
    /// Allocates blocks so the file is at least `size` bytes; new bytes read as zero.
    fn allocate(&self, size: u64) -> IoFuture<'_, ()>;
    /// Sets the file's length to `size` (bytes past it are gone).
    fn truncate(&self, size: u64) -> IoFuture<'_, ()>;
    /// The file's length.
    fn size(&self) -> IoFuture<'_, u64>;
    /// The file's path, for error messages.
    fn path(&self) -> PathBuf;
}

/// Production I/O: glommio `DmaFile` (O_DIRECT) on the current executor.
///
/// Directory listing and creation use `std::fs`: they happen at open time only, on small
/// directories, and glommio has no asynchronous `readdir`.
#[derive(Debug, Default, Clone, Copy)]
pub struct DmaIo;

impl DmaIo {
    /// Works around glommio 0.9's poll-ring probe, which runs once per thread and device,
    /// on the first `DmaFile` opened there: it reads block 0 and, if that succeeds, sends
    /// every later read and write of the device to the IOPOLL ring. A read at offset 0 of
    /// an *empty* file succeeds without touching the device, so when the first file opened
    /// is a fresh one (a new segment, the abort marker) the probe wrongly says "pollable",
    /// and later reads fail with EOPNOTSUPP on devices without poll queues (virtio here).
    /// Opening a non-empty file first makes the probe honest. `path` must be non-empty
    /// (the store's `store.meta`).
    ///
    /// # Errors
    /// When `path` cannot be opened.
    pub async fn probe_device(path: &std::path::Path) -> io::Result<()> {
        let file = DmaFile::open(path).await.map_err(to_io)?;
        file.close().await.map_err(to_io)
    }
}

struct DmaIoFile {
    file: DmaFile,
    path: PathBuf,
}

fn to_io(error: glommio::GlommioError<()>) -> io::Error {
    io::Error::from(error)
}

impl Io for DmaIo {
    fn open(&self, path: PathBuf, mode: OpenMode) -> IoFuture<'_, Rc<dyn IoFile>> {
        Box::pin(async move {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(mode == OpenMode::Create)
                .dma_open(&path)
                .await
                .map_err(to_io)?;
            Ok(Rc::new(DmaIoFile { file, path }) as Rc<dyn IoFile>)
        })
    }

    fn list_dir(&self, path: PathBuf) -> IoFuture<'_, Vec<String>> {
        Box::pin(async move {
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(error) => return Err(error),
            };
            let mut names = Vec::new();
            for entry in entries {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
            Ok(names)
        })
    }

    fn create_dir_all(&self, path: PathBuf) -> IoFuture<'_, ()> {
        Box::pin(async move { std::fs::create_dir_all(&path) })
    }

    fn sync_dir(&self, path: PathBuf) -> IoFuture<'_, ()> {
        Box::pin(async move {
            // glommio opens directories with `openat(-1, path)`, which fails with EBADF for
            // a relative path (it would need AT_FDCWD), so resolve against the working
            // directory first.
            let path = std::path::absolute(&path)?;
            let dir = glommio::io::Directory::open(&path).await.map_err(to_io)?;
            dir.sync().await.map_err(to_io)?;
            dir.close().await.map_err(to_io)
        })
    }

    fn rename(&self, source: PathBuf, target: PathBuf) -> IoFuture<'_, ()> {
        Box::pin(async move { glommio::io::rename(&source, &target).await.map_err(to_io) })
    }

    fn remove(&self, path: PathBuf) -> IoFuture<'_, ()> {
        Box::pin(async move {
            match glommio::io::remove(&path).await.map_err(to_io) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        })
    }

    fn exists(&self, path: PathBuf) -> IoFuture<'_, bool> {
        Box::pin(async move { Ok(path.exists()) })
    }

    fn modified_ms(&self, path: PathBuf) -> IoFuture<'_, i64> {
        Box::pin(async move {
            let modified = std::fs::metadata(&path)?.modified()?;
            let since_epoch = modified.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            Ok(since_epoch.as_millis() as i64)
        })
    }
}

impl IoFile for DmaIoFile {
    fn alloc_buffer(&self, size: usize) -> DmaBuffer {
        let mut buf = self.file.alloc_dma_buffer(size);
        buf.as_bytes_mut().fill(0);
        buf
    }

    fn read_at(&self, pos: u64, size: usize) -> IoFuture<'_, Bytes> {
        Box::pin(async move {
            let read = self.file.read_at_aligned(pos, size).await.map_err(to_io)?;
            // Cold path: one copy out of the DMA buffer so the result can outlive it.
            Ok(Bytes::copy_from_slice(&read))
        })
    }

    fn write_at(&self, buf: DmaBuffer, pos: u64) -> IoFuture<'_, usize> {
        Box::pin(async move { self.file.write_at(buf, pos).await.map_err(to_io) })
    }

    fn fdatasync(&self) -> IoFuture<'_, ()> {
        Box::pin(async move { self.file.fdatasync().await.map_err(to_io) })
    }

    fn allocate(&self, size: u64) -> IoFuture<'_, ()> {
        Box::pin(async move { self.file.pre_allocate(size, false).await.map_err(to_io) })
    }

    fn truncate(&self, size: u64) -> IoFuture<'_, ()> {
        Box::pin(async move { self.file.truncate(size).await.map_err(to_io) })
    }

    fn size(&self) -> IoFuture<'_, u64> {
        Box::pin(async move { self.file.file_size().await.map_err(to_io) })
    }

    fn path(&self) -> PathBuf {
        self.path.clone()
    }
}
