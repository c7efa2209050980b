//! The push consumer's state and the calls its tasks make: heartbeats, rebalance (start
//! and stop queues), order locks, offsets (where to start, commit), send-back, and
//! unregistering.
//!
//! Lives on: the push consumer's executor. No `RefCell` borrow is held across an await.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ramjet_proto::body::{ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel};
use ramjet_proto::codes::request;
use ramjet_proto::message::{offset_msg_id, property, StoredMessage};

use super::{tasks, MessageListener, PushConsumerConfig};
use crate::client::{now_ms, Client};
use crate::error::ClientError;
use crate::message::MessageQueue;
use crate::offset_store;
use crate::process_queue::ProcessQueue;
use crate::protocol::{self, SendBackArgs, Subscription};
use crate::pull_consumer::{OffsetTable, PullConsumer};
use crate::rebalance;
use crate::route::TopicRoute;
use crate::runtime::{self, Task};
use crate::transport::completion::{Latch, Signal};

/// Where a consumer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Created,
    Running,
    ShuttingDown,
    ShutDown,
}

/// One assigned queue: its process queue and the tasks working on it.
pub(super) struct QueueEntry {
    pub pq: Rc<RefCell<ProcessQueue>>,
    /// Wakes the consume task (new messages, or the queue was dropped).
    pub wake: Rc<Signal>,
    pull: Option<Task<()>>,
    consume: Option<Task<()>>,
}

/// The consumer's shared state; tasks hold it through `Rc`.
pub(super) struct Inner {
    pub client: Client,
    pub puller: PullConsumer,
    pub config: PushConsumerConfig,
    pub subscriptions: RefCell<Vec<Subscription>>,
    pub sub_version: i64,
    pub listener: RefCell<Option<MessageListener>>,
    pub queues: RefCell<BTreeMap<MessageQueue, QueueEntry>>,
    pub offsets: RefCell<OffsetTable>,
    /// Brokers that got a heartbeat (to unregister from).
    pub brokers: RefCell<BTreeSet<String>>,
    pub rebalance_wake: Rc<Signal>,
    pub stop: Latch,
    pub state: Cell<State>,
}

impl Inner {
    pub fn new(client: Client, config: PushConsumerConfig, rebalance_wake: Rc<Signal>) -> Inner {
        Inner {
            puller: PullConsumer::new(client.clone(), config.group.clone()),
            client,
            config,
            subscriptions: RefCell::new(Vec::new()),
            sub_version: now_ms(),
            listener: RefCell::new(None),
            queues: RefCell::new(BTreeMap::new()),
            offsets: RefCell::new(OffsetTable::new()),
            brokers: RefCell::new(BTreeSet::new()),
            rebalance_wake,
            stop: Latch::default(),
            state: Cell::new(State::Created),
        }
    }

    pub fn is_clustering(&self) -> bool {
        self.config.message_model == MessageModel::Clustering
    }

    pub fn is_orderly(&self) -> bool {
        self.listener.borrow().as_ref().is_some_and(MessageListener::is_orderly)
    }

    /// Deliveries before the dead-letter topic.
    pub fn max_reconsume_times(&self) -> i32 {
        let default = if self.is_orderly() { i32::MAX } else { 16 };
        self.config.max_reconsume_times.unwrap_or(default)
    }

    fn offsets_path(&self) -> std::path::PathBuf {
        let client_id = &self.client.config().client_id;
        offset_store::offsets_path(&self.config.offset_store_dir, client_id, &self.config.group)
    }

    /// Checks the consumer can start and completes its subscriptions and offsets.
    pub fn prepare_start(&self) -> Result<(), ClientError> {
        let invalid = |reason: &str| Err(ClientError::InvalidArgument { reason: reason.into() });
        if self.state.get() != State::Created {
            return invalid("a push consumer starts once");
        }
        if self.listener.borrow().is_none() {
            return invalid("register a listener before start");
        }
        if self.subscriptions.borrow().is_empty() {
            return invalid("subscribe to a topic before start");
        }
        if self.is_clustering() {
            let retry = protocol::retry_topic(&self.config.group);
            let mut subs = self.subscriptions.borrow_mut();
            if !subs.iter().any(|s| s.topic == retry) {
                subs.push(Subscription { topic: retry, expression: "*".into() });
            }
        } else {
            let loaded = offset_store::load(&self.offsets_path())?;
            let mut offsets = self.offsets.borrow_mut();
            for (q, o) in loaded {
                offsets.advance(&q, o);
            }
            // Loaded offsets need no commit.
            let _ = offsets.take_dirty();
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Heartbeats and membership.

    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: self.config.message_model,
            consume_from_where: self.config.consume_from_where,
            subscription_data_set: self
                .subscriptions
                .borrow()
                .iter()
                .map(|s| protocol::subscription_data(s, self.sub_version))
                .collect(),
            unit_mode: false,
        }
    }

