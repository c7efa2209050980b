//! The push consumer: subscribe to topics, register a listener, and the consumer pulls
//! (long polling), balances queues across the group, consumes, retries and commits.
//!
//! Lives on: the executor that created it (`!Send`); its tasks run there too.
//!
//! ```text
//!                         ┌─────────── rebalance (every 20 s, and on the broker's
//!  heartbeat (30 s) ──▶ broker             NOTIFY_CONSUMER_IDS_CHANGED)
//!                         │   allocate queues (AllocateMessageQueueAveragely)
//!                         ▼
//!   per assigned queue:  pull loop ──put──▶ ProcessQueue ──take──▶ consume loop ──▶ listener
//!                        (long poll,          (pure)                 │ success: offset
//!                         commit offset)                             │ failure: send back
//!                                                                    ▼
//!                                    OffsetTable ──every 5 s──▶ broker (clustering)
//!                                                            └▶ offsets.json (broadcasting)
//! ```
//!
//! Clustering (the default): the group's members share the queues; offsets live on the
//! broker; a message the listener fails is sent back (CONSUMER_SEND_MSG_BACK) and comes
//! again from `%RETRY%<group>`, which every member subscribes to automatically, until
//! `max_reconsume_times`, then it goes to `%DLQ%<group>`. A send-back that fails is
//! retried locally after `local_retry_delay`. Broadcasting: every member consumes every
//! queue; offsets live in a local file ([`crate::offset_store`]); failures are dropped,
//! as in the reference.
//!
//! Ordered listeners ([`MessageListener::orderly`]) consume each queue's messages one
//! batch at a time, in queue order. In clustering mode a queue is consumed only while
//! the broker grants this client its lock (LOCK_BATCH_MQ, renewed every
//! `lock_interval`; released with UNLOCK_BATCH_MQ when the queue moves away, after its
//! offset is committed), so a queue never has two consumers at once.
//!
//! Delivery is at least once: a message consumed but not yet committed when its queue
//! moves to another member (or the consumer stops uncleanly) is consumed again there.
//!
//! The protocol decisions live in pure modules ([`crate::rebalance`],
//! [`crate::process_queue`], [`crate::offset_store`], [`crate::pull_consumer::OffsetTable`]);
//! this module drives them with tasks and timers of [`crate::runtime`].

mod admin_requests;
mod inner;
mod tasks;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use ramjet_proto::message::StoredMessage;

pub use ramjet_proto::body::{ConsumeFromWhere, MessageModel};

use crate::client::Client;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::message::MessageQueue;
use crate::protocol::Subscription;
use crate::rebalance::{AllocateAveragely, AllocateStrategy};
use crate::runtime::{self, Task};
use crate::transport::completion::Signal;
use crate::transport::ServerRequestHandler;

use inner::{Inner, State};

/// What a concurrent listener says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeStatus {
    /// Consumed; the offset may move past it.
    Success,
    /// Not consumed: deliver again later (through the retry topic in clustering mode).
    ReconsumeLater,
}

/// What an ordered listener says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeOrderlyStatus {
    /// Consumed; the queue moves on.
    Success,
    /// Not consumed: wait a moment (the context's suspend time) and consume the same
    /// batch again before anything after it.
    SuspendCurrentQueueAMoment,
}

/// Per-call information for a listener, and what it may ask of the consumer.
#[derive(Debug)]
pub struct ConsumeContext {
    queue: MessageQueue,
    delay_level: Cell<i32>,
    suspend: Cell<Option<Duration>>,
}

impl ConsumeContext {
    fn new(queue: MessageQueue) -> ConsumeContext {
        ConsumeContext { queue, delay_level: Cell::new(0), suspend: Cell::new(None) }
    }

    /// The queue the messages came from (a `%RETRY%` queue for redeliveries).
    pub fn queue(&self) -> &MessageQueue {
        &self.queue
    }

    /// Concurrent listeners: the delay level for the send-back of a failed batch. 0 (the
    /// default) lets the broker choose (3 + reconsume times: 10 s, 30 s, 1 min, ...); a
    /// positive level picks one (1 = 1 s with the default levels); -1 sends the messages
    /// straight to the dead-letter topic.
    pub fn set_delay_level_when_next_consume(&self, level: i32) {
        self.delay_level.set(level);
    }

    /// The delay level set for this batch.
    pub fn delay_level_when_next_consume(&self) -> i32 {
        self.delay_level.get()
    }

