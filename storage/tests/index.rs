//! The message index and time lookups through `LogStore`: keys and unique ids found
//! before and after checkpoints, unclean and clean restarts, and a lost index run; the
//! queue offset of a point in time; a queue's earliest store time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::rc::Rc;

use common::*;
use ramjet_proto::message::{
    decode_record, SYSFLAG_TRANSACTION_PREPARED, SYSFLAG_TRANSACTION_ROLLBACK,
};
use ramjet_storage::{FlushMode, KeyQuery, LogStore, StoreConfig};

const RECORDS: usize = 1_500;

fn query<'a>(topic: &'a str, key: &'a str) -> KeyQuery<'a> {
    KeyQuery { topic, key, max_count: 10_000, begin_ms: 0, end_ms: i64::MAX }
}

fn keys_of(index: usize) -> String {
    format!("k{index} group{}", index % 10)
}

/// Appends RECORDS records alternating over topics A and B (same keys in both), each with
/// two keys and a unique id, plus a PREPARED and a ROLLBACK record with their own keys.
async fn fill(store: &LogStore) {
    for index in 0..RECORDS {
        let topic = if index % 2 == 0 { "A" } else { "B" };
        let keys = keys_of(index / 2);
        let uniq = format!("U-{topic}-{index}");
        let props = [("KEYS", keys.as_str()), ("UNIQ_KEY", uniq.as_str())];
        let body = format!("{topic}-{index}");
        let queue_id = (index % 3) as i32;
        store.append(single_with(topic, queue_id, body.as_bytes(), 0, &props)).await.unwrap();
    }
    let half = single_with("A", 0, b"half", SYSFLAG_TRANSACTION_PREPARED, &[("KEYS", "half")]);
    store.append(half).await.unwrap();
    let rollback =
        single_with("A", 0, b"rolled", SYSFLAG_TRANSACTION_ROLLBACK, &[("KEYS", "rolled")]);
    store.append(rollback).await.unwrap();
}

async fn check(store: &LogStore) {
    // One key of one topic: exactly its record.
    let found = store.find_by_key(query("A", "k7")).await.unwrap();
    let bodies: Vec<_> = found.iter().map(body_of).collect();
    assert_eq!(bodies, vec![&b"A-14"[..]]);
    // A key shared by many records, newest first; the other topic's are not mixed in.
    let found = store.find_by_key(query("B", "group3")).await.unwrap();
    assert_eq!(found.len(), RECORDS / 2 / 10);
    let offsets: Vec<i64> =
        found.iter().map(|r| decode_record(r, false).unwrap().physical_offset).collect();
    assert!(offsets.windows(2).all(|w| w[0] > w[1]), "newest first");
    for record in &found {
        assert!(body_of(record).starts_with(b"B-"));
    }
    let candidates = store.query_by_key(query("B", "group3")).await.unwrap();
    assert!(candidates.len() >= found.len());
    let mut limited = query("B", "group3");
    limited.max_count = 5;
    assert_eq!(store.find_by_key(limited).await.unwrap().len(), 5);
    // Unique ids.
    let record = store.find_by_unique_key("B", "U-B-1499").await.unwrap().unwrap();
    assert_eq!(&body_of(&record)[..], b"B-1499");
    assert!(store.find_by_unique_key("A", "U-B-1499").await.unwrap().is_none());
    // Half messages are indexed, rollback records are not.
    assert_eq!(store.find_by_key(query("A", "half")).await.unwrap().len(), 1);
    assert!(store.find_by_key(query("A", "rolled")).await.unwrap().is_empty());
    // The time range applies.
    let mut future = query("A", "k7");
    future.begin_ms = i64::MAX - 1;
    assert!(store.query_by_key(future).await.unwrap().is_empty());
}

fn open_and<T, F: std::future::Future<Output = T>>(
    config: &StoreConfig,
    f: impl FnOnce(Rc<LogStore>) -> F,
) -> T {
    let config = config.clone();
    run(|| async move { f(open(&config).await).await })
}

