//! The producer: synchronous, one-way and batch sends with round-robin queue selection.
//!
//! Lives on: the executor of its [`Client`].
//!
//! `send` picks the next write queue of the topic's route, sends SEND_MESSAGE_V2 and, on
//! a transport error or a refusal worth retrying, drops the cached route and tries again
//! on another broker, up to `retry_times` more times (the reference client's
//! `retryTimesWhenSendFailed`, 2). `send_to_queue` never retries, so load generators see
//! every error. A topic the NameServer does not know is sent through the route of the
//! auto-create template topic `TBW102`, so a broker with auto-create enabled creates it.

use std::cell::RefCell;

use ramjet_proto::body::TopicRouteData;
use ramjet_proto::codes::response;

use crate::client::{now_ms, Client};
use crate::error::ClientError;
use crate::message::{Message, MessageQueue, SendResult, UniqueIdGenerator};
use crate::protocol::{self, SendContext, DEFAULT_TOPIC, DEFAULT_TOPIC_QUEUE_NUMS};
use crate::route::TopicRoute;

/// Default number of extra attempts of `send` after a failure.
pub const RETRY_TIMES_DEFAULT: u32 = 2;

/// Sends messages for one producer group.
#[derive(Debug)]
pub struct Producer {
    client: Client,
    group: String,
    ids: RefCell<UniqueIdGenerator>,
    /// Extra attempts of `send`/`send_batch` after a retriable failure.
    pub retry_times: u32,
}

impl Producer {
    /// A producer of `group` on `client`.
    pub fn new(client: Client, group: impl Into<String>) -> Producer {
        Producer {
            client,
            group: group.into(),
            ids: RefCell::new(UniqueIdGenerator::new([127, 0, 0, 1])),
            retry_times: RETRY_TIMES_DEFAULT,
        }
    }

