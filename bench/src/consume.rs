//! `ramjet-bench consume`: one group pulls every queue of the topic with long polling.
//!
//! Queue `i` goes to connection `i % connections`, connection `c` to executor
//! `c % threads`. Each queue has one puller: it starts at the group's stored offset (0
//! when none), follows `nextBeginOffset`, commits its offset one-way once a second and
//! synchronously at the end. Latency is per message: now minus the store (default) or
//! born timestamp, so producer and consumer clocks must agree (same host).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ramjet_client::{Client, ClientConfig, MessageQueue, PullConsumer, PullStatus, Subscription};

use crate::run::{self, Control, Elapsed};
use crate::stats::{self, Recorder};
use crate::NetArgs;

/// Which timestamp consume latency is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatencyFrom {
    /// STORETIMESTAMP: broker append to client receipt.
    Store,
    /// BORNTIMESTAMP: producer send to client receipt (end to end), ms resolution.
    Born,
    /// The microsecond send time `ramjet-bench produce` writes into the first 8 bytes of
    /// each body: end to end at µs resolution (bodies of 8 bytes or more).
    Body,
}

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Options of the consume mode.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Common network options.
    pub net: NetArgs,
    /// Consumer group.
    pub group: String,
    /// Long-poll hold time asked of the broker.
    pub suspend: Duration,
    /// Messages per pull.
    pub max_nums: i32,
    /// Latency reference.
    pub latency_from: LatencyFrom,
}

/// How often pullers commit their offsets.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the consume benchmark and prints its summary.
///
/// # Errors
/// Setup failures (bad NameServer list, unknown topic, executors).
pub fn run(opts: ConsumeOptions) -> Result<(), String> {
    let config = opts.net.client_config()?;
    let queues = fetch_queues(&config, &opts.net.topic)?;
    eprintln!("topic {}: {} read queues", opts.net.topic, queues.len());
    let totals = stats::shared_totals();
    let control = Arc::new(Control::new(opts.net.duration(), opts.net.messages));
    let threads = opts.net.threads();
    let connections = opts.net.connections.max(1);
    let shared = Arc::new((opts.clone(), config, queues));
    let (ctl, tot) = (control.clone(), totals.clone());
    let elapsed = run::run_executors(threads, &control, &totals, Elapsed::UntilStop, move |ex| {
        let shared = shared.clone();
        let (control, totals) = (ctl.clone(), tot.clone());
        async move {
            let (opts, config, queues) = &*shared;
            let recorder = Rc::new(RefCell::new(Recorder::new(totals)));
            let flusher = run::periodic_flush(recorder.clone());
            let mut tasks = Vec::new();
            for c in (0..connections).filter(|c| c % threads == ex) {
                let mine: Vec<MessageQueue> = queues
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % connections == c)
                    .map(|(_, q)| q.clone())
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let client = Client::new(config.clone());
                let consumer = Rc::new(PullConsumer::new(client, opts.group.clone()));
                let group = ConnectionGroup {
                    consumer,
                    queues: mine,
                    opts: opts.clone(),
                    control: control.clone(),
                    recorder: recorder.clone(),
                };
                tasks.push(glommio::spawn_local(group.run()));
            }
            for t in tasks {
                t.await;
            }
            drop(flusher);
            recorder.borrow_mut().flush();
        }
    })?;
    let summary = stats::summary(&totals, "consume", elapsed);
    stats::print_summary(&summary, opts.net.json);
    stats::check_any_success(&summary)
}

fn fetch_queues(config: &ClientConfig, topic: &str) -> Result<Vec<MessageQueue>, String> {
    let config = config.clone();
    let topic = topic.to_string();
    run::run_once(async move {
        let consumer = PullConsumer::new(Client::new(config), "ramjet-bench-setup");
        let queues =
            consumer.fetch_queues(&topic).await.map_err(|e| format!("route of {topic}: {e}"))?;
        if queues.is_empty() {
            return Err(format!("topic {topic} has no readable queue"));
        }
        Ok(queues)
    })?
}

