//! Store configuration and the storage limits, each a named constant with its unit.
//!
//! Lives on: every shard (a plain value, cloned into each `LogStore`).
//!
//! Limits and what happens when one is reached:
//!
//! | limit | value | when reached |
//! |---|---|---|
//! | [`RECORD_SIZE_BYTES_MAX`] | 4 MiB + 64 KiB | append fails `MessageTooLarge` |
//! | [`BATCH_SIZE_BYTES_MAX`] | 8 MiB, and at most a segment less 8 bytes | `MessageTooLarge` |
//! | [`PENDING_BYTES_MAX`] | 64 MiB per log | append fails `Busy` (RocketMQ `SYSTEM_BUSY`) |
//! | [`ASYNC_BACKPRESSURE_BYTES`] | 32 MiB | async append waits for the writer |
//! | [`WRITE_BYTES_MAX`] | 16 MiB | one write round takes at most this much (plus one batch) |
//! | [`UNSYNCED_BYTES_MAX`] | 64 MiB | async mode: `fdatasync` early once this much is unsynced |
//! | `checkpoint_interval_bytes` | 64 MiB default | consume queues persisted + checkpoint written |
//! | `consume_queue_memory_entries` | 8,192 per queue | older entries are read from files |

use std::path::PathBuf;

use ramjet_proto::message::{property, property_value, tags_code, StoredMessage};

/// Default segment size: 1 GiB, RocketMQ's `mappedFileSizeCommitLog`.
pub const SEGMENT_SIZE_BYTES_DEFAULT: u64 = 1 << 30;
/// Smallest segment size accepted (tests use 1 MiB).
pub const SEGMENT_SIZE_BYTES_MIN: u64 = 64 * 1024;
/// Direct-I/O block: every write and read of a segment is aligned to it. 4096 covers both
/// 512-byte and 4 KiB logical-block devices.
pub const BLOCK_SIZE_BYTES: u64 = 4096;
/// Largest single record: RocketMQ's 4 MiB body limit plus 64 KiB for the fixed part,
/// topic and properties (`MessageExtEncoder`).
pub const RECORD_SIZE_BYTES_MAX: usize = 4 * 1024 * 1024 + 64 * 1024;
/// Smallest valid record: the 84-byte fixed part, an empty body, a 1-byte topic length and
/// an empty properties string (84 + 4 + 1 + 2).
pub const RECORD_SIZE_BYTES_MIN: usize = ramjet_proto::message::RECORD_BYTES_MIN;
/// Largest batch accepted by one append.
pub const BATCH_SIZE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Appended-but-unwritten bytes a log holds before appends fail with `Busy`.
pub const PENDING_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Async mode: an append whose end is more than this ahead of the written position waits
/// for the writer (backpressure) instead of resolving at once.
pub const ASYNC_BACKPRESSURE_BYTES: u64 = PENDING_BYTES_MAX / 2;
/// Bytes one write round takes from the pending region (it always takes at least one
/// batch, so a round may be up to `WRITE_BYTES_MAX + BATCH_SIZE_BYTES_MAX`).
pub const WRITE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Async mode: written but unsynced bytes that trigger an `fdatasync` before the interval.
pub const UNSYNCED_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Default log bytes between checkpoints: each checkpoint persists the consume queues, so
/// an unclean restart rescans at most about this much log (plus what a checkpoint in
/// progress covers).
pub const CHECKPOINT_INTERVAL_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Longest topic name (RocketMQ's `TopicValidator` limit); also keeps topic directory
/// names well under the 255-byte file-name limit.
pub const TOPIC_BYTES_MAX: usize = 127 * 2;
/// Default tail cache per log.
pub const TAIL_CACHE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// Default consume-queue entries kept in memory per queue: 8,192 × 20 bytes = 160 KiB.
pub const CONSUME_QUEUE_MEMORY_ENTRIES_DEFAULT: usize = 8192;
/// Default async flush interval (RocketMQ `flushIntervalCommitLog`).
pub const FLUSH_INTERVAL_MS_DEFAULT: u64 = 500;

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Acknowledge once the records are in memory and queued for the writer; written
    /// promptly and `fdatasync`ed within `flush_interval_ms` (RocketMQ `ASYNC_FLUSH`).
    Async,
    /// Acknowledge after the records are written and `fdatasync`ed (RocketMQ
    /// `SYNC_FLUSH`). Appends that arrive during a write share the next one.
    Sync,
}

/// How recovery recomputes a consume-queue tags code for a record it replays from the log.
pub type TagsCodeFn = fn(&StoredMessage) -> i64;

/// The default [`TagsCodeFn`]: Java's `String.hashCode()` of the `TAGS` property, 0 when
/// there is none. A broker that stores other codes (the schedule topic's delivery time)
/// sets its own function so replayed entries match appended ones.
pub fn tags_code_from_tags(message: &StoredMessage) -> i64 {
    property_value(&message.properties, property::TAGS).map_or(0, |tags| tags_code(&tags))
}

