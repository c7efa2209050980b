//! Opening a log's derived data: load the checkpoint and the persisted consume queues,
//! replay the log after the checkpoint into them, and rebuild them all from the log when
//! they disagree with it.
//!
//! Lives on: the owner shard of the log (runs once, inside `LogStore::open`).
//!
//! Steps:
//!
//! 1. Read the checkpoint `P` (`checkpoint.rs`) and list the segments: the first segment's
//!    start `S` is the oldest log position still on disk (retention deletes older ones).
//! 2. Load every queue of the log (`consume_queue.rs`): entries for records before `P`,
//!    the last `consume_queue_memory_entries` of each in memory, min offsets moved past
//!    entries below `S`.
//! 3. Compare the sum of the queues' max offsets with the checkpoint's `entry_count`; a
//!    difference means consume-queue files were lost or damaged: rebuild (step 5).
//! 4. Replay the log from `P` (`recovery.rs`, which also decides where the log ends): each
//!    record that enters a consume queue must carry the queue's next offset, else rebuild.
//! 5. Rebuild: zero every queue file of the log and replay from `S`. A queue's first
//!    replayed record sets its start offset (records below `S` are gone).
//!
//! The index (`index.rs`) rides along: its runs must chain from `S` to at least the
//! checkpoint's `index_end`; then records at or past `max(chain end, P)` are indexed
//! again during the replay. Otherwise the runs are deleted and the replay starts at `S`,
//! indexing every record (and touching consume queues only from `P` on).

use std::path::Path;

use ramjet_proto::message::StoredMessage;

use crate::checkpoint::{read_checkpoint, Checkpoint};
use crate::commit_log::RecoveredState;
use crate::config::StoreConfig;
use crate::consume_queue::{
    enters_consume_queue, list_queue_files, load_queues, truncate_queue_files, ConsumeQueue,
    ConsumeQueueEntry, ConsumeQueues, LoadLimits,
};
use crate::error::StoreError;
use crate::index::{chain_end, index_dir, is_indexed, load_runs, record_keys, remove_runs, Index};
use crate::io::{Io, OpenMode};
use crate::log_offset::log_offset_of;
use crate::recovery::{recover, RecoveryOptions, RecoveryReport};
use crate::segment::segment_starts;

/// What `recover_store` hands back to `open`.
pub(crate) struct Recovered {
    pub(crate) state: RecoveredState,
    pub(crate) report: RecoveryReport,
    pub(crate) queues: ConsumeQueues,
    /// The checkpoint in force (position 0 after a consume-queue rebuild).
    pub(crate) checkpoint: Checkpoint,
    pub(crate) index: Index,
}

/// Where one replay pass starts touching each kind of derived data.
struct ReplayPlan {
    /// Records at or after this get consume-queue entries.
    queues_from: u64,
    /// Records at or after this get index entries (when indexing is on).
    index_from: u64,
    /// The queues start empty at the log's first segment: a queue's first record sets
    /// its start offset.
    rebuild: bool,
}

/// Loads the checkpoint and the persisted consume queues, then replays the log after the
/// checkpoint; rebuilds every queue of the log from its start when the persisted queues
/// disagree with the checkpoint or the log.
pub(crate) async fn recover_store(
    config: &StoreConfig,
    io: &dyn Io,
    log_id: u32,
    log_count: u32,
    clean: bool,
) -> Result<Recovered, StoreError> {
    let checkpoint_path = config.checkpoint_path(log_id);
    let checkpoint = read_checkpoint(io, &checkpoint_path).await?.unwrap_or_default();
    let log_dir = config.log_dir(log_id);
    let log_start = segment_starts(io, &log_dir).await?.first().copied().unwrap_or(0);
    let limits = LoadLimits {
        position: checkpoint.position,
        log_start,
        memory_entries: config.consume_queue_memory_entries,
    };
    let loaded = load_queues(io, &config.consume_queue_root(), log_id, log_count, &limits).await?;
    let mut queues = loaded.queues;
    let (index_template, index_from, index_rebuilt) =
        load_index(config, io, log_id, log_start, &checkpoint).await?;
    let fresh_index = || index_template.clone_runs();
    let mut index = fresh_index();
    let mut options = RecoveryOptions {
        io,
        dir: &log_dir,
        log_id,
        segment_size_bytes: config.segment_size_bytes,
        start: checkpoint.position,
        clean,
    };
    if config.index_enabled {
        options.start = options.start.min(index_from);
    }
    let mut plan = ReplayPlan { queues_from: checkpoint.position, index_from, rebuild: false };
    let loaded_count: u64 = queues
        .values()
        .flat_map(|by_id| by_id.values())
        .map(|q| q.max_offset().max(0) as u64)
        .sum();
    // A different count means consume-queue files were lost or damaged below the
    // checkpoint; a replayed record whose QUEUEOFFSET disagrees with its queue means the
    // same above it. Either way: queues are derived data, rebuild them all.
    let mut mismatch = loaded_count != checkpoint.entry_count;
    let first = if mismatch {
        None
    } else {
        Some(replay(&options, config, &plan, &mut queues, &mut index, &mut mismatch).await)
    };
    let rebuilt = mismatch;
    let outcome = match first {
        Some(outcome) if !rebuilt => outcome,
        _ => {
            tracing::warn!(log_id, "consume queues disagree with the log; rebuilding them");
            for dir in &loaded.dirs {
                let starts = list_queue_files(io, dir).await?;
                truncate_queue_files(io, dir, &starts, 0).await?;
            }
            queues = ConsumeQueues::new();
            index = fresh_index();
            options.start = 0;
            plan = ReplayPlan { queues_from: 0, rebuild: true, ..plan };
            replay(&options, config, &plan, &mut queues, &mut index, &mut mismatch).await
        }
    };
    let (state, mut report) = outcome?;
    report.consume_queues_rebuilt = rebuilt;
    report.index_rebuilt = index_rebuilt;
    let checkpoint = if rebuilt { Checkpoint { position: 0, ..checkpoint } } else { checkpoint };
    Ok(Recovered { state, report, queues, checkpoint, index })
}

