//! `ramjet-bench storage`: appends through `ramjet_storage::LogStore` directly, with no
//! network, so the engine's own cost shows.
//!
//! The store is created (or reopened) with one commit log per shard. Shard `s` runs on
//! executor `s`, owns the logs `l` with `l % shards == s`, and appends to the queues of
//! the topic that `log_for` maps to its logs. `--inflight` appenders per shard each loop:
//! claim `--batch` messages, append them to the next queue as one batch, record the
//! append latency (until acknowledged under the flush mode).

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ramjet_proto::message::{encode_properties, encode_record, property, MessageMeta};
use ramjet_storage::{log_for, open_or_create_meta, AppendBatch, FlushMode, LogStore, StoreConfig};

use crate::run::{self, Control, Elapsed};
use crate::stats::{self, Recorder};

/// Options of the storage mode.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Store directory.
    pub store_path: PathBuf,
    /// Body size, bytes.
    pub size: usize,
    /// Run duration (`None`: until `messages`).
    pub duration: Option<Duration>,
    /// Message limit.
    pub messages: Option<u64>,
    /// ASYNC_FLUSH or SYNC_FLUSH.
    pub flush_disk_type: String,
    /// Concurrent appenders per shard.
    pub inflight: usize,
    /// Records per append.
    pub batch: usize,
    /// Shards.
    pub shards: usize,
    /// Topic.
    pub topic: String,
    /// Queues.
    pub queues: i32,
    /// JSON summary.
    pub json: bool,
}

/// Runs the storage benchmark and prints its summary.
///
/// # Errors
/// A bad flush type, a store that cannot be created or opened, executors.
pub fn run(opts: StorageOptions) -> Result<(), String> {
    let flush = match opts.flush_disk_type.as_str() {
        "ASYNC_FLUSH" => FlushMode::Async,
        "SYNC_FLUSH" => FlushMode::Sync,
        other => return Err(format!("--flush-disk-type {other}: ASYNC_FLUSH or SYNC_FLUSH")),
    };
    std::fs::create_dir_all(&opts.store_path)
        .map_err(|e| format!("creating {}: {e}", opts.store_path.display()))?;
    let log_count = open_or_create_meta(&opts.store_path, opts.shards as u32)
        .map_err(|e| format!("store meta in {}: {e}", opts.store_path.display()))?;
    let mut config = StoreConfig::new(&opts.store_path);
    config.flush = flush;
    let totals = stats::shared_totals();
    let control = Arc::new(Control::new(opts.duration, opts.messages));
    let record = template_record(opts.size, &opts.topic);
    let shared = Arc::new((opts.clone(), config, record));
    let (ctl, tot) = (control.clone(), totals.clone());
    let shards = opts.shards;
    let elapsed =
        run::run_executors(shards, &control, &totals, Elapsed::UntilFinished, move |s| {
            let shared = shared.clone();
            let (control, totals) = (ctl.clone(), tot.clone());
            async move {
                let (opts, config, record) = &*shared;
                let recorder = Rc::new(RefCell::new(Recorder::new(totals)));
                let flusher = run::periodic_flush(recorder.clone());
                let shard = Shard { opts, config, record, log_count, index: s };
                if let Err(e) = shard.run(&control, &recorder).await {
                    eprintln!("shard {s}: {e}");
                    control.request_stop();
                }
                drop(flusher);
                recorder.borrow_mut().flush();
            }
        })?;
    let mut summary = stats::summary(&totals, "storage", elapsed);
    summary["flush_disk_type"] = opts.flush_disk_type.clone().into();
    summary["shards"] = opts.shards.into();
    summary["log_count"] = log_count.into();
    stats::print_summary(&summary, opts.json);
    stats::check_any_success(&summary)
}

/// One encoded record; appenders copy it and storage patches the offsets.
fn template_record(size: usize, topic: &str) -> Vec<u8> {
    let meta = MessageMeta {
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: ramjet_client::client::now_ms(),
        born_host: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        store_host: std::net::SocketAddr::from(([127, 0, 0, 1], 10911)),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
    };
    let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let properties = encode_properties([(property::WAIT_STORE_MSG_OK, "true")]);
    let mut out = Vec::with_capacity(size + 128);
    // The topic is the bench's own (short) and the properties are tiny, so this fits.
    let _ = encode_record(&mut out, &meta, &body, topic, &properties);
    out
}

