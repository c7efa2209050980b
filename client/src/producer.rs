//! The producer: synchronous, asynchronous (a handle awaited later), one-way, batch and
//! selector-chosen sends.
//!
//! Lives on: the executor of its [`Client`].
//!
//! `send` picks a write queue of the topic's route (round robin, avoiding brokers that
//! were slow or failed recently: [`crate::fault`]), sends SEND_MESSAGE_V2 and, on a
//! transport error or a refusal worth retrying, drops the cached route and tries again
//! on another broker, up to `retry_times` more times (the reference client's
//! `retryTimesWhenSendFailed`, 2). `send_to_queue` never retries, so load generators see
//! every error. `send_with_selector` lets the caller choose the queue
//! ([`crate::selector`]), for ordered messages. A topic the NameServer does not know is sent through the route of the
//! auto-create template topic `TBW102`, so a broker with auto-create enabled creates it.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use ramjet_proto::body::TopicRouteData;

use crate::client::{now_ms, Client};
use crate::error::ClientError;
use crate::fault::MqFaultStrategy;
use crate::message::{Message, MessageQueue, SendResult, UniqueIdGenerator};
use crate::protocol::{self, SendContext, DEFAULT_TOPIC, DEFAULT_TOPIC_QUEUE_NUMS};
use crate::route::TopicRoute;
use crate::runtime::{self, Task};
use crate::selector::MessageQueueSelector;
use crate::send_retry::{self, SendRetry, SendStep};

/// Default number of extra attempts of `send` after a failure.
pub const RETRY_TIMES_DEFAULT: u32 = 2;

/// Sends messages for one producer group. Cheap to clone: clones share the client, the
/// id generator and the fault-avoidance state.
#[derive(Debug, Clone)]
pub struct Producer {
    core: Rc<Core>,
    /// Extra attempts of `send`/`send_batch` after a retriable failure.
    pub retry_times: u32,
}

#[derive(Debug)]
struct Core {
    client: Client,
    group: String,
    ids: RefCell<UniqueIdGenerator>,
    fault: RefCell<MqFaultStrategy>,
}

