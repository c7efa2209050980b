//! Recovery scenarios on a real ext4 directory: torn and zero-filled tails are truncated,
//! damage with valid records after it refuses to open, consume queues are rebuilt, and
//! replay starts at the checkpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;
use ramjet_storage::{split_log_offset, FlushMode, GetRequest, GetStatus, StoreConfig, StoreError};

fn get(topic: &str, queue_offset: i64) -> GetRequest<'_> {
    GetRequest {
        topic,
        queue_id: 0,
        queue_offset,
        max_count: 1000,
        max_bytes: 64 << 20,
        tags_filter: None,
    }
}

fn segment0(config: &StoreConfig) -> PathBuf {
    config.log_dir(0).join("00000000000000000000")
}

fn write_at(path: &Path, position: u64, bytes: &[u8]) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, position).unwrap();
    file.sync_all().unwrap();
}

/// Appends `count` sync-mode records to queue 0 of `topic` and drops the store without
/// closing it (an unclean stop). Returns each record's log position and the log end.
fn append_and_crash(config: &StoreConfig, topic: &'static str, count: usize) -> (Vec<u64>, u64) {
    let config = config.clone();
    run(|| async move {
        let store = open(&config).await;
        let mut positions = Vec::new();
        for index in 0..count {
            let body = format!("{topic}-{index}").repeat(10);
            let result = store.append(single(topic, 0, body.as_bytes(), None)).await.unwrap();
            positions.push(split_log_offset(result.first_log_offset).unwrap().1);
        }
        let end = split_log_offset(store.end_log_offset()).unwrap().1;
        (positions, end)
    })
}

/// Opens the store and checks that queue 0 of `topic` holds exactly `count` readable
/// records, then appends one more and checks it lands at `end`.
fn reopen_and_check(
    config: &StoreConfig,
    topic: &'static str,
    count: usize,
    end: u64,
) -> ramjet_storage::RecoveryReport {
    let config = config.clone();
    run(|| async move {
        let store = open(&config).await;
        let report = store.recovery_report().clone();
        assert_eq!(store.max_offset(topic, 0), count as i64);
        let got = store.get_messages(get(topic, 0)).await.unwrap();
        assert_eq!(got.messages.len(), count);
        for (index, message) in got.messages.iter().enumerate() {
            assert_eq!(&body_of(message)[..], format!("{topic}-{index}").repeat(10).as_bytes());
        }
        let result = store.append(single(topic, 0, b"after", None)).await.unwrap();
        assert_eq!(split_log_offset(result.first_log_offset).unwrap().1, end);
        assert_eq!(result.first_queue_offset, count as i64);
        store.close().await.unwrap();
        report
    })
}

#[test]
fn zero_filled_tail_after_an_unclean_stop_is_truncated() {
    // Goal: the common crash: records, then the pre-allocated zeros. Reopen keeps every
    // record and appends continue at the end.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let (_, end) = append_and_crash(&config, "Z", 20);
    let report = reopen_and_check(&config, "Z", 20, end);
    assert!(!report.clean);
    assert_eq!(report.records_replayed, 20);
    assert_eq!(report.truncated_at, Some(end));
}

#[test]
fn garbage_tail_is_truncated_and_appends_continue() {
    // Goal: a torn write leaves garbage after the last record; recovery cuts it.
    // Method: write 300 non-zero bytes after the last record, reopen, check, reopen again.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let (_, end) = append_and_crash(&config, "G", 20);
    let garbage: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8 | 1).collect();
    write_at(&segment0(&config), end, &garbage);
    let report = reopen_and_check(&config, "G", 20, end);
    assert_eq!(report.truncated_at, Some(end));
    // The garbage is gone for good: the file reads as zeros after the new record.
    let bytes = std::fs::read(segment0(&config)).unwrap();
    let after = end as usize + 400;
    assert!(bytes[after..after + 300].iter().all(|&b| b == 0));
}

#[test]
fn half_written_record_is_truncated() {
    // Goal: a record whose header made it to disk but whose body did not is a torn tail.
    // Method: copy the first 60 bytes of record 0 to the end (its PHYSICALOFFSET is wrong
    // there and the rest is zeros), reopen.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let (positions, end) = append_and_crash(&config, "H", 10);
    let bytes = std::fs::read(segment0(&config)).unwrap();
    let head = bytes[positions[0] as usize..positions[0] as usize + 60].to_vec();
    write_at(&segment0(&config), end, &head);
    let report = reopen_and_check(&config, "H", 10, end);
    assert_eq!(report.truncated_at, Some(end));
}

