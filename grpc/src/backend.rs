//! The front end's way into the broker: remoting requests served by a shard as if a
//! connection had received them (`ShardMsg::Dispatch`), and typed helpers over them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    ConsumerSendMsgBackRequestHeader, EndTransactionRequestHeader, PullMessageRequestHeader,
    PullMessageResponseHeader, SendMessageRequestHeader, SendMessageResponseHeader,
};
use ramjet_proto::{CommandHeader, ExtFields, Frame, Header, SerializeType};

/// A boxed future the backend answers with.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A response from the broker: header and the whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Response header.
    pub header: Header,
    /// Response body (all parts joined).
    pub body: Bytes,
}

/// Serves one remoting request inside the broker.
pub trait Backend: Send + Sync + 'static {
    /// Serves `frame` for a client at `peer`; `None` when the broker is stopping.
    fn call(&self, frame: Frame, peer: SocketAddr) -> BoxFuture<Option<Reply>>;
}

/// An error talking to the broker: a response code and its remark.
#[derive(Debug, Clone)]
pub struct BrokerFailure {
    /// Remoting response code (`-1`: no answer).
    pub code: i32,
    /// Remark.
    pub remark: String,
}

impl BrokerFailure {
    fn gone() -> BrokerFailure {
        BrokerFailure { code: -1, remark: "the broker is stopping".into() }
    }

    fn of(reply: &Reply) -> BrokerFailure {
        BrokerFailure {
            code: reply.header.code,
            remark: reply.header.remark.clone().unwrap_or_default(),
        }
    }
}

/// What a pull found.
#[derive(Debug)]
pub struct Pulled {
    /// Response code (SUCCESS, PULL_NOT_FOUND, PULL_RETRY_IMMEDIATELY, PULL_OFFSET_MOVED).
    pub code: i32,
    /// The raw records (SUCCESS).
    pub body: Bytes,
    /// Next offset to read.
    pub next_begin_offset: i64,
    /// Smallest offset.
    pub min_offset: i64,
    /// End of the queue.
    pub max_offset: i64,
}

/// Typed remoting requests over a [`Backend`].
#[derive(Clone)]
pub struct Broker {
    backend: Arc<dyn Backend>,
    opaque: Arc<AtomicI32>,
}

/// PullSysFlag: suspend (long poll).
const PULL_FLAG_SUSPEND: i32 = 0x2;