/// One connection's client and the pullers of its queues.
struct ConnectionGroup {
    consumer: Rc<PullConsumer>,
    queues: Vec<MessageQueue>,
    opts: ConsumeOptions,
    control: Arc<Control>,
    recorder: Rc<RefCell<Recorder>>,
}

impl ConnectionGroup {
    async fn run(self) {
        let subs = [Subscription { topic: self.opts.net.topic.clone(), expression: "*".into() }];
        if let Err(e) = self.consumer.heartbeat(&subs).await {
            eprintln!("heartbeat failed (pulls carry the subscription anyway): {e}");
        }
        let mut tasks = Vec::new();
        for queue in self.queues {
            let puller = Puller {
                consumer: self.consumer.clone(),
                queue,
                opts: self.opts.clone(),
                control: self.control.clone(),
                recorder: self.recorder.clone(),
            };
            tasks.push(glommio::spawn_local(puller.run()));
        }
        for t in tasks {
            t.await;
        }
        self.consumer.client().shutdown().await;
    }
}

struct Puller {
    consumer: Rc<PullConsumer>,
    queue: MessageQueue,
    opts: ConsumeOptions,
    control: Arc<Control>,
    recorder: Rc<RefCell<Recorder>>,
}

impl Puller {
    async fn run(self) {
        let mut offset = match self.consumer.query_offset(&self.queue).await {
            Ok(Some(o)) => o,
            Ok(None) => 0,
            Err(e) => {
                self.recorder.borrow_mut().error(run::error_kind(&e));
                0
            }
        };
        let start_offset = offset;
        let mut committed = offset;
        let mut last_commit = Instant::now();
        while !self.control.stopped() {
            let pulled = self
                .consumer
                .pull(&self.queue, offset, self.opts.max_nums, Some(self.opts.suspend), Some("*"))
                .await;
            match pulled {
                Ok(r) => {
                    if r.status == PullStatus::Found {
                        self.record(&r.messages);
                    }
                    offset = r.next_begin_offset;
                }
                Err(e) => {
                    self.recorder.borrow_mut().error(run::error_kind(&e));
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            }
            if offset != committed && last_commit.elapsed() >= COMMIT_INTERVAL {
                if self.consumer.update_offset_oneway(&self.queue, offset).await.is_ok() {
                    committed = offset;
                }
                last_commit = Instant::now();
            }
        }
        // One-way commits are not acknowledged: end with a synchronous one.
        if offset != start_offset {
            if let Err(e) = self.consumer.update_offset(&self.queue, offset).await {
                eprintln!("committing offset {offset} of {:?} failed: {e}", self.queue);
            }
        }
    }

    fn record(&self, messages: &[ramjet_proto::message::StoredMessage]) {
        let now_ms = ramjet_client::client::now_ms();
        let now_us = now_us();
        let mut recorder = self.recorder.borrow_mut();
        for m in messages {
            // A broker bug, not a latency: count it and keep the message out of the stats.
            if m.queue_id != self.queue.queue_id || m.topic[..] != *self.queue.topic.as_bytes() {
                recorder.error("wrong_queue".into());
                continue;
            }
            let latency_us = match self.opts.latency_from {
                LatencyFrom::Store => (now_ms - m.store_timestamp).max(0) as u64 * 1000,
                LatencyFrom::Born => (now_ms - m.born_timestamp).max(0) as u64 * 1000,
                LatencyFrom::Body => match m.body.get(..8) {
                    Some(b) => {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(b);
                        (now_us - i64::from_be_bytes(a)).max(0) as u64
                    }
                    None => 0,
                },
            };
            recorder.message(m.body.len() as u64, latency_us);
        }
        recorder.maybe_flush();
        drop(recorder);
        self.control.received(messages.len() as u64);
    }
}
