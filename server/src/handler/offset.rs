//! GET_MAX_OFFSET (30), GET_MIN_OFFSET (31) and VIEW_MESSAGE_BY_ID (33), on the owner
//! shard of the queue (or of the log, for a commit-log offset).

use ramjet_proto::codes::response;
use ramjet_proto::header::{
    CommandHeader, GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader,
    GetMinOffsetRequestHeader, GetMinOffsetResponseHeader, ViewMessageRequestHeader,
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
        Ok(Some(record)) => Response { header: success(h), body: record },
        Ok(None) => not_found(),
        Err(e) => error(h, response::SYSTEM_ERROR, e.to_string()),
    }
}
