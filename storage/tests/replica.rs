//! Replication through the storage API alone: a master log read with `read_raw` and
//! copied into a slave log with `place_replicated`, across segment rolls, from the tail
//! cache and from disk. The two logs must be byte-identical, the slave's consume queues
//! must serve the same records, a reopened slave continues where it was, and ranges that
//! do not continue the slave's log are refused without changing it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use ramjet_storage::{FlushMode, GetRequest, GetStatus, LogStore, StoreError};

const QUEUES: i32 = 3;

fn get(topic: &str, queue_id: i32, queue_offset: i64) -> GetRequest<'_> {
    GetRequest {
        topic,
        queue_id,
        queue_offset,
        max_count: 100_000,
        max_bytes: 256 << 20,
        tags_filter: None,
    }
}

async fn fill(store: &LogStore, from: usize, count: usize) {
    for index in from..from + count {
        let mut body = format!("m-{index}-").into_bytes();
        body.resize(500 + (index * 37) % 3000, b'x');
        let tags = format!("T{}", index % 4);
        store.append(single("R", index as i32 % QUEUES, &body, Some(&tags))).await.unwrap();
    }
}

/// Copies the master's written bytes into the slave; returns the frames copied.
async fn copy(master: &LogStore, slave: &LogStore, max_bytes: usize) -> usize {
    let mut frames = 0;
    loop {
        let position = slave.replica_position().end;
        let span = master.read_raw(position, max_bytes, Duration::from_millis(50)).await.unwrap();
        if span.is_empty() {
            return frames;
        }
        let mut joined = BytesMut::new();
        for piece in &span.pieces {
            joined.extend_from_slice(piece);
        }
        let placed = slave.place_replicated(position, joined.freeze()).unwrap();
        assert_eq!(placed.end, span.end, "slave and master agree on where the span ends");
        slave.wait_replicated(placed.end).await.unwrap();
        frames += 1;
    }
}

async fn whole_queue(store: &LogStore, queue_id: i32) -> Vec<Bytes> {
    let got = store.get_messages(get("R", queue_id, 0)).await.unwrap();
    if store.max_offset("R", queue_id) > 0 {
        assert_eq!(got.status, GetStatus::Found);
    }
    got.messages
}

fn log_files(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let dir = root.join("commitlog").join("000");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 20)
        .collect();
    names.sort();
    names.into_iter().map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap())).collect()
}

// Goal: the slave's log is a byte-identical copy, its queues serve the same records, and a
// reopened slave continues at its end.
// Method: 1 MiB segments (several rolls), a 256 KiB tail cache (early spans come from
// disk, late ones from the cache), small spans; compare files and every queue; reopen the
// slave, append more on the master, copy again, compare again.
#[test]
fn slave_log_is_a_byte_identical_copy_across_rolls_and_restarts() {
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    run(|| async {
        let mut master_config = config(master_dir.path(), FlushMode::Async);
        master_config.tail_cache_bytes = 256 * 1024;
        let slave_config = config(slave_dir.path(), FlushMode::Sync);
        let master = open(&master_config).await;
        fill(&master, 0, 2_000).await;
        let slave = open(&slave_config).await;
        assert!(copy(&master, &slave, 64 * 1024).await > 10);
        for queue_id in 0..QUEUES {
            assert_eq!(whole_queue(&master, queue_id).await, whole_queue(&slave, queue_id).await);
            assert_eq!(master.max_offset("R", queue_id), slave.max_offset("R", queue_id));
        }
        slave.close().await.unwrap();
        let slave = open(&slave_config).await;
        fill(&master, 2_000, 700).await;
        copy(&master, &slave, 1 << 20).await;
        assert_eq!(slave.replica_position().end, master.replica_position().end);
        for queue_id in 0..QUEUES {
            assert_eq!(whole_queue(&master, queue_id).await, whole_queue(&slave, queue_id).await);
        }
        master.close().await.unwrap();
        slave.close().await.unwrap();
    });
    let (master_files, slave_files) = (log_files(master_dir.path()), log_files(slave_dir.path()));
    assert!(master_files.len() >= 3, "several segments");
    assert_eq!(master_files.len(), slave_files.len());
    for ((master_name, master_bytes), (slave_name, slave_bytes)) in
        master_files.iter().zip(&slave_files)
    {
        assert_eq!(master_name, slave_name);
        assert!(master_bytes == slave_bytes, "segment {master_name} differs");
    }
}

