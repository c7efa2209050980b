//! End-to-end tests of `LogStore` on a real ext4 directory: append and read, batches,
//! segment rolling, hot and cold reads, durability, reopen, statuses, group commit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::rc::Rc;

use common::*;
use ramjet_proto::message::{decode_record, tags_code, BLANK_MAGIC};
use ramjet_storage::{
    log_offset_of, split_log_offset, FlushMode, GetRequest, GetStatus, LogStore, StoreError,
};

fn get<'a>(topic: &'a str, queue_id: i32, queue_offset: i64) -> GetRequest<'a> {
    GetRequest {
        topic,
        queue_id,
        queue_offset,
        max_count: 32,
        max_bytes: 1 << 20,
        tags_filter: None,
    }
}

#[test]
fn append_then_read_round_trip() {
    // Goal: an appended record reads back whole, with the append-time fields patched.
    // Method: append one record, pull it and look it up by offset; decode both.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Async);
    run(|| async move {
        let store = open(&config).await;
        let result = store.append(single("TopicA", 0, b"hello", Some("TagA"))).await.unwrap();
        assert_eq!(result.first_queue_offset, 0);
        assert_eq!(result.first_log_offset, log_offset_of(0, 0));
        assert_eq!(result.record_offsets, vec![result.first_log_offset]);
        let got = store.get_messages(get("TopicA", 0, 0)).await.unwrap();
        assert_eq!(got.status, GetStatus::Found);
        assert_eq!((got.next_offset, got.min_offset, got.max_offset), (1, 0, 1));
        assert_eq!(got.tags_codes, vec![tags_code("TagA")]);
        let message = decode_record(&got.messages[0], true).unwrap();
        assert_eq!(&message.body[..], b"hello");
        assert_eq!(message.queue_offset, 0);
        assert_eq!(message.physical_offset, result.first_log_offset);
        assert_eq!(message.store_timestamp, result.store_timestamp);
        let by_offset = store.read_record(result.first_log_offset).await.unwrap().unwrap();
        assert_eq!(by_offset, got.messages[0]);
        assert_eq!(store.read_record(result.first_log_offset + 1).await.unwrap(), None);
        assert_eq!(store.read_record(log_offset_of(1, 0)).await.unwrap(), None);
        store.close().await.unwrap();
    });
}

#[test]
fn many_queues_keep_their_own_offsets() {
    // Goal: interleaved appends to many queues each get contiguous queue offsets.
    // Method: round-robin 5 rounds over 3 topics x 4 queues, then pull each queue.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Async);
    run(|| async move {
        let store = open(&config).await;
        for round in 0..5 {
            for topic in ["T1", "T2", "T3"] {
                for queue_id in 0..4 {
                    let body = format!("{topic}-{queue_id}-{round}");
                    let result =
                        store.append(single(topic, queue_id, body.as_bytes(), None)).await.unwrap();
                    assert_eq!(result.first_queue_offset, round);
                }
            }
        }
        for topic in ["T1", "T2", "T3"] {
            for queue_id in 0..4 {
                assert_eq!(store.max_offset(topic, queue_id), 5);
                let got = store.get_messages(get(topic, queue_id, 0)).await.unwrap();
                let bodies: Vec<_> = got.messages.iter().map(body_of).collect();
                let expected: Vec<_> = (0..5).map(|r| format!("{topic}-{queue_id}-{r}")).collect();
                assert_eq!(bodies, expected);
            }
        }
        store.close().await.unwrap();
    });
}

