//! Request building and reply parsing for every call the client makes. Pure functions
//! over `proto` types: no I/O, so any transport reuses them and tests need no sockets.
//!
//! Each request function returns the `Header` (opaque 0; the connection assigns it) and,
//! where there is one, the body. Each parse function takes the reply frame and returns
//! the client's domain type or `ClientError::Broker { code, remark }` for a refusal.

use bytes::Bytes;
use ramjet_proto::batch::{encode_batch, BatchMessage};
use ramjet_proto::body::{
    from_json, to_json, ClusterInfo, ConsumeFromWhere, ConsumeType, ConsumerData, ConsumerListBody,
    HeartbeatData, LockBatchRequestBody, LockBatchResponseBody, MessageModel, SubscriptionData,
    TopicRouteData, EXPRESSION_TYPE_TAG,
};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CommandHeader, ConsumerSendMsgBackRequestHeader, CreateTopicRequestHeader,
    GetConsumerListByGroupRequestHeader, GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader,
    GetMinOffsetRequestHeader, GetRouteInfoRequestHeader, NotifyConsumerIdsChangedRequestHeader,
    PullMessageRequestHeader, PullMessageResponseHeader, QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader, SearchOffsetRequestHeader, SendMessageRequestHeader,
    SendMessageResponseHeader, UnregisterClientRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use ramjet_proto::message::{decode_records, encode_properties, property, tags_code};
use ramjet_proto::{Frame, Header, SerializeType};

use crate::error::ClientError;
use crate::message::{Message, MessageQueue, PullResult, PullStatus, SendResult, SendStatus};

/// PullSysFlag: the header's `commitOffset` is to be stored.
pub const PULL_FLAG_COMMIT_OFFSET: i32 = 0x1;
/// PullSysFlag: the broker may hold the request (long polling).
pub const PULL_FLAG_SUSPEND: i32 = 0x2;
/// PullSysFlag: the header carries the subscription expression.
pub const PULL_FLAG_SUBSCRIPTION: i32 = 0x4;

/// The auto-create template topic named in send headers.
pub const DEFAULT_TOPIC: &str = "TBW102";
/// Queue count asked for when the broker auto-creates a topic on first send.
pub const DEFAULT_TOPIC_QUEUE_NUMS: i32 = 4;

/// A request header with `code` and the typed header `ext`.
pub fn request_header(
    code: i32,
    serialize_type: SerializeType,
    ext: &impl CommandHeader,
) -> Header {
    let mut h = Header::request(code, 0, serialize_type);
    ext.encode(&mut h.ext_fields);
    h
}

/// Passes a SUCCESS reply through; anything else becomes `Broker { code, remark }`.
///
/// # Errors
/// The reply's code is not SUCCESS.
pub fn check_success(frame: Frame) -> Result<Frame, ClientError> {
    if frame.header.code == response::SUCCESS {
        Ok(frame)
    } else {
        Err(broker_error(&frame))
    }
}

fn broker_error(frame: &Frame) -> ClientError {
    ClientError::Broker {
        code: frame.header.code,
        remark: frame.header.remark.clone().unwrap_or_default(),
    }
}

fn typed<T: CommandHeader>(frame: &Frame, code: i32) -> Result<T, ClientError> {
    T::decode(&frame.header.ext_fields).map_err(|e| ClientError::bad_response(code, e))
}

// ---------------------------------------------------------------------------------------
// Routes and cluster info.

/// GET_ROUTEINFO_BY_TOPIC (105).
pub fn route_request(topic: &str, serialize_type: SerializeType) -> Header {
    let ext =
        GetRouteInfoRequestHeader { topic: topic.to_string(), accept_standard_json_only: None };
    request_header(request::GET_ROUTEINFO_BY_TOPIC, serialize_type, &ext)
}

/// Parses a route reply; `Ok(None)` when the NameServer knows no such topic
/// (TOPIC_NOT_EXIST).
///
/// # Errors
/// Another non-success code, or a body that does not parse.
pub fn parse_route(frame: Frame) -> Result<Option<TopicRouteData>, ClientError> {
    if frame.header.code == response::TOPIC_NOT_EXIST {
        return Ok(None);
    }
    let frame = check_success(frame)?;
    from_json(&frame.body)
        .map(Some)
        .map_err(|e| ClientError::bad_response(request::GET_ROUTEINFO_BY_TOPIC, e))
}

