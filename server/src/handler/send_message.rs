//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320), and SEND_MESSAGE
//! with the batch flag (as one C++ client sends batches).
//!
//! Route (on the receiving shard): resolve the topic (auto-creating it through TBW102 when
//! enabled), pick a queue when the producer left it to the broker (`queueId < 0`; a queue
//! owned by this shard is preferred, so such sends never cross shards), and send the
//! request to the queue's owner. Execute (on the owner): build stored records
//! (RocketMQ's layout), append them to the queue's commit log as one contiguous batch,
//! wake the queue's long-poll waiters, answer with the offsetMsgId(s) and queue offset.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use ramjet_proto::batch::BatchMessages;
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CommandHeader, CreateTopicRequestHeader, SendMessageRequestHeader, SendMessageResponseHeader,
};
use ramjet_proto::message::{self, property, MessageMeta};
use ramjet_proto::{Frame, Header};
use ramjet_storage::AppendBatch;

use super::{error, error_response, field_error, success};
use crate::clock::now_ms;
use crate::error::BrokerError;
use crate::net::connection::Response;
use crate::shard::Shard;
use crate::topic::{
    validate_topic_name, PERM_INHERIT, PERM_WRITE, SCHEDULE_TOPIC, TRANS_HALF_TOPIC,
};

/// Region reported in every send response (the reference's default `regionId`).
const REGION_DEFAULT: &str = "DefaultRegion";

fn is_v2(code: i32) -> bool {
    code == request::SEND_MESSAGE_V2 || code == request::SEND_BATCH_MESSAGE
}

/// Decides the owner shard of a send, creating the topic and choosing the queue if needed.
/// May rewrite the frame's queue id (then the owner sees the chosen queue).
pub async fn route(shard: &Rc<Shard>, frame: &mut Frame) -> Result<usize, Response> {
    let h = &frame.header;
    if shard.replica.role() == crate::config::BrokerRole::Slave {
        // As the reference's store: a slave's logs change only by replication.
        return Err(error_response(h, &BrokerError::SlaveMode));
    }
    let mut req = SendMessageRequestHeader::decode_for_code(h.code, &h.ext_fields)
        .map_err(|e| field_error(h, &e))?;
    validate_topic_name(&req.topic).map_err(|e| error_response(h, &e))?;
    crate::reserved::check_send_topic(&req.topic).map_err(|e| error_response(h, &e))?;
    // 5.x timer messages become delay-level parkings here, once, so the owner chosen now
    // and the queue the owner stores into agree.
    let props = req.properties.as_deref().unwrap_or_default().as_bytes();
    let timer = crate::schedule::timer_properties(props, now_ms() as i64)
        .map_err(|e| error_response(h, &e))?;
    if let Some(parked) = timer {
        let text = String::from_utf8_lossy(&parked).into_owned();
        let key = if is_v2(h.code) { "i" } else { "properties" };
        frame.header.ext_fields.insert(key, text.clone());
        req.properties = Some(text);
    }
    let h = &frame.header;
    let table = shard.topic_table();
    let config = match table.get(&req.topic) {
        Some(c) => c.clone(),
        None => auto_create(shard, h, &req).await?,
    };
    if config.perm & PERM_WRITE == 0 {
        let e = BrokerError::NoPermission(format!(
            "the topic[{}] sending message is forbidden",
            req.topic
        ));
        return Err(error_response(h, &e));
    }
    let mut queue_id = req.queue_id;
    if queue_id < 0 {
        queue_id = choose_queue(shard, &req.topic, config.write_queue_nums);
        let key = if is_v2(h.code) { "e" } else { "queueId" };
        frame.header.ext_fields.insert(key, queue_id.to_string());
    }
    let h = &frame.header;
    if queue_id >= config.write_queue_nums && queue_id >= config.read_queue_nums {
        return Err(error(
            h,
            response::SYSTEM_ERROR,
            format!(
            "request queueId[{queue_id}] is illegal, topic:[{}] topicConfig.writeQueueNums:[{}]",
            req.topic, config.write_queue_nums
        ),
        ));
    }
    let (topic, queue) = parking(&req).stored_queue(&req.topic, queue_id);
    Ok(shard.shard_for(topic, queue))
}