    /// Ordered listeners: how long to wait before consuming a suspended batch again
    /// (default: the consumer's `suspend_current_queue_time`).
    pub fn set_suspend_current_queue_time(&self, d: Duration) {
        self.suspend.set(Some(d));
    }
}

/// A concurrent listener.
pub type ConcurrentlyFn = dyn Fn(&[StoredMessage], &ConsumeContext) -> ConsumeStatus;
/// An ordered listener.
pub type OrderlyFn = dyn Fn(&[StoredMessage], &ConsumeContext) -> ConsumeOrderlyStatus;

/// The callback that consumes messages. It runs on the consumer's executor, so it must
/// not block for long; a panic counts as a failure of the batch.
///
/// Messages redelivered from the retry topic carry their original topic again (the
/// reference's `resetRetryAndNamespace`) and their `reconsume_times`.
#[derive(Clone)]
pub enum MessageListener {
    /// Batches of any queue, in any order; failures are retried later.
    Concurrently(Rc<ConcurrentlyFn>),
    /// Each queue's messages in queue order, one batch at a time.
    Orderly(Rc<OrderlyFn>),
}

impl MessageListener {
    /// A concurrent listener from a closure.
    pub fn concurrently(
        f: impl Fn(&[StoredMessage], &ConsumeContext) -> ConsumeStatus + 'static,
    ) -> MessageListener {
        MessageListener::Concurrently(Rc::new(f))
    }

    /// An ordered listener from a closure.
    pub fn orderly(
        f: impl Fn(&[StoredMessage], &ConsumeContext) -> ConsumeOrderlyStatus + 'static,
    ) -> MessageListener {
        MessageListener::Orderly(Rc::new(f))
    }

    fn is_orderly(&self) -> bool {
        matches!(self, MessageListener::Orderly(_))
    }
}

impl std::fmt::Debug for MessageListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_orderly() { "Orderly" } else { "Concurrently" })
    }
}

/// Settings of a push consumer. Defaults are the reference's (`DefaultMQPushConsumer`);
/// tests shorten the intervals.
#[derive(Clone)]
pub struct PushConsumerConfig {
    /// Consumer group.
    pub group: String,
    /// Clustering (share the queues) or broadcasting (everyone gets everything).
    pub message_model: MessageModel,
    /// Where a queue with no stored offset starts.
    pub consume_from_where: ConsumeFromWhere,
    /// For `ConsumeFromTimestamp`: the store time to start at, ms since the epoch;
    /// `None` = half an hour before the queue is first assigned.
    pub consume_timestamp_ms: Option<i64>,
    /// How queues are split among the group (clustering).
    pub allocate_strategy: Rc<dyn AllocateStrategy>,
    /// Most messages per pull (32).
    pub pull_batch_size: i32,
    /// Most messages per listener call (1).
    pub consume_batch_max_size: usize,
    /// Pulled, unconsumed messages per queue before pulling pauses (1000).
    pub pull_threshold_for_queue: usize,
    /// Pulled, unconsumed body bytes per queue before pulling pauses (100 MiB).
    pub pull_threshold_size_for_queue_bytes: usize,
    /// Concurrent mode: largest offset span held per queue before pulling pauses (2000).
    pub consume_concurrently_max_span: i64,
    /// How long the broker may hold a pull with nothing to return (15 s).
    pub suspend_timeout: Duration,
    /// Pause between pulls of a queue (0).
    pub pull_interval: Duration,
    /// Pause after a failed pull, and while an ordered queue waits for its lock (3 s).
    pub pull_retry_delay: Duration,
    /// Pause while a queue holds too many unconsumed messages (50 ms).
    pub flow_control_delay: Duration,
    /// Heartbeat period (30 s).
    pub heartbeat_interval: Duration,
    /// Periodic rebalance (20 s); NOTIFY_CONSUMER_IDS_CHANGED also triggers one.
    pub rebalance_interval: Duration,
    /// Offset commit period (5 s).
    pub persist_offset_interval: Duration,
    /// Ordered, clustering: lock renewal period (20 s).
    pub lock_interval: Duration,
    /// Deliveries before the dead-letter topic; `None` = 16 for concurrent listeners,
    /// unlimited (`i32::MAX`) for ordered ones, as in the reference.
    pub max_reconsume_times: Option<i32>,
    /// Ordered: wait before consuming a suspended batch again (1 s).
    pub suspend_current_queue_time: Duration,
    /// Concurrent, clustering: wait before consuming again a message whose send-back
    /// failed (5 s).
    pub local_retry_delay: Duration,
    /// Broadcasting: directory of the offsets files (`~/.rocketmq_offsets`).
    pub offset_store_dir: PathBuf,
}