/// GET_BROKER_CLUSTER_INFO (106).
pub fn cluster_info_request(serialize_type: SerializeType) -> Header {
    Header::request(request::GET_BROKER_CLUSTER_INFO, 0, serialize_type)
}

/// Parses a cluster-info reply.
///
/// # Errors
/// Non-success code or a body that does not parse.
pub fn parse_cluster_info(frame: Frame) -> Result<ClusterInfo, ClientError> {
    let frame = check_success(frame)?;
    from_json(&frame.body)
        .map_err(|e| ClientError::bad_response(request::GET_BROKER_CLUSTER_INFO, e))
}

// ---------------------------------------------------------------------------------------
// Send.

/// The properties string of `msg`: user properties, then TAGS, KEYS, WAIT=true and
/// UNIQ_KEY (only those not already set by the user).
pub fn message_properties(msg: &Message, unique_key: &str) -> String {
    let user_set = |name: &str| msg.properties.iter().any(|(k, _)| k == name);
    let mut pairs: Vec<(&str, &str)> =
        msg.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let system = [
        (property::TAGS, msg.tags.as_deref()),
        (property::KEYS, msg.keys.as_deref()),
        (property::WAIT_STORE_MSG_OK, Some("true")),
        (property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, Some(unique_key)),
    ];
    for (name, value) in system {
        if let Some(value) = value.filter(|_| !user_set(name)) {
            pairs.push((name, value));
        }
    }
    // Separators 0x01 and 0x02 are valid UTF-8, and every part is a `str`.
    String::from_utf8(encode_properties(pairs)).unwrap_or_default()
}

/// What a send request needs besides the message.
#[derive(Debug, Clone, Copy)]
pub struct SendContext<'a> {
    /// Producer group.
    pub producer_group: &'a str,
    /// Header encoding.
    pub serialize_type: SerializeType,
    /// Producer timestamp, ms.
    pub born_timestamp_ms: i64,
}

/// SEND_MESSAGE_V2 (310) for `msg` to `queue`; the body is `msg.body`.
pub fn send_request(
    ctx: &SendContext<'_>,
    msg: &Message,
    queue: &MessageQueue,
    unique_key: &str,
) -> Header {
    let ext =
        send_header(ctx, &msg.topic, queue.queue_id, msg.flag, message_properties(msg, unique_key));
    let mut h = Header::request(request::SEND_MESSAGE_V2, 0, ctx.serialize_type);
    ext.encode_v2(&mut h.ext_fields);
    h
}

fn send_header(
    ctx: &SendContext<'_>,
    topic: &str,
    queue_id: i32,
    flag: i32,
    properties: String,
) -> SendMessageRequestHeader {
    SendMessageRequestHeader {
        producer_group: ctx.producer_group.to_string(),
        topic: topic.to_string(),
        default_topic: DEFAULT_TOPIC.to_string(),
        default_topic_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
        queue_id,
        sys_flag: 0,
        born_timestamp: ctx.born_timestamp_ms,
        flag,
        properties: Some(properties),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        max_reconsume_times: None,
        batch: None,
        broker_name: None,
    }
}

/// Rewrites the sysFlag of a SEND_MESSAGE_V2 header built by [`send_request`] (0x4
/// marks a transactional half message).
///
/// # Errors
/// `InvalidArgument` when `header` is not a send request header.
pub fn set_send_sys_flag(header: &mut Header, sys_flag: i32) -> Result<(), ClientError> {
    let mut ext = SendMessageRequestHeader::decode_v2(&header.ext_fields)
        .map_err(|e| ClientError::InvalidArgument { reason: format!("send header: {e}") })?;
    ext.sys_flag = sys_flag;
    ext.encode_v2(&mut header.ext_fields);
    Ok(())
}