/// Where a message waits before it is visible on its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parking {
    /// Stored on its own queue.
    None,
    /// Delay level: parked in `SCHEDULE_TOPIC_XXXX`, queue `level - 1`.
    Delay(i32),
    /// Transactional half message: parked in `RMQ_SYS_TRANS_HALF_TOPIC`, queue 0.
    Half,
}

impl Parking {
    /// The queue the records are stored in.
    pub fn stored_queue(self, topic: &str, queue_id: i32) -> (&str, i32) {
        match self {
            Parking::None => (topic, queue_id),
            Parking::Delay(level) => (SCHEDULE_TOPIC, level - 1),
            Parking::Half => (TRANS_HALF_TOPIC, 0),
        }
    }
}

/// Decides parking from the properties and sysflag, as the reference's send path does.
pub fn parking(req: &SendMessageRequestHeader) -> Parking {
    let props = req.properties.as_deref().unwrap_or_default().as_bytes();
    let tx = req.sys_flag & message::SYSFLAG_TRANSACTION_MASK;
    let half = message::property_value(props, property::TRANSACTION_PREPARED)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if half && tx == message::SYSFLAG_TRANSACTION_PREPARED {
        return Parking::Half;
    }
    let plain = tx == 0 || tx == message::SYSFLAG_TRANSACTION_COMMIT;
    match crate::schedule::requested_level(props) {
        Some(level)
            if plain && !req.topic.starts_with(ramjet_proto::topic_names::DLQ_TOPIC_PREFIX) =>
        {
            Parking::Delay(level)
        }
        _ => Parking::None,
    }
}

/// Round robin over the topic's write queues, preferring queues this shard owns.
fn choose_queue(shard: &Shard, topic: &str, write_queue_nums: i32) -> i32 {
    let n = write_queue_nums.max(1);
    let start = shard.send_cursor.get();
    shard.send_cursor.set(start.wrapping_add(1));
    let is_local = |q: &i32| shard.shard_for(topic, *q) == shard.id;
    match (0..n).filter(is_local).count() {
        0 => (start % n as usize) as i32,
        local => (0..n).filter(is_local).nth(start % local).unwrap_or(0),
    }
}