// Goal: a range that does not continue the slave's log is refused and changes nothing.
// Method: replay a span at a wrong position, a span with a flipped PHYSICALOFFSET byte,
// and a span cut inside a record; the log end stays put; the right span then applies.
#[test]
fn ranges_that_do_not_continue_the_log_are_refused() {
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    run(|| async {
        let master = open(&config(master_dir.path(), FlushMode::Sync)).await;
        fill(&master, 0, 50).await;
        let slave = open(&config(slave_dir.path(), FlushMode::Sync)).await;
        let span = master.read_raw(0, 1 << 20, Duration::ZERO).await.unwrap();
        let mut joined = BytesMut::new();
        for piece in &span.pieces {
            joined.extend_from_slice(piece);
        }
        let good = joined.freeze();
        let refused = |r: Result<_, StoreError>| {
            assert!(matches!(r, Err(StoreError::ReplicaMismatch { .. })), "{r:?}");
        };
        refused(slave.place_replicated(100, good.clone()));
        let mut bad = good.to_vec();
        bad[35] ^= 1; // the low byte of the first PHYSICALOFFSET
        refused(slave.place_replicated(0, Bytes::from(bad)));
        refused(slave.place_replicated(0, good.slice(..good.len() - 10)));
        assert_eq!(slave.replica_position().end, 0);
        let placed = slave.place_replicated(0, good).unwrap();
        assert_eq!(placed.records, 50);
        assert_eq!(placed.queues.len(), QUEUES as usize);
        slave.wait_replicated(placed.end).await.unwrap();
        assert_eq!(slave.replica_position().durable, master.replica_position().end);
        assert!(matches!(
            master.read_raw(placed.end + 1, 1024, Duration::ZERO).await,
            Err(StoreError::ReplicaMismatch { .. })
        ));
        master.close().await.unwrap();
        slave.close().await.unwrap();
    });
}

// Goal: a slave whose log ran past its master's cuts it back to the master's end, keeps
// serving what is below it, and then continues byte-identical with the master.
// Method: copy 1,500 records (several segments); remember the end after 1,000 records;
// truncate the slave there; every queue's max offset drops to the records below the cut;
// copy again from the master: the logs agree again, also after a reopen.
#[test]
fn a_slave_log_past_the_master_is_truncated_and_continues() {
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    run(|| async {
        let master = open(&config(master_dir.path(), FlushMode::Async)).await;
        fill(&master, 0, 1_000).await;
        let cut = master.replica_position().end;
        fill(&master, 1_000, 500).await;
        let slave_config = config(slave_dir.path(), FlushMode::Async);
        let slave = open(&slave_config).await;
        copy(&master, &slave, 256 * 1024).await;
        assert_eq!(slave.truncate_replica(cut).await.unwrap(), cut);
        assert_eq!(slave.replica_position().end, cut);
        let below: i64 = (0..QUEUES).map(|q| slave.max_offset("R", q)).sum();
        assert_eq!(below, 1_000);
        for queue_id in 0..QUEUES {
            let got = whole_queue(&slave, queue_id).await;
            assert_eq!(got.len() as i64, slave.max_offset("R", queue_id));
        }
        copy(&master, &slave, 256 * 1024).await;
        for queue_id in 0..QUEUES {
            assert_eq!(whole_queue(&master, queue_id).await, whole_queue(&slave, queue_id).await);
        }
        slave.close().await.unwrap();
        let slave = open(&slave_config).await;
        assert_eq!(slave.replica_position().end, master.replica_position().end);
        for queue_id in 0..QUEUES {
            assert_eq!(whole_queue(&master, queue_id).await, whole_queue(&slave, queue_id).await);
        }
        master.close().await.unwrap();
        slave.close().await.unwrap();
    });
    let (master_files, slave_files) = (log_files(master_dir.path()), log_files(slave_dir.path()));
    assert_eq!(master_files.len(), slave_files.len());
    for ((master_name, master_bytes), (slave_name, slave_bytes)) in
        master_files.iter().zip(&slave_files)
    {
        assert_eq!(master_name, slave_name);
        assert!(master_bytes == slave_bytes, "segment {master_name} differs");
    }
}

// Goal: `read_raw_appended` serves appended bytes before the master's write of them is
// done (the master streams while it writes), says how far the log was written, wakes at
// the appended end when an append arrives, and its spans place on a slave like
// `read_raw`'s.
// Method: async flush; read from 0 right after the appends (no yield to the writer in
// between); then a read parked at the end, woken by one more append.
#[test]
fn appended_bytes_are_served_while_the_write_is_in_flight() {
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    run(|| async {
        let master = open(&config(master_dir.path(), FlushMode::Async)).await;
        let slave = open(&config(slave_dir.path(), FlushMode::Async)).await;
        fill(&master, 0, 20).await;
        let end = master.replica_position().end;
        let span = master.read_raw_appended(0, 1 << 20, Duration::ZERO).await.unwrap();
        assert_eq!(span.end, end, "every appended byte, written or not");
        assert!(span.written <= end);
        let mut joined = BytesMut::new();
        for piece in &span.pieces {
            joined.extend_from_slice(piece);
        }
        let placed = slave.place_replicated(0, joined.freeze()).unwrap();
        assert_eq!(placed.records, 20);
        let waiting = master.read_raw_appended(end, 1 << 20, Duration::from_secs(30));
        let append = async {
            fill(&master, 20, 1).await;
        };
        let (more, ()) = futures_lite::future::zip(waiting, append).await;
        let more = more.unwrap();
        assert_eq!((more.position, more.end), (end, master.replica_position().end));
        master.close().await.unwrap();
        slave.close().await.unwrap();
    });
}
