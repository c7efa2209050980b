//! Retention through `LogStore` with shortened times: tiny segments, a fake clock and
//! disk ratios passed in. Deleted segments take their records with them; queue min
//! offsets, pulls, the index and time lookups stay consistent, also after a restart;
//! disk use above the warning level refuses appends until it falls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::rc::Rc;

use common::*;
use ramjet_proto::message::decode_record;
use ramjet_storage::{
    FlushMode, GetRequest, GetStatus, KeyQuery, LogStore, RetentionConfig, StoreConfig, StoreError,
};

const QUEUES: i32 = 3;
const RECORDS: usize = 900;

fn get(topic: &str, queue_id: i32, queue_offset: i64) -> GetRequest<'_> {
    GetRequest {
        topic,
        queue_id,
        queue_offset,
        max_count: 10_000,
        max_bytes: 64 << 20,
        tags_filter: None,
    }
}

fn retention_config(root: &std::path::Path, reserved_ms: i64) -> StoreConfig {
    let mut config = config(root, FlushMode::Sync);
    config.segment_size_bytes = 64 * 1024; // the smallest: ~60 records each
    config.checkpoint_interval_bytes = 16 * 1024;
    config.consume_queue_memory_entries = 256;
    config.retention = RetentionConfig {
        file_reserved_time_ms: reserved_ms,
        delete_when_hours: vec![4],
        ..RetentionConfig::default()
    };
    config
}

/// Appends RECORDS records of ~1 KiB round-robin over QUEUES queues, each keyed `k{i}`.
async fn fill(store: &LogStore) {
    for index in 0..RECORDS {
        let key = format!("k{index}");
        let mut body = format!("r-{index}-").into_bytes();
        body.resize(1000, b'x');
        let batch = single_with("R", index as i32 % QUEUES, &body, 0, &[("KEYS", key.as_str())]);
        store.append(batch).await.unwrap();
    }
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    since.as_millis() as i64
}

/// Checks every queue after retention: below min is too small, from min on every record
/// is there in order with its body, up to the unchanged max. Returns the min offsets.
async fn check_queues(store: &LogStore) -> Vec<i64> {
    let mut mins = Vec::new();
    for queue_id in 0..QUEUES {
        let (min, max) = (store.min_offset("R", queue_id), store.max_offset("R", queue_id));
        assert_eq!(max, (RECORDS / QUEUES as usize) as i64);
        if min > 0 {
            let got = store.get_messages(get("R", queue_id, 0)).await.unwrap();
            assert_eq!(got.status, GetStatus::OffsetTooSmall);
            assert_eq!(got.next_offset, min);
        }
        let got = store.get_messages(get("R", queue_id, min)).await.unwrap();
        assert_eq!(got.messages.len() as i64, max - min, "queue {queue_id}");
        for (offset, record) in (min..).zip(&got.messages) {
            let message = decode_record(record, true).unwrap();
            assert_eq!(message.queue_offset, offset);
            let index = offset as usize * QUEUES as usize + queue_id as usize;
            assert!(message.body.starts_with(format!("r-{index}-").as_bytes()));
        }
        assert_eq!(store.search_offset_by_timestamp("R", queue_id, 0).await.unwrap(), min);
        let earliest = store.earliest_message_store_time("R", queue_id).await.unwrap();
        let first = decode_record(&got.messages[0], false).unwrap();
        assert_eq!(earliest, Some(first.store_timestamp));
        mins.push(min);
    }
    mins
}

fn key_query(key: &str) -> KeyQuery<'_> {
    KeyQuery { topic: "R", key, max_count: 10, begin_ms: 0, end_ms: i64::MAX }
}

