//! A fault-injecting [`Io`] for tests: wraps another `Io` (normally
//! [`DmaIo`](crate::io::DmaIo) on a real directory) and injects seeded, replayable faults
//! at the seam.
//!
//! Lives on: the shard running the test (`!Send`).
//!
//! Faults:
//! - **EIO on `fdatasync`**: from the n-th call on (`FaultConfig::fail_fdatasync_at`).
//! - **Short write**: the n-th write writes only its first half (`short_write_at`).
//! - **ENOSPC**: writes fail from the n-th on (`enospc_write_at`).
//! - **Power cut** ([`FaultyIo::power_cut`]): every write not yet covered by a successful
//!   `fdatasync` of its file is kept or lost as a power cut would: a seeded cut point in
//!   the sequence of unsynced 512-byte sectors; sectors before it persist, sectors after
//!   it revert to what the file held before the write. After the cut every operation
//!   fails with EIO (the machine is off), so the store under test stops like a crashed
//!   one. Then open a fresh store with production I/O on the same directory.
//!
//! The model persists unsynced sectors in write order: a drive that loses an earlier
//! sector of an unsynced write but keeps a later one makes recovery report `Corrupt`
//! (see `recovery.rs`), which is a refusal to open, not data loss; this injector does not
//! produce that case.
//!
//! ```text
//!  unsynced writes, oldest first:  [w1: s s s s][w2: s s][w3: s s s s s s]
//!  seeded cut after 5 sectors:      keep keep keep keep | keep | revert ........
//! ```

use std::cell::{Cell, RefCell};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::DmaBuffer;

use crate::io::{Io, IoFile, IoFuture, OpenMode};

/// Bytes a drive persists atomically.
pub const SECTOR_SIZE_BYTES: usize = 512;

/// Which faults to inject; counts are 1-based over the whole `FaultyIo`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultConfig {
    /// Seed for the power-cut cut point.
    pub seed: u64,
    /// `fdatasync` calls fail with EIO from this one on.
    pub fail_fdatasync_at: Option<u64>,
    /// This write writes only the first half of its blocks (a short write).
    pub short_write_at: Option<u64>,
    /// Writes fail with ENOSPC from this one on.
    pub enospc_write_at: Option<u64>,
}

/// What a power cut did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PowerCutReport {
    /// Unsynced sectors at the cut.
    pub unsynced_sectors: u64,
    /// Of them, sectors that persisted.
    pub kept_sectors: u64,
}

struct UnsyncedWrite {
    file: Rc<dyn IoFile>,
    path: PathBuf,
    pos: u64,
    old: Vec<u8>,
    new: Vec<u8>,
}

struct FaultState {
    config: FaultConfig,
    rng: Cell<u64>,
    writes: Cell<u64>,
    syncs: Cell<u64>,
    crashed: Cell<bool>,
    in_flight: Cell<u64>,
    unsynced: RefCell<Vec<UnsyncedWrite>>,
}

impl FaultState {
    /// splitmix64: small, seeded, replayable.
    fn next_random(&self) -> u64 {
        let mut z = self.rng.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.rng.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.crashed.get() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }
}

/// The fault-injecting `Io`.
#[derive(Clone)]
pub struct FaultyIo {
    inner: Rc<dyn Io>,
    state: Rc<FaultState>,
}

impl FaultyIo {
    /// Wraps `inner` with the faults in `config`.
    pub fn new(inner: Rc<dyn Io>, config: FaultConfig) -> FaultyIo {
        let state = FaultState {
            config,
            rng: Cell::new(config.seed),
            writes: Cell::new(0),
            syncs: Cell::new(0),
            crashed: Cell::new(false),
            in_flight: Cell::new(0),
            unsynced: RefCell::new(Vec::new()),
        };
        FaultyIo { inner, state: Rc::new(state) }
    }

    /// Cuts the power: from now on every operation fails with EIO; writes not covered by
    /// an `fdatasync` keep a seeded prefix of their sectors and lose the rest.
    ///
    /// # Errors
    /// When restoring the lost sectors through the inner `Io` fails.
    pub async fn power_cut(&self) -> io::Result<PowerCutReport> {
        self.state.crashed.set(true);
        // Let writes already submitted land, so that they can be reverted too.
        for _ in 0..10_000 {
            if self.state.in_flight.get() == 0 {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_micros(100)).await;
        }
        let writes = std::mem::take(&mut *self.state.unsynced.borrow_mut());
        let sectors: Vec<u64> =
            writes.iter().map(|w| (w.new.len() / SECTOR_SIZE_BYTES) as u64).collect();
        let total: u64 = sectors.iter().sum();
        let cut = if total == 0 { 0 } else { self.state.next_random() % (total + 1) };
        // Revert newest first, so each write's "old" bytes (which include the effect of
        // the writes before it) are what remains.
        let mut before = total;
        for (write, count) in writes.iter().zip(&sectors).rev() {
            before -= count;
            let keep = cut.saturating_sub(before).min(*count) as usize;
            if keep as u64 == *count {
                continue;
            }
            let mut content = write.new.clone();
            let from = keep * SECTOR_SIZE_BYTES;
            content[from..].copy_from_slice(&write.old[from..]);
            revert(write, content).await?;
        }
        Ok(PowerCutReport { unsynced_sectors: total, kept_sectors: cut })
    }