#[test]
fn batch_append_gets_contiguous_offsets() {
    // Goal: a batch is stored contiguously: log offsets chain by record size, queue
    // offsets are consecutive. Method: append 1 record, then a batch of 10.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    run(|| async move {
        let store = open(&config).await;
        store.append(single("B", 1, b"first", None)).await.unwrap();
        let result = store.append(batch("B", 1, "m", 10)).await.unwrap();
        assert_eq!(result.first_queue_offset, 1);
        assert_eq!(result.record_offsets.len(), 10);
        let got = store.get_messages(get("B", 1, 1)).await.unwrap();
        assert_eq!(got.messages.len(), 10);
        for (index, message) in got.messages.iter().enumerate() {
            let decoded = decode_record(message, true).unwrap();
            assert_eq!(decoded.physical_offset, result.record_offsets[index]);
            assert_eq!(decoded.queue_offset, 1 + index as i64);
            if index > 0 {
                let previous = result.record_offsets[index - 1];
                assert_eq!(
                    result.record_offsets[index],
                    previous + got.messages[index - 1].len() as i64
                );
            }
        }
        store.close().await.unwrap();
    });
}

#[test]
fn segment_rolls_with_a_blank_filler() {
    // Goal: a record that does not fit goes to a new segment, after an 8-byte filler.
    // Method: 1 MiB segments, 100 KiB bodies: the 11th record cannot fit in the first.
    // Check the filler bytes on disk, the second file's name, and all reads after reopen.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let body = vec![7u8; 100 * 1024];
    run(|| async move {
        let store = open(&config).await;
        let mut offsets = Vec::new();
        for _ in 0..25 {
            offsets
                .push(store.append(single("Roll", 0, &body, None)).await.unwrap().first_log_offset);
        }
        let second = offsets.iter().position(|&o| o >= 1 << 20).unwrap();
        assert_eq!(offsets[second], 1 << 20, "the first record of a segment starts it");
        let last_in_first = offsets[second - 1] as u64;
        let record_len = store.read_record(offsets[0]).await.unwrap().unwrap().len() as u64;
        let filler_at = last_in_first + record_len;
        store.close().await.unwrap();

        let segment0 = std::fs::read(config.log_dir(0).join("00000000000000000000")).unwrap();
        let remaining = i32::from_be_bytes(segment0[filler_at as usize..][..4].try_into().unwrap());
        let magic = i32::from_be_bytes(segment0[filler_at as usize + 4..][..4].try_into().unwrap());
        assert_eq!(magic, BLANK_MAGIC);
        assert_eq!(remaining as u64, (1 << 20) - filler_at);
        assert!(config.log_dir(0).join("00000000000001048576").exists());

        let store = open(&config).await;
        assert!(store.recovery_report().clean);
        let mut next = 0;
        while next < 25 {
            let got = store.get_messages(get("Roll", 0, next)).await.unwrap();
            assert_eq!(got.status, GetStatus::Found);
            for message in &got.messages {
                assert_eq!(body_of(message).len(), body.len());
            }
            next = got.next_offset;
        }
        let result = store.append(single("Roll", 0, &body, None)).await.unwrap();
        assert_eq!(result.first_queue_offset, 25);
        store.close().await.unwrap();
    });
}

#[test]
fn reads_come_from_the_tail_cache_or_from_disk() {
    // Goal: pulls near the tail never touch the disk; with no cache they read the disk.
    // Method: the same appends with the default cache and with a zero-byte cache; compare
    // the read counters and the bytes.
    for tail_cache_bytes in [64 << 20, 0] {
        let dir = store_dir();
        let mut config = config(dir.path(), FlushMode::Sync);
        config.tail_cache_bytes = tail_cache_bytes;
        run(|| async move {
            let store = open(&config).await;
            for index in 0..200 {
                store
                    .append(single("Cache", 0, format!("body-{index}").as_bytes(), None))
                    .await
                    .unwrap();
            }
            let mut next = 0;
            while next < 200 {
                let got = store.get_messages(get("Cache", 0, next)).await.unwrap();
                for (index, message) in got.messages.iter().enumerate() {
                    assert_eq!(
                        &body_of(message)[..],
                        format!("body-{}", next as usize + index).as_bytes()
                    );
                }
                next = got.next_offset;
            }
            let record = store.read_record(log_offset_of(0, 0)).await.unwrap().unwrap();
            assert_eq!(&body_of(&record)[..], b"body-0");
            let stats = store.stats();
            if tail_cache_bytes == 0 {
                assert!(stats.disk_reads > 0 && stats.cache_reads == 0, "{stats:?}");
            } else {
                assert!(stats.cache_reads > 0 && stats.disk_reads == 0, "{stats:?}");
            }
            store.close().await.unwrap();
        });
    }
}

