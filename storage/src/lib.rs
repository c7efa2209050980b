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
//! I/O seam).
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
pub use config::{FlushMode, StoreConfig};
pub use consume_queue::ConsumeQueueEntry;
pub use error::StoreError;
pub use io::{DmaIo, Io, IoFile, OpenMode};
pub use log_offset::{log_offset_of, split_log_offset};
pub use log_store::{AppendBatch, AppendResult, GetRequest, GetResult, GetStatus, LogStore};
pub use placement::log_for;
pub use query::KeyQuery;
pub use recovery::RecoveryReport;
pub use replica::{RawSpan, ReplicaPlaced, ReplicaPosition};
pub use retention::{disk_used_ratio, RetentionConfig, RetentionReport};
pub use store_meta::open_or_create_meta;