/// Configuration of a store: one per broker, shared by all its logs.
///
/// ```
/// use ramjet_storage::{FlushMode, StoreConfig};
/// let mut config = StoreConfig::new("/var/tmp/ramjet-store");
/// config.flush = FlushMode::Sync;
/// assert_eq!(config.segment_size_bytes, 1 << 30);
/// ```
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Store root: `{root}/store.meta`, `{root}/commitlog/`, `{root}/consumequeue/`.
    pub root: PathBuf,
    /// Size of new segments; a multiple of [`BLOCK_SIZE_BYTES`], at least
    /// [`SEGMENT_SIZE_BYTES_MIN`]. Existing segments keep their size.
    pub segment_size_bytes: u64,
    /// When appends are acknowledged.
    pub flush: FlushMode,
    /// Async mode: written data is `fdatasync`ed within this many milliseconds.
    pub flush_interval_ms: u64,
    /// Recent log bytes kept in memory per log, so pulls near the tail never read the disk.
    pub tail_cache_bytes: usize,
    /// Flushed log bytes between checkpoints (consume queues persisted, checkpoint
    /// written); bounds how much log an unclean restart replays.
    pub checkpoint_interval_bytes: u64,
    /// Tags code of a record replayed by recovery (see [`tags_code_from_tags`]).
    pub tags_code_of: TagsCodeFn,
    /// Consume-queue entries (20 bytes each) kept in memory per queue after a checkpoint;
    /// older entries are read from the consume-queue files. At least
    /// `CONSUME_QUEUE_MEMORY_ENTRIES_MIN` (256) is used.
    pub consume_queue_memory_entries: usize,
    /// Index message keys and unique ids for lookups (RocketMQ `messageIndexEnable`).
    pub index_enabled: bool,
    /// When segments are deleted and writes refused (`retention.rs`).
    pub retention: RetentionConfig,
}

impl StoreConfig {
    /// A config with the defaults: 1 GiB segments, async flush every 500 ms, 64 MiB tail
    /// cache.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root: root.into(),
            segment_size_bytes: SEGMENT_SIZE_BYTES_DEFAULT,
            flush: FlushMode::Async,
            flush_interval_ms: FLUSH_INTERVAL_MS_DEFAULT,
            tail_cache_bytes: TAIL_CACHE_BYTES_DEFAULT,
            checkpoint_interval_bytes: CHECKPOINT_INTERVAL_BYTES_DEFAULT,
            tags_code_of: tags_code_from_tags,
            consume_queue_memory_entries: CONSUME_QUEUE_MEMORY_ENTRIES_DEFAULT,
            index_enabled: true,
            retention: RetentionConfig::default(),
        }
    }

    /// The directory of one log's segments: `{root}/commitlog/{log_id:03}`.
    pub fn log_dir(&self, log_id: u32) -> PathBuf {
        self.root.join("commitlog").join(format!("{log_id:03}"))
    }

    /// The root of the consume queues: `{root}/consumequeue`.
    pub fn consume_queue_root(&self) -> PathBuf {
        self.root.join("consumequeue")
    }

    /// The checkpoint of one log: `{root}/commitlog/{log_id:03}.checkpoint`.
    pub fn checkpoint_path(&self, log_id: u32) -> PathBuf {
        self.root.join("commitlog").join(format!("{log_id:03}.checkpoint"))
    }

    /// The abort marker of one log: `{root}/commitlog/{log_id:03}.abort`.
    pub fn abort_path(&self, log_id: u32) -> PathBuf {
        self.root.join("commitlog").join(format!("{log_id:03}.abort"))
    }
}

/// Default `fileReservedTime`: 72 hours.
pub const FILE_RESERVED_TIME_MS_DEFAULT: i64 = 72 * 3600 * 1000;
/// Default segments deleted per run (RocketMQ `deleteCommitLogFilesInterval` batches).
pub const SEGMENTS_PER_RUN_MAX_DEFAULT: usize = 10;

/// Retention settings (RocketMQ `MessageStoreConfig` names in parentheses); the
/// decisions they drive are in `retention.rs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionConfig {
    /// How long a segment is kept after its last record (`fileReservedTime`, hours there).
    pub file_reserved_time_ms: i64,
    /// Local hours (0..=23) at which expired segments are deleted (`deleteWhen`, "04").
    pub delete_when_hours: Vec<u8>,
    /// Above this used-space ratio expired segments are deleted at any hour
    /// (`diskMaxUsedSpaceRatio`, 75).
    pub disk_max_used_space_ratio: f64,
    /// Above this, segments are deleted even when unexpired
    /// (`diskSpaceCleanForciblyRatio`, 0.85).
    pub disk_space_clean_forcibly_ratio: f64,
    /// Above this, appends are refused (`diskSpaceWarningLevelRatio`, 0.90).
    pub disk_space_warning_level_ratio: f64,
    /// Segments deleted per run at most.
    pub segments_per_run_max: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            file_reserved_time_ms: FILE_RESERVED_TIME_MS_DEFAULT,
            delete_when_hours: vec![4],
            disk_max_used_space_ratio: 0.75,
            disk_space_clean_forcibly_ratio: 0.85,
            disk_space_warning_level_ratio: 0.90,
            segments_per_run_max: SEGMENTS_PER_RUN_MAX_DEFAULT,
        }
    }
}