impl std::fmt::Debug for PushConsumerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumerConfig")
            .field("group", &self.group)
            .field("message_model", &self.message_model)
            .field("consume_from_where", &self.consume_from_where)
            .field("allocate_strategy", &self.allocate_strategy.name())
            .field("rebalance_interval", &self.rebalance_interval)
            .finish_non_exhaustive()
    }
}

impl PushConsumerConfig {
    /// The reference's defaults for `group`: clustering, from the last offset.
    pub fn new(group: impl Into<String>) -> PushConsumerConfig {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        PushConsumerConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_timestamp_ms: None,
            allocate_strategy: Rc::new(AllocateAveragely),
            pull_batch_size: crate::pull_consumer::PULL_BATCH_SIZE_DEFAULT,
            consume_batch_max_size: 1,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue_bytes: 100 << 20,
            consume_concurrently_max_span: 2000,
            suspend_timeout: Duration::from_secs(15),
            pull_interval: Duration::ZERO,
            pull_retry_delay: Duration::from_secs(3),
            flow_control_delay: Duration::from_millis(50),
            heartbeat_interval: Duration::from_secs(30),
            rebalance_interval: Duration::from_secs(20),
            persist_offset_interval: Duration::from_secs(5),
            lock_interval: Duration::from_secs(20),
            max_reconsume_times: None,
            suspend_current_queue_time: Duration::from_secs(1),
            local_retry_delay: Duration::from_secs(5),
            offset_store_dir: home.join(".rocketmq_offsets"),
        }
    }
}

/// A push consumer of one group. See the module notes.
///
/// Dropping it without [`PushConsumer::shutdown`] cancels its tasks at once: nothing is
/// committed or released (the broker expires the client and its locks later).
pub struct PushConsumer {
    inner: Rc<Inner>,
    tasks: RefCell<Vec<Task<()>>>,
}

impl std::fmt::Debug for PushConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumer")
            .field("config", &self.inner.config)
            .field("state", &self.inner.state.get())
            .finish_non_exhaustive()
    }
}

impl PushConsumer {
    /// A consumer with its own client (whose connections deliver the broker's
    /// NOTIFY_CONSUMER_IDS_CHANGED to this consumer's rebalance).
    pub fn new(client_config: ClientConfig, config: PushConsumerConfig) -> PushConsumer {
        let rebalance_wake = Rc::new(Signal::default());
        // The handler answers 307 / 309 from the consumer's state, which exists only
        // after the client: it holds a weak reference filled in below.
        let state: Rc<RefCell<std::rc::Weak<Inner>>> = Rc::default();
        let handler: ServerRequestHandler = {
            let wake = rebalance_wake.clone();
            let group = config.group.clone();
            let state = state.clone();
            Rc::new(move |frame| {
                if crate::protocol::parse_notify_consumer_ids_changed(frame).as_deref()
                    == Some(group.as_str())
                {
                    tracing::debug!(%group, "consumer ids changed; rebalancing");
                    wake.notify();
                    return None;
                }
                let inner = state.borrow().upgrade()?;
                admin_requests::answer(&inner, frame)
            })
        };
        let client = Client::with_handler(client_config, Some(handler));
        let inner = Rc::new(Inner::new(client, config, rebalance_wake));
        *state.borrow_mut() = Rc::downgrade(&inner);
        PushConsumer { inner, tasks: RefCell::new(Vec::new()) }
    }

    /// The client this consumer calls through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The settings.
    pub fn config(&self) -> &PushConsumerConfig {
        &self.inner.config
    }

    /// Subscribes to `topic` with a tag expression (`*`, `TagA || TagB`). Call before
    /// [`PushConsumer::start`]; subscribing to a topic again replaces its expression.
    ///
    /// # Errors
    /// `InvalidArgument` after start, or for an empty topic or expression.
    pub fn subscribe(&self, topic: &str, expression: &str) -> Result<(), ClientError> {
        let invalid = |reason: &str| ClientError::InvalidArgument { reason: reason.to_string() };
        if self.inner.state.get() != State::Created {
            return Err(invalid("subscribe before start"));
        }
        if topic.is_empty() || expression.trim().is_empty() {
            return Err(invalid("a subscription needs a topic and an expression"));
        }
        let mut subs = self.inner.subscriptions.borrow_mut();
        subs.retain(|s| s.topic != topic);
        subs.push(Subscription { topic: topic.to_string(), expression: expression.to_string() });
        Ok(())
    }