    /// The client this producer sends through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The producer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The write queues of `topic` (through `TBW102` when the topic is unknown).
    ///
    /// # Errors
    /// `NoRoute`, transport errors.
    pub async fn write_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        Ok(self.publish_route(topic).await?.write_queues.clone())
    }

    /// Sends `msg` to the next queue of its topic and waits for the broker's answer.
    ///
    /// # Errors
    /// `Broker { code, remark }` when the broker refused it (after retries), `NoRoute`,
    /// transport errors.
    pub async fn send(&self, msg: Message) -> Result<SendResult, ClientError> {
        let mut failed_broker: Option<String> = None;
        let mut attempt = 0;
        loop {
            let route = self.publish_route(&msg.topic).await?;
            let queue = match &failed_broker {
                Some(b) => route.select_write_queue_avoiding(b),
                None => route.select_write_queue(),
            }
            .cloned()
            .ok_or_else(|| ClientError::NoRoute { topic: msg.topic.clone() })?;
            match self.send_to_queue(&queue, msg.clone()).await {
                Err(e) if attempt < self.retry_times && retriable(&e) => {
                    tracing::debug!(%queue.broker_name, error = %e, attempt, "send failed, retrying");
                    self.client.invalidate_route(&msg.topic);
                    failed_broker = Some(queue.broker_name);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Sends `msg` to `queue` once (no retry).
    ///
    /// # Errors
    /// `Broker { code, remark }`, `NoBrokerAddr`, transport errors.
    pub async fn send_to_queue(
        &self,
        queue: &MessageQueue,
        mut msg: Message,
    ) -> Result<SendResult, ClientError> {
        let addr = self.client.master_addr(&queue.broker_name, &queue.topic).await?;
        msg.topic.clone_from(&queue.topic);
        let key = self.unique_key(&msg);
        let header = protocol::send_request(&self.send_context(), &msg, queue, &key);
        let reply = self.client.invoke(&addr, header, &msg.body).await?;
        protocol::parse_send_response(reply, queue, key)
    }

    /// Sends `msg` to the next queue of its topic without waiting for an answer.
    ///
    /// # Errors
    /// `NoRoute`, `NoBrokerAddr`, `Connect`, `ConnectionClosed`.
    pub async fn send_oneway(&self, msg: Message) -> Result<(), ClientError> {
        let route = self.publish_route(&msg.topic).await?;
        let queue = route
            .select_write_queue()
            .cloned()
            .ok_or_else(|| ClientError::NoRoute { topic: msg.topic.clone() })?;
        let addr = self.client.master_addr(&queue.broker_name, &queue.topic).await?;
        let key = self.unique_key(&msg);
        let header = protocol::send_request(&self.send_context(), &msg, &queue, &key);
        self.client.invoke_oneway(&addr, header, &msg.body).await
    }

    /// Sends `msgs` as one SEND_BATCH_MESSAGE to the next queue of `topic`, with the
    /// retries of [`Producer::send`]. The result's ids are comma-joined, one per message.
    ///
    /// # Errors
    /// As `send`, and `InvalidArgument` for an empty batch.
    pub async fn send_batch(
        &self,
        topic: &str,
        msgs: Vec<Message>,
    ) -> Result<SendResult, ClientError> {
        let mut failed_broker: Option<String> = None;
        let mut attempt = 0;
        loop {
            let route = self.publish_route(topic).await?;
            let queue = match &failed_broker {
                Some(b) => route.select_write_queue_avoiding(b),
                None => route.select_write_queue(),
            }
            .cloned()
            .ok_or_else(|| ClientError::NoRoute { topic: topic.to_string() })?;
            match self.send_batch_to_queue(&queue, &msgs).await {
                Err(e) if attempt < self.retry_times && retriable(&e) => {
                    self.client.invalidate_route(topic);
                    failed_broker = Some(queue.broker_name);
                    attempt += 1;
                }
                result => return result,
            }
        }
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
        let addr = self.client.master_addr(&queue.broker_name, &queue.topic).await?;
        let msgs: Vec<Message> =
            msgs.iter().map(|m| Message { topic: queue.topic.clone(), ..m.clone() }).collect();
        let keys: Vec<String> = msgs.iter().map(|m| self.unique_key(m)).collect();
        let (header, body) = protocol::batch_request(&self.send_context(), &msgs, queue, &keys)?;
        let reply = self.client.invoke(&addr, header, &body).await?;
        protocol::parse_send_response(reply, queue, keys.join(","))
    }

    fn send_context(&self) -> SendContext<'_> {
        SendContext {
            producer_group: &self.group,
            serialize_type: self.client.config().serialize_type,
            born_timestamp_ms: now_ms(),
        }
    }

    fn unique_key(&self, msg: &Message) -> String {
        match msg.unique_key() {
            Some(k) => k.to_string(),
            None => self.ids.borrow_mut().next_id(),
        }
    }

    /// The route to send `topic` through: its own, or one derived from `TBW102` with at
    /// most `DEFAULT_TOPIC_QUEUE_NUMS` queues per broker (what the broker will create).
    async fn publish_route(&self, topic: &str) -> Result<std::rc::Rc<TopicRoute>, ClientError> {
        match self.client.topic_route(topic).await {
            Err(ClientError::NoRoute { .. }) => {}
            other => return other,
        }
        let template = self
            .client
            .fetch_route(DEFAULT_TOPIC)
            .await?
            .ok_or_else(|| ClientError::NoRoute { topic: topic.to_string() })?;
        Ok(self.client.install_route(topic, auto_create_route(template)))
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

/// Failures worth trying on another broker (the reference's `retryResponseCodes` plus
/// every transport error).
fn retriable(e: &ClientError) -> bool {
    match e {
        ClientError::Broker { code, .. } => matches!(
            *code,
            response::TOPIC_NOT_EXIST
                | response::SERVICE_NOT_AVAILABLE
                | response::SYSTEM_ERROR
                | response::NO_PERMISSION
                | response::NO_BUYER_ID
                | response::NOT_IN_CURRENT_UNIT
        ),
        ClientError::Timeout { .. }
        | ClientError::Connect { .. }
        | ClientError::ConnectionClosed { .. }
        | ClientError::NoBrokerAddr { .. } => true,
        _ => false,
    }
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

    #[test]
    fn broker_refusals_retry_only_for_the_reference_codes() {
        let broker = |code| ClientError::Broker { code, remark: String::new() };
        assert!(retriable(&broker(response::SYSTEM_ERROR)));
        assert!(!retriable(&broker(response::MESSAGE_ILLEGAL)));
        assert!(!retriable(&broker(response::SYSTEM_BUSY)));
        assert!(retriable(&ClientError::Connect { addr: "a".into(), message: "m".into() }));
        assert!(!retriable(&ClientError::InvalidArgument { reason: "r".into() }));
    }
}