    /// `fdatasync` calls so far.
    pub fn fdatasyncs(&self) -> u64 {
        self.state.syncs.get()
    }
}

/// Writes `content` over a reverted write, in whole blocks, durably.
async fn revert(write: &UnsyncedWrite, content: Vec<u8>) -> io::Result<()> {
    let mut buf = write.file.alloc_buffer(content.len());
    buf.as_bytes_mut().copy_from_slice(&content);
    let written = write.file.write_at(buf, write.pos).await?;
    if written != content.len() {
        let message = format!("revert of {} short", write.path.display());
        return Err(io::Error::other(message));
    }
    write.file.fdatasync().await
}

struct FaultyFile {
    inner: Rc<dyn IoFile>,
    state: Rc<FaultState>,
}

impl Io for FaultyIo {
    fn open(&self, path: PathBuf, mode: OpenMode) -> IoFuture<'_, Rc<dyn IoFile>> {
        Box::pin(async move {
            self.state.check_alive()?;
            let inner = self.inner.open(path, mode).await?;
            Ok(Rc::new(FaultyFile { inner, state: self.state.clone() }) as Rc<dyn IoFile>)
        })
    }
    fn list_dir(&self, path: PathBuf) -> IoFuture<'_, Vec<String>> {
        self.inner.list_dir(path)
    }
    fn create_dir_all(&self, path: PathBuf) -> IoFuture<'_, ()> {
        Box::pin(async move {
            self.state.check_alive()?;
            self.inner.create_dir_all(path).await
        })
    }
    fn sync_dir(&self, path: PathBuf) -> IoFuture<'_, ()> {
        Box::pin(async move {
            self.state.check_alive()?;
            self.inner.sync_dir(path).await
        })
    }
    fn rename(&self, source: PathBuf, target: PathBuf) -> IoFuture<'_, ()> {
        Box::pin(async move {
            self.state.check_alive()?;
            self.inner.rename(source, target).await
        })
    }
    fn remove(&self, path: PathBuf) -> IoFuture<'_, ()> {
        Box::pin(async move {
            self.state.check_alive()?;
            self.inner.remove(path).await
        })
    }
    fn exists(&self, path: PathBuf) -> IoFuture<'_, bool> {
        self.inner.exists(path)
    }
    fn modified_ms(&self, path: PathBuf) -> IoFuture<'_, i64> {
        self.inner.modified_ms(path)
    }
}

impl FaultyFile {
    async fn write_tracked(&self, buf: DmaBuffer, pos: u64) -> io::Result<usize> {
        let state = &self.state;
        state.check_alive()?;
        let index = state.writes.get() + 1;
        state.writes.set(index);
        if state.config.enospc_write_at.is_some_and(|at| index >= at) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let len = buf.len();
        let old_read = self.inner.read_at(pos, len).await?;
        let mut old = old_read.to_vec();
        old.resize(len, 0);
        let mut new = buf.as_bytes().to_vec();
        let written = if state.config.short_write_at == Some(index) {
            let half = (len / 2) & !(crate::config::BLOCK_SIZE_BYTES as usize - 1);
            let mut short = self.inner.alloc_buffer(half);
            short.as_bytes_mut().copy_from_slice(&new[..half]);
            new.truncate(half);
            old.truncate(half);
            self.inner.write_at(short, pos).await?
        } else {
            self.inner.write_at(buf, pos).await?
        };
        let path = self.inner.path();
        state.unsynced.borrow_mut().push(UnsyncedWrite {
            file: self.inner.clone(),
            path,
            pos,
            old,
            new,
        });
        Ok(written)
    }
}

impl IoFile for FaultyFile {
    fn alloc_buffer(&self, size: usize) -> DmaBuffer {
        self.inner.alloc_buffer(size)
    }
    fn read_at(&self, pos: u64, size: usize) -> IoFuture<'_, Bytes> {
        Box::pin(async move {
            self.state.check_alive()?;
            self.inner.read_at(pos, size).await
        })
    }
    fn write_at(&self, buf: DmaBuffer, pos: u64) -> IoFuture<'_, usize> {
        Box::pin(async move {
            let state = &self.state;
            state.in_flight.set(state.in_flight.get() + 1);
            let result = self.write_tracked(buf, pos).await;
            state.in_flight.set(state.in_flight.get() - 1);
            result
        })
    }
    fn fdatasync(&self) -> IoFuture<'_, ()> {
        Box::pin(async move {
            let state = &self.state;
            state.check_alive()?;
            let index = state.syncs.get() + 1;
            state.syncs.set(index);
            if state.config.fail_fdatasync_at.is_some_and(|at| index >= at) {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            self.inner.fdatasync().await?;
            // A power cut during the call: the sync did not happen.
            state.check_alive()?;
            let path = self.inner.path();
            state.unsynced.borrow_mut().retain(|write| write.path != path);
            Ok(())
        })
    }
    fn allocate(&self, size: u64) -> IoFuture<'_, ()> {
        Box::pin(async move {
            self.state.check_alive()?;
            self.inner.allocate(size).await
        })
    }
    fn truncate(&self, size: u64) -> IoFuture<'_, ()> {
        Box::pin(async move {
            self.state.check_alive()?;
            self.inner.truncate(size).await
        })
    }
    fn size(&self) -> IoFuture<'_, u64> {
        self.inner.size()
    }
    fn path(&self) -> PathBuf {
        self.inner.path()
    }
}
