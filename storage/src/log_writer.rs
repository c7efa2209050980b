//! The writer task of one log: group commit.
//!
//! Lives on: the owner shard of the log (one task per log, spawned by `LogStore::open`).
//!
//! ```text
//!  append ─┐                         ┌─ one round ───────────────────────────────────┐
//!  append ─┼─► pending chunks ──────►│ plan (sync) → create segment if new            │
//!  append ─┘   (CommitLog)           │ → ONE aligned write_at (head block rewritten)  │
//!                                    │ → fdatasync (sync mode, or when due in async)  │
//!                                    │ → complete (sync): written/flushed, wake acks  │
//!                                    └────────────────────────────────────────────────┘
//! ```
//!
//! A round takes every pending chunk of one segment (up to `WRITE_BYTES_MAX`), so appends
//! that arrive while a round is in flight share the next write and `fdatasync`. In async
//! mode the writer writes as soon as data is pending and `fdatasync`s when the oldest
//! unsynced write is `flush_interval_ms` old, when `UNSYNCED_BYTES_MAX` are unsynced, or
//! before it moves on to another segment.
//!
//! Any write or `fdatasync` failure poisons the log (never retried: after a failed
//! `fdatasync` the durable state of the file is unknown): waiting and future appends fail
//! with `StoreError::Poisoned`, and the writer exits. The abort marker stays, so the next
//! open validates the tail.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::commit_log::WritePlan;
use crate::config::{FlushMode, UNSYNCED_BYTES_MAX};
use crate::error::StoreError;
use crate::log_state::LogState;
use crate::segment::{align_down, align_up, Segment};

/// A segment written but not yet `fdatasync`ed (async mode).
struct Unsynced {
    segment: Rc<Segment>,
    since: Instant,
    bytes: u64,
}

/// Async mode: a write smaller than this waits up to [`ASYNC_WRITE_DELAY`] for more data.
///
/// Why: with few appends in flight every append would otherwise be its own O_DIRECT write
/// (the partial tail block rewritten each time), and on a virtual disk each write costs a
/// VM exit. Acknowledgement does not wait for the write in async mode and readers are
/// served from memory, so the delay only coalesces; the price is that a process crash can
/// lose up to this much more of the unwritten tail (async flush never promised more).
/// Not held back when an acknowledgement waits for the write (`write_awaited`: a slave
/// before its ACK, a SYNC_MASTER before its answer): there the delay is latency.
pub const ASYNC_WRITE_BYTES_MIN: u64 = 256 * 1024;
/// Longest time a small async write is held back for coalescing.
pub const ASYNC_WRITE_DELAY: Duration = Duration::from_millis(1);

/// Runs until the log closes (everything written and synced) or is poisoned.
pub(crate) async fn run_writer(shared: Rc<LogState>) {
    let mut unsynced = None;
    let mut deferred_since: Option<Instant> = None;
    loop {
        if defer_small_async_write(&shared, &mut deferred_since).await {
            continue;
        }
        match writer_step(&shared, &mut unsynced).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                tracing::error!(log_id = shared.log_id, %error, "commit log poisoned");
                *shared.poison.borrow_mut() = Some(error);
                shared.flushed.fail(StoreError::Poisoned);
                shared.written.fail(StoreError::Poisoned);
                break;
            }
        }
    }
}

/// Async mode: holds back a small pending write for up to [`ASYNC_WRITE_DELAY`] after it
/// was first seen, waking early when more appends arrive. True when it waited (the caller
/// looks again).
async fn defer_small_async_write(shared: &LogState, deferred_since: &mut Option<Instant>) -> bool {
    // An acknowledgement waits for this write (`LogStore::wait_replicated`): no delay.
    if shared.config.flush != FlushMode::Async
        || shared.closing.get()
        || shared.write_awaited.replace(false)
    {
        *deferred_since = None;
        return false;
    }
    let bytes = {
        let log = shared.log.borrow();
        log.dirty - log.written
    };
    if bytes == 0 || bytes >= ASYNC_WRITE_BYTES_MIN {
        *deferred_since = None;
        return false;
    }
    let since = *deferred_since.get_or_insert_with(Instant::now);
    let elapsed = since.elapsed();
    if elapsed >= ASYNC_WRITE_DELAY {
        *deferred_since = None;
        return false;
    }
    futures_lite::future::or(shared.writer_wake.wait(), async {
        glommio::timer::sleep(ASYNC_WRITE_DELAY - elapsed).await;
    })
    .await;
    true
}

