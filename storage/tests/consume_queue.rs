//! Consume queues through `LogStore`: the in-memory part is a bounded tail and older
//! entries are read from the consume-queue files; transaction half messages stay out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ramjet_proto::message::{
    decode_record, tags_code, SYSFLAG_TRANSACTION_COMMIT, SYSFLAG_TRANSACTION_PREPARED,
    SYSFLAG_TRANSACTION_ROLLBACK,
};
use ramjet_storage::{FlushMode, GetRequest, GetStatus};

fn get(topic: &str, queue_offset: i64, max_count: u32) -> GetRequest<'_> {
    GetRequest {
        topic,
        queue_id: 0,
        queue_offset,
        max_count,
        max_bytes: 64 << 20,
        tags_filter: None,
    }
}

#[test]
fn consume_queue_memory_stays_bounded_and_old_entries_read_from_files() {
    // Goal: a long-running log does not keep every consume-queue entry in memory, and
    // pulls far behind the tail still see every message. Method: 256 entries in memory
    // per queue, 16 KiB checkpoints; append 6,000 records over two queues (every third
    // tagged), check the in-memory count stays bounded, then pull queue 0 from offset 0
    // with and without a tags filter, across the file/memory boundary; reopen (unclean)
    // and do it again.
    let dir = store_dir();
    let mut config = config(dir.path(), FlushMode::Sync);
    config.consume_queue_memory_entries = 256;
    config.checkpoint_interval_bytes = 16 * 1024;
    let config2 = config.clone();
    run(|| async move {
        let store = open(&config2).await;
        for index in 0..6_000 {
            let tags = (index % 3 == 0).then_some("hot");
            let body = format!("m-{index}");
            store.append(single("B", index % 2, body.as_bytes(), tags)).await.unwrap();
        }
        // The checkpointer runs beside the writer; wait (bounded) for it to trim.
        for _ in 0..1000 {
            if store.consume_queue_entries_in_memory() < 2 * 1_500 {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        let in_memory = store.consume_queue_entries_in_memory();
        assert!(in_memory < 2 * 1_500, "{in_memory} entries in memory");
        check_queue(&store).await;
        // Drop without closing: an unclean stop.
    });
    run(|| async move {
        let store = open(&config).await;
        assert!(!store.recovery_report().consume_queues_rebuilt);
        assert!(store.consume_queue_entries_in_memory() < 2 * 1_500);
        check_queue(&store).await;
        store.close().await.unwrap();
    });
}

async fn check_queue(store: &ramjet_storage::LogStore) {
    assert_eq!(store.max_offset("B", 0), 3_000);
    let mut offset = 0;
    let mut seen = 0;
    while offset < 3_000 {
        let got = store.get_messages(get("B", offset, 97)).await.unwrap();
        assert_eq!(got.status, GetStatus::Found, "at {offset}");
        for message in &got.messages {
            let message = decode_record(message, true).unwrap();
            assert_eq!(message.queue_offset, offset);
            assert_eq!(&message.body[..], format!("m-{}", offset * 2).as_bytes());
            offset += 1;
            seen += 1;
        }
        assert_eq!(got.next_offset, offset);
    }
    assert_eq!(seen, 3_000);
    let hot = [tags_code("hot")];
    let mut filtered = 0;
    let mut offset = 0;
    for _ in 0..10_000 {
        let mut request = get("B", offset, 32);
        request.tags_filter = Some(&hot);
        let got = store.get_messages(request).await.unwrap();
        match got.status {
            GetStatus::Found | GetStatus::NoMatchedMessage => {
                for message in &got.messages {
                    let message = decode_record(message, true).unwrap();
                    assert_eq!(message.queue_offset * 2 % 3, 0);
                }
                filtered += got.messages.len();
                offset = got.next_offset;
            }
            GetStatus::OffsetOverflowOne => break,
            other => panic!("{other:?} at {offset}"),
        }
    }
    assert_eq!(filtered, 1_000);
}

#[test]
fn prepared_and_rollback_records_stay_out_of_consume_queues() {
    // Goal: transaction half messages (PREPARED, 0x4) and ROLLBACK records (0xC) are in
    // the log but not in a consume queue, and store QUEUEOFFSET 0 as in the reference; COMMIT
    // records (0x8) and normal ones enter it. Also after a rebuild from the log.
    let dir = store_dir();
    let config = config(dir.path(), FlushMode::Sync);
    let config2 = config.clone();
    let prepared_offset = run(|| async move {
        let store = open(&config2).await;
        store.append(single("T", 0, b"normal-0", None)).await.unwrap();
        let half = store
            .append(single_with("T", 0, b"half", SYSFLAG_TRANSACTION_PREPARED, &[]))
            .await
            .unwrap();
        assert_eq!(half.first_queue_offset, 0);
        let rollback = store
            .append(single_with("T", 0, b"rollback", SYSFLAG_TRANSACTION_ROLLBACK, &[]))
            .await
            .unwrap();
        assert_eq!(rollback.first_queue_offset, 0);
        let commit = store
            .append(single_with("T", 0, b"commit", SYSFLAG_TRANSACTION_COMMIT, &[]))
            .await
            .unwrap();
        assert_eq!(commit.first_queue_offset, 1);
        let record = store.read_record(half.first_log_offset).await.unwrap().unwrap();
        assert_eq!(decode_record(&record, true).unwrap().queue_offset, 0);
        half.first_log_offset
    });
    // Unclean stop; then lose the consume queues so they are rebuilt from the log.
    std::fs::remove_dir_all(config.consume_queue_root().join("T")).ok();
    run(|| async move {
        let store = open(&config).await;
        assert_eq!(store.max_offset("T", 0), 2);
        let got = store.get_messages(get("T", 0, 32)).await.unwrap();
        let bodies: Vec<_> = got.messages.iter().map(body_of).collect();
        assert_eq!(bodies, vec![&b"normal-0"[..], &b"commit"[..]]);
        assert!(store.read_record(prepared_offset).await.unwrap().is_some());
        store.close().await.unwrap();
    });
}
