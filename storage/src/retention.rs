//! Retention, as RocketMQ's `CleanCommitLogService`: which whole segments to delete, and
//! whether the store still accepts writes. A pure decision ([`decide`], table-tested) and
//! the step that carries it out ([`LogStore::run_retention`]).
//!
//! Lives on: the owner shard of the log (`run_retention` is a method of `LogStore`; the
//! server calls it periodically, e.g. every 10 s, on each log's shard).
//!
//! Rules (the reference's `CleanCommitLogService`), with `ratio` = used space of the store's disk:
//!
//! | condition                                    | effect                                   |
//! |----------------------------------------------|------------------------------------------|
//! | the local hour is in `delete_when` ("04")    | delete expired segments                  |
//! | ratio > `disk_max_used_space_ratio` (0.75)   | delete expired segments, at any hour     |
//! | ratio > `disk_space_clean_forcibly_ratio` (0.85) | delete segments even if unexpired    |
//! | ratio > `disk_space_warning_level_ratio` (0.90) | refuse appends (`DiskFull`) until it falls |
//!
//! A segment is expired when `now ≥ last store time + file_reserved_time_ms` (72 h); its
//! last store time is the STORETIMESTAMP of its newest record when this process wrote
//! it, else the file's modification time. Deletion takes the oldest segments first, stops
//! at the first one it may not delete, at most `segments_per_run_max` per run, and never
//! deletes the active (newest) segment or one that ends after the checkpoint (so
//! recovery never needs a deleted segment).
//!
//! Carrying it out keeps the derived data consistent: each queue's min offset moves past
//! entries whose records are gone, consume-queue files wholly below the min are deleted
//! (the file holding the newest entry stays, so the max offset survives a restart), and
//! index runs that end at or below the new log start are deleted.

use crate::consume_queue::{
    list_queue_files, queue_dir, CONSUME_QUEUE_ENTRY_SIZE_BYTES, CONSUME_QUEUE_FILE_SIZE_BYTES,
};
use crate::error::StoreError;
use crate::index::index_dir;
use crate::log_store::{take_checkpoint, LogStore};
use crate::segment::file_name;

pub use crate::config::{
    RetentionConfig, FILE_RESERVED_TIME_MS_DEFAULT, SEGMENTS_PER_RUN_MAX_DEFAULT,
};

/// Parses RocketMQ's `deleteWhen`: hours separated by `;` ("04", "04;16").
///
/// ```
/// use ramjet_storage::retention::parse_delete_when;
/// assert_eq!(parse_delete_when("04;16").unwrap(), vec![4, 16]);
/// assert!(parse_delete_when("25").is_err());
/// ```
///
/// # Errors
/// `InvalidConfig` for an empty list or an hour outside 0..=23.
pub fn parse_delete_when(text: &str) -> Result<Vec<u8>, StoreError> {
    let mut hours = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u8>() {
            Ok(hour) if hour < 24 => hours.push(hour),
            _ => {
                let reason = format!("deleteWhen {text:?}: {part:?} is not an hour 0..=23");
                return Err(StoreError::InvalidConfig { reason });
            }
        }
    }
    if hours.is_empty() {
        return Err(StoreError::InvalidConfig { reason: format!("deleteWhen {text:?} is empty") });
    }
    Ok(hours)
}

/// What the decision knows of one segment, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Log position of its first byte.
    pub start: u64,
    /// Log position after its last byte.
    pub end: u64,
    /// Store time of its newest record (or the file's modification time), ms.
    pub last_store_ms: i64,
    /// It may be deleted at all: not the active segment, and ends at or before the
    /// checkpoint.
    pub deletable: bool,
}

/// Why retention runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Nothing to do: not the hour, disk not full enough.
    Idle,
    /// The local hour is in `delete_when`.
    Hour,
    /// Disk use is above `disk_max_used_space_ratio`.
    Space,
    /// Disk use is above `disk_space_clean_forcibly_ratio`: unexpired segments go too.
    Forced,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Why.
    pub trigger: Trigger,
    /// Starts of the segments to delete: a prefix of the segments, oldest first.
    pub delete: Vec<u64>,
    /// Appends are accepted (disk use at or below the warning level).
    pub writable: bool,
}