#[test]
fn sync_mode_acknowledged_records_survive_without_close() {
    // Goal: under sync flush an acknowledged append is durable. Method: concurrent sync
    // appends; drop the store without close (its tasks are cancelled, the abort marker
    // stays); open a fresh store on the same directory: every acknowledged record is there.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    run(|| async move {
        let store = open(&config).await;
        let mut tasks = Vec::new();
        for index in 0..64 {
            let store = store.clone();
            tasks.push(glommio::spawn_local(async move {
                store
                    .append(single("Durable", index % 4, format!("m{index}").as_bytes(), None))
                    .await
            }));
        }
        let mut acknowledged = 0;
        for task in tasks {
            task.await.unwrap();
            acknowledged += 1;
        }
        drop(store);
        let store = open(&config).await;
        let report = store.recovery_report().clone();
        assert!(!report.clean);
        assert_eq!(report.records_replayed, acknowledged);
        let total: i64 = (0..4).map(|q| store.max_offset("Durable", q)).sum();
        assert_eq!(total, 64);
        for queue_id in 0..4 {
            let got = store.get_messages(get("Durable", queue_id, 0)).await.unwrap();
            assert_eq!(got.messages.len(), 16);
        }
        store.close().await.unwrap();
    });
}

#[test]
fn clean_close_then_reopen_continues_at_the_right_offsets() {
    // Goal: after a clean close, reopen replays nothing and appends continue where they
    // stopped, in the log and in each queue. Method: append, close, reopen, append.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Async);
    run(|| async move {
        let store = open(&config).await;
        let mut last = None;
        for index in 0..30 {
            last = Some(store.append(single("C", index % 3, b"x", None)).await.unwrap());
        }
        let end = store.end_log_offset();
        store.close().await.unwrap();
        assert!(matches!(
            store.append(single("C", 0, b"late", None)).await,
            Err(StoreError::Closed)
        ));
        let store = open(&config).await;
        let report = store.recovery_report().clone();
        assert!(report.clean);
        assert_eq!(report.records_replayed, 0);
        assert_eq!(store.end_log_offset(), end);
        assert_eq!(store.max_offset("C", 0), 10);
        let result = store.append(single("C", 0, b"after", None)).await.unwrap();
        assert_eq!(result.first_queue_offset, 10);
        assert_eq!(result.first_log_offset, end);
        assert!(result.first_log_offset > last.unwrap().first_log_offset);
        let got = store.get_messages(get("C", 0, 9)).await.unwrap();
        assert_eq!(got.messages.len(), 2);
        assert_eq!(&body_of(&got.messages[1])[..], b"after");
        store.close().await.unwrap();
    });
}

