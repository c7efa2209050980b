//! `ramjet-bench storage`: appends through `ramjet_storage::LogStore` directly.

use std::path::PathBuf;
use std::time::Duration;

/// Options of the storage mode.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Store directory.
    pub store_path: PathBuf,
    /// Body size, bytes.
    pub size: usize,
    /// Run duration (`None`: until `messages`).
    pub duration: Option<Duration>,
    /// Message limit.
    pub messages: Option<u64>,
    /// ASYNC_FLUSH or SYNC_FLUSH.
    pub flush_disk_type: String,
    /// Concurrent appenders per shard.
    pub inflight: usize,
    /// Records per append.
    pub batch: usize,
    /// Shards.
    pub shards: usize,
    /// Topic.
    pub topic: String,
    /// Queues.
    pub queues: i32,
    /// JSON summary.
    pub json: bool,
}

/// Runs the storage benchmark.
///
/// # Errors
/// Not available yet.
pub fn run(opts: StorageOptions) -> Result<(), String> {
    let _ = opts;
    Err("storage mode is not built yet".into())
}