/// The retention decision: pure, from the clock, the local hour, the segments (oldest
/// first) and the disk's used-space ratio.
pub fn decide(
    now_ms: i64,
    local_hour: u8,
    config: &RetentionConfig,
    segments: &[SegmentInfo],
    disk_used_ratio: f64,
) -> Decision {
    let writable = disk_used_ratio <= config.disk_space_warning_level_ratio;
    let trigger = if disk_used_ratio > config.disk_space_clean_forcibly_ratio {
        Trigger::Forced
    } else if disk_used_ratio > config.disk_max_used_space_ratio {
        Trigger::Space
    } else if config.delete_when_hours.contains(&local_hour) {
        Trigger::Hour
    } else {
        Trigger::Idle
    };
    let mut delete = Vec::new();
    if trigger != Trigger::Idle {
        // The newest segment is the active one: never a candidate.
        let candidates = segments.len().saturating_sub(1);
        for segment in segments.iter().take(candidates) {
            let expired =
                now_ms >= segment.last_store_ms.saturating_add(config.file_reserved_time_ms);
            if !segment.deletable || !(expired || trigger == Trigger::Forced) {
                break;
            }
            if delete.len() >= config.segments_per_run_max {
                break;
            }
            delete.push(segment.start);
        }
    }
    Decision { trigger, delete, writable }
}

/// What one `run_retention` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionReport {
    /// Segments deleted.
    pub segments_deleted: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Consume-queue files deleted.
    pub consume_queue_files_deleted: u64,
    /// Index runs deleted.
    pub index_runs_deleted: u64,
    /// The log's first position after the run.
    pub log_start: u64,
    /// Appends are accepted after the run.
    pub writable: bool,
}