    /// The master addresses of every broker serving a subscribed topic (cached routes;
    /// topics without a route are skipped).
    async fn subscribed_brokers(&self) -> Vec<String> {
        let topics: Vec<String> =
            self.subscriptions.borrow().iter().map(|s| s.topic.clone()).collect();
        let mut addrs = BTreeSet::new();
        for topic in topics {
            match self.client.topic_route(&topic).await {
                Ok(route) => addrs.extend(masters(&route)),
                Err(e) => tracing::debug!(%topic, error = %e, "no route for heartbeat"),
            }
        }
        addrs.into_iter().collect()
    }

    /// Sends a heartbeat to every broker of the subscribed topics.
    pub async fn heartbeat_all(&self) {
        for addr in self.subscribed_brokers().await {
            self.heartbeat(&addr).await;
        }
    }

    async fn heartbeat(&self, addr: &str) {
        let config = self.client.config();
        let (header, body) = protocol::consumer_heartbeat_request(
            &config.client_id,
            self.consumer_data(),
            config.serialize_type,
        );
        let result = match self.client.invoke(addr, header, &body).await {
            Ok(frame) => protocol::check_success(frame).map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.brokers.borrow_mut().insert(addr.to_string());
            }
            Err(e) => tracing::warn!(%addr, error = %e, "heartbeat failed"),
        }
    }

    /// The group's client ids, asked of a broker of `route` (each in turn until one
    /// answers). A broker that has had no heartbeat from this client gets one first.
    async fn consumer_ids(&self, route: &TopicRoute) -> Result<Vec<String>, ClientError> {
        let st = self.client.config().serialize_type;
        let mut last_error = ClientError::NoRoute { topic: route.topic.clone() };
        for addr in masters(route) {
            if !self.brokers.borrow().contains(&addr) {
                self.heartbeat(&addr).await;
            }
            let header = protocol::consumer_list_request(&self.config.group, st);
            match self.client.invoke(&addr, header, &[]).await {
                Ok(frame) => match protocol::parse_consumer_list(frame) {
                    Ok(ids) => return Ok(ids),
                    Err(e) => last_error = e,
                },
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Sends UNREGISTER_CLIENT to every broker that got a heartbeat.
    pub async fn unregister(&self) {
        let config = self.client.config();
        let brokers: Vec<String> = self.brokers.borrow().iter().cloned().collect();
        for addr in brokers {
            let header = protocol::unregister_consumer_request(
                &config.client_id,
                &self.config.group,
                config.serialize_type,
            );
            let result = match self.client.invoke(&addr, header, &[]).await {
                Ok(frame) => protocol::check_success(frame).map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(%addr, error = %e, "unregister failed");
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Rebalance.

    /// One rebalance over every subscribed topic: drops queues that went bad, computes
    /// the allocation and starts and stops queues to match it.
    pub async fn rebalance(self: &Rc<Self>) {
        if self.state.get() != State::Running {
            return;
        }
        let dropped: Vec<MessageQueue> = self
            .queues
            .borrow()
            .iter()
            .filter(|(_, e)| e.pq.borrow().dropped)
            .map(|(q, _)| q.clone())
            .collect();
        for q in dropped {
            self.remove_queue(&q).await;
        }
        let subs: Vec<Subscription> = self.subscriptions.borrow().clone();
        for sub in subs {
            if self.stop.is_set() {
                return;
            }
            let route = match self.client.refresh_route(&sub.topic).await {
                Ok(route) => route,
                Err(e) => {
                    tracing::debug!(topic = %sub.topic, error = %e, "rebalance: no route");
                    continue;
                }
            };
            let Some(allocated) = self.allocate(&route).await else { continue };
            let held: Vec<MessageQueue> = self.queues.borrow().keys().cloned().collect();
            let plan = rebalance::plan(&sub.topic, &held, &allocated);
            if !plan.is_empty() {
                tracing::debug!(group = %self.config.group, topic = %sub.topic,
                    add = ?plan.add, remove = ?plan.remove, "rebalance");
            }
            for q in &plan.remove {
                self.remove_queue(q).await;
            }
            for q in plan.add {
                if self.stop.is_set() {
                    return;
                }
                self.add_queue(q, &sub).await;
            }
        }
    }

    /// The queues of `route` this member should hold; `None` when the group's members
    /// cannot be learned now (the topic is skipped this round, as in the reference).
    async fn allocate(&self, route: &TopicRoute) -> Option<Vec<MessageQueue>> {
        let all = route.read_queues.clone();
        if !self.is_clustering() {
            return Some(all);
        }
        let ids = match self.consumer_ids(route).await {
            Ok(ids) if !ids.is_empty() => ids,
            Ok(_) => {
                tracing::debug!(topic = %route.topic, "rebalance: no consumer ids yet");
                return None;
            }
            Err(e) => {
                tracing::debug!(topic = %route.topic, error = %e, "rebalance: consumer ids");
                return None;
            }
        };
        let me = &self.client.config().client_id;
        Some(self.config.allocate_strategy.allocate(me, &all, &ids))
    }

    /// Starts consuming `queue`: (ordered, clustering) takes its lock, finds where to
    /// start, and spawns its pull and consume tasks. Skipped (tried again at the next
    /// rebalance) when the lock is held elsewhere or the start offset is unknown.
    async fn add_queue(self: &Rc<Self>, queue: MessageQueue, sub: &Subscription) {
        let orderly = self.is_orderly();
        if orderly && self.is_clustering() && !self.lock_queues(std::slice::from_ref(&queue)).await
        {
            tracing::debug!(?queue, "queue locked by another consumer; later");
            return;
        }
        if self.is_clustering() {
            self.offsets.borrow_mut().remove(&queue);
        }
        let offset = match self.compute_pull_from_where(&queue).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(?queue, error = %e, "start offset unknown; later");
                return;
            }
        };
        if self.stop.is_set() || self.queues.borrow().contains_key(&queue) {
            return;
        }
        let pq = Rc::new(RefCell::new(ProcessQueue::new()));
        if orderly {
            pq.borrow_mut().set_locked(true, Instant::now());
        }
        let wake = Rc::new(Signal::default());
        let pull = runtime::spawn_local(tasks::pull_loop(
            self.clone(),
            queue.clone(),
            sub.expression.clone(),
            pq.clone(),
            wake.clone(),
            offset,
        ));
        let consume = runtime::spawn_local(tasks::consume_loop(
            self.clone(),
            queue.clone(),
            pq.clone(),
            wake.clone(),
        ));
        tracing::debug!(group = %self.config.group, ?queue, offset, "queue assigned");
        let entry = QueueEntry { pq, wake, pull: Some(pull), consume: Some(consume) };
        self.queues.borrow_mut().insert(queue, entry);
    }

    /// Stops consuming `queue`: stops its pull, lets the batch in progress finish,
    /// commits its offset and (ordered, clustering) releases its lock.
    async fn remove_queue(&self, queue: &MessageQueue) {
        let Some(entry) = self.queues.borrow_mut().remove(queue) else { return };
        self.stop_queue(entry).await;
        if self.is_clustering() {
            let offset = self.offsets.borrow_mut().remove(queue);
            if let Some(offset) = offset {
                if let Err(e) = self.puller.update_offset(queue, offset).await {
                    tracing::warn!(?queue, offset, error = %e, "offset commit failed");
                }
            }
            if self.is_orderly() {
                self.unlock_queues(std::slice::from_ref(queue)).await;
            }
        }
        tracing::debug!(group = %self.config.group, ?queue, "queue released");
    }

    async fn stop_queue(&self, mut entry: QueueEntry) {
        entry.pq.borrow_mut().dropped = true;
        entry.wake.notify();
        // Cancelling the pull is safe: a pull commits nothing the table does not hold.
        drop(entry.pull.take());
        if let Some(consume) = entry.consume.take() {
            consume.await;
        }
    }

    /// Stops every queue (shutdown): pulls end, batches in progress finish, and ordered
    /// queues are unlocked after their offsets are committed.
    pub async fn stop_all_queues(&self) {
        let entries = std::mem::take(&mut *self.queues.borrow_mut());
        let queues: Vec<MessageQueue> = entries.keys().cloned().collect();
        for entry in entries.values() {
            entry.pq.borrow_mut().dropped = true;
            entry.wake.notify();
        }
        for entry in entries.into_values() {
            self.stop_queue(entry).await;
        }
        if self.is_orderly() && self.is_clustering() {
            self.persist_all(false).await;
            self.unlock_queues(&queues).await;
        }
    }

    // -----------------------------------------------------------------------------------
    // Order locks.

    /// LOCK_BATCH_MQ for `queues`, grouped by broker; marks each held process queue
    /// locked or not. Returns true when every queue was granted.
    pub async fn lock_queues(&self, queues: &[MessageQueue]) -> bool {
        let mut all = true;
        for (broker, group) in by_broker(queues) {
            let granted = match self.lock_on(&broker, &group).await {
                Ok(granted) => granted,
                Err(e) => {
                    tracing::debug!(%broker, error = %e, "lock failed");
                    Vec::new()
                }
            };
            let now = Instant::now();
            let held = self.queues.borrow();
            for q in &group {
                let ok = granted.contains(q);
                all &= ok;
                if let Some(entry) = held.get(q) {
                    entry.pq.borrow_mut().set_locked(ok, now);
                }
            }
        }
        all
    }

    async fn lock_on(
        &self,
        broker: &str,
        queues: &[MessageQueue],
    ) -> Result<Vec<MessageQueue>, ClientError> {
        let Some(first) = queues.first() else { return Ok(Vec::new()) };
        let addr = self.client.master_addr(broker, &first.topic).await?;
        let config = self.client.config();
        let (header, body) = protocol::lock_batch_request(
            &self.config.group,
            &config.client_id,
            queues,
            config.serialize_type,
        );
        protocol::parse_lock_batch(self.client.invoke(&addr, header, &body).await?)
    }

    /// Renews the locks of every held queue.
    pub async fn lock_all(&self) {
        let held: Vec<MessageQueue> = self.queues.borrow().keys().cloned().collect();
        if !held.is_empty() {
            self.lock_queues(&held).await;
        }
    }

    async fn unlock_queues(&self, queues: &[MessageQueue]) {
        let config = self.client.config();
        for (broker, group) in by_broker(queues) {
            let Some(first) = group.first() else { continue };
            let addr = match self.client.master_addr(&broker, &first.topic).await {
                Ok(addr) => addr,
                Err(e) => {
                    tracing::warn!(%broker, error = %e, "unlock: no broker address");
                    continue;
                }
            };
            let (header, body) = protocol::unlock_batch_request(
                &self.config.group,
                &config.client_id,
                &group,
                config.serialize_type,
            );
            let result = match self.client.invoke(&addr, header, &body).await {
                Ok(frame) => protocol::check_success(frame).map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(%broker, error = %e, "unlock failed");
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Offsets.

    /// Where a newly assigned queue starts (the reference's `computePullFromWhere`):
    /// the group's stored offset, else by `consume_from_where` (last: the queue's max
    /// offset, 0 for the retry topic; first: its min offset; timestamp: the offset of
    /// that store time, the max for the retry topic). The query says
    /// `setZeroIfNotFound=false`, as 5.x clients do, so a new group really starts where
    /// `consume_from_where` says.
    async fn compute_pull_from_where(&self, queue: &MessageQueue) -> Result<i64, ClientError> {
        let stored = if self.is_clustering() {
            self.puller.query_offset_with(queue, Some(false)).await?
        } else {
            self.offsets.borrow().get(queue)
        };
        if let Some(offset) = stored.filter(|o| *o >= 0) {
            return Ok(offset);
        }
        let retry = queue.topic.starts_with(protocol::RETRY_TOPIC_PREFIX);
        match self.config.consume_from_where {
            ConsumeFromWhere::ConsumeFromFirstOffset => self.puller.min_offset(queue).await,
            ConsumeFromWhere::ConsumeFromTimestamp if !retry => {
                let ts = self.config.consume_timestamp_ms.unwrap_or_else(|| now_ms() - 30 * 60_000);
                let st = self.client.config().serialize_type;
                let header = protocol::search_offset_request(queue, ts, st);
                let addr = self.client.master_addr(&queue.broker_name, &queue.topic).await?;
                let reply = self.client.invoke(&addr, header, &[]).await?;
                protocol::parse_offset(reply, request::SEARCH_OFFSET_BY_TIMESTAMP)
            }
            ConsumeFromWhere::ConsumeFromTimestamp => self.puller.max_offset(queue).await,
            // Last, and the deprecated variants, which the reference treats as last.
            _ if retry => Ok(0),
            _ => self.puller.max_offset(queue).await,
        }
    }

    /// Commits every offset changed since the last commit: to the broker (clustering;
    /// one-way when `oneway`, else waiting for each answer) or to the offsets file
    /// (broadcasting). Failed commits are tried again next time.
    pub async fn persist_all(&self, oneway: bool) {
        let dirty = self.offsets.borrow_mut().take_dirty();
        if dirty.is_empty() {
            return;
        }
        if !self.is_clustering() {
            let snapshot = self.offsets.borrow().snapshot();
            if let Err(e) = offset_store::save(&self.offsets_path(), &snapshot) {
                tracing::warn!(error = %e, "saving offsets failed");
                for (q, _) in &dirty {
                    self.offsets.borrow_mut().mark_dirty(q);
                }
            }
            return;
        }
        for (queue, offset) in dirty {
            let result = if oneway {
                self.puller.update_offset_oneway(&queue, offset).await
            } else {
                self.puller.update_offset(&queue, offset).await
            };
            if let Err(e) = result {
                tracing::debug!(?queue, offset, error = %e, "offset commit failed");
                self.offsets.borrow_mut().mark_dirty(&queue);
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Send-back.

    /// CONSUMER_SEND_MSG_BACK of `msg` (consumed from `queue`) with `delay_level`.
    pub async fn send_back(
        &self,
        msg: &StoredMessage,
        queue: &MessageQueue,
        delay_level: i32,
    ) -> Result<(), ClientError> {
        let addr = self.client.master_addr(&queue.broker_name, &queue.topic).await?;
        let origin_msg_id = msg
            .property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
            .unwrap_or_else(|| offset_msg_id(&msg.store_host, msg.physical_offset));
        let origin_topic = msg.topic_str();
        let args = SendBackArgs {
            group: &self.config.group,
            commit_log_offset: msg.physical_offset,
            delay_level,
            origin_msg_id: &origin_msg_id,
            origin_topic: &origin_topic,
            max_reconsume_times: self.max_reconsume_times(),
        };
        let header = protocol::send_back_request(&args, self.client.config().serialize_type);
        let reply = self.client.invoke(&addr, header, &[]).await?;
        protocol::check_success(reply).map(|_| ())
    }
}

/// The master addresses of a route's brokers, sorted.
fn masters(route: &TopicRoute) -> Vec<String> {
    let mut addrs: Vec<String> = route
        .data
        .broker_datas
        .iter()
        .filter_map(|b| b.master_addr().map(str::to_string))
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// `queues` grouped by broker name.
fn by_broker(queues: &[MessageQueue]) -> BTreeMap<String, Vec<MessageQueue>> {
    let mut out: BTreeMap<String, Vec<MessageQueue>> = BTreeMap::new();
    for q in queues {
        out.entry(q.broker_name.clone()).or_default().push(q.clone());
    }
    out
}

/// Waits `d`, or less when `wake` is raised or the consumer stops. Loops that nap this
/// way must check the stop latch after each nap: once it is set, naps end at once.
pub(super) async fn nap(inner: &Inner, wake: Option<&Signal>, d: Duration) {
    let timer = runtime::sleep(d);
    let stop = inner.stop.wait();
    match wake {
        Some(w) => futures_lite::future::or(timer, futures_lite::future::or(stop, w.wait())).await,
        None => futures_lite::future::or(timer, stop).await,
    }
}

/// Waits `d`, or less when `wake` is raised; deaf to the stop latch (consume loops end
/// when their queue is dropped, which raises `wake`).
pub(super) async fn doze(wake: &Signal, d: Duration) {
    futures_lite::future::or(runtime::sleep(d), wake.wait()).await
}