/// What one send attempt carries.
#[derive(Clone, Copy)]
enum Payload<'a> {
    One(&'a Message),
    Batch(&'a [Message]),
}

impl Producer {
    /// A producer of `group` on `client`.
    pub fn new(client: Client, group: impl Into<String>) -> Producer {
        Producer {
            core: Rc::new(Core {
                client,
                group: group.into(),
                ids: RefCell::new(UniqueIdGenerator::new([127, 0, 0, 1])),
                fault: RefCell::new(MqFaultStrategy::new()),
            }),
            retry_times: RETRY_TIMES_DEFAULT,
        }
    }

    /// The client this producer sends through.
    pub fn client(&self) -> &Client {
        &self.core.client
    }

    /// The producer group.
    pub fn group(&self) -> &str {
        &self.core.group
    }

    /// Turns latency-based fault avoidance ([`crate::fault`]) on (the default) or off.
    /// Off, queue selection is round robin that only avoids the broker which just failed.
    pub fn set_fault_avoidance(&self, enabled: bool) {
        self.core.fault.borrow_mut().enabled = enabled;
    }

    /// False while fault avoidance keeps away from `broker_name`.
    pub fn is_broker_available(&self, broker_name: &str) -> bool {
        self.core.fault.borrow().is_available(broker_name, Instant::now())
    }

    /// The write queues of `topic` (through `TBW102` when the topic is unknown).
    ///
    /// # Errors
    /// `NoRoute`, transport errors.
    pub async fn write_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        Ok(self.publish_route(topic).await?.write_queues.clone())
    }

    /// Sends `msg` to a queue of its topic and waits for the broker's answer.
    ///
    /// The queue is chosen round robin, avoiding brokers that were slow or failed
    /// recently ([`crate::fault`]); a failure worth retrying (transport errors, the
    /// reference's retry codes) is tried again on another broker, up to
    /// [`Producer::retry_times`] more times.
    ///
    /// # Errors
    /// `Broker { code, remark }` when the broker refused it (after retries), `NoRoute`,
    /// transport errors.
    pub async fn send(&self, msg: Message) -> Result<SendResult, ClientError> {
        let topic = msg.topic.clone();
        self.send_retrying(&topic, Payload::One(&msg)).await
    }

    /// Starts sending `msg` as [`Producer::send`] does and returns at once; await the
    /// handle for the result. Any number of sends may be in flight; they are pipelined
    /// on the client's connections.
    ///
    /// # Panics
    /// When called outside an executor of an enabled runtime (the send runs as a task
    /// on it: [`crate::runtime::spawn_local`]).
    ///
    /// # Cancel safety
    /// Dropping the handle cancels the send (it may or may not have reached the broker);
    /// [`SendHandle::detach`] lets it finish unobserved instead.
    pub fn send_async(&self, msg: Message) -> SendHandle {
        let producer = self.clone();
        SendHandle { task: runtime::spawn_local(async move { producer.send(msg).await }) }
    }

    /// Sends `msg` to the queue `selector` picks among the topic's write queues (for
    /// ordered messages: the same key, the same queue). No retry on another queue, as in
    /// the reference: a retry elsewhere would break the order.
    ///
    /// # Errors
    /// `NoRoute` when the topic has no write queue; as [`Producer::send_to_queue`].
    pub async fn send_with_selector(
        &self,
        msg: Message,
        selector: &dyn MessageQueueSelector,
    ) -> Result<SendResult, ClientError> {
        let route = self.publish_route(&msg.topic).await?;
        let queue = select_with(&route, &msg, selector)?;
        self.send_to_queue(&queue, msg).await
    }

    /// [`Producer::send_with_selector`] started as a task, like [`Producer::send_async`].
    ///
    /// # Panics
    /// As [`Producer::send_async`].
    pub fn send_async_with_selector(
        &self,
        msg: Message,
        selector: impl MessageQueueSelector + 'static,
    ) -> SendHandle {
        let producer = self.clone();
        let task =
            runtime::spawn_local(async move { producer.send_with_selector(msg, &selector).await });
        SendHandle { task }
    }

    /// Sends `msg` to `queue` once (no retry, no fault bookkeeping).
    ///
    /// # Errors
    /// `Broker { code, remark }`, `NoBrokerAddr`, transport errors.
    pub async fn send_to_queue(
        &self,
        queue: &MessageQueue,
        mut msg: Message,
    ) -> Result<SendResult, ClientError> {
        let broker = self.client().master_addr(&queue.broker_name, &queue.topic).await?;
        let addr = self.client().queue_addr(&broker, &queue.topic, queue.queue_id).await;
        msg.topic.clone_from(&queue.topic);
        let key = self.unique_key(&msg);
        let header = protocol::send_request(&self.send_context(), &msg, queue, &key);
        let reply = self.client().invoke(&addr, header, &msg.body).await?;
        protocol::parse_send_response(reply, queue, key)
    }

    /// Sends `msg` to a queue of its topic without waiting for an answer.
    ///
    /// # Errors
    /// `NoRoute`, `NoBrokerAddr`, `Connect`, `ConnectionClosed`.
    pub async fn send_oneway(&self, msg: Message) -> Result<(), ClientError> {
        let route = self.publish_route(&msg.topic).await?;
        let queue = self
            .core
            .fault
            .borrow_mut()
            .select_queue(&route, None, Instant::now())
            .ok_or_else(|| ClientError::NoRoute { topic: msg.topic.clone() })?;
        let addr = self.client().master_addr(&queue.broker_name, &queue.topic).await?;
        let key = self.unique_key(&msg);
        let header = protocol::send_request(&self.send_context(), &msg, &queue, &key);
        self.client().invoke_oneway(&addr, header, &msg.body).await
    }

    /// Sends `msgs` as one SEND_BATCH_MESSAGE to a queue of `topic`, with the queue
    /// choice and retries of [`Producer::send`]. The result's ids are comma-joined, one
    /// per message.
    ///
    /// # Errors
    /// As `send`, and `InvalidArgument` for an empty batch.
    pub async fn send_batch(
        &self,
        topic: &str,
        msgs: Vec<Message>,
    ) -> Result<SendResult, ClientError> {
        self.send_retrying(topic, Payload::Batch(&msgs)).await
    }

    /// Sends `msgs` as one batch to `queue` once (no retry). Every message's topic is
    /// taken to be the queue's.
    ///
    /// # Errors
    /// `InvalidArgument` for an empty batch, `Broker`, transport errors.
    pub async fn send_batch_to_queue(
        &self,
        queue: &MessageQueue,
        msgs: &[Message],
    ) -> Result<SendResult, ClientError> {
        let broker = self.client().master_addr(&queue.broker_name, &queue.topic).await?;
        let addr = self.client().queue_addr(&broker, &queue.topic, queue.queue_id).await;
        let msgs: Vec<Message> =
            msgs.iter().map(|m| Message { topic: queue.topic.clone(), ..m.clone() }).collect();
        let keys: Vec<String> = msgs.iter().map(|m| self.unique_key(m)).collect();
        let (header, body) = protocol::batch_request(&self.send_context(), &msgs, queue, &keys)?;
        let reply = self.client().invoke(&addr, header, &body).await?;
        protocol::parse_send_response(reply, queue, keys.join(","))
    }

    /// Sends `msg` once to a queue of its topic with `sys_flag` in the request header
    /// (the transactional half message: [`crate::transaction`]). Queue choice as
    /// [`Producer::send`], no retry (a retried half could be stored twice).
    ///
    /// # Errors
    /// As [`Producer::send_to_queue`], and `NoRoute`.
    pub(crate) async fn send_with_sys_flag(
        &self,
        mut msg: Message,
        sys_flag: i32,
    ) -> Result<SendResult, ClientError> {
        let route = self.publish_route(&msg.topic).await?;
        let queue = self
            .core
            .fault
            .borrow_mut()
            .select_queue(&route, None, Instant::now())
            .ok_or_else(|| ClientError::NoRoute { topic: msg.topic.clone() })?;
        let addr = self.client().master_addr(&queue.broker_name, &queue.topic).await?;
        msg.topic.clone_from(&queue.topic);
        let key = self.unique_key(&msg);
        let mut header = protocol::send_request(&self.send_context(), &msg, &queue, &key);
        protocol::set_send_sys_flag(&mut header, sys_flag)?;
        let reply = self.client().invoke(&addr, header, &msg.body).await?;
        protocol::parse_send_response(reply, &queue, key)
    }

    /// The send loop of the reference's `sendDefaultImpl`: choose a queue avoiding slow
    /// and failed brokers, send, learn the broker's latency, and retry a retriable
    /// failure on another broker. The decisions are [`SendRetry`]'s and
    /// [`MqFaultStrategy`]'s; this loop only performs them.
    async fn send_retrying(
        &self,
        topic: &str,
        payload: Payload<'_>,
    ) -> Result<SendResult, ClientError> {
        let mut retry = SendRetry::new(self.retry_times);
        loop {
            let route = self.publish_route(topic).await?;
            let queue = self
                .core
                .fault
                .borrow_mut()
                .select_queue(&route, retry.avoid(), Instant::now())
                .ok_or_else(|| ClientError::NoRoute { topic: topic.to_string() })?;
            let begin = Instant::now();
            let result = match payload {
                Payload::One(msg) => self.send_to_queue(&queue, msg.clone()).await,
                Payload::Batch(msgs) => self.send_batch_to_queue(&queue, msgs).await,
            };
            let now = Instant::now();
            let error = result.as_ref().err();
            self.core.fault.borrow_mut().update_fault_item(
                &queue.broker_name,
                now - begin,
                send_retry::isolates(error),
                now,
            );
            match retry.after(&queue.broker_name, error) {
                SendStep::Retry => {
                    tracing::debug!(%queue.broker_name, error = ?error, retry = retry.retries(),
                        "send failed, retrying");
                    self.client().invalidate_route(topic);
                }
                SendStep::Done => return result,
            }
        }
    }

    fn send_context(&self) -> SendContext<'_> {
        SendContext {
            producer_group: &self.core.group,
            serialize_type: self.client().config().serialize_type,
            born_timestamp_ms: now_ms(),
        }
    }

    fn unique_key(&self, msg: &Message) -> String {
        match msg.unique_key() {
            Some(k) => k.to_string(),
            None => self.core.ids.borrow_mut().next_id(),
        }
    }

    /// The route to send `topic` through: its own, or one derived from `TBW102` with at
    /// most `DEFAULT_TOPIC_QUEUE_NUMS` queues per broker (what the broker will create).
    async fn publish_route(&self, topic: &str) -> Result<Rc<TopicRoute>, ClientError> {
        match self.client().topic_route(topic).await {
            Err(ClientError::NoRoute { .. }) => {}
            other => return other,
        }
        let template = self
            .client()
            .fetch_route(DEFAULT_TOPIC)
            .await?
            .ok_or_else(|| ClientError::NoRoute { topic: topic.to_string() })?;
        Ok(self.client().install_route(topic, auto_create_route(template)))
    }
}