/// SEND_BATCH_MESSAGE (320) of `msgs` (one topic) to `queue`, with `unique_keys[i]` as
/// message i's UNIQ_KEY. Returns the header and the batch body.
///
/// # Errors
/// `InvalidArgument` when the batch is empty, mixes topics, or the key count differs.
pub fn batch_request(
    ctx: &SendContext<'_>,
    msgs: &[Message],
    queue: &MessageQueue,
    unique_keys: &[String],
) -> Result<(Header, Vec<u8>), ClientError> {
    let invalid = |reason: &str| ClientError::InvalidArgument { reason: reason.to_string() };
    let first = msgs.first().ok_or_else(|| invalid("empty batch"))?;
    if msgs.iter().any(|m| m.topic != first.topic) {
        return Err(invalid("a batch must hold one topic"));
    }
    if unique_keys.len() != msgs.len() {
        return Err(invalid("one unique key per message"));
    }
    let entries: Vec<BatchMessage> = msgs
        .iter()
        .zip(unique_keys)
        .map(|(m, key)| BatchMessage {
            flag: m.flag,
            body: m.body.clone(),
            properties: Bytes::from(message_properties(m, key)),
        })
        .collect();
    let body = encode_batch(&entries);
    let mut ext = send_header(ctx, &first.topic, queue.queue_id, 0, String::new());
    ext.properties = None;
    ext.batch = Some(true);
    let mut h = Header::request(request::SEND_BATCH_MESSAGE, 0, ctx.serialize_type);
    ext.encode_v2(&mut h.ext_fields);
    Ok((h, body))
}

/// Parses a send reply. FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT and SLAVE_NOT_AVAILABLE
/// mean "stored" with a warning status, as in the reference client.
///
/// # Errors
/// Any other non-success code, or a reply without the response header.
pub fn parse_send_response(
    frame: Frame,
    queue: &MessageQueue,
    msg_id: String,
) -> Result<SendResult, ClientError> {
    let status = match frame.header.code {
        response::SUCCESS => SendStatus::Ok,
        response::FLUSH_DISK_TIMEOUT => SendStatus::FlushDiskTimeout,
        response::FLUSH_SLAVE_TIMEOUT => SendStatus::FlushSlaveTimeout,
        response::SLAVE_NOT_AVAILABLE => SendStatus::SlaveNotAvailable,
        _ => return Err(broker_error(&frame)),
    };
    let h: SendMessageResponseHeader = typed(&frame, request::SEND_MESSAGE_V2)?;
    let mut queue = queue.clone();
    queue.queue_id = h.queue_id;
    Ok(SendResult { status, msg_id, offset_msg_id: h.msg_id, queue, queue_offset: h.queue_offset })
}

// ---------------------------------------------------------------------------------------
// Pull and offsets.

/// The arguments of one pull.
#[derive(Debug, Clone, Copy)]
pub struct PullArgs<'a> {
    /// Consumer group.
    pub consumer_group: &'a str,
    /// Queue to pull.
    pub queue: &'a MessageQueue,
    /// First queue offset wanted.
    pub offset: i64,
    /// Most messages.
    pub max_nums: i32,
    /// Long-poll hold time, ms; `None` asks for an immediate answer.
    pub suspend_timeout_ms: Option<i64>,
    /// Subscription expression; `None` lets the broker use the heartbeat's.
    pub subscription: Option<&'a str>,
    /// Consumer offset to commit along with the pull.
    pub commit_offset: Option<i64>,
    /// Subscription version, ms.
    pub sub_version: i64,
}

/// PULL_MESSAGE (11).
pub fn pull_request(args: &PullArgs<'_>, serialize_type: SerializeType) -> Header {
    let mut sys_flag = 0;
    if args.suspend_timeout_ms.is_some() {
        sys_flag |= PULL_FLAG_SUSPEND;
    }
    if args.subscription.is_some() {
        sys_flag |= PULL_FLAG_SUBSCRIPTION;
    }
    if args.commit_offset.is_some() {
        sys_flag |= PULL_FLAG_COMMIT_OFFSET;
    }
    let ext = PullMessageRequestHeader {
        consumer_group: args.consumer_group.to_string(),
        topic: args.queue.topic.clone(),
        queue_id: args.queue.queue_id,
        queue_offset: args.offset,
        max_msg_nums: args.max_nums,
        sys_flag,
        commit_offset: args.commit_offset.unwrap_or(0),
        suspend_timeout_millis: args.suspend_timeout_ms.unwrap_or(0),
        subscription: args.subscription.map(str::to_string),
        sub_version: args.sub_version,
        expression_type: args.subscription.map(|_| EXPRESSION_TYPE_TAG.to_string()),
        max_msg_bytes: None,
    };
    request_header(request::PULL_MESSAGE, serialize_type, &ext)
}

