//! GET_MAX_OFFSET (30), GET_MIN_OFFSET (31) and VIEW_MESSAGE_BY_ID (33), on the owner
//! shard of the queue (or of the log, for a commit-log offset).

use ramjet_proto::codes::response;
use ramjet_proto::header::{
    CommandHeader, GetEarliestMsgStoretimeRequestHeader, GetEarliestMsgStoretimeResponseHeader,
    GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader, GetMinOffsetRequestHeader,
    GetMinOffsetResponseHeader, SearchOffsetRequestHeader, SearchOffsetResponseHeader,
    ViewMessageRequestHeader,
};
use ramjet_proto::Header;

use super::{error, field_error, success};
use crate::net::connection::Response;
use crate::shard::Shard;

/// GET_MAX_OFFSET: the next queue offset to be written (0 for an unknown queue).
pub fn max_offset(shard: &Shard, h: &Header) -> Response {
    let req = match GetMaxOffsetRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let offset = shard
        .store_for(&req.topic, req.queue_id)
        .map_or(0, |s| s.max_offset(&req.topic, req.queue_id));
    let mut header = success(h);
    GetMaxOffsetResponseHeader { offset }.encode(&mut header.ext_fields);
    Response::new(header)
}

/// GET_MIN_OFFSET: the oldest queue offset still stored.
pub fn min_offset(shard: &Shard, h: &Header) -> Response {
    let req = match GetMinOffsetRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let offset = shard
        .store_for(&req.topic, req.queue_id)
        .map_or(0, |s| s.min_offset(&req.topic, req.queue_id));
    let mut header = success(h);
    GetMinOffsetResponseHeader { offset }.encode(&mut header.ext_fields);
    Response::new(header)
}

/// VIEW_MESSAGE_BY_ID: the raw record at a commit-log offset.
pub async fn view_message(shard: &Shard, h: &Header) -> Response {
    let req = match ViewMessageRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let not_found = || {
        error(
            h,
            response::SYSTEM_ERROR,
            format!("can not find message by the offset, {}", req.offset),
        )
    };
    let Some((log, _)) = ramjet_storage::split_log_offset(req.offset) else {
        return not_found();
    };
    let Some(store) = shard.logs.get(&log) else {
        return not_found();
    };
    match store.read_record(req.offset).await {
        Ok(Some(record)) => Response { header: success(h), body: record, parts: Box::default() },
        Ok(None) => not_found(),
        Err(e) => error(h, response::SYSTEM_ERROR, e.to_string()),
    }
}

/// SEARCH_OFFSET_BY_TIMESTAMP: the first queue offset stored at or after `timestamp`,
/// clamped to the queue's range.
pub async fn search_by_timestamp(shard: &Shard, h: &Header) -> Response {
    let req = match SearchOffsetRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let offset = match shard.store_for(&req.topic, req.queue_id) {
        Some(store) => {
            match store.search_offset_by_timestamp(&req.topic, req.queue_id, req.timestamp).await {
                Ok(o) => o,
                Err(e) => return error(h, response::SYSTEM_ERROR, e.to_string()),
            }
        }
        None => 0,
    };
    let mut header = success(h);
    SearchOffsetResponseHeader { offset }.encode(&mut header.ext_fields);
    Response::new(header)
}

/// GET_EARLIEST_MSG_STORETIME: store time of the oldest message still in the queue, or -1
/// when it is empty (as the reference answers).
pub async fn earliest_store_time(shard: &Shard, h: &Header) -> Response {
    let req = match GetEarliestMsgStoretimeRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let timestamp = match shard.store_for(&req.topic, req.queue_id) {
        Some(store) => match store.earliest_message_store_time(&req.topic, req.queue_id).await {
            Ok(t) => t.unwrap_or(-1),
            Err(e) => return error(h, response::SYSTEM_ERROR, e.to_string()),
        },
        None => -1,
    };
    let mut header = success(h);
    GetEarliestMsgStoretimeResponseHeader { timestamp }.encode(&mut header.ext_fields);
    Response::new(header)
}