#[test]
fn expired_segments_are_deleted_and_everything_else_stays_consistent() {
    // Goal: with fileReservedTime 0 and disk use above 75 %, every segment but the active
    // one (and those past the checkpoint) goes; queues, pulls, the index and time lookups
    // follow, also after an unclean restart. Method: ~15 segments of 64 KiB over three
    // queues; run retention until it deletes nothing (each run takes at most 10).
    let dir = store_dir();
    let config = retention_config(dir.path(), 0);
    let config2 = config.clone();
    let mins = run(|| async move {
        let store: Rc<LogStore> = open(&config2).await;
        fill(&store).await;
        assert!(store.is_writable());
        // Not the hour (04) and disk fine: nothing happens whatever the age.
        let idle_hour_ms = (0..24)
            .map(|hour| now_ms() + hour * 3_600_000)
            .find(|&ms| ramjet_storage::retention::local_hour(ms) != 4)
            .unwrap();
        let idle = store.run_retention(idle_hour_ms, 0.10).await.unwrap();
        assert_eq!(idle.segments_deleted, 0);
        let mut deleted = 0;
        let mut index_runs = 0;
        for _ in 0..10 {
            let report = store.run_retention(now_ms(), 0.80).await.unwrap();
            deleted += report.segments_deleted;
            index_runs += report.index_runs_deleted;
            if report.segments_deleted == 0 {
                break;
            }
            assert!(report.bytes_freed >= 64 * 1024 * report.segments_deleted);
        }
        assert!(deleted >= 10, "{deleted} segments deleted");
        assert!(index_runs > 0);
        let segment_files = std::fs::read_dir(config2.log_dir(0)).unwrap().count();
        assert!(segment_files <= 3, "{segment_files} segment files left");
        let mins = check_queues(&store).await;
        assert!(mins.iter().all(|&m| m > 0), "{mins:?}");
        // Keys of deleted records are gone; the newest record's key is found.
        assert!(store.find_by_key(key_query("k0")).await.unwrap().is_empty());
        assert!(store.query_by_key(key_query("k0")).await.unwrap().is_empty());
        let last = format!("k{}", RECORDS - 1);
        assert_eq!(store.find_by_key(key_query(&last)).await.unwrap().len(), 1);
        mins
        // Dropped without close: an unclean stop.
    });
    run(|| async move {
        let store = open(&config).await;
        let report = store.recovery_report().clone();
        assert!(!report.consume_queues_rebuilt && !report.index_rebuilt, "{report:?}");
        assert_eq!(check_queues(&store).await, mins);
        let last = format!("k{}", RECORDS - 1);
        assert_eq!(store.find_by_key(key_query(&last)).await.unwrap().len(), 1);
        // Appends continue at the right offsets.
        let result = store.append(single("R", 0, b"after", None)).await.unwrap();
        assert_eq!(result.first_queue_offset, (RECORDS / QUEUES as usize) as i64);
        store.close().await.unwrap();
    });
}

#[test]
fn full_disk_forces_deletion_and_refuses_appends_until_space_returns() {
    // Goal: unexpired segments stay below 85 % disk use, go above it, and above 90 %
    // appends fail with DiskFull (never a corrupt log) until disk use falls; the
    // operator switch refuses appends too. Method: fileReservedTime one hour, fake ratios.
    let dir = store_dir();
    let config = retention_config(dir.path(), 3_600_000);
    run(|| async move {
        let store = open(&config).await;
        fill(&store).await;
        let space = store.run_retention(now_ms(), 0.80).await.unwrap();
        assert_eq!(space.segments_deleted, 0, "unexpired segments stay at 80 %");
        let forced = store.run_retention(now_ms(), 0.86).await.unwrap();
        assert!(forced.segments_deleted > 0);
        assert!(forced.writable);
        let full = store.run_retention(now_ms(), 0.95).await.unwrap();
        assert!(!full.writable && !store.is_writable());
        match store.append(single("R", 0, b"refused", None)).await {
            Err(error @ StoreError::DiskFull { used_per_mille: 950, limit_per_mille: 900 }) => {
                assert!(error.is_disk_full());
            }
            other => panic!("expected DiskFull, got {other:?}"),
        }
        let max = store.max_offset("R", 0);
        let freed = store.run_retention(now_ms(), 0.50).await.unwrap();
        assert!(freed.writable);
        let result = store.append(single("R", 0, b"accepted", None)).await.unwrap();
        assert_eq!(result.first_queue_offset, max);
        store.set_writable(false);
        let refused = store.append(single("R", 0, b"refused", None)).await;
        assert!(matches!(refused, Err(StoreError::NotWritable)), "{refused:?}");
        store.set_writable(true);
        store.append(single("R", 0, b"accepted again", None)).await.unwrap();
        store.close().await.unwrap();
    });
}