/// The tags of a tag expression; empty for `*` (everything).
pub fn subscription_tags(expression: &str) -> Vec<String> {
    let tags: Vec<String> = expression
        .split("||")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if tags.iter().any(|t| t == "*") {
        return Vec::new();
    }
    tags
}

/// Parses a pull reply. On SUCCESS the body's records are decoded (bodies are slices of
/// the reply, not copies) and, when `tags` is not empty, messages whose TAGS are not in
/// it are dropped (the broker filters by tag hash, which can collide).
///
/// # Errors
/// A code other than the four pull outcomes, a missing header, or undecodable records.
pub fn parse_pull_response(frame: Frame, tags: &[String]) -> Result<PullResult, ClientError> {
    let mut status = match frame.header.code {
        response::SUCCESS => PullStatus::Found,
        response::PULL_NOT_FOUND => PullStatus::NoNewMsg,
        response::PULL_RETRY_IMMEDIATELY => PullStatus::RetryImmediately,
        response::PULL_OFFSET_MOVED => PullStatus::OffsetIllegal,
        _ => return Err(broker_error(&frame)),
    };
    let h: PullMessageResponseHeader = typed(&frame, request::PULL_MESSAGE)?;
    let mut messages = Vec::new();
    if status == PullStatus::Found {
        messages = decode_records(&frame.body, false)
            .map_err(|e| ClientError::bad_response(request::PULL_MESSAGE, e))?;
        if !tags.is_empty() {
            messages.retain(|m| m.property(property::TAGS).is_some_and(|t| tags.contains(&t)));
            if messages.is_empty() {
                status = PullStatus::NoMatchedMsg;
            }
        }
    }
    Ok(PullResult {
        status,
        next_begin_offset: h.next_begin_offset,
        min_offset: h.min_offset,
        max_offset: h.max_offset,
        messages,
    })
}

/// QUERY_CONSUMER_OFFSET (14).
pub fn query_offset_request(group: &str, queue: &MessageQueue, st: SerializeType) -> Header {
    query_offset_request_with(group, queue, None, st)
}

