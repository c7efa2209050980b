//! Reloading `plain_acl.yml` when it changes, without a restart.
//!
//! The reloader is polled (the broker calls [`AclReloader::poll`] from a timer, once a
//! second is plenty). It compares the file's modification time and size with the last
//! look; on a change it parses the file and, when the file is good, publishes a new
//! immutable [`AclConfig`]. A bad or missing file keeps the last good configuration and
//! logs the reason once per change of the file.
//!
//! Lives on: whichever shard polls it; it hands out `Arc<AclConfig>` snapshots that any
//! shard may hold (read-only; replaced, never mutated).
//!
//! The reference (`srvutil/AclFileWatchService`) polls every 5 s (`WATCH_INTERVAL`) and
//! compares `File.lastModified()`; ramjet also compares the size, so a same-second rewrite
//! of a different length is seen. A same-size rewrite within the file system's timestamp
//! granularity is the blind spot of both.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::config::{self, AclConfig, ConfigError};

/// What the reloader compares between two looks at the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Last modification time, when the file system reports one.
    pub modified: Option<SystemTime>,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// Where the reloader reads the file from: the real file system, or a test double.
pub trait FileSource {
    /// The file's current stamp.
    ///
    /// # Errors
    /// The OS error (for example, the file was removed).
    fn stamp(&self, path: &Path) -> io::Result<FileStamp>;
    /// The file's contents.
    ///
    /// # Errors
    /// The OS error.
    fn read(&self, path: &Path) -> io::Result<String>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fs;

impl FileSource for Fs {
    fn stamp(&self, path: &Path) -> io::Result<FileStamp> {
        let meta = std::fs::metadata(path)?;
        Ok(FileStamp { modified: meta.modified().ok(), size_bytes: meta.len() })
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// What one [`AclReloader::poll`] did.
#[derive(Debug)]
pub enum Reload {
    /// The file is as last seen.
    Unchanged,
    /// The file changed and is good: the new configuration is current.
    Reloaded,
    /// The file changed (or vanished) and cannot be used: the last good configuration
    /// stays current. Reported once per change.
    KeptLastGood(ConfigError),
}

/// Holds the current configuration and the stamp of the file it came from. A clone
/// watches the same file on its own (the broker's embedded NameServer polls its own).
#[derive(Debug, Clone)]
pub struct AclReloader {
    path: PathBuf,
    /// The stamp last looked at, good or bad; `None` after the file vanished.
    seen: Option<FileStamp>,
    current: Arc<AclConfig>,
}

impl AclReloader {
    /// Loads the file at start.
    ///
    /// # Errors
    /// A missing or bad file is an error at start (the broker refuses to run).
    pub fn open(path: PathBuf, source: &impl FileSource) -> Result<AclReloader, ConfigError> {
        let io_error = |error| ConfigError::Io { path: path.clone(), error };
        let stamp = source.stamp(&path).map_err(io_error)?;
        let text = source.read(&path).map_err(io_error)?;
        let current = Arc::new(config::parse(&text)?);
        Ok(AclReloader { path, seen: Some(stamp), current })
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<AclConfig> {
        Arc::clone(&self.current)
    }

    /// The file this reloader watches.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks at the file once; reloads it when its stamp changed.
    pub fn poll(&mut self, source: &impl FileSource) -> Reload {
        let outcome = self.poll_quiet(source);
        match &outcome {
            Reload::Reloaded => tracing::info!(path = %self.path.display(), "ACL file reloaded"),
            Reload::KeptLastGood(e) => tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "ACL file not reloaded; keeping the last good one"
            ),
            Reload::Unchanged => {}
        }
        outcome
    }

    fn poll_quiet(&mut self, source: &impl FileSource) -> Reload {
        let io_error = |error| ConfigError::Io { path: self.path.clone(), error };
        let stamp = match source.stamp(&self.path) {
            Ok(stamp) => stamp,
            Err(error) => {
                // Vanished: report once, then stay quiet until it is back.
                return match self.seen.take() {
                    Some(_) => Reload::KeptLastGood(io_error(error)),
                    None => Reload::Unchanged,
                };
            }
        };
        if self.seen == Some(stamp) {
            return Reload::Unchanged;
        }
        self.seen = Some(stamp);
        let parsed = source.read(&self.path).map_err(io_error).and_then(|t| config::parse(&t));
        match parsed {
            Ok(config) => {
                self.current = Arc::new(config);
                Reload::Reloaded
            }
            Err(e) => Reload::KeptLastGood(e),
        }
    }
}

#[cfg(test)]
mod tests;
