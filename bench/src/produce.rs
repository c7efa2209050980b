//! `ramjet-bench produce`: N connections, each with `inflight` requests outstanding.
//!
//! Connection `c` runs on executor `c % threads` with its own client (so its own TCP
//! connection to each broker). Its `inflight` workers share the connection: each loops
//! claim → wait for its rate token → send to the next queue (round robin, each
//! connection starting at a different queue) → record. Pipelining comes from the
//! workers' requests being in flight together on one connection.
//!
//! `--delay-level N` sets DELAY on every message. `--transaction` makes every send a
//! half message followed by a commit END ([`ramjet_client::TransactionProducer`]; the
//! queue is then chosen by the producer, not round robin); its latency runs from the
//! half send to the END being queued on the connection.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ramjet_client::route::RoundRobin;
use ramjet_client::{
    Admin, Client, ClientConfig, ClientError, LocalTransactionState, Message, MessageQueue,
    Producer, TransactionProducer,
};

use crate::rate::{self, Schedule};
use crate::run::{self, Control, Elapsed};
use crate::stats::{self, Recorder, SharedTotals};
use crate::NetArgs;

/// Options of the produce mode.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Common network options.
    pub net: NetArgs,
    /// Body size, bytes.
    pub size: usize,
    /// Messages per request (1: SEND_MESSAGE_V2; more: SEND_BATCH_MESSAGE).
    pub batch: usize,
    /// Queues per master when creating the topic.
    pub queues: i32,
    /// Create the topic on every master first.
    pub create_topic: bool,
    /// Producer group.
    pub group: String,
    /// DELAY level set on every message (None: plain messages).
    pub delay_level: Option<i32>,
    /// Send every message as a half message followed by a commit END.
    pub transaction: bool,
}

/// Runs the produce benchmark and prints its summary.
///
/// # Errors
/// Setup failures (bad NameServer list, topic creation, executors).
pub fn run(opts: ProduceOptions) -> Result<(), String> {
    if opts.transaction && opts.batch > 1 {
        return Err("--transaction sends one message per request: use --batch 1".into());
    }
    let config = opts.net.client_config()?;
    if opts.create_topic {
        create_topic(&config, &opts.net.topic, opts.queues)?;
    }
    let totals = stats::shared_totals();
    let control = Arc::new(Control::new(opts.net.duration(), opts.net.messages));
    let threads = opts.net.threads();
    let shared: Shared = Arc::new((opts.clone(), config, body_of(opts.size)));
    let (ctl, tot) = (control.clone(), totals.clone());
    let elapsed =
        run::run_executors(threads, &control, &totals, Elapsed::UntilFinished, move |ex| {
            run_connections(ex, threads, shared.clone(), ctl.clone(), tot.clone())
        })?;
    let summary = stats::summary(&totals, "produce", elapsed);
    stats::print_summary(&summary, opts.net.json);
    stats::check_any_success(&summary)
}

/// A body of `size` bytes (the alphabet, repeated).
fn body_of(size: usize) -> Bytes {
    Bytes::from((0..size).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>())
}

/// What every executor of a produce run shares: options, client configuration, body.
type Shared = Arc<(ProduceOptions, ClientConfig, Bytes)>;

/// Executor `ex` of `threads`: runs its share of the connections until `control` stops
/// them, recording into `totals`.
async fn run_connections(
    ex: usize,
    threads: usize,
    shared: Shared,
    control: Arc<Control>,
    totals: SharedTotals,
) {
    let (opts, config, body) = &*shared;
    let recorder = Rc::new(RefCell::new(Recorder::new(totals)));
    let flusher = run::periodic_flush(recorder.clone());
    let mut tasks = Vec::new();
    for c in (0..opts.net.connections).filter(|c| c % threads == ex) {
        let conn = Connection {
            index: c,
            opts: opts.clone(),
            config: config.clone(),
            body: body.clone(),
            control: control.clone(),
            recorder: recorder.clone(),
        };
        tasks.push(glommio::spawn_local(conn.run()));
    }
    for t in tasks {
        t.await;
    }
    drop(flusher);
    recorder.borrow_mut().flush();
}