#[test]
fn damage_with_valid_records_after_it_refuses_to_open() {
    // Goal: a bad record followed by good ones is corruption, reported with its position,
    // never truncated. Method: flip one body byte of record 5 of 10 (CRC mismatch), and in
    // a second store zero the header of record 5.
    for damage in ["flip body byte", "zero header"] {
        let dir = store_dir();
        let config = config(dir.path(), FlushMode::Sync);
        let (positions, _) = append_and_crash(&config, "X", 10);
        let target = positions[5];
        match damage {
            "flip body byte" => {
                let bytes = std::fs::read(segment0(&config)).unwrap();
                let at = target + 90;
                write_at(&segment0(&config), at, &[bytes[at as usize] ^ 0x55]);
            }
            _ => write_at(&segment0(&config), target, &[0u8; 8]),
        }
        let config2 = config.clone();
        let error = run(|| async move { ramjet_storage::LogStore::open(&config2, 0).await.err() });
        match error {
            Some(StoreError::Corrupt { log_id: 0, position, reason }) => {
                assert_eq!(position, target, "{damage}: {reason}");
                assert!(reason.contains(&positions[6].to_string()), "{damage}: {reason}");
            }
            other => panic!("{damage}: expected Corrupt, got {other:?}"),
        }
        // Nothing was truncated: the later records are still on disk.
        let bytes = std::fs::read(segment0(&config)).unwrap();
        assert_ne!(&bytes[positions[9] as usize..positions[9] as usize + 8], &[0u8; 8]);
    }
}

#[test]
fn unclean_reopen_replays_only_after_the_checkpoint() {
    // Goal: a clean close checkpoints; after more appends and a crash, recovery loads the
    // persisted consume queue and replays only the records after the checkpoint.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let (_, end) = append_and_crash(&config, "P", 12);
    reopen_and_check(&config, "P", 12, end); // appends "after" and closes cleanly
    let config2 = config.clone();
    let (checkpoint, end) = run(|| async move {
        let store = open(&config2).await;
        assert!(store.recovery_report().clean);
        let checkpoint = split_log_offset(store.end_log_offset()).unwrap().1;
        for index in 0..5 {
            store.append(single("P", 0, format!("tail-{index}").as_bytes(), None)).await.unwrap();
        }
        (checkpoint, split_log_offset(store.end_log_offset()).unwrap().1)
    });
    let config3 = config.clone();
    run(|| async move {
        let store = open(&config3).await;
        let report = store.recovery_report().clone();
        assert!(!report.clean);
        assert_eq!(report.start, checkpoint);
        assert_eq!(report.records_replayed, 5);
        assert!(!report.consume_queues_rebuilt);
        assert_eq!(store.max_offset("P", 0), 18);
        let got = store.get_messages(get("P", 13)).await.unwrap();
        let bodies: Vec<_> = got.messages.iter().map(body_of).collect();
        assert_eq!(bodies, (0..5).map(|i| format!("tail-{i}")).collect::<Vec<_>>());
        assert_eq!(split_log_offset(store.end_log_offset()).unwrap().1, end);
        store.close().await.unwrap();
    });
}

#[test]
fn lost_consume_queue_files_are_rebuilt_from_the_log() {
    // Goal: consume queues are derived data: deleting them loses nothing.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let (_, end) = append_and_crash(&config, "L", 15);
    reopen_and_check(&config, "L", 15, end);
    std::fs::remove_dir_all(config.consume_queue_root().join("L")).unwrap();
    let config2 = config.clone();
    run(|| async move {
        let store = open(&config2).await;
        assert!(store.recovery_report().consume_queues_rebuilt);
        assert_eq!(store.max_offset("L", 0), 16);
        let got = store.get_messages(get("L", 0)).await.unwrap();
        assert_eq!(got.status, GetStatus::Found);
        assert_eq!(got.messages.len(), 16);
        store.close().await.unwrap();
    });
}