/// The used-space ratio of the filesystem holding `path` (`statvfs`):
/// `(blocks - free blocks) / blocks`, as RocketMQ's `getDiskPartitionSpaceUsedPercent`.
///
/// # Errors
/// `Io` when `statvfs` fails.
pub fn disk_used_ratio(path: &std::path::Path) -> Result<f64, StoreError> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        StoreError::InvalidConfig { reason: format!("path {} holds a NUL", path.display()) }
    })?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` points to writable
    // memory of the right type; statvfs writes it fully when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(StoreError::io("statvfs", path, &std::io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    let blocks = stat.f_blocks as f64;
    if blocks <= 0.0 {
        return Ok(0.0);
    }
    Ok((blocks - stat.f_bfree as f64) / blocks)
}

/// The local hour (0..=23) of `now_ms`, for `delete_when`.
pub fn local_hour(now_ms: i64) -> u8 {
    let seconds = (now_ms / 1000) as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::uninit();
    // SAFETY: both pointers are valid for the call; localtime_r is the reentrant form and
    // fills `tm` when it returns non-null.
    let result = unsafe { libc::localtime_r(&seconds, tm.as_mut_ptr()) };
    if result.is_null() {
        return ((now_ms / 3_600_000).rem_euclid(24)) as u8; // UTC as a fallback.
    }
    // SAFETY: localtime_r returned non-null, so it initialised `tm`.
    let tm = unsafe { tm.assume_init() };
    tm.tm_hour.clamp(0, 23) as u8
}

impl LogStore {
    /// Refuses (`false`) or accepts (`true`) appends, as an operator switch; appends then
    /// fail with `NotWritable`. Independent of the automatic disk-full refusal.
    pub fn set_writable(&self, writable: bool) {
        self.shared.writable.set(writable);
    }

    /// Whether appends are accepted now (neither switched off nor refused for disk use).
    pub fn is_writable(&self) -> bool {
        self.shared.writable.get() && !self.shared.disk_full.get()
    }

    /// Runs retention once: takes a checkpoint, decides with [`decide`] (the local hour of
    /// `now_ms`), refuses or re-accepts appends by disk use, deletes the chosen segments,
    /// moves queue min offsets past them and deletes consume-queue files and index runs
    /// that only covered them. Call periodically (every 10 s) with
    /// `disk_used_ratio(&config.root)`.
    ///
    /// # Errors
    /// `Io`; the store stays consistent (a segment is forgotten in memory before its file
    /// is removed, and recovery ignores leftover consume-queue files below the log).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping it between steps may leave files that the next run (or
    /// the next open) deletes.
    pub async fn run_retention(
        &self,
        now_ms: i64,
        disk_used_ratio: f64,
    ) -> Result<RetentionReport, StoreError> {
        take_checkpoint(&self.shared).await?;
        let segments = self.segment_infos().await?;
        let config = &self.shared.config.retention;
        let decision = decide(now_ms, local_hour(now_ms), config, &segments, disk_used_ratio);
        self.shared.disk_full.set(!decision.writable);
        self.shared.disk_used_per_mille.set((disk_used_ratio.clamp(0.0, 1.0) * 1000.0) as u32);
        if !decision.writable {
            tracing::warn!(log_id = self.log_id(), disk_used_ratio, "disk full: refusing appends");
        }
        let mut report = RetentionReport {
            log_start: self.log_start_position(),
            writable: self.is_writable(),
            ..RetentionReport::default()
        };
        let Some(&last) = decision.delete.last() else { return Ok(report) };
        let new_start = segments.iter().find(|s| s.start == last).map_or(last, |s| s.end);
        let mins = self.min_offsets_from(new_start).await?;
        let removed = self.forget_segments(new_start, &mins);
        for (path, bytes) in &removed {
            self.shared
                .io
                .remove(path.clone())
                .await
                .map_err(|e| StoreError::io("remove", path, &e))?;
            report.segments_deleted += 1;
            report.bytes_freed += bytes;
        }
        let log_dir = self.shared.config.log_dir(self.log_id());
        self.shared
            .io
            .sync_dir(log_dir.clone())
            .await
            .map_err(|e| StoreError::io("sync_dir", &log_dir, &e))?;
        report.consume_queue_files_deleted = self.delete_queue_files_below_min().await?;
        report.index_runs_deleted = self.delete_index_runs_below(new_start).await?;
        report.log_start = new_start;
        tracing::info!(log_id = self.log_id(), ?report, trigger = ?decision.trigger, "retention");
        Ok(report)
    }

    /// The segments, oldest first, with their ages and whether they may be deleted.
    async fn segment_infos(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        let checkpoint = self.shared.checkpoint.get().position;
        let listed: Vec<(u64, u64, Option<i64>, std::path::PathBuf)> = {
            let log = self.shared.log.borrow();
            log.segments
                .values()
                .map(|s| (s.start, s.end(), log.last_store_ms(s.start), s.path()))
                .collect()
        };
        let count = listed.len();
        let mut infos = Vec::with_capacity(count);
        for (index, (start, end, known, path)) in listed.into_iter().enumerate() {
            let last_store_ms = match known {
                Some(ms) => ms,
                None => self
                    .shared
                    .io
                    .modified_ms(path.clone())
                    .await
                    .map_err(|e| StoreError::io("stat", &path, &e))?,
            };
            let deletable = index + 1 < count && end <= checkpoint;
            infos.push(SegmentInfo { start, end, last_store_ms, deletable });
        }
        Ok(infos)
    }

    /// For each queue whose min entry points below `new_start`, the first queue offset
    /// whose record is at or after it (binary search over the consume queue).
    async fn min_offsets_from(
        &self,
        new_start: u64,
    ) -> Result<Vec<(String, i32, i64)>, StoreError> {
        let ranges: Vec<(String, i32, i64, i64)> = {
            let queues = self.shared.queues.borrow();
            queues
                .iter()
                .flat_map(|(topic, by_id)| {
                    by_id
                        .iter()
                        .map(move |(id, q)| (topic.clone(), *id, q.min_offset(), q.max_offset()))
                })
                .collect()
        };
        let mut mins = Vec::new();
        for (topic, queue_id, min, max) in ranges {
            let (mut low, mut high) = (min, max);
            while low < high {
                let middle = low + (high - low) / 2;
                let entry = self.entry_at(&topic, queue_id, middle).await?;
                match entry {
                    Some(entry) if entry.position() >= new_start => high = middle,
                    _ => low = middle + 1,
                }
            }
            if low > min {
                mins.push((topic, queue_id, low));
            }
        }
        Ok(mins)
    }

    /// The synchronous step: raises queue min offsets and drops the segments before
    /// `new_start` from the log. Returns their paths and sizes.
    fn forget_segments(
        &self,
        new_start: u64,
        mins: &[(String, i32, i64)],
    ) -> Vec<(std::path::PathBuf, u64)> {
        let mut queues = self.shared.queues.borrow_mut();
        for (topic, queue_id, min) in mins {
            if let Some(queue) = queues.get_mut(topic).and_then(|t| t.get_mut(queue_id)) {
                queue.min = queue.min.max(*min).min(queue.max_offset());
                queue.assert_invariants();
            }
        }
        drop(queues);
        self.shared.log.borrow_mut().forget_segments_before(new_start)
    }

    /// Deletes consume-queue files whose entries are all below their queue's min offset,
    /// keeping the file that holds the newest entry. Returns how many.
    async fn delete_queue_files_below_min(&self) -> Result<u64, StoreError> {
        let root = self.shared.config.consume_queue_root();
        let limits: Vec<(std::path::PathBuf, u64)> = {
            let queues = self.shared.queues.borrow();
            queues
                .iter()
                .flat_map(|(topic, by_id)| {
                    let root = &root;
                    by_id.iter().map(move |(id, q)| {
                        let keep_from = q.min_offset().min(q.max_offset() - 1).max(0) as u64;
                        (queue_dir(root, topic, *id), keep_from * CONSUME_QUEUE_ENTRY_SIZE_BYTES)
                    })
                })
                .collect()
        };
        let io = self.shared.io.as_ref();
        let mut deleted = 0;
        for (dir, keep_byte) in limits {
            let mut removed_here = false;
            for start in list_queue_files(io, &dir).await? {
                if start + CONSUME_QUEUE_FILE_SIZE_BYTES <= keep_byte {
                    let path = dir.join(file_name(start));
                    io.remove(path.clone())
                        .await
                        .map_err(|e| StoreError::io("remove", &path, &e))?;
                    deleted += 1;
                    removed_here = true;
                }
            }
            if removed_here {
                io.sync_dir(dir.clone()).await.map_err(|e| StoreError::io("sync_dir", &dir, &e))?;
            }
        }
        Ok(deleted)
    }

    /// Deletes index runs that end at or below `new_start`. Returns how many.
    async fn delete_index_runs_below(&self, new_start: u64) -> Result<u64, StoreError> {
        let gone: Vec<_> = {
            let mut index = self.shared.index.borrow_mut();
            let (gone, kept) = std::mem::take(&mut index.runs)
                .into_iter()
                .partition(|run| run.end_position <= new_start);
            index.runs = kept;
            gone
        };
        let io = self.shared.io.as_ref();
        for run in &gone {
            io.remove(run.path.clone())
                .await
                .map_err(|e| StoreError::io("remove", &run.path, &e))?;
        }
        if !gone.is_empty() {
            let dir = index_dir(&self.shared.config.root, self.log_id());
            io.sync_dir(dir.clone()).await.map_err(|e| StoreError::io("sync_dir", &dir, &e))?;
        }
        Ok(gone.len() as u64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn segments(ages_h: &[i64], now: i64) -> Vec<SegmentInfo> {
        ages_h
            .iter()
            .enumerate()
            .map(|(index, age)| SegmentInfo {
                start: index as u64 * 100,
                end: (index as u64 + 1) * 100,
                last_store_ms: now - age * HOUR_MS,
                deletable: index + 1 < ages_h.len(),
            })
            .collect()
    }

    #[test]
    fn decision_table() {
        // Goal: each rule of the module table, and the limits (active segment, prefix
        // only, batch size, checkpoint). Rows: segment ages in hours (oldest first, the
        // last is active), local hour, disk ratio → trigger, deleted starts, writable.
        let now = 1_000 * HOUR_MS;
        let config = RetentionConfig::default(); // 72 h, "04", 75/85/90 %
        let rows: &[(&[i64], u8, f64, Trigger, &[u64], bool)] = &[
            // Not the hour, disk fine: nothing, even if expired.
            (&[100, 90, 1], 10, 0.10, Trigger::Idle, &[], true),
            // The hour: expired ones, oldest first, never the active one.
            (&[100, 90, 1], 4, 0.10, Trigger::Hour, &[0, 100], true),
            (&[100, 90, 80], 4, 0.10, Trigger::Hour, &[0, 100], true),
            // Stops at the first unexpired segment (a prefix only).
            (&[100, 10, 90, 1], 4, 0.10, Trigger::Hour, &[0], true),
            // Disk above 75 %: expired ones at any hour.
            (&[100, 10, 1], 13, 0.80, Trigger::Space, &[0], true),
            // Above 85 %: unexpired ones too, oldest first, never the active one.
            (&[10, 5, 1], 13, 0.86, Trigger::Forced, &[0, 100], true),
            // Above 90 %: forced deletion and writes refused.
            (&[10, 5, 1], 13, 0.95, Trigger::Forced, &[0, 100], false),
            // Exactly at a threshold is not above it.
            (&[10, 5, 1], 13, 0.90, Trigger::Forced, &[0, 100], true),
            (&[100, 1], 13, 0.75, Trigger::Idle, &[], true),
            // Only the active segment: nothing to delete.
            (&[100], 4, 0.99, Trigger::Forced, &[], false),
            (&[], 4, 0.10, Trigger::Hour, &[], true),
        ];
        for (index, &(ages, hour, ratio, trigger, deleted, writable)) in rows.iter().enumerate() {
            let decision = decide(now, hour, &config, &segments(ages, now), ratio);
            let want = Decision { trigger, delete: deleted.to_vec(), writable };
            assert_eq!(decision, want, "row {index}");
        }
    }

    #[test]
    fn limits_batch_size_and_checkpoint() {
        let now = 1_000 * HOUR_MS;
        let config = RetentionConfig { segments_per_run_max: 2, ..RetentionConfig::default() };
        let mut infos = segments(&[100, 100, 100, 100, 1], now);
        assert_eq!(decide(now, 4, &config, &infos, 0.1).delete, vec![0, 100]);
        // A segment past the checkpoint is not deletable, nor anything after it.
        infos[1].deletable = false;
        assert_eq!(decide(now, 4, &config, &infos, 0.99).delete, vec![0]);
        // fileReservedTime 0: everything but the active segment is expired.
        let config = RetentionConfig { file_reserved_time_ms: 0, ..RetentionConfig::default() };
        let infos = segments(&[0, 0, 0], now);
        assert_eq!(decide(now, 4, &config, &infos, 0.1).delete, vec![0, 100]);
    }

    #[test]
    fn delete_when_parses_hours() {
        assert_eq!(parse_delete_when("04").unwrap(), vec![4]);
        assert_eq!(parse_delete_when(" 4; 16 ;").unwrap(), vec![4, 16]);
        assert!(parse_delete_when("").is_err());
        assert!(parse_delete_when("4;x").is_err());
        assert!(parse_delete_when("24").is_err());
        assert!(local_hour(0) < 24);
    }

    #[test]
    fn disk_used_ratio_is_a_fraction() {
        let ratio = disk_used_ratio(std::path::Path::new("/var/tmp")).unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&ratio), "{ratio}");
        assert!(disk_used_ratio(std::path::Path::new("/no/such/dir")).is_err());
    }
}