/// A produce load running on its own executor until stopped (`ramjet-bench attack` runs
/// its normal producer this way, reading the totals in windows).
pub struct Background {
    control: Arc<Control>,
    handle: Option<glommio::ExecutorJoinHandle<()>>,
}

impl Background {
    /// Starts `opts` (its connections on one executor, no duration or message limit:
    /// it runs until [`Background::stop`]), creating the topic first when asked.
    ///
    /// # Errors
    /// Setup failures (bad NameServer list, topic creation, the executor).
    pub fn start(opts: &ProduceOptions, totals: &SharedTotals) -> Result<Background, String> {
        let config = opts.net.client_config()?;
        if opts.create_topic {
            create_topic(&config, &opts.net.topic, opts.queues)?;
        }
        let control = Arc::new(Control::new(None, None));
        let shared: Shared = Arc::new((opts.clone(), config, body_of(opts.size)));
        let (ctl, tot) = (control.clone(), totals.clone());
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name("bench-background")
            .io_memory(run::IO_MEMORY_BYTES)
            .spawn(move || run_connections(0, 1, shared, ctl, tot))
            .map_err(|e| format!("cannot start the producer's executor: {e}"))?;
        Ok(Background { control, handle: Some(handle) })
    }

    /// Stops the load and waits for its requests in flight to finish.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.control.request_stop();
        if let Some(handle) = self.handle.take() {
            if let Err(e) = handle.join() {
                eprintln!("producer executor failed: {e}");
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Creates `topic` with `queues` queues on every master, then waits (bounded) until
/// the NameServer's route shows it.
fn create_topic(config: &ClientConfig, topic: &str, queues: i32) -> Result<(), String> {
    let config = config.clone();
    let topic = topic.to_string();
    run::run_once(async move {
        let client = Client::new(config);
        let admin = Admin::new(client.clone());
        let masters = admin
            .create_topic_on_cluster(&topic, queues)
            .await
            .map_err(|e| format!("creating topic {topic}: {e}"))?;
        let wanted = masters.len() * queues.max(0) as usize;
        for _ in 0..50 {
            match client.refresh_route(&topic).await {
                Ok(route) if route.write_queues.len() >= wanted => {
                    eprintln!("topic {topic}: {} write queues on {masters:?}", wanted);
                    return Ok(());
                }
                _ => glommio::timer::sleep(Duration::from_millis(200)).await,
            }
        }
        eprintln!("warning: the route of {topic} does not show {wanted} queues yet");
        Ok(())
    })?
}

struct Connection {
    index: usize,
    opts: ProduceOptions,
    config: ClientConfig,
    body: Bytes,
    control: Arc<Control>,
    recorder: Rc<RefCell<Recorder>>,
}

impl Connection {
    async fn run(self) {
        let tx = if self.opts.transaction {
            // Checks (none expected: every transaction ends) are answered with commit.
            let started = TransactionProducer::start(self.config.clone(), &self.opts.group, |_| {
                LocalTransactionState::Commit
            })
            .await;
            match started {
                Ok(tp) => Some(tp),
                Err(e) => {
                    eprintln!("connection {}: transaction producer: {e}", self.index);
                    self.recorder.borrow_mut().error(run::error_kind(&e));
                    return;
                }
            }
        } else {
            None
        };
        let mut producer = match &tx {
            Some(tp) => tp.producer().clone(),
            None => Producer::new(Client::new(self.config.clone()), self.opts.group.clone()),
        };
        let client = producer.client().clone();
        producer.retry_times = 0;
        let queues = match self.queues(&producer).await {
            Ok(q) => q,
            Err(e) => {
                eprintln!("connection {}: no queues for {}: {e}", self.index, self.opts.net.topic);
                self.recorder.borrow_mut().error(run::error_kind(&e));
                return;
            }
        };
        let rate = rate::share(self.opts.net.rate, self.opts.net.connections);
        let worker = Rc::new(Worker {
            producer,
            queues,
            selector: RoundRobin::starting_at(self.index),
            schedule: Schedule::new(self.control.start(), rate),
            control: self.control.clone(),
            recorder: self.recorder.clone(),
            batch: self.batch_template(),
            tx: tx.clone(),
        });
        let mut tasks = Vec::new();
        for _ in 0..self.opts.net.inflight.max(1) {
            tasks.push(glommio::spawn_local(worker.clone().run()));
        }
        for t in tasks {
            t.await;
        }
        match tx {
            Some(tp) => tp.shutdown().await,
            None => client.shutdown().await,
        }
    }

    async fn queues(&self, producer: &Producer) -> Result<Vec<MessageQueue>, ClientError> {
        let mut last = None;
        for _ in 0..10 {
            match producer.write_queues(&self.opts.net.topic).await {
                Ok(q) if !q.is_empty() => return Ok(q),
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
            glommio::timer::sleep(Duration::from_millis(200)).await;
        }
        Err(last.unwrap_or(ClientError::NoRoute { topic: self.opts.net.topic.clone() }))
    }

    fn batch_template(&self) -> Vec<Message> {
        let mut msg = Message::new(self.opts.net.topic.clone(), self.body.clone());
        if let Some(level) = self.opts.delay_level {
            msg = msg.with_delay_level(level);
        }
        vec![msg; self.opts.batch.max(1)]
    }
}

/// The message with the current wall-clock microseconds in its first 8 body bytes, so
/// `consume --latency-from body` measures end to end at µs resolution. One body copy per
/// send (client side only).
fn stamped(template: &Message) -> Message {
    let mut msg = template.clone();
    if msg.body.len() >= 8 {
        let mut body = msg.body.to_vec();
        body[..8].copy_from_slice(&crate::consume::now_us().to_be_bytes());
        msg.body = body.into();
    }
    msg
}

struct Worker {
    producer: Producer,
    queues: Vec<MessageQueue>,
    selector: RoundRobin,
    schedule: Schedule,
    control: Arc<Control>,
    recorder: Rc<RefCell<Recorder>>,
    batch: Vec<Message>,
    tx: Option<TransactionProducer>,
}

impl Worker {
    async fn run(self: Rc<Self>) {
        let batched = self.batch.len() > 1;
        loop {
            let count = self.control.claim(self.batch.len() as u64) as usize;
            if count == 0 {
                return;
            }
            // Latency counts from the scheduled time when this worker is behind schedule
            // (the wait behind a slow reply is part of it), else from the actual send, so
            // timer wake-up lag is not charged to the broker.
            let now = Instant::now();
            let started = match self.schedule.take(count as u64) {
                Some(due) if due > now => {
                    glommio::timer::sleep(due - now).await;
                    Instant::now()
                }
                Some(due) => due,
                None => now,
            };
            let index = self.selector.next_index(self.queues.len()).unwrap_or(0);
            let Some(queue) = self.queues.get(index) else { return };
            let msgs = &self.batch[..count];
            let result = if let Some(tx) = &self.tx {
                tx.send_in_transaction(stamped(&msgs[0]), |_| LocalTransactionState::Commit)
                    .await
                    .map(|r| r.send)
            } else if batched {
                self.producer.send_batch_to_queue(queue, msgs).await
            } else {
                self.producer.send_to_queue(queue, stamped(&msgs[0])).await
            };
            match result {
                Ok(_) => {
                    let bytes: u64 = msgs.iter().map(|m| m.body.len() as u64).sum();
                    self.recorder.borrow_mut().success(count as u64, bytes, started.elapsed());
                }
                Err(e) => {
                    self.recorder.borrow_mut().error(run::error_kind(&e));
                    if run::is_transport_failure(&e) {
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
}
