//! CONSUMER_SEND_MSG_BACK (36): a consumer could not process a message; the broker stores
//! a copy for redelivery to the group, as the reference's `SendMessageProcessor`
//! `consumerSendMsgBack`.
//!
//! Runs on the owner shard of the log holding the original record (routed by the offset's
//! log id). The copy goes to `%RETRY%<group>` with a delay level (header level, or
//! `3 + reconsumeTimes` when the header says 0), so it waits in the schedule topic first;
//! once `reconsumeTimes` reaches `maxReconsumeTimes` (header, or 16) or the level is
//! negative, it goes to `%DLQ%<group>` instead, at once. Either topic is created on
//! demand (perm RW, one queue). A record stored in one of the broker's own topics (a
//! parked delayed message, a half or op record: `reserved::NOT_ALLOWED_SEND_TOPICS`) is
//! refused NO_PERMISSION: its copy would be delivered early, or uncommitted.

use std::rc::Rc;

use ramjet_proto::codes::response;
use ramjet_proto::header::{CommandHeader, ConsumerSendMsgBackRequestHeader};
use ramjet_proto::message::{self, property};
use ramjet_proto::Header;

use super::{error, error_response, field_error, success};
use crate::clock::now_ms;
use crate::net::connection::Response;
use crate::schedule::{delay_ms, parked_properties, reput_batch};
use crate::shard::Shard;
use crate::topic::SCHEDULE_TOPIC;

/// Redeliveries before the DLQ when the request does not say (`retryMaxTimes`).
pub const MAX_RECONSUME_TIMES_DEFAULT: i32 = 16;
/// MQVersion from which the header's `maxReconsumeTimes` is honoured (V3_4_9).
const VERSION_MAX_RECONSUME_HONOURED: i32 = 121;

/// Executes a send-back on the owner of the original record's log.
pub async fn execute(shard: &Rc<Shard>, h: &Header) -> Response {
    let req = match ConsumerSendMsgBackRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let not_found = || {
        error(h, response::SYSTEM_ERROR, format!("look message by offset failed, {}", req.offset))
    };
    let Some((log, _)) = ramjet_storage::split_log_offset(req.offset) else {
        return not_found();
    };
    let Some(store) = shard.logs.get(&log).cloned() else {
        return not_found();
    };
    let record = match store.read_record(req.offset).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(),
        Err(e) => return error(h, response::SYSTEM_ERROR, e.to_string()),
    };
    let Ok(original) = message::decode_record(&record, false) else {
        return not_found();
    };
    let stored_in = original.topic_str();
    if crate::reserved::is_not_allowed_send_topic(&stored_in) {
        // A parked delayed message or a half (or op) record is the broker's: a copy in a
        // retry topic would deliver it early, or uncommitted.
        let e = crate::error::BrokerError::NoPermission(format!(
            "the message at offset {} is stored in the broker's topic[{stored_in}], it cannot be sent back",
            req.offset
        ));
        return error_response(h, &e);
    }
    let max = match req.max_reconsume_times {
        Some(m) if h.version >= VERSION_MAX_RECONSUME_HONOURED => m,
        _ => MAX_RECONSUME_TIMES_DEFAULT,
    };
    let dead = original.reconsume_times >= max || req.delay_level < 0;
    let topic = if dead {
        ramjet_proto::topic_names::dlq_topic(&req.group)
    } else {
        ramjet_proto::topic_names::retry_topic(&req.group)
    };
    if let Err(resp) = ensure_topic(shard, h, &topic).await {
        return resp;
    }
    let mut props = original.properties.to_vec();
    if message::property_value(&props, property::RETRY_TOPIC).is_none() {
        props = message::set_property(&props, property::RETRY_TOPIC, &original.topic_str());
    }
    if message::property_value(&props, property::ORIGIN_MESSAGE_ID).is_none() {
        let origin = req
            .origin_msg_id
            .clone()
            .unwrap_or_else(|| message::offset_msg_id(&original.store_host, req.offset));
        props = message::set_property(&props, property::ORIGIN_MESSAGE_ID, &origin);
    }
    let mut copy = original.clone();
    copy.reconsume_times = original.reconsume_times + 1;
    let batch = if dead {
        props = message::remove_properties(&props, &[property::DELAY_TIME_LEVEL]);
        reput_batch(shard, &copy, &topic, 0, &props)
    } else {
        let level =
            if req.delay_level == 0 { 3 + original.reconsume_times } else { req.delay_level };
        let level = level.clamp(1, crate::schedule::max_level());
        props = message::set_property(&props, property::DELAY_TIME_LEVEL, &level.to_string());
        props = parked_properties(&props, &topic, 0);
        reput_batch(shard, &copy, SCHEDULE_TOPIC, level - 1, &props).map(|mut b| {
            b.tags_codes = vec![now_ms() as i64 + delay_ms(level)];
            b
        })
    };
    let batch = match batch {
        Ok(b) => b,
        Err(e) => return error_response(h, &e),
    };
    match shard.append_routed(batch).await {
        Ok(_) => Response::new(success(h)),
        Err(e) => error_response(h, &e),
    }
}

/// Creates a retry or DLQ topic with one queue when it does not exist yet.
async fn ensure_topic(shard: &Rc<Shard>, h: &Header, topic: &str) -> Result<(), Response> {
    if shard.topic_table().get(topic).is_some() {
        return Ok(());
    }
    shard
        .create_topic(&crate::shard::topics::one_queue_topic(topic))
        .await
        .map_err(|e| error_response(h, &e))
}