fn index_runs(root: &Path) -> Vec<std::path::PathBuf> {
    let dir = root.join("index").join("000");
    let mut runs: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    runs.sort();
    runs
}

#[test]
fn keys_and_unique_ids_are_found_across_checkpoints_and_restarts() {
    // Goal: the index answers the same before and after checkpoints (runs on disk), after
    // an unclean stop (replay re-indexes the tail), after a clean stop, and after a run
    // file is lost (rebuilt from the log). Method: 16 KiB checkpoints so that several
    // runs exist; check the same lookups at each stage.
    let dir = store_dir();
    let mut config = config(dir.path(), FlushMode::Sync);
    config.checkpoint_interval_bytes = 16 * 1024;
    open_and(&config, |store| async move {
        fill(&store).await;
        check(&store).await;
        // Unclean stop: dropped without close.
    });
    assert!(index_runs(dir.path()).len() >= 2, "{:?}", index_runs(dir.path()));
    open_and(&config, |store| async move {
        assert!(!store.recovery_report().clean);
        assert!(!store.recovery_report().index_rebuilt);
        check(&store).await;
        store.close().await.unwrap();
    });
    open_and(&config, |store| async move {
        assert!(store.recovery_report().clean);
        check(&store).await;
        store.close().await.unwrap();
    });
    let runs = index_runs(dir.path());
    std::fs::remove_file(&runs[runs.len() / 2]).unwrap();
    open_and(&config, |store| async move {
        assert!(store.recovery_report().index_rebuilt);
        check(&store).await;
        store.close().await.unwrap();
    });
    // A damaged run (flipped byte in its header) is also rebuilt.
    let runs = index_runs(dir.path());
    let mut bytes = std::fs::read(&runs[0]).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&runs[0], bytes).unwrap();
    open_and(&config, |store| async move {
        assert!(store.recovery_report().index_rebuilt);
        check(&store).await;
        store.close().await.unwrap();
    });
}

#[test]
fn search_offset_by_timestamp_finds_the_first_message_at_or_after_a_time() {
    // Goal: RocketMQ's getOffsetInQueueByTime: the first queue offset stored at or after
    // the time, clamped to [min, max]; and the earliest store time. Method: 1,200 records
    // in one queue with the clock moving between groups of 40 (256 entries in memory, so
    // probes also read the consume-queue files); for each distinct store time check the
    // answer against a linear scan; then times before the first and after the last.
    let dir = store_dir();
    let mut config = config(dir.path(), FlushMode::Sync);
    config.consume_queue_memory_entries = 256;
    config.checkpoint_interval_bytes = 16 * 1024;
    open_and(&config, |store| async move {
        let mut times = Vec::new();
        for index in 0..1_200 {
            if index % 40 == 0 {
                glommio::timer::sleep(std::time::Duration::from_millis(3)).await;
            }
            let result = store.append(single("S", 0, b"tick", None)).await.unwrap();
            times.push(result.store_timestamp);
        }
        for _ in 0..1000 {
            if store.consume_queue_entries_in_memory() < 1_000 {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut distinct = times.clone();
        distinct.dedup();
        for &time in &distinct {
            let want = times.iter().position(|&t| t >= time).unwrap() as i64;
            assert_eq!(store.search_offset_by_timestamp("S", 0, time).await.unwrap(), want);
            let want = times.iter().position(|&t| t > time).unwrap_or(times.len()) as i64;
            assert_eq!(store.search_offset_by_timestamp("S", 0, time + 1).await.unwrap(), want);
        }
        assert_eq!(store.search_offset_by_timestamp("S", 0, 0).await.unwrap(), 0);
        assert_eq!(store.search_offset_by_timestamp("S", 0, i64::MAX).await.unwrap(), 1_200);
        assert_eq!(store.search_offset_by_timestamp("nope", 0, 5).await.unwrap(), 0);
        assert_eq!(store.earliest_message_store_time("S", 0).await.unwrap(), Some(times[0]));
        assert_eq!(store.earliest_message_store_time("nope", 0).await.unwrap(), None);
        store.close().await.unwrap();
    });
}