/// QUERY_CONSUMER_OFFSET (14) with the 5.x field `setZeroIfNotFound`: `Some(false)` asks
/// the broker to answer QUERY_NOT_FOUND for a group with no stored offset instead of 0
/// (which a 4.x broker answers while the queue's first message is in memory), so the
/// consumer's consume-from setting decides.
pub fn query_offset_request_with(
    group: &str,
    queue: &MessageQueue,
    set_zero_if_not_found: Option<bool>,
    st: SerializeType,
) -> Header {
    let ext = QueryConsumerOffsetRequestHeader {
        consumer_group: group.to_string(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        set_zero_if_not_found,
    };
    request_header(request::QUERY_CONSUMER_OFFSET, st, &ext)
}

/// Parses a consumer-offset reply: `None` when the group has no stored offset
/// (QUERY_NOT_FOUND).
///
/// # Errors
/// Another non-success code or a missing `offset`.
pub fn parse_query_offset(frame: Frame) -> Result<Option<i64>, ClientError> {
    if frame.header.code == response::QUERY_NOT_FOUND {
        return Ok(None);
    }
    let frame = check_success(frame)?;
    let h: QueryConsumerOffsetResponseHeader = typed(&frame, request::QUERY_CONSUMER_OFFSET)?;
    Ok(Some(h.offset))
}

/// UPDATE_CONSUMER_OFFSET (15).
pub fn update_offset_request(
    group: &str,
    queue: &MessageQueue,
    offset: i64,
    st: SerializeType,
) -> Header {
    let ext = UpdateConsumerOffsetRequestHeader {
        consumer_group: group.to_string(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        commit_offset: offset,
    };
    request_header(request::UPDATE_CONSUMER_OFFSET, st, &ext)
}

/// GET_MAX_OFFSET (30).
pub fn max_offset_request(queue: &MessageQueue, st: SerializeType) -> Header {
    let ext = GetMaxOffsetRequestHeader { topic: queue.topic.clone(), queue_id: queue.queue_id };
    request_header(request::GET_MAX_OFFSET, st, &ext)
}

/// GET_MIN_OFFSET (31).
pub fn min_offset_request(queue: &MessageQueue, st: SerializeType) -> Header {
    let ext = GetMinOffsetRequestHeader { topic: queue.topic.clone(), queue_id: queue.queue_id };
    request_header(request::GET_MIN_OFFSET, st, &ext)
}

/// Parses a GET_MAX_OFFSET or GET_MIN_OFFSET reply (both carry `offset`).
///
/// # Errors
/// Non-success code or a missing `offset`.
pub fn parse_offset(frame: Frame, code: i32) -> Result<i64, ClientError> {
    let frame = check_success(frame)?;
    let h: GetMaxOffsetResponseHeader = typed(&frame, code)?;
    Ok(h.offset)
}

// ---------------------------------------------------------------------------------------
// Heartbeat and admin.

/// One subscription of a consumer group: a topic and its tag expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic.
    pub topic: String,
    /// Tag expression (`*`, `TagA || TagB`).
    pub expression: String,
}

/// The [`SubscriptionData`] of `subscription` in a heartbeat: the tags of its expression
/// and their Java hash codes.
pub fn subscription_data(subscription: &Subscription, sub_version: i64) -> SubscriptionData {
    let tags_set = subscription_tags(&subscription.expression);
    let code_set = tags_set.iter().map(|t| tags_code(t) as i32).collect();
    SubscriptionData {
        topic: subscription.topic.clone(),
        sub_string: subscription.expression.clone(),
        tags_set,
        code_set,
        sub_version,
        ..SubscriptionData::default()
    }
}

/// HEART_BEAT (34) for a pull consumer group with `subscriptions`.
pub fn heartbeat_request(
    client_id: &str,
    group: &str,
    subscriptions: &[Subscription],
    sub_version: i64,
    st: SerializeType,
) -> (Header, Vec<u8>) {
    let consumer = ConsumerData {
        group_name: group.to_string(),
        consume_type: ConsumeType::ConsumeActively,
        message_model: MessageModel::Clustering,
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        subscription_data_set: subscriptions
            .iter()
            .map(|s| subscription_data(s, sub_version))
            .collect(),
        unit_mode: false,
    };
    consumer_heartbeat_request(client_id, consumer, st)
}

/// HEART_BEAT (34) for one consumer group described by `consumer`.
pub fn consumer_heartbeat_request(
    client_id: &str,
    consumer: ConsumerData,
    st: SerializeType,
) -> (Header, Vec<u8>) {
    let data = HeartbeatData {
        client_id: client_id.to_string(),
        producer_data_set: Vec::new(),
        consumer_data_set: vec![consumer],
    };
    (Header::request(request::HEART_BEAT, 0, st), to_json(&data))
}

// ---------------------------------------------------------------------------------------
// Push consumers: group membership, locks, send-back, offsets by time.

pub use ramjet_proto::topic_names::{dlq_topic, retry_topic, DLQ_TOPIC_PREFIX, RETRY_TOPIC_PREFIX};

/// GET_CONSUMER_LIST_BY_GROUP (38).
pub fn consumer_list_request(group: &str, st: SerializeType) -> Header {
    let ext = GetConsumerListByGroupRequestHeader { consumer_group: group.to_string() };
    request_header(request::GET_CONSUMER_LIST_BY_GROUP, st, &ext)
}

/// Parses a consumer-list reply into the group's client ids.
///
/// # Errors
/// Non-success code or a body that does not parse.
pub fn parse_consumer_list(frame: Frame) -> Result<Vec<String>, ClientError> {
    let frame = check_success(frame)?;
    let body: ConsumerListBody = from_json(&frame.body)
        .map_err(|e| ClientError::bad_response(request::GET_CONSUMER_LIST_BY_GROUP, e))?;
    Ok(body.consumer_id_list)
}

/// LOCK_BATCH_MQ (41) of `queues` for `client_id` in `group`; the body is JSON.
pub fn lock_batch_request(
    group: &str,
    client_id: &str,
    queues: &[MessageQueue],
    st: SerializeType,
) -> (Header, Vec<u8>) {
    (Header::request(request::LOCK_BATCH_MQ, 0, st), lock_body(group, client_id, queues))
}

/// UNLOCK_BATCH_MQ (42) of `queues`, same body as the lock.
pub fn unlock_batch_request(
    group: &str,
    client_id: &str,
    queues: &[MessageQueue],
    st: SerializeType,
) -> (Header, Vec<u8>) {
    (Header::request(request::UNLOCK_BATCH_MQ, 0, st), lock_body(group, client_id, queues))
}

fn lock_body(group: &str, client_id: &str, queues: &[MessageQueue]) -> Vec<u8> {
    to_json(&LockBatchRequestBody {
        consumer_group: group.to_string(),
        client_id: client_id.to_string(),
        only_this_broker: false,
        mq_set: queues.to_vec(),
    })
}

/// Parses a LOCK_BATCH_MQ reply into the queues now locked by the client.
///
/// # Errors
/// Non-success code or a body that does not parse.
pub fn parse_lock_batch(frame: Frame) -> Result<Vec<MessageQueue>, ClientError> {
    let frame = check_success(frame)?;
    let body: LockBatchResponseBody =
        from_json(&frame.body).map_err(|e| ClientError::bad_response(request::LOCK_BATCH_MQ, e))?;
    Ok(body.lock_ok_mq_set)
}

/// UNREGISTER_CLIENT (35) for a consumer group.
pub fn unregister_consumer_request(client_id: &str, group: &str, st: SerializeType) -> Header {
    let ext = UnregisterClientRequestHeader {
        client_id: client_id.to_string(),
        producer_group: None,
        consumer_group: Some(group.to_string()),
    };
    request_header(request::UNREGISTER_CLIENT, st, &ext)
}

/// What a send-back carries besides the group.
#[derive(Debug, Clone, Copy)]
pub struct SendBackArgs<'a> {
    /// Consumer group.
    pub group: &'a str,
    /// Commit-log offset of the record consumed (`PHYSICALOFFSET`).
    pub commit_log_offset: i64,
    /// Delay level: 0 lets the broker choose (3 + reconsume times), < 0 sends the message
    /// to the dead-letter topic at once.
    pub delay_level: i32,
    /// The message's id (UNIQ_KEY, else its offset id).
    pub origin_msg_id: &'a str,
    /// The topic the message was consumed as (the original, not the retry topic).
    pub origin_topic: &'a str,
    /// Redeliveries before the broker moves it to the dead-letter topic.
    pub max_reconsume_times: i32,
}