impl Broker {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn Backend>) -> Broker {
        Broker { backend, opaque: Arc::new(AtomicI32::new(1)) }
    }

    async fn call(
        &self,
        code: i32,
        fields: ExtFields,
        body: Bytes,
        peer: SocketAddr,
    ) -> Result<Reply, BrokerFailure> {
        let opaque = self.opaque.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let mut header = Header::request(code, opaque, SerializeType::Json);
        header.ext_fields = fields;
        self.backend.call(Frame { header, body }, peer).await.ok_or_else(BrokerFailure::gone)
    }

    /// SEND_MESSAGE_V2; returns the response header on SUCCESS.
    pub async fn send(
        &self,
        h: &SendMessageRequestHeader,
        body: Bytes,
        peer: SocketAddr,
    ) -> Result<SendMessageResponseHeader, BrokerFailure> {
        let opaque = self.opaque.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let mut header = Header::request(request::SEND_MESSAGE_V2, opaque, SerializeType::Json);
        h.encode_v2(&mut header.ext_fields);
        let reply = self
            .backend
            .call(Frame { header, body }, peer)
            .await
            .ok_or_else(BrokerFailure::gone)?;
        if reply.header.code != response::SUCCESS {
            return Err(BrokerFailure::of(&reply));
        }
        SendMessageResponseHeader::decode(&reply.header.ext_fields)
            .map_err(|e| BrokerFailure { code: response::SYSTEM_ERROR, remark: e.to_string() })
    }

    /// PULL_MESSAGE of one queue, parked up to `suspend_ms` when nothing is there.
    #[allow(clippy::too_many_arguments)]
    pub async fn pull(
        &self,
        group: &str,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max: i32,
        filter: Option<(&str, &str)>,
        suspend_ms: i64,
        peer: SocketAddr,
    ) -> Result<Pulled, BrokerFailure> {
        let h = PullMessageRequestHeader {
            consumer_group: group.to_string(),
            topic: topic.to_string(),
            queue_id,
            queue_offset: offset,
            max_msg_nums: max,
            sys_flag: if suspend_ms > 0 { PULL_FLAG_SUSPEND } else { 0 },
            commit_offset: 0,
            suspend_timeout_millis: suspend_ms.max(0),
            subscription: Some(filter.map_or("*", |f| f.1).to_string()),
            sub_version: 0,
            expression_type: Some(filter.map_or("TAG", |f| f.0).to_string()),
            max_msg_bytes: None,
        };
        let reply = self.call(request::PULL_MESSAGE, h.to_ext_fields(), Bytes::new(), peer).await?;
        match reply.header.code {
            response::SUCCESS
            | response::PULL_NOT_FOUND
            | response::PULL_RETRY_IMMEDIATELY
            | response::PULL_OFFSET_MOVED => {
                let r =
                    PullMessageResponseHeader::decode(&reply.header.ext_fields).map_err(|e| {
                        BrokerFailure { code: response::SYSTEM_ERROR, remark: e.to_string() }
                    })?;
                Ok(Pulled {
                    code: reply.header.code,
                    body: reply.body,
                    next_begin_offset: r.next_begin_offset,
                    min_offset: r.min_offset,
                    max_offset: r.max_offset,
                })
            }
            _ => Err(BrokerFailure::of(&reply)),
        }
    }

    /// GET_TOPIC_CONFIG: the topic's configuration, `None` when it does not exist.
    pub async fn topic_config(
        &self,
        topic: &str,
        peer: SocketAddr,
    ) -> Result<Option<ramjet_proto::body::TopicConfig>, BrokerFailure> {
        let reply =
            self.call(request::GET_TOPIC_CONFIG, one("topic", topic), Bytes::new(), peer).await?;
        match reply.header.code {
            response::SUCCESS => ramjet_proto::body::from_json(&reply.body)
                .map(Some)
                .map_err(|e| BrokerFailure { code: response::SYSTEM_ERROR, remark: e.to_string() }),
            response::TOPIC_NOT_EXIST => Ok(None),
            _ => Err(BrokerFailure::of(&reply)),
        }
    }

    /// The group's `retryMaxTimes` (GET_SUBSCRIPTIONGROUP_CONFIG), when configured.
    pub async fn group_retry_max(&self, group: &str, peer: SocketAddr) -> Option<i32> {
        let reply = self
            .call(request::GET_SUBSCRIPTIONGROUP_CONFIG, one("group", group), Bytes::new(), peer)
            .await
            .ok()?;
        if reply.header.code != response::SUCCESS {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
        v.get("retryMaxTimes")
            .and_then(serde_json::Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
    }

    /// CONSUMER_SEND_MSG_BACK with a negative delay level: the record at `offset` is copied
    /// to the group's DLQ (created when missing).
    pub async fn to_dlq(
        &self,
        group: &str,
        offset: i64,
        msg_id: &str,
        topic: &str,
        peer: SocketAddr,
    ) -> Result<(), BrokerFailure> {
        let h = ConsumerSendMsgBackRequestHeader {
            offset,
            group: group.to_string(),
            delay_level: -1,
            origin_msg_id: Some(msg_id.to_string()),
            origin_topic: Some(topic.to_string()),
            max_reconsume_times: None,
        };
        let reply = self
            .call(request::CONSUMER_SEND_MSG_BACK, h.to_ext_fields(), Bytes::new(), peer)
            .await?;
        if reply.header.code == response::SUCCESS {
            Ok(())
        } else {
            Err(BrokerFailure::of(&reply))
        }
    }

    /// END_TRANSACTION for a half message.
    pub async fn end_transaction(
        &self,
        h: &EndTransactionRequestHeader,
        peer: SocketAddr,
    ) -> Result<(), BrokerFailure> {
        let reply =
            self.call(request::END_TRANSACTION, h.to_ext_fields(), Bytes::new(), peer).await?;
        if reply.header.code == response::SUCCESS {
            Ok(())
        } else {
            Err(BrokerFailure::of(&reply))
        }
    }
}

/// Ext fields holding one pair.
fn one(key: &str, value: &str) -> ExtFields {
    let mut ext = ExtFields::with_capacity(1);
    ext.insert(key, value);
    ext
}