/// Creates an unknown topic from the producer's default topic (TBW102), on shard 0.
async fn auto_create(
    shard: &Rc<Shard>,
    h: &Header,
    req: &SendMessageRequestHeader,
) -> Result<ramjet_proto::body::TopicConfig, Response> {
    let not_exist = || error_response(h, &BrokerError::TopicNotExist(req.topic.clone()));
    if !shard.settings.borrow().auto_create_topic_enable {
        return Err(not_exist());
    }
    // As the reference's `createTopicInSendMessageMethod`: the producer's default topic
    // must exist and allow inheritance; an empty one names no template.
    let table = shard.topic_table();
    let default_topic = req.default_topic.as_str();
    let Some(template) = table.get(default_topic) else {
        return Err(not_exist());
    };
    if template.perm & PERM_INHERIT == 0 {
        return Err(not_exist());
    }
    let queues = req.default_topic_queue_nums.clamp(1, template.write_queue_nums.max(1));
    let create = CreateTopicRequestHeader {
        topic: req.topic.clone(),
        default_topic: default_topic.to_string(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm: template.perm & !PERM_INHERIT,
        topic_filter_type: template.topic_filter_type.clone(),
        topic_sys_flag: Some(0),
        order: false,
    };
    shard.create_topic(&create).await.map_err(|e| error_response(h, &e))?;
    shard.topic_table().get(&req.topic).cloned().ok_or_else(not_exist)
}

/// Stores the message(s) on the owner shard and answers.
pub async fn execute(shard: &Rc<Shard>, frame: &Frame, peer: SocketAddr) -> Response {
    let h = &frame.header;
    let req = match SendMessageRequestHeader::decode_for_code(h.code, &h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let batch = h.code == request::SEND_BATCH_MESSAGE || req.batch == Some(true);
    let built = if batch {
        build_batch(shard, &req, &frame.body, peer)
    } else {
        build_single(shard, &req, frame.body.clone(), peer)
    };
    let (append, uniq_key) = match built {
        Ok(b) => b,
        Err(e) => return error_response(h, &e),
    };
    // Controller mode: a master past its lease neither stores nor acknowledges (lease.rs).
    if !crate::lease::writes_allowed() {
        return fenced(h);
    }
    let queue_id = req.queue_id;
    let records_len = append.records.len() as u64;
    let result = match shard.append_local(append).await {
        Ok(r) => r,
        Err(e) => return error_response(h, &e),
    };
    // SYNC_MASTER: answered once a slave holds the records; SLAVE_NOT_AVAILABLE or
    // FLUSH_SLAVE_TIMEOUT (stored either way) otherwise (replication/mod.rs).
    let code = match ramjet_storage::split_log_offset(result.first_log_offset) {
        Some((log, position)) => {
            crate::replication::slave_ack_code(shard, log, position + records_len).await
        }
        None => response::SUCCESS,
    };
    // Checked again at the answer: the lease may have run out while the append waited
    // (a master frozen by SIGSTOP answers nothing it appended before the stop).
    if code == response::SUCCESS && !crate::lease::writes_allowed() {
        return fenced(h);
    }
    let msg_id = result
        .record_offsets
        .iter()
        .map(|&o| message::offset_msg_id(&shard.store_host, o))
        .collect::<Vec<_>>()
        .join(",");
    let mut header = success(h);
    header.code = code;
    SendMessageResponseHeader {
        msg_id,
        queue_id,
        queue_offset: result.first_queue_offset,
        transaction_id: uniq_key,
    }
    .encode(&mut header.ext_fields);
    header.ext_fields.insert(property::MSG_REGION, REGION_DEFAULT);
    header.ext_fields.insert(property::TRACE_SWITCH, "true");
    Response::new(header)
}

type Built = Result<(AppendBatch, Option<String>), BrokerError>;

fn meta(req: &SendMessageRequestHeader, flag: i32, shard: &Shard, peer: SocketAddr) -> MessageMeta {
    MessageMeta {
        queue_id: req.queue_id,
        flag,
        sys_flag: req.sys_flag,
        born_timestamp: req.born_timestamp,
        born_host: peer,
        store_host: shard.store_host,
        reconsume_times: req.reconsume_times.unwrap_or(0),
        prepared_transaction_offset: 0,
    }
}

fn check_body(shard: &Shard, len: usize) -> Result<(), BrokerError> {
    let max = shard.settings.borrow().max_message_size_bytes;
    if len > max {
        return Err(BrokerError::IllegalMessage(format!(
            "the message body size {len} is over the limit {max}"
        )));
    }
    Ok(())
}

fn build_single(
    shard: &Shard,
    req: &SendMessageRequestHeader,
    body: Bytes,
    peer: SocketAddr,
) -> Built {
    check_body(shard, body.len())?;
    let mut props = req.properties.clone().unwrap_or_default().into_bytes();
    let mut uniq = message::property_value(&props, property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX);
    if uniq.is_none() {
        let id = next_uniq_id(shard);
        props.extend(message::encode_properties([(
            property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX,
            id.as_str(),
        )]));
        uniq = Some(id);
    }
    if !shard.config.cluster.is_empty() {
        props.extend(message::encode_properties([(
            property::CLUSTER,
            shard.config.cluster.as_str(),
        )]));
    }
    let tags = message::property_value(&props, property::TAGS);
    let mut tags_code = tags.as_deref().map_or(0, message::tags_code);
    let mut m = meta(req, req.flag, shard, peer);
    let parking = parking(req);
    let (topic, queue_id) = parking.stored_queue(&req.topic, req.queue_id);
    match parking {
        Parking::None => {}
        Parking::Delay(level) => {
            props = crate::schedule::parked_properties(&props, &req.topic, req.queue_id);
            // The entry's tags code is its delivery time (store time + delay).
            tags_code = now_ms() as i64 + crate::schedule::delay_ms(level);
        }
        Parking::Half => {
            props = crate::schedule::parked_properties(&props, &req.topic, req.queue_id);
            if let Some(id) = &uniq {
                props = message::set_property(&props, property::TRANSACTION_ID, id);
            }
            // Stored as a plain message so it enters the half topic's consume queue.
            m.sys_flag &= !message::SYSFLAG_TRANSACTION_MASK;
        }
    }
    m.queue_id = queue_id;
    let mut records =
        BytesMut::with_capacity(message::record_len(&m, body.len(), topic.len(), props.len()));
    message::encode_record(&mut records, &m, &body, topic, &props)
        .map_err(|e| BrokerError::IllegalMessage(e.to_string()))?;
    let append =
        AppendBatch { topic: topic.to_string(), queue_id, records, tags_codes: vec![tags_code] };
    Ok((append, uniq))
}

fn build_batch(
    shard: &Shard,
    req: &SendMessageRequestHeader,
    body: &Bytes,
    peer: SocketAddr,
) -> Built {
    if req.topic.starts_with(ramjet_proto::topic_names::RETRY_TOPIC_PREFIX) {
        return Err(BrokerError::IllegalMessage(
            "batch request does not support retry group".into(),
        ));
    }
    // Walk the batch once without expanding it: decode errors, an empty batch, body sizes
    // and the stored size are all known before anything proportional to the message count
    // is allocated (a 16 MiB batch of empty messages would otherwise become ~4x its size
    // in handles and record buffers before the store refused it).
    let bad = |e: ramjet_proto::message::MessageError| BrokerError::IllegalMessage(e.to_string());
    let length_meta = meta(req, 0, shard, peer);
    let (mut count, mut records_len) = (0usize, 0usize);
    for item in BatchMessages::new(body) {
        let item = item.map_err(bad)?;
        count += 1;
        records_len += message::record_len(
            &length_meta,
            item.body.len(),
            req.topic.len(),
            item.properties.len(),
        );
    }
    if count == 0 {
        return Err(BrokerError::IllegalMessage("empty batch".into()));
    }
    for item in BatchMessages::new(body).flatten() {
        check_body(shard, item.body.len())?;
    }
    if records_len > ramjet_storage::config::BATCH_SIZE_BYTES_MAX {
        // The store would refuse it with the same error after the copy.
        return Err(BrokerError::from(ramjet_storage::StoreError::MessageTooLarge));
    }
    let mut records = BytesMut::with_capacity(records_len);
    let mut tags_codes = Vec::with_capacity(count);
    for item in BatchMessages::new(body).flatten() {
        let m = meta(req, item.flag, shard, peer);
        let tags = message::property_value(&item.properties, property::TAGS);
        tags_codes.push(tags.as_deref().map_or(0, message::tags_code));
        message::encode_record(&mut records, &m, &item.body, &req.topic, &item.properties)
            .map_err(|e| BrokerError::IllegalMessage(e.to_string()))?;
    }
    let append =
        AppendBatch { topic: req.topic.clone(), queue_id: req.queue_id, records, tags_codes };
    Ok((append, None))
}

fn next_uniq_id(shard: &Shard) -> String {
    uniq_id(shard.store_host.ip(), shard.id as u32, now_ms(), shard.next_sequence() as u16)
}

/// A broker-made message id for messages that arrive without `UNIQ_KEY`, in the client
/// layout of the reference's `MessageClientIDSetter`: ip 4, pid 2, a per-shard salt 4, time 4, counter 2 → 32 hex.
fn uniq_id(ip: std::net::IpAddr, salt: u32, now_ms: u64, counter: u16) -> String {
    let mut raw = [0u8; 16];
    if let std::net::IpAddr::V4(v4) = ip {
        raw[..4].copy_from_slice(&v4.octets());
    }
    raw[4..6].copy_from_slice(&(std::process::id() as u16).to_be_bytes());
    raw[6..10].copy_from_slice(&salt.to_be_bytes());
    raw[10..14].copy_from_slice(&(now_ms as u32).to_be_bytes());
    raw[14..16].copy_from_slice(&counter.to_be_bytes());
    raw.iter().map(|b| format!("{b:02X}")).collect()
}

/// SERVICE_NOT_AVAILABLE for a send refused by the lease (`lease.rs`): the reference's
/// answer of a broker that is not a writable master; producers retry another broker.
fn fenced(h: &Header) -> Response {
    let mut header = success(h);
    header.code = response::SERVICE_NOT_AVAILABLE;
    header.remark = Some(crate::lease::FENCED_REMARK.to_string());
    Response::new(header)
}
