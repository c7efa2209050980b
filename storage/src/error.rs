//! The storage error type: every operating error a log can report, with the numbers a log
//! line needs.
//!
//! Lives on: every shard (a plain value).
//!
//! Operating errors (disk full, I/O failure, a full pending region, a corrupt log found at
//! open) come back as [`StoreError`]. Broken invariants are `assert!`s and crash the
//! process. `StoreError` is `Clone` so that one failed `fdatasync` can be reported to every
//! append that was waiting on it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything a storage call can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A file operation failed.
    Io {
        /// The operation (`"open"`, `"write"`, `"fdatasync"`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error number, 0 when there is none (a short write, an executor error).
        errno: i32,
        /// The error as text.
        message: String,
    },
    /// An earlier `fdatasync` (or write) failed: the log's durable state is unknown, so it
    /// refuses every further append. Never retried (see `LogStore::poison_reason`).
    Poisoned,
    /// A record or batch is larger than a record, a batch or a segment may be.
    MessageTooLarge,
    /// The log's pending (appended but not yet written) bytes would pass
    /// `PENDING_BYTES_MAX`; the producer should back off (RocketMQ `SYSTEM_BUSY`).
    Busy {
        /// Bytes pending now.
        pending_bytes: u64,
        /// The limit.
        pending_bytes_max: u64,
    },
    /// The batch is malformed: a record length that does not chain, a tags-code count that
    /// does not match, a queue id that differs from the batch's.
    InvalidBatch {
        /// What is wrong.
        reason: &'static str,
    },
    /// A topic name that cannot be a directory name (empty, `.`, `..`, contains `/` or NUL,
    /// or longer than `TOPIC_BYTES_MAX`).
    InvalidTopic {
        /// The topic, lossily.
        topic: String,
    },
    /// The log holds damaged data that recovery will not truncate (a bad record with valid
    /// records after it, a missing segment, an unreadable file).
    Corrupt {
        /// The log.
        log_id: u32,
        /// Log position (without the log id bits) of the damage.
        position: u64,
        /// What was found.
        reason: String,
    },
    /// `store.meta` is missing, damaged, or of an unknown version.
    Meta {
        /// The meta file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The log was closed; no further appends.
    Closed,
    /// Disk use passed `disk_space_warning_level_ratio`: appends are refused until
    /// retention frees space (RocketMQ marks the store not writeable; sends get
    /// SERVICE_NOT_AVAILABLE).
    DiskFull {
        /// Disk use when retention last ran, per mille.
        used_per_mille: u32,
        /// The warning level, per mille.
        limit_per_mille: u32,
    },
    /// Appends were switched off (`LogStore::set_writable(false)`).
    NotWritable,
    /// A `StoreConfig` value is out of range (an operator's setting, not a bug).
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// A replicated range does not continue this log (`replica.rs`): it starts elsewhere
    /// than the log's end, or its records do not check out.
    ReplicaMismatch {
        /// The log.
        log_id: u32,
        /// Log position of the disagreement.
        position: u64,
        /// What disagrees.
        reason: String,
    },
}

impl StoreError {
    /// Wraps an `io::Error` from `op` on `path`.
    pub fn io(op: &'static str, path: &Path, error: &io::Error) -> StoreError {
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            errno: error.raw_os_error().unwrap_or(0),
            message: error.to_string(),
        }
    }

    /// True for `ENOSPC` (disk full), which the server reports differently from other I/O
    /// errors.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { errno, .. } if *errno == libc::ENOSPC)
            || matches!(self, StoreError::DiskFull { .. })
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { op, path, errno, message } => {
                write!(f, "{op} {}: {message} (errno {errno})", path.display())
            }
            StoreError::Poisoned => write!(f, "log poisoned by an earlier write or sync failure"),
            StoreError::MessageTooLarge => write!(f, "message or batch too large"),
            StoreError::Busy { pending_bytes, pending_bytes_max } => {
                write!(f, "log busy: {pending_bytes} bytes pending, limit {pending_bytes_max}")
            }
            StoreError::InvalidBatch { reason } => write!(f, "invalid append batch: {reason}"),
            StoreError::InvalidTopic { topic } => write!(f, "invalid topic name {topic:?}"),
            StoreError::Corrupt { log_id, position, reason } => {
                write!(f, "commit log {log_id:03} corrupt at position {position}: {reason}")
            }
            StoreError::Meta { path, reason } => {
                write!(f, "store meta {}: {reason}", path.display())
            }
            StoreError::Closed => write!(f, "log closed"),
            StoreError::DiskFull { used_per_mille, limit_per_mille } => write!(
                f,
                "disk full: {}.{}% used, above the {}.{}% warning level; appends refused",
                used_per_mille / 10,
                used_per_mille % 10,
                limit_per_mille / 10,
                limit_per_mille % 10
            ),
            StoreError::NotWritable => write!(f, "store switched to not writable"),
            StoreError::InvalidConfig { reason } => write!(f, "invalid store config: {reason}"),
            StoreError::ReplicaMismatch { log_id, position, reason } => {
                write!(
                    f,
                    "commit log {log_id:03} replica mismatch at position {position}: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {}