struct Shard<'a> {
    opts: &'a StorageOptions,
    config: &'a StoreConfig,
    record: &'a [u8],
    log_count: u32,
    index: usize,
}

impl Shard<'_> {
    async fn run(
        &self,
        control: &Arc<Control>,
        recorder: &Rc<RefCell<Recorder>>,
    ) -> Result<(), String> {
        let mut stores = Vec::new();
        for log_id in (0..self.log_count).filter(|l| *l as usize % self.opts.shards == self.index) {
            let store = LogStore::open(self.config, log_id)
                .await
                .map_err(|e| format!("opening log {log_id}: {e}"))?;
            stores.push(store);
        }
        // The queues this shard appends to, each with its record (QUEUEID patched in:
        // storage checks that it matches the batch).
        let mut targets = Vec::new();
        for q in 0..self.opts.queues {
            let log = log_for(&self.opts.topic, q, self.log_count);
            if let Some(store) = stores.iter().find(|s| s.log_id() == log) {
                let mut record = self.record.to_vec();
                if let Some(field) = record.get_mut(QUEUE_ID_POS..QUEUE_ID_POS + 4) {
                    field.copy_from_slice(&q.to_be_bytes());
                }
                targets.push(Target { store: store.clone(), queue_id: q, record });
            }
        }
        if !targets.is_empty() {
            let targets = Rc::new(targets);
            let next = Rc::new(std::cell::Cell::new(self.index));
            let mut tasks = Vec::new();
            for _ in 0..self.opts.inflight {
                let appender = Appender {
                    targets: targets.clone(),
                    next: next.clone(),
                    topic: self.opts.topic.clone(),
                    batch: self.opts.batch,
                    body_bytes: self.opts.size as u64,
                    control: control.clone(),
                    recorder: recorder.clone(),
                };
                tasks.push(glommio::spawn_local(appender.run()));
            }
            for t in tasks {
                t.await;
            }
        }
        for s in stores {
            s.close().await.map_err(|e| format!("closing log {}: {e}", s.log_id()))?;
        }
        Ok(())
    }
}

/// Byte position of QUEUEID in a stored record.
const QUEUE_ID_POS: usize = 12;

struct Target {
    store: Rc<LogStore>,
    queue_id: i32,
    record: Vec<u8>,
}

struct Appender {
    targets: Rc<Vec<Target>>,
    next: Rc<std::cell::Cell<usize>>,
    topic: String,
    batch: usize,
    body_bytes: u64,
    control: Arc<Control>,
    recorder: Rc<RefCell<Recorder>>,
}

impl Appender {
    async fn run(self) {
        loop {
            let count = self.control.claim(self.batch as u64) as usize;
            if count == 0 {
                return;
            }
            let index = self.next.get();
            self.next.set(index.wrapping_add(1));
            let Some(target) = self.targets.get(index % self.targets.len()) else {
                return;
            };
            let mut records = BytesMut::with_capacity(target.record.len() * count);
            for _ in 0..count {
                records.extend_from_slice(&target.record);
            }
            let batch = AppendBatch {
                topic: self.topic.clone(),
                queue_id: target.queue_id,
                records,
                tags_codes: vec![0; count],
            };
            let started = Instant::now();
            match target.store.append(batch).await {
                Ok(_) => {
                    let bytes = self.body_bytes * count as u64;
                    self.recorder.borrow_mut().success(count as u64, bytes, started.elapsed());
                }
                Err(e) => {
                    self.recorder.borrow_mut().error(error_kind(&e));
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}

/// The variant name of a storage error (`Busy`, `Poisoned`, ...).
fn error_kind(e: &ramjet_storage::StoreError) -> String {
    let debug = format!("{e:?}");
    debug.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("storage").to_string()
}
