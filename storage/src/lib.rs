//! ramjet-storage: a shard's commit logs of direct-I/O segments, their consume queues,
//! checkpoints and recovery. Knows nothing of the network.
//!
//! Lives on: each log's owner shard; everything is `!Send` (`Rc`, `RefCell`), one
//! glommio executor per shard, no locks or atomics.
//!
//! Reading order: [`log_store`] (the API), [`query`] (key, unique-id and time lookups),
//! [`commit_log`] and [`log_writer`] (write path, group commit), [`segment`] (files),
//! [`consume_queue`], [`index`], [`checkpoint`], [`recovery`] (the decision table),
//! `replay` (derived data at open), [`replica`] (master/slave replication), [`io`] (the
//! I/O seam). Records are read through `ramjet_proto::message::RecordView` and
//! `classify_slot`, never by literal offsets.
//!
//! The modules form layers; each imports only from layers below it, so there is no
//! import cycle (`tests/module_layers.rs` checks every `crate::` path against this list):
//!
//! 1. vocabulary: [`error`], [`config`] (limits, `StoreConfig`, `RetentionConfig`),
//!    [`io`] (the I/O seam), [`log_offset`], [`placement`];
//! 2. files and signals: [`fault_io`], [`segment`], [`checkpoint`], [`store_meta`],
//!    `watch` (position watches and wake-up signals);
//! 3. log structures: [`commit_log`] (positions, pending chunks, tail cache),
//!    [`consume_queue`] (and which records enter one), [`index`] (and which records it
//!    holds);
//! 4. one open log: `log_state` (the state the handle and its tasks share), [`recovery`]
//!    (the log's end at open);
//! 5. its tasks and its opening: [`log_writer`] (group commit), `replay` (consume queues
//!    and index rebuilt at open);
//! 6. the facade: [`log_store`] (`LogStore`: open, append, get, close, checkpointer);
//! 7. extensions of the facade, `impl LogStore` blocks that nothing below uses: [`query`],
//!    [`replica`], [`retention`].
//!
//! ```text
//! {root}/store.meta                                   log count (store_meta.rs)
//! {root}/commitlog/{log_id:03}/{start:020}             segments (segment.rs)
//! {root}/commitlog/{log_id:03}.checkpoint              (checkpoint.rs)
//! {root}/commitlog/{log_id:03}.abort                   abort marker (log_store.rs)
//! {root}/consumequeue/{topic}/{queue_id}/{byte:020}    (consume_queue.rs)
//! {root}/index/{log_id:03}/{first position:020}        index runs (index.rs)
//! ```

#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.80.
#![allow(clippy::manual_is_multiple_of)]

pub mod checkpoint;
pub mod commit_log;
pub mod config;
pub mod consume_queue;
pub mod error;
pub mod fault_io;
pub mod index;
pub mod io;
pub mod log_offset;
mod log_state;
pub mod log_store;
pub mod log_writer;
pub mod placement;
pub mod query;
pub mod recovery;
mod replay;
pub mod replica;
pub mod retention;
pub mod segment;
pub mod store_meta;
mod watch;

pub use commit_log::{LatencyCounts, LogStats, LATENCY_BOUNDS_US};
pub use config::{FlushMode, RetentionConfig, StoreConfig};
pub use consume_queue::ConsumeQueueEntry;
pub use error::StoreError;
pub use io::{DmaIo, Io, IoFile, OpenMode};
pub use log_offset::{log_offset_of, split_log_offset};
pub use log_store::{AppendBatch, AppendResult, GetRequest, GetResult, GetStatus, LogStore};
pub use placement::log_for;
pub use query::KeyQuery;
pub use recovery::RecoveryReport;
pub use replica::{RawSpan, ReplicaPlaced, ReplicaPosition};
pub use retention::{disk_used_ratio, RetentionReport};
pub use store_meta::open_or_create_meta;