#[test]
fn a_segment_cut_short_while_being_created_reopens() {
    // Goal: segments always reopen. Method: after a crash, leave an empty next segment
    // file (as a crash between create and allocate would) and a stray non-segment file.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let (_, end) = append_and_crash(&config, "E", 5);
    std::fs::write(config.log_dir(0).join("00000000000001048576"), b"").unwrap();
    std::fs::write(config.log_dir(0).join("notes.txt"), b"operator was here").unwrap();
    let report = reopen_and_check(&config, "E", 5, end);
    assert_eq!(report.segments_removed, 1);
}

#[test]
fn async_mode_flushes_within_the_interval_and_reopens_clean() {
    // Goal: async appends are acknowledged in memory, then written and fdatasynced without
    // further appends. Method: append, wait (bounded) for the flushed offset to reach the
    // end, close, reopen.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Async);
    let config2 = config.clone();
    run(|| async move {
        let store = open(&config2).await;
        for index in 0..50 {
            store.append(single("A", 0, format!("a{index}").as_bytes(), None)).await.unwrap();
        }
        let end = store.end_log_offset();
        let mut waited = 0;
        while store.flushed_log_offset() < end {
            assert!(waited < 1000, "not flushed within 10 s");
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            waited += 1;
        }
        assert!(store.stats().fdatasyncs >= 1);
        store.close().await.unwrap();
    });
    let config3 = config.clone();
    run(|| async move {
        let store = open(&config3).await;
        assert!(store.recovery_report().clean);
        assert_eq!(store.max_offset("A", 0), 50);
        store.close().await.unwrap();
    });
}

