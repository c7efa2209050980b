//! Shared helpers for storage tests: an executor with little locked memory, a store
//! directory on a real filesystem, and record builders.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use glommio::{LocalExecutorBuilder, Placement};
use ramjet_proto::message::{encode_properties, encode_record, tags_code, MessageMeta};
use ramjet_storage::{open_or_create_meta, AppendBatch, FlushMode, LogStore, StoreConfig};

/// Runs `f` on a glommio executor with 1 MiB of io memory (RLIMIT_MEMLOCK is 8 MiB here).
pub fn run<T, F: Future<Output = T>>(f: impl FnOnce() -> F) -> T {
    let executor = LocalExecutorBuilder::new(Placement::Unbound).io_memory(1 << 20).make().unwrap();
    executor.run(f())
}

/// A temporary store directory on ext4 (`/var/tmp`), not tmpfs, so O_DIRECT is real.
pub fn store_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("ramjet-storage-").tempdir_in("/var/tmp").unwrap()
}

/// A config with 1 MiB segments so tests exercise rolling.
pub fn config(root: &Path, flush: FlushMode) -> StoreConfig {
    let mut config = StoreConfig::new(root);
    config.segment_size_bytes = 1 << 20;
    config.flush = flush;
    config.flush_interval_ms = 10;
    open_or_create_meta(root, 1).unwrap();
    config
}

pub async fn open(config: &StoreConfig) -> Rc<LogStore> {
    LogStore::open(config, 0).await.unwrap()
}

/// One encoded record.
pub fn record(topic: &str, queue_id: i32, body: &[u8], tags: Option<&str>) -> BytesMut {
    let meta = MessageMeta {
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: "127.0.0.1:40000".parse().unwrap(),
        store_host: "127.0.0.1:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
    };
    let properties = encode_properties(tags.map(|t| ("TAGS", t)));
    let mut buf = BytesMut::new();
    encode_record(&mut buf, &meta, body, topic, &properties).unwrap();
    buf
}

/// A batch of one record.
pub fn single(topic: &str, queue_id: i32, body: &[u8], tags: Option<&str>) -> AppendBatch {
    AppendBatch {
        topic: topic.to_string(),
        queue_id,
        records: record(topic, queue_id, body, tags),
        tags_codes: vec![tags.map_or(0, tags_code)],
    }
}

/// A batch of `count` records with bodies `"{prefix}-{i}"`.
pub fn batch(topic: &str, queue_id: i32, prefix: &str, count: usize) -> AppendBatch {
    let mut records = BytesMut::new();
    for index in 0..count {
        records.extend_from_slice(&record(
            topic,
            queue_id,
            format!("{prefix}-{index}").as_bytes(),
            None,
        ));
    }
    AppendBatch { topic: topic.to_string(), queue_id, records, tags_codes: vec![0; count] }
}

/// The body of a stored record.
pub fn body_of(record: &Bytes) -> Bytes {
    ramjet_proto::message::decode_record(record, true).unwrap().body
}

/// One encoded record with a SYSFLAG and properties.
pub fn record_with(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    sys_flag: i32,
    properties: &[(&str, &str)],
) -> BytesMut {
    let meta = MessageMeta {
        queue_id,
        flag: 0,
        sys_flag,
        born_timestamp: 1_700_000_000_000,
        born_host: "127.0.0.1:40000".parse().unwrap(),
        store_host: "127.0.0.1:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
    };
    let properties = encode_properties(properties.iter().copied());
    let mut buf = BytesMut::new();
    encode_record(&mut buf, &meta, body, topic, &properties).unwrap();
    buf
}

/// A batch of one record with a SYSFLAG and properties (tags code 0).
pub fn single_with(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    sys_flag: i32,
    properties: &[(&str, &str)],
) -> AppendBatch {
    AppendBatch {
        topic: topic.to_string(),
        queue_id,
        records: record_with(topic, queue_id, body, sys_flag, properties),
        tags_codes: vec![0],
    }
}