#[test]
fn get_messages_statuses_follow_rocketmq() {
    // Goal: statuses and next offsets as RocketMQ's `getMessage`, and tags filtering in the scan.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Async);
    run(|| async move {
        let store = open(&config).await;
        let empty = store.get_messages(get("S", 0, 0)).await.unwrap();
        assert_eq!((empty.status, empty.next_offset), (GetStatus::NoMessageInQueue, 0));
        for tags in ["A", "B", "A", "B", "B"] {
            store.append(single("S", 0, tags.as_bytes(), Some(tags))).await.unwrap();
        }
        let cases = [
            (-1, GetStatus::OffsetTooSmall, 0),
            (5, GetStatus::OffsetOverflowOne, 5),
            (9, GetStatus::OffsetOverflowBadly, 5),
        ];
        for (offset, status, next) in cases {
            let got = store.get_messages(get("S", 0, offset)).await.unwrap();
            assert_eq!((got.status, got.next_offset), (status, next), "offset {offset}");
            assert!(got.messages.is_empty());
            assert_eq!((got.min_offset, got.max_offset), (0, 5));
        }
        let code_a = [tags_code("A")];
        let request = GetRequest { tags_filter: Some(&code_a), ..get("S", 0, 1) };
        let got = store.get_messages(request).await.unwrap();
        assert_eq!(got.status, GetStatus::Found);
        assert_eq!(got.messages.len(), 1);
        assert_eq!(&body_of(&got.messages[0])[..], b"A");
        assert_eq!(got.next_offset, 5, "skipped entries move next_offset past them");
        let code_c = [tags_code("C")];
        let request = GetRequest { tags_filter: Some(&code_c), ..get("S", 0, 0) };
        let got = store.get_messages(request).await.unwrap();
        assert_eq!((got.status, got.next_offset), (GetStatus::NoMatchedMessage, 5));
        let request = GetRequest { max_count: 2, ..get("S", 0, 0) };
        let got = store.get_messages(request).await.unwrap();
        assert_eq!((got.messages.len(), got.next_offset), (2, 2));
        let request = GetRequest { max_bytes: 1, ..get("S", 0, 0) };
        let got = store.get_messages(request).await.unwrap();
        assert_eq!(got.messages.len(), 1, "at least one message regardless of max_bytes");
        store.close().await.unwrap();
    });
}

#[test]
fn concurrent_sync_appends_share_fdatasyncs() {
    // Goal: group commit. Method: 256 appends started together in sync mode; all complete,
    // with fewer fdatasyncs (and writes) than appends.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    run(|| async move {
        let store: Rc<LogStore> = open(&config).await;
        let tasks: Vec<_> = (0..256)
            .map(|index| {
                let store = store.clone();
                glommio::spawn_local(async move {
                    store.append(single("G", index % 8, b"group", None)).await.unwrap()
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        let stats = store.stats();
        assert_eq!(stats.appends, 256);
        assert!(stats.fdatasyncs < stats.appends, "{stats:?}");
        assert!(stats.writes < stats.appends, "{stats:?}");
        store.close().await.unwrap();
    });
}

#[test]
fn bad_batches_are_refused() {
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Async);
    run(|| async move {
        let store = open(&config).await;
        let mut wrong_queue = single("Q", 0, b"x", None);
        wrong_queue.queue_id = 1;
        assert!(matches!(store.append(wrong_queue).await, Err(StoreError::InvalidBatch { .. })));
        let mut wrong_topic = single("Q", 0, b"x", None);
        wrong_topic.topic = "R".to_string();
        assert!(matches!(store.append(wrong_topic).await, Err(StoreError::InvalidBatch { .. })));
        let mut missing_tags = single("Q", 0, b"x", None);
        missing_tags.tags_codes.clear();
        assert!(matches!(store.append(missing_tags).await, Err(StoreError::InvalidBatch { .. })));
        let mut truncated = single("Q", 0, b"x", None);
        truncated.records.truncate(50);
        assert!(matches!(store.append(truncated).await, Err(StoreError::InvalidBatch { .. })));
        let bad_topic = single("../x", 0, b"x", None);
        assert!(matches!(store.append(bad_topic).await, Err(StoreError::InvalidTopic { .. })));
        let big = single("Q", 0, &vec![0u8; 1 << 20], None);
        assert!(matches!(store.append(big).await, Err(StoreError::MessageTooLarge)));
        assert_eq!(store.max_offset("Q", 0), 0);
        assert_eq!(split_log_offset(store.end_log_offset()), Some((0, 0)));
        store.close().await.unwrap();
    });
}