#[test]
fn periodic_checkpoints_bound_the_replay_after_a_crash() {
    // Goal: checkpoints taken while running (not only at close) persist consume queues, so
    // an unclean restart replays only the log after the last one. Method: 16 KiB
    // checkpoint interval, 200 sync appends of ~1 KiB, crash, reopen.
    let dir = store_dir();
    let mut config = config(dir.path(), FlushMode::Sync);
    config.checkpoint_interval_bytes = 16 * 1024;
    let body = vec![b'c'; 1000];
    let config2 = config.clone();
    let checkpoints = run(|| async move {
        let store = open(&config2).await;
        for _ in 0..200 {
            store.append(single("K", 0, &body, None)).await.unwrap();
        }
        // The checkpointer runs beside the writer: wait (bounded) until it has caught up
        // with at least one checkpoint.
        for _ in 0..1000 {
            if store.stats().checkpoints > 0 {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        store.stats().checkpoints
    });
    assert!(checkpoints > 0);
    let config3 = config.clone();
    run(|| async move {
        let store = open(&config3).await;
        let report = store.recovery_report().clone();
        assert!(!report.clean && report.start > 0, "{report:?}");
        assert!(report.records_replayed < 200, "{report:?}");
        assert!(!report.consume_queues_rebuilt, "{report:?}");
        assert_eq!(store.max_offset("K", 0), 200);
        let got = store.get_messages(get("K", 0)).await.unwrap();
        assert_eq!(got.messages.len(), 200);
        store.close().await.unwrap();
    });
}

/// Inputs of one row of the decision table in `recovery.rs`.
#[derive(Debug, Clone, Copy)]
struct Row {
    clean: bool,
    /// The slot at the stop position X is zeros (else garbage).
    zero: bool,
    /// A segment file after X's segment exists.
    later: bool,
    /// Where a valid record after X is: nowhere, in X's segment, or at the later
    /// segment's start.
    valid_after: ValidAfter,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ValidAfter {
    None,
    SameSegment,
    LaterSegment,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Opens with the log ending at X.
    EndsAtX { truncated: bool, segments_removed: u64 },
    /// Refuses to open: `Corrupt` at X.
    Corrupt,
}

/// The decision table of `recovery.rs`, written out as a function of its inputs.
fn expected(row: Row) -> Outcome {
    let trusted = row.clean && row.zero && !row.later;
    if trusted {
        // `clean | zero | no | (not read)`: nothing past X is read or repaired.
        return Outcome::EndsAtX { truncated: false, segments_removed: 0 };
    }
    if row.valid_after != ValidAfter::None {
        return Outcome::Corrupt; // `any | zero, bad | any | yes`
    }
    // `clean | zero | yes | no`, `clean | bad | any | no`, `unclean | zero, bad | any | no`.
    Outcome::EndsAtX { truncated: true, segments_removed: u64::from(row.later) }
}

/// Record 0's bytes re-addressed to `position` (its PHYSICALOFFSET patched), so it is a
/// valid record there.
fn valid_record_at(config: &StoreConfig, first: u64, position: u64) -> Vec<u8> {
    let bytes = std::fs::read(segment0(config)).unwrap();
    let total = i32::from_be_bytes(bytes[first as usize..first as usize + 4].try_into().unwrap());
    let mut record = bytes[first as usize..first as usize + total as usize].to_vec();
    let offset = ramjet_storage::log_offset_of(0, position);
    record[28..36].copy_from_slice(&offset.to_be_bytes());
    record
}

#[test]
fn recovery_decision_table_every_row() {
    // Goal: every input combination of the recovery decision table (recovery.rs) leads to
    // the decision the table states, including "clean stop, bad record".
    // Method: for each combination, write 10 sync records, stop cleanly (close) or not
    // (drop), then construct the on-disk state at the log end X: garbage or zeros at X,
    // a later segment file, a valid record after X in the same segment or at the start
    // of the later one. Open and compare with `expected`; when the log opens, every
    // record is intact and the next append lands at X.
    let mut rows = Vec::new();
    for clean in [true, false] {
        for zero in [true, false] {
            for later in [false, true] {
                let mut valid = vec![ValidAfter::None, ValidAfter::SameSegment];
                if later {
                    valid.push(ValidAfter::LaterSegment);
                }
                for valid_after in valid {
                    rows.push(Row { clean, zero, later, valid_after });
                }
            }
        }
    }
    assert_eq!(rows.len(), 20);
    for row in rows {
        let dir = store_dir();
        let config = config(dir.path(), FlushMode::Sync);
        let segment_size = config.segment_size_bytes;
        let config2 = config.clone();
        let clean = row.clean;
        let (positions, x) = run(|| async move {
            let store = open(&config2).await;
            let mut positions = Vec::new();
            for index in 0..10 {
                let body = format!("row-{index}").repeat(10);
                let result = store.append(single("R", 0, body.as_bytes(), None)).await.unwrap();
                positions.push(split_log_offset(result.first_log_offset).unwrap().1);
            }
            let end = split_log_offset(store.end_log_offset()).unwrap().1;
            if clean {
                store.close().await.unwrap();
            }
            (positions, end)
        });
        if !row.zero {
            let garbage: Vec<u8> = (0..300u32).map(|i| (i * 13 + 5) as u8 | 1).collect();
            write_at(&segment0(&config), x, &garbage);
        }
        if row.valid_after == ValidAfter::SameSegment {
            let at = x + 1024;
            write_at(&segment0(&config), at, &valid_record_at(&config, positions[0], at));
        }
        if row.later {
            let later = config.log_dir(0).join(format!("{segment_size:020}"));
            let file = std::fs::File::create(&later).unwrap();
            file.set_len(segment_size).unwrap();
            if row.valid_after == ValidAfter::LaterSegment {
                let record = valid_record_at(&config, positions[0], segment_size);
                write_at(&later, 0, &record);
            }
        }
        let config3 = config.clone();
        let outcome = run(|| async move {
            match ramjet_storage::LogStore::open(&config3, 0).await {
                Err(StoreError::Corrupt { position, .. }) => {
                    assert_eq!(position, x, "{row:?}");
                    Outcome::Corrupt
                }
                Err(other) => panic!("{row:?}: {other}"),
                Ok(store) => {
                    let report = store.recovery_report().clone();
                    assert_eq!(report.end, x, "{row:?}");
                    assert_eq!(report.clean, row.clean, "{row:?}");
                    let got = store.get_messages(get("R", 0)).await.unwrap();
                    assert_eq!(got.messages.len(), 10, "{row:?}");
                    let result = store.append(single("R", 0, b"next", None)).await.unwrap();
                    assert_eq!(split_log_offset(result.first_log_offset).unwrap().1, x);
                    store.close().await.unwrap();
                    Outcome::EndsAtX {
                        truncated: report.truncated_at == Some(x),
                        segments_removed: report.segments_removed,
                    }
                }
            }
        });
        assert_eq!(outcome, expected(row), "{row:?}");
    }
}