/// CONSUMER_SEND_MSG_BACK (36).
pub fn send_back_request(args: &SendBackArgs<'_>, st: SerializeType) -> Header {
    let ext = ConsumerSendMsgBackRequestHeader {
        offset: args.commit_log_offset,
        group: args.group.to_string(),
        delay_level: args.delay_level,
        origin_msg_id: Some(args.origin_msg_id.to_string()),
        origin_topic: Some(args.origin_topic.to_string()),
        max_reconsume_times: Some(args.max_reconsume_times),
    };
    request_header(request::CONSUMER_SEND_MSG_BACK, st, &ext)
}

/// SEARCH_OFFSET_BY_TIMESTAMP (29): the first offset of `queue` stored at or after
/// `timestamp_ms`. The reply parses with [`parse_offset`].
pub fn search_offset_request(queue: &MessageQueue, timestamp_ms: i64, st: SerializeType) -> Header {
    let ext = SearchOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        timestamp: timestamp_ms,
    };
    request_header(request::SEARCH_OFFSET_BY_TIMESTAMP, st, &ext)
}

/// The consumer group of a NOTIFY_CONSUMER_IDS_CHANGED request; `None` for any other
/// frame or one without the field.
pub fn parse_notify_consumer_ids_changed(frame: &Frame) -> Option<String> {
    if frame.header.code != request::NOTIFY_CONSUMER_IDS_CHANGED || frame.header.is_response() {
        return None;
    }
    NotifyConsumerIdsChangedRequestHeader::decode(&frame.header.ext_fields)
        .ok()
        .map(|h| h.consumer_group)
}

/// UPDATE_AND_CREATE_TOPIC (17): read+write perm (6), SINGLE_TAG, not ordered.
pub fn create_topic_request(
    topic: &str,
    read_queue_nums: i32,
    write_queue_nums: i32,
    st: SerializeType,
) -> Header {
    let ext = CreateTopicRequestHeader {
        topic: topic.to_string(),
        default_topic: DEFAULT_TOPIC.to_string(),
        read_queue_nums,
        write_queue_nums,
        perm: crate::route::PERM_READ | crate::route::PERM_WRITE,
        topic_filter_type: "SINGLE_TAG".to_string(),
        topic_sys_flag: Some(0),
        order: false,
    };
    request_header(request::UPDATE_AND_CREATE_TOPIC, st, &ext)
}

#[cfg(test)]
mod tests;