/// One round, or one wait when nothing is pending. `Ok(false)`: closed and drained.
async fn writer_step(
    shared: &LogState,
    unsynced: &mut Option<Unsynced>,
) -> Result<bool, StoreError> {
    let plan = shared.log.borrow().plan_write();
    let Some(plan) = plan else { return idle(shared, unsynced).await };
    let segment = match plan.segment.clone() {
        Some(segment) => segment,
        None => create_segment(shared, plan.segment_start).await?,
    };
    if unsynced.as_ref().is_some_and(|u| !Rc::ptr_eq(&u.segment, &segment)) {
        sync_unsynced(shared, unsynced).await?;
    }
    let write_started = Instant::now();
    let tail_block = write_plan(shared, &segment, &plan).await?;
    shared.log.borrow_mut().stats.write_latency.observe(write_started.elapsed());
    let bytes = plan.end - plan.first;
    let sync_now = match shared.config.flush {
        FlushMode::Sync => true,
        FlushMode::Async => unsynced.as_ref().is_some_and(|u| {
            u.bytes + bytes >= UNSYNCED_BYTES_MAX || u.since.elapsed() >= flush_interval(shared)
        }),
    };
    if sync_now {
        let sync_started = Instant::now();
        segment.fdatasync().await?;
        let mut log = shared.log.borrow_mut();
        log.stats.fdatasyncs += 1;
        log.stats.fdatasync_latency.observe(sync_started.elapsed());
        drop(log);
        shared.log.borrow_mut().complete_write(plan.end, tail_block, true);
        *unsynced = None;
        published_flushed(shared);
    } else {
        shared.log.borrow_mut().complete_write(plan.end, tail_block, false);
        let entry = unsynced.get_or_insert(Unsynced { segment, since: Instant::now(), bytes: 0 });
        entry.bytes += bytes;
    }
    shared.written.advance(plan.end);
    Ok(true)
}

fn flush_interval(shared: &LogState) -> Duration {
    Duration::from_millis(shared.config.flush_interval_ms)
}

/// Publishes the flushed position to waiting appends and nudges the checkpointer.
fn published_flushed(shared: &LogState) {
    let flushed = shared.log.borrow().flushed;
    shared.flushed.advance(flushed);
    if flushed - shared.checkpoint.get().position >= shared.config.checkpoint_interval_bytes {
        shared.checkpointer_wake.raise();
    }
}

async fn sync_unsynced(
    shared: &LogState,
    unsynced: &mut Option<Unsynced>,
) -> Result<(), StoreError> {
    let Some(entry) = unsynced.take() else { return Ok(()) };
    // Everything written so far is in this segment or in earlier, already synced ones.
    let written = shared.log.borrow().written;
    let sync_started = Instant::now();
    entry.segment.fdatasync().await?;
    let mut log = shared.log.borrow_mut();
    log.stats.fdatasyncs += 1;
    log.stats.fdatasync_latency.observe(sync_started.elapsed());
    log.complete_sync(written);
    drop(log);
    published_flushed(shared);
    Ok(())
}

/// Nothing pending: exit when closing, else wait for appends or the async flush deadline.
async fn idle(shared: &LogState, unsynced: &mut Option<Unsynced>) -> Result<bool, StoreError> {
    if shared.closing.get() {
        sync_unsynced(shared, unsynced).await?;
        return Ok(false);
    }
    let Some(entry) = unsynced.as_ref() else {
        shared.writer_wake.wait().await;
        return Ok(true);
    };
    let deadline = entry.since + flush_interval(shared);
    let now = Instant::now();
    if now >= deadline {
        sync_unsynced(shared, unsynced).await?;
        return Ok(true);
    }
    futures_lite::future::or(shared.writer_wake.wait(), async {
        glommio::timer::sleep(deadline - now).await;
    })
    .await;
    Ok(true)
}

async fn create_segment(shared: &LogState, start: u64) -> Result<Rc<Segment>, StoreError> {
    let dir = shared.log.borrow().dir.clone();
    let size = shared.config.segment_size_bytes;
    let segment = Rc::new(Segment::create(shared.io.as_ref(), &dir, start, size).await?);
    shared.log.borrow_mut().add_segment(segment.clone());
    Ok(segment)
}

/// Copies the plan into one aligned buffer and writes it. Returns the new tail block
/// (the head of the last, partial block), which the next round rewrites.
///
/// Arithmetic, for a round from log position 10_000 to 13_000 in a segment at 0: the
/// buffer covers file bytes [8_192, 16_384); bytes 8_192..10_000 are the previous tail
/// block (already on disk, rewritten unchanged), 10_000..13_000 the new chunks,
/// 13_000..16_384 zeros. The new tail block is bytes 12_288..13_000.
async fn write_plan(
    shared: &LogState,
    segment: &Segment,
    plan: &WritePlan,
) -> Result<Vec<u8>, StoreError> {
    let data_len: u64 = plan.pieces.iter().map(|piece| piece.len() as u64).sum();
    let first = plan.first - segment.start;
    let data_end = first + data_len;
    let file_first = align_down(first);
    let file_last = align_up(data_end);
    assert_eq!(plan.prefix.len() as u64, first - file_first, "tail block matches written");
    let mut buf = segment.file.alloc_buffer((file_last - file_first) as usize);
    let bytes = buf.as_bytes_mut();
    bytes[..plan.prefix.len()].copy_from_slice(&plan.prefix);
    let mut at = plan.prefix.len();
    for piece in &plan.pieces {
        bytes[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    let end = plan.end - segment.start;
    let tail_block = if end == segment.capacity {
        Vec::new()
    } else {
        assert_eq!(end, data_end, "only a filler spans past its bytes");
        bytes[(align_down(end) - file_first) as usize..(end - file_first) as usize].to_vec()
    };
    let len = buf.len() as u64;
    segment.write_blocks(buf, file_first).await?;
    let mut log = shared.log.borrow_mut();
    log.stats.writes += 1;
    log.stats.bytes_written += len;
    Ok(tail_block)
}