/// The queue `selector` picks for `msg` among the route's write queues.
fn select_with(
    route: &TopicRoute,
    msg: &Message,
    selector: &dyn MessageQueueSelector,
) -> Result<MessageQueue, ClientError> {
    let queues = &route.write_queues;
    if queues.is_empty() {
        return Err(ClientError::NoRoute { topic: msg.topic.clone() });
    }
    let index = selector.select(queues, msg) % queues.len();
    queues.get(index).cloned().ok_or_else(|| ClientError::NoRoute { topic: msg.topic.clone() })
}

/// A send in flight, started by [`Producer::send_async`]: await it for the result.
#[must_use = "dropping a SendHandle cancels the send; use detach() to let it finish"]
#[derive(Debug)]
pub struct SendHandle {
    task: Task<Result<SendResult, ClientError>>,
}

impl SendHandle {
    /// Lets the send finish in the background; its result is dropped.
    pub fn detach(self) {
        self.task.detach();
    }
}

impl Future for SendHandle {
    type Output = Result<SendResult, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task).poll(cx)
    }
}

/// The route a topic will get when a broker auto-creates it from `TBW102`.
fn auto_create_route(mut template: TopicRouteData) -> TopicRouteData {
    for q in &mut template.queue_datas {
        q.write_queue_nums = q.write_queue_nums.min(DEFAULT_TOPIC_QUEUE_NUMS);
        q.read_queue_nums = q.write_queue_nums;
        q.perm &= crate::route::PERM_READ | crate::route::PERM_WRITE;
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_create_route_caps_queues_at_the_default() {
        let data: TopicRouteData = ramjet_proto::body::from_json(
            br#"{"brokerDatas":[{"brokerAddrs":{"0":"h:1"},"brokerName":"a"}],
                 "queueDatas":[{"brokerName":"a","perm":7,"readQueueNums":8,"writeQueueNums":8}]}"#,
        )
        .expect("parses");
        let r = TopicRoute::new("new-topic", auto_create_route(data));
        assert_eq!(r.write_queues.len(), DEFAULT_TOPIC_QUEUE_NUMS as usize);
        assert!(r.write_queues.iter().all(|q| q.topic == "new-topic"));
    }
}