/// Loads the index runs of a log. Returns the index to start from, the log position
/// from which replayed records must be indexed again, and whether it is rebuilt; when the runs do not form the
/// chain the checkpoint promises, they are deleted and the index restarts at the log's
/// first position.
async fn load_index(
    config: &StoreConfig,
    io: &dyn Io,
    log_id: u32,
    log_start: u64,
    checkpoint: &Checkpoint,
) -> Result<(Index, u64, bool), StoreError> {
    let dir = index_dir(&config.root, log_id);
    let runs = load_runs(io, &dir).await?;
    let chain = chain_end(&runs, log_start, checkpoint.index_end);
    let (runs, end, index_from) = match chain {
        Some(end) => (runs, end, end.max(checkpoint.position)),
        None => {
            tracing::warn!(log_id, "index runs incomplete; rebuilding the index from the log");
            remove_runs(io, &dir, &runs).await?;
            (Vec::new(), log_start, log_start)
        }
    };
    let runs = runs.into_iter().map(std::rc::Rc::new).collect();
    Ok((Index { runs, pending: Vec::new(), end }, index_from, chain.is_none()))
}

/// Creates the abort marker and makes its directory entry durable.
pub(crate) async fn create_marker(io: &dyn Io, path: &Path) -> Result<(), StoreError> {
    let marker = io
        .open(path.to_path_buf(), OpenMode::Create)
        .await
        .map_err(|e| StoreError::io("open", path, &e))?;
    drop(marker);
    if let Some(dir) = path.parent() {
        io.sync_dir(dir.to_path_buf()).await.map_err(|e| StoreError::io("sync_dir", dir, &e))?;
    }
    Ok(())
}

/// Runs recovery, rebuilding consume-queue entries of replayed records into `queues`.
/// Sets `mismatch` when a record's QUEUEOFFSET disagrees with its queue. `rebuild`: the
/// queues started empty and replay starts at the log's first segment, so a queue's first
/// record sets its start offset.
async fn replay(
    options: &RecoveryOptions<'_>,
    config: &StoreConfig,
    plan: &ReplayPlan,
    queues: &mut ConsumeQueues,
    index: &mut Index,
    mismatch: &mut bool,
) -> Result<(RecoveredState, RecoveryReport), StoreError> {
    let log_id = options.log_id;
    let tags_code_of = config.tags_code_of;
    let rebuild = plan.rebuild;
    let mut on_record = |position: u64, message: &StoredMessage| {
        let log_offset = log_offset_of(log_id, position);
        if config.index_enabled && position >= plan.index_from && is_indexed(message.sys_flag) {
            let keys = record_keys(&message.properties);
            if !keys.is_empty() {
                let topic = String::from_utf8_lossy(&message.topic);
                index.add(&topic, &keys, log_offset, message.store_timestamp);
            }
        }
        if position < plan.queues_from || !enters_consume_queue(message.sys_flag) {
            return true;
        }
        let topic = String::from_utf8_lossy(&message.topic);
        let by_id = match queues.get_mut(topic.as_ref()) {
            Some(by_id) => by_id,
            None => queues.entry(topic.into_owned()).or_default(),
        };
        let queue = by_id.entry(message.queue_id).or_insert_with(|| {
            let start = if rebuild { message.queue_offset.max(0) } else { 0 };
            ConsumeQueue::starting_at(start)
        });
        if message.queue_offset != queue.max_offset() {
            *mismatch = true;
            return false;
        }
        queue.push(ConsumeQueueEntry::new(log_offset, message.total_size, tags_code_of(message)));
        true
    };
    recover(options, &mut on_record).await
}