    /// The subscriptions, including the retry topic's once started in clustering mode.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.inner.subscriptions.borrow().clone()
    }

    /// Sets the listener. Call before [`PushConsumer::start`].
    ///
    /// # Errors
    /// `InvalidArgument` after start.
    pub fn register_listener(&self, listener: MessageListener) -> Result<(), ClientError> {
        if self.inner.state.get() != State::Created {
            return Err(ClientError::InvalidArgument {
                reason: "register the listener before start".into(),
            });
        }
        *self.inner.listener.borrow_mut() = Some(listener);
        Ok(())
    }

    /// Starts consuming: loads local offsets (broadcasting), adds the retry-topic
    /// subscription (clustering), sends the first heartbeat, and starts the heartbeat,
    /// rebalance, offset-commit and (ordered, clustering) lock-renewal tasks. The first
    /// rebalance runs at once; queues are then consumed by their own tasks.
    ///
    /// A topic without a route yet is not an error: later rebalances pick it up.
    ///
    /// # Errors
    /// `InvalidArgument` when started twice or without a listener or subscription; `Io`
    /// or `InvalidArgument` when the broadcasting offsets file cannot be read.
    ///
    /// # Panics
    /// When called outside an executor of an enabled runtime ([`crate::runtime`]).
    pub async fn start(&self) -> Result<(), ClientError> {
        self.inner.prepare_start()?;
        self.inner.state.set(State::Running);
        self.inner.heartbeat_all().await;
        let mut tasks = self.tasks.borrow_mut();
        tasks.push(runtime::spawn_local(tasks::heartbeat_loop(self.inner.clone())));
        tasks.push(runtime::spawn_local(tasks::rebalance_loop(self.inner.clone())));
        tasks.push(runtime::spawn_local(tasks::persist_loop(self.inner.clone())));
        if self.inner.is_orderly() && self.inner.is_clustering() {
            tasks.push(runtime::spawn_local(tasks::lock_loop(self.inner.clone())));
        }
        self.inner.rebalance_wake.notify();
        Ok(())
    }

    /// The queues this consumer holds now, sorted.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        self.inner.queues.borrow().keys().cloned().collect()
    }

    /// Runs a rebalance now (it also runs periodically and when the group changes).
    ///
    /// # Cancel safety
    /// Not cancel safe: a queue being started or stopped may be left half done.
    pub async fn rebalance_now(&self) {
        self.inner.rebalance().await;
    }

    /// The group's offset of `queue` as this consumer holds it (next to consume).
    pub fn committed_offset(&self, queue: &MessageQueue) -> Option<i64> {
        self.inner.offsets.borrow().get(queue)
    }

    /// True between a successful start and shutdown.
    pub fn is_running(&self) -> bool {
        self.inner.state.get() == State::Running
    }

    /// Stops cleanly: the periodic tasks end, every queue stops pulling, batches being
    /// consumed finish, offsets are committed (and waited for), ordered queues are
    /// unlocked, the client unregisters from every broker it sent heartbeats to, and the
    /// connections close. Calling it again, or before start, does nothing more.
    pub async fn shutdown(&self) {
        match self.inner.state.get() {
            State::Running => {}
            State::Created => {
                self.inner.state.set(State::ShutDown);
                return;
            }
            State::ShuttingDown | State::ShutDown => return,
        }
        self.inner.state.set(State::ShuttingDown);
        self.inner.stop.set();
        self.inner.rebalance_wake.notify();
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for t in tasks {
            t.await;
        }
        self.inner.stop_all_queues().await;
        self.inner.persist_all(false).await;
        self.inner.unregister().await;
        self.inner.client.shutdown().await;
        self.inner.state.set(State::ShutDown);
        tracing::debug!(group = %self.inner.config.group, "push consumer shut down");
    }
}

impl Drop for PushConsumer {
    fn drop(&mut self) {
        // Tasks hold `Rc<Inner>`; cancelling them breaks the cycle.
        self.inner.stop.set();
        drop(std::mem::take(&mut *self.tasks.borrow_mut()));
        let queues = std::mem::take(&mut *self.inner.queues.borrow_mut());
        drop(queues);
        if self.inner.state.get() != State::ShutDown {
            self.inner.client.close();
        }
    }
}
