//! Fault injection through the I/O seam (`FaultyIo`): EIO on fdatasync and short writes
//! poison the log; seeded power cuts lose only unacknowledged records and always leave a
//! log that opens. Each seeded test prints its seed when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::rc::Rc;

use common::*;
use ramjet_storage::fault_io::{FaultConfig, FaultyIo};
use ramjet_storage::{DmaIo, FlushMode, LogStore, StoreConfig, StoreError};

async fn open_faulty(config: &StoreConfig, faults: FaultConfig) -> (Rc<LogStore>, FaultyIo) {
    let meta = config.root.join("store.meta");
    DmaIo::probe_device(&meta).await.unwrap();
    let io = FaultyIo::new(Rc::new(DmaIo), faults);
    let store = LogStore::open_with_io(config, 0, Rc::new(io.clone())).await.unwrap();
    (store, io)
}

/// Reopens with production I/O and checks every acknowledged offset reads back as the
/// record with that body, and that queue offsets are dense.
fn check_acknowledged(config: &StoreConfig, acknowledged: Vec<(i64, i32, String)>, context: &str) {
    let config = config.clone();
    let context = context.to_string();
    run(|| async move {
        let store = match LogStore::open(&config, 0).await {
            Ok(store) => store,
            Err(error) => panic!("{context}: reopen failed: {error}"),
        };
        for (offset, queue_id, body) in &acknowledged {
            let record = store.read_record(*offset).await.unwrap();
            let record = record.unwrap_or_else(|| panic!("{context}: acked {offset} lost"));
            assert_eq!(body_of(&record), body.as_bytes(), "{context}");
            let decoded = ramjet_proto::message::decode_record(&record, true).unwrap();
            assert!(decoded.queue_offset < store.max_offset("F", *queue_id), "{context}");
        }
        store.close().await.unwrap();
    });
}

