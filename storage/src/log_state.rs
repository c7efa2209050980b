//! The state of one open log that the `LogStore` handle and its background tasks (the
//! writer in `log_writer.rs`, the checkpointer in `log_store.rs`) share through an `Rc`.
//!
//! Lives on: the owner shard of the log. `!Send`: `Cell`s and `RefCell`s, never borrowed
//! across an `.await`.
//!
//! It sits below both the writer task and the `LogStore` facade, so that the writer does not
//! import the facade that spawns it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::checkpoint::Checkpoint;
use crate::commit_log::CommitLog;
use crate::config::StoreConfig;
use crate::consume_queue::ConsumeQueues;
use crate::error::StoreError;
use crate::index::Index;
use crate::io::Io;
use crate::watch::{PositionWatch, Signal};

/// The state of one log, shared by the `LogStore` handle and its tasks.
///
/// Lives on: the owner shard of the log.
pub(crate) struct LogState {
    pub(crate) config: StoreConfig,
    pub(crate) log_id: u32,
    pub(crate) io: Rc<dyn Io>,
    pub(crate) log: RefCell<CommitLog>,
    pub(crate) queues: RefCell<ConsumeQueues>,
    /// The flushed position, for sync-mode appends.
    pub(crate) flushed: PositionWatch,
    /// The written position, for async-mode backpressure.
    pub(crate) written: PositionWatch,
    /// The appended end (`CommitLog::dirty`), for replication reads of pending bytes.
    pub(crate) appended: PositionWatch,
    /// The log's end when this process opened it (replication: bytes past it on a slave
    /// may have come from an earlier run of the master that never wrote them).
    pub(crate) opened_end: u64,
    /// Someone waits for the written position to acknowledge (a slave's ACK, a
    /// SYNC_MASTER's answer): the next async write is not held back for coalescing.
    pub(crate) write_awaited: Cell<bool>,
    pub(crate) writer_wake: Signal,
    pub(crate) checkpointer_wake: Signal,
    pub(crate) closing: Cell<bool>,
    pub(crate) poison: RefCell<Option<StoreError>>,
    /// The last checkpoint written (or read at open).
    pub(crate) checkpoint: Cell<Checkpoint>,
    /// One checkpoint at a time (the checkpointer task, retention, close).
    pub(crate) checkpoint_lock: glommio::sync::Semaphore,
    /// The message index (keys and unique ids to log offsets).
    pub(crate) index: RefCell<Index>,
    /// The operator's switch (`LogStore::set_writable`).
    pub(crate) writable: Cell<bool>,
    /// Retention found disk use above the warning level: appends are refused.
    pub(crate) disk_full: Cell<bool>,
    /// Disk use when retention last ran, per mille (for the error).
    pub(crate) disk_used_per_mille: Cell<u32>,
}