#[test]
fn fdatasync_failure_poisons_the_log() {
    // Goal: a failed fdatasync is never retried: the waiting append and every later one
    // fail with Poisoned, close reports it, and the log reopens with the acked records.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let config2 = config.clone();
    let faults = FaultConfig { fail_fdatasync_at: Some(6), ..FaultConfig::default() };
    let acknowledged = run(|| async move {
        let (store, _io) = open_faulty(&config2, faults).await;
        let mut acknowledged = Vec::new();
        let mut poisoned_at = None;
        for index in 0..20 {
            let body = format!("sync-{index}");
            match store.append(single("F", 0, body.as_bytes(), None)).await {
                Ok(result) => acknowledged.push((result.first_log_offset, 0, body)),
                Err(StoreError::Poisoned) => {
                    poisoned_at.get_or_insert(index);
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(poisoned_at.is_some());
        assert!(acknowledged.len() < 20);
        match store.poison_reason() {
            Some(StoreError::Io { op: "fdatasync", errno, .. }) => assert_eq!(errno, libc::EIO),
            other => panic!("poison reason {other:?}"),
        }
        assert_eq!(store.close().await, Err(StoreError::Poisoned));
        acknowledged
    });
    check_acknowledged(&config, acknowledged, "fdatasync EIO");
}

#[test]
fn short_write_poisons_the_log() {
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let config2 = config.clone();
    let faults = FaultConfig { short_write_at: Some(4), ..FaultConfig::default() };
    let acknowledged = run(|| async move {
        let (store, _io) = open_faulty(&config2, faults).await;
        let mut acknowledged = Vec::new();
        for index in 0..10 {
            // Bodies over a block, so that half a write is a whole number of blocks.
            let body = format!("short-{index}-").repeat(800);
            if let Ok(result) = store.append(single("F", 0, body.as_bytes(), None)).await {
                acknowledged.push((result.first_log_offset, 0, body));
            }
        }
        assert_eq!(acknowledged.len(), 3, "the 4th write was short");
        assert!(matches!(store.poison_reason(), Some(StoreError::Io { op: "write", .. })));
        acknowledged
    });
    check_acknowledged(&config, acknowledged, "short write");
}

#[test]
fn disk_full_is_reported_as_enospc() {
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    run(|| async move {
        let faults = FaultConfig { enospc_write_at: Some(2), ..FaultConfig::default() };
        let (store, _io) = open_faulty(&config, faults).await;
        store.append(single("F", 0, b"fits", None)).await.unwrap();
        assert_eq!(store.append(single("F", 0, b"full", None)).await, Err(StoreError::Poisoned));
        assert!(store.poison_reason().unwrap().is_disk_full());
    });
}

/// Runs 8 concurrent appenders over 4 queues, cuts the power once `cut_after` appends
/// are acknowledged, and returns the acknowledged appends.
fn append_until_power_cut(
    config: &StoreConfig,
    seed: u64,
    cut_after: u64,
) -> Vec<(i64, i32, String)> {
    let config = config.clone();
    let pace = config.flush == FlushMode::Async;
    run(|| async move {
        let faults = FaultConfig { seed, ..FaultConfig::default() };
        let (store, io) = open_faulty(&config, faults).await;
        let acked = Rc::new(std::cell::RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..8)
            .map(|worker| {
                let (store, acked) = (store.clone(), acked.clone());
                glommio::spawn_local(async move {
                    for index in 0..100 {
                        let queue_id = (worker % 4) as i32;
                        let repeat = 1 + (index * 37 + worker) % 60;
                        let body = format!("w{worker}-{index}-").repeat(repeat);
                        match store.append(single("F", queue_id, body.as_bytes(), None)).await {
                            Ok(result) => {
                                acked.borrow_mut().push((result.first_log_offset, queue_id, body))
                            }
                            Err(_) => break,
                        }
                        if pace {
                            // Async appends resolve at once: pace them so that the cut
                            // lands while the writer is busy (load shaping, not a wait).
                            glommio::timer::sleep(std::time::Duration::from_micros(50)).await;
                        }
                    }
                })
            })
            .collect();
        for _ in 0..10_000 {
            if acked.borrow().len() as u64 >= cut_after {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
        }
        let report = io.power_cut().await.unwrap();
        for task in tasks {
            task.await;
        }
        drop(store);
        let acked = acked.borrow().clone();
        eprintln!("seed {seed}: {} acked, cut {report:?}", acked.len());
        acked
    })
}

#[test]
fn power_cuts_lose_only_unacknowledged_records() {
    // Goal: sync-mode acks survive any power cut, and the log always reopens. Method: for
    // each seed, concurrent appenders with 64 KiB segments (so cuts also land around
    // segment rolls), a power cut at a seeded moment that keeps a seeded prefix of the
    // unsynced sectors; reopen with production I/O and read every acked record.
    for seed in 0..24u64 {
        let dir = store_dir();
        let mut config = config(dir.path(), FlushMode::Sync);
        config.segment_size_bytes = 64 * 1024;
        // Frequent checkpoints, so cuts also land inside consume-queue persistence.
        config.checkpoint_interval_bytes = if seed % 2 == 0 { 8 * 1024 } else { 64 << 20 };
        let acknowledged = append_until_power_cut(&config, seed, 5 + seed * 37 % 400);
        check_acknowledged(&config, acknowledged, &format!("seed {seed}"));
    }
}

#[test]
fn power_cuts_in_async_mode_leave_a_log_that_opens() {
    // Goal: in async mode a cut may lose acknowledged records (that is the mode's
    // contract), but never leaves a log that fails to open or a record that fails its
    // CRC. Method: as above, with several unsynced writes torn at once.
    for seed in 100..116u64 {
        let dir = store_dir();
        let mut config = config(dir.path(), FlushMode::Async);
        config.segment_size_bytes = 64 * 1024;
        config.flush_interval_ms = 50;
        config.checkpoint_interval_bytes = 16 * 1024;
        append_until_power_cut(&config, seed, 5 + seed * 37 % 400);
        let config = config.clone();
        run(|| async move {
            let store =
                LogStore::open(&config, 0).await.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            for queue_id in 0..4 {
                let request = ramjet_storage::GetRequest {
                    topic: "F",
                    queue_id,
                    queue_offset: 0,
                    max_count: 10_000,
                    max_bytes: 64 << 20,
                    tags_filter: None,
                };
                let got = store.get_messages(request).await.unwrap();
                for message in &got.messages {
                    ramjet_proto::message::decode_record(message, true).unwrap();
                }
            }
            store.close().await.unwrap();
        });
    }
}
