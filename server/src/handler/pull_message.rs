//! PULL_MESSAGE (11), with long polling.
//!
//! Runs on the owner shard of the queue. Reads up to `maxMsgNums` stored records (tag
//! filtered in the storage scan) and answers with them as the body, raw, so any RocketMQ
//! client decodes them. When nothing is there and the request allows suspension, the pull
//! is parked on the queue until an append on this shard wakes it or its hold time ends,
//! then runs once more, as the reference's `PullMessageProcessor` and
//! `PullRequestHoldService`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use ramjet_proto::codes::response;
use ramjet_proto::header::{CommandHeader, PullMessageRequestHeader, PullMessageResponseHeader};
use ramjet_proto::message;
use ramjet_proto::{Frame, Header};
use ramjet_storage::{GetRequest, GetResult, GetStatus};

use super::sql_filter::{pull_filter, PullFilter};
use super::{error, error_response, field_error};
use crate::net::connection::Response;
use crate::shard::Shard;
use crate::topic::PERM_READ;

/// PullSysFlag: the request carries a commit offset.
pub const FLAG_COMMIT_OFFSET: i32 = 0x1;
/// PullSysFlag: the broker may hold the request.
pub const FLAG_SUSPEND: i32 = 0x2;
/// PullSysFlag: the request carries its subscription expression.
pub const FLAG_SUBSCRIPTION: i32 = 0x4;
/// Most messages in one pull response.
pub const PULL_MESSAGES_MAX: u32 = 1024;
/// Most body bytes in one pull response (at least one message is always returned).
pub const PULL_BYTES_MAX: u32 = 1024 * 1024;

/// Bytes reserved for a response's header (ext fields, remark) on top of its body.
const RESPONSE_HEAD_RESERVE_BYTES: usize = 4 * 1024;

/// The largest stored record a read may return when the broker's `maxMessageSize` is
/// `max_message_size`: the body plus room for its properties and fixed fields, never more
/// than the store accepts.
fn record_bytes_max(max_message_size: usize) -> usize {
    max_message_size.saturating_add(64 * 1024).min(ramjet_storage::config::RECORD_SIZE_BYTES_MAX)
}

/// The worst-case response to a request that returns stored records, reserved before the
/// request is dispatched (`serverConnectionResponseBytesMax`, `serverResponseBytesMax`):
/// a pull returns at most `maxMsgNums` records and stops before passing its byte cap
/// (`maxMsgBytes`, at most [`PULL_BYTES_MAX`]) except for its first record, so its body is
/// at most min(maxMsgNums x largest record, max(byte cap, largest record)); VIEW_MESSAGE_BY_ID
/// returns one record; QUERY_MESSAGE at most `maxNum` (capped). `None` for any other
/// request, or one whose fields do not parse (it is answered with an error).
pub fn response_reserve(h: &Header, max_message_size: usize) -> Option<usize> {
    use ramjet_proto::codes::request;
    let record = record_bytes_max(max_message_size);
    let ext = &h.ext_fields;
    let body = match h.code {
        request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
            let count: i32 = ext.req_int("maxMsgNums").ok()?;
            let count = (count.max(1) as u32).min(PULL_MESSAGES_MAX) as usize;
            let cap = match ext.opt_int::<i32>("maxMsgBytes") {
                Ok(Some(b)) => (b.max(1) as u32).min(PULL_BYTES_MAX),
                _ => PULL_BYTES_MAX,
            };
            count.saturating_mul(record).min((cap as usize).max(record))
        }
        request::VIEW_MESSAGE_BY_ID => record,
        request::QUERY_MESSAGE => {
            let count: i32 = ext.req_int("maxNum").ok()?;
            let count = usize::try_from(count)
                .unwrap_or(0)
                .clamp(1, crate::handler::stats::QUERY_MESSAGES_MAX);
            count.saturating_mul(record)
        }
        _ => return None,
    };
    Some(body + RESPONSE_HEAD_RESERVE_BYTES)
}

/// Reads a SQL92 pull makes in a row when every record read is rejected, before it
/// answers PULL_RETRY_IMMEDIATELY with the offset after them (each read scans at most
/// `maxMsgNums` records).
pub const SQL_ROUNDS_MAX: u32 = 8;

/// Keeps the records of `result` that `selector` accepts. True when records were read and
/// none was kept (the result is then NoMatchedMessage).
fn sql_select(selector: &ramjet_proto::filter::Filter, result: &mut GetResult) -> bool {
    if result.status != GetStatus::Found {
        return false;
    }
    let keep: Vec<bool> = result.messages.iter().map(|m| selector.matches_record(m)).collect();
    if keep.iter().all(|k| *k) {
        return false;
    }
    let mut flags = keep.iter();
    result.messages.retain(|_| flags.next().copied().unwrap_or(false));
    if result.tags_codes.len() == keep.len() {
        let mut flags = keep.iter();
        result.tags_codes.retain(|_| flags.next().copied().unwrap_or(false));
    }
    if result.messages.is_empty() {
        result.status = GetStatus::NoMatchedMessage;
        return true;
    }
    false
}

/// Tag codes of a TAG subscription expression (`"*"` and empty mean everything).
pub fn tag_filter(expression: Option<&str>) -> Option<Vec<i64>> {
    let e = expression?.trim();
    if e.is_empty() || e == "*" {
        return None;
    }
    let codes: Vec<i64> =
        e.split("||").map(str::trim).filter(|t| !t.is_empty()).map(message::tags_code).collect();
    (!codes.is_empty()).then_some(codes)
}

/// Executes a pull on the owner shard.
pub async fn execute(shard: &Rc<Shard>, frame: &Frame) -> Response {
    let h = &frame.header;
    let req = match PullMessageRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    if let Err(resp) = validate(shard, h, &req) {
        return resp;
    }
    if req.sys_flag & FLAG_COMMIT_OFFSET != 0 && req.commit_offset >= 0 {
        // The topic and queue were checked above; the group is checked as for
        // UPDATE_CONSUMER_OFFSET, so a pull cannot move the broker's own progress.
        if let Err(e) = crate::reserved::check_offset_group(&req.consumer_group) {
            return error_response(h, &e);
        }
        let log = shard.log_for(&req.topic, req.queue_id);
        // Past consumerOffsetMaxCount the commit is skipped (counted and logged); the pull
        // itself is answered as usual.
        let _ = shard.offsets.borrow_mut().set_from_client(
            log,
            &req.consumer_group,
            &req.topic,
            req.queue_id,
            req.commit_offset,
        );
    }
    let own = (req.sys_flag & FLAG_SUBSCRIPTION != 0)
        .then_some((req.subscription.as_deref(), req.expression_type.as_deref()));
    let filter = match pull_filter(shard, h, own, &req.consumer_group, &req.topic) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let (tags, sql) = match &filter {
        PullFilter::All => (None, None),
        PullFilter::Tags(codes) => (Some(codes.as_slice()), None),
        PullFilter::Sql(f) => (None, Some(f.as_ref())),
    };
    let hold_ms = if req.sys_flag & FLAG_SUSPEND != 0 {
        (req.suspend_timeout_millis.max(0) as u64).min(shard.config.long_poll_hold_ms_max)
    } else {
        0
    };
    let deadline = Instant::now() + Duration::from_millis(hold_ms);
    let Some(store) = shard.store_for(&req.topic, req.queue_id).cloned() else {
        return error(h, response::SYSTEM_ERROR, "queue is not owned by this shard");
    };
    let max_count = (req.max_msg_nums.max(1) as u32).min(PULL_MESSAGES_MAX);
    let max_bytes =
        req.max_msg_bytes.map_or(PULL_BYTES_MAX, |b| (b.max(1) as u32).min(PULL_BYTES_MAX));
    // Where this pull reads: the request's offset, moved past records a SQL92 selector
    // rejected (the answer's next offset then starts after them).
    let mut offset = req.queue_offset;
    let mut sql_rounds = 0;
    loop {
        let get = GetRequest {
            topic: &req.topic,
            queue_id: req.queue_id,
            queue_offset: offset,
            max_count,
            max_bytes,
            tags_filter: tags,
        };
        let mut result = match store.get_messages(get).await {
            Ok(r) => r,
            Err(e) => return error(h, response::SYSTEM_ERROR, e.to_string()),
        };
        if let Some(selector) = sql {
            if sql_select(selector, &mut result) && sql_rounds < SQL_ROUNDS_MAX {
                // Everything read was rejected: read on (or park at the end) rather than
                // answer an empty batch.
                sql_rounds += 1;
                offset = result.next_offset;
                continue;
            }
        }
        let now = Instant::now();
        // The reference holds every pull whose answer would be PULL_NOT_FOUND: at the
        // queue's end, or at offset 0 of a queue that has nothing yet.
        if response_code(offset, &result).0 == response::PULL_NOT_FOUND && now < deadline {
            let Some(waiter) = shard.long_poll.borrow_mut().park(&req.topic, req.queue_id) else {
                return respond(h, offset, result, 0);
            };
            shard.metrics.long_poll_parked();
            // A wake-up reads new records: the SQL92 rounds start again.
            sql_rounds = 0;
            // An append may have landed while the read was in flight: look again before
            // sleeping, so no wake-up is missed.
            if store.max_offset(&req.topic, req.queue_id) > offset {
                continue;
            }
            let timer = glommio::timer::sleep(deadline - now);
            // Woken by an append or by the timer: look again. Past the deadline the loop
            // answers whatever it finds, the reference's re-run of a timed-out hold.
            futures_lite::future::or(waiter, timer).await;
            continue;
        }
        let suggest = crate::replication::suggest_broker_id(shard, &store, &result.messages);
        return respond(h, offset, result, suggest);
    }
}

fn validate(shard: &Shard, h: &Header, req: &PullMessageRequestHeader) -> Result<(), Response> {
    let table = shard.topic_table();
    let Some(config) = table.get(&req.topic) else {
        return Err(error(
            h,
            response::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist, apply first please!", req.topic),
        ));
    };
    if config.perm & PERM_READ == 0 {
        return Err(error(
            h,
            response::NO_PERMISSION,
            format!("the topic[{}] pulling message is forbidden", req.topic),
        ));
    }
    if req.queue_id < 0 || req.queue_id >= config.read_queue_nums {
        return Err(error(
            h,
            response::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}] consumer:[{}]",
                req.queue_id, req.topic, config.read_queue_nums, req.consumer_group
            ),
        ));
    }
    Ok(())
}

/// The response code of a store status and the next offset to suggest, as the reference's
/// `PullMessageProcessor` maps `GetMessageStatus`: FOUND → SUCCESS; NO_MATCHED_MESSAGE →
/// PULL_RETRY_IMMEDIATELY; OFFSET_OVERFLOW_ONE → PULL_NOT_FOUND at the requested offset;
/// OFFSET_TOO_SMALL and OFFSET_OVERFLOW_BADLY → PULL_OFFSET_MOVED to the queue's min or max;
/// an empty or missing queue → PULL_NOT_FOUND from offset 0, or PULL_OFFSET_MOVED to 0
/// when the consumer asked for another offset.
fn response_code(offset: i64, r: &GetResult) -> (i32, i64) {
    match r.status {
        GetStatus::Found => (response::SUCCESS, r.next_offset),
        GetStatus::NoMatchedMessage => (response::PULL_RETRY_IMMEDIATELY, r.next_offset),
        GetStatus::OffsetOverflowOne => (response::PULL_NOT_FOUND, offset),
        GetStatus::OffsetTooSmall => (response::PULL_OFFSET_MOVED, r.min_offset),
        GetStatus::OffsetOverflowBadly => (response::PULL_OFFSET_MOVED, r.max_offset),
        GetStatus::NoMessageInQueue | GetStatus::NoMatchedLogicQueue => {
            let code =
                if offset != 0 { response::PULL_OFFSET_MOVED } else { response::PULL_NOT_FOUND };
            (code, 0)
        }
    }
}

fn respond(h: &Header, offset: i64, r: GetResult, suggest: i64) -> Response {
    let (code, next) = response_code(offset, &r);
    let mut header = Header::response_to(h, code).with_remark(format!("{:?}", r.status));
    PullMessageResponseHeader {
        suggest_which_broker_id: suggest,
        next_begin_offset: next,
        min_offset: r.min_offset,
        max_offset: r.max_offset,
    }
    .encode(&mut header.ext_fields);
    // The records stay slices of the store's tail cache or read buffer: the connection
    // writes the large ones from there and copies the small ones once, into its write buffer.
    Response { header, body: bytes::Bytes::new(), parts: r.messages.into_boxed_slice() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(max_msg_nums: &str, max_msg_bytes: Option<&str>) -> Header {
        let mut h = Header::request(
            ramjet_proto::codes::request::PULL_MESSAGE,
            1,
            ramjet_proto::SerializeType::Json,
        );
        h.ext_fields.insert("maxMsgNums", max_msg_nums);
        if let Some(b) = max_msg_bytes {
            h.ext_fields.insert("maxMsgBytes", b);
        }
        h
    }

    #[test]
    fn a_pull_reserves_its_worst_case_body() {
        let head = RESPONSE_HEAD_RESERVE_BYTES;
        let record = 4 * 1024 * 1024 + 64 * 1024;
        // The first record may pass the 1 MiB cap: one whole record.
        assert_eq!(response_reserve(&pull("32", None), 4 << 20), Some(record + head));
        // Small records: the byte cap bounds the body.
        let small = 1024 + 64 * 1024;
        assert_eq!(response_reserve(&pull("32", None), 1024), Some((1 << 20) + head));
        assert_eq!(response_reserve(&pull("2", None), 1024), Some(2 * small + head));
        assert_eq!(response_reserve(&pull("-5", Some("10")), 1024), Some(small + head));
        // Unparsable: answered with an error, reserves nothing special.
        assert_eq!(response_reserve(&pull("many", None), 1024), None);
        let send = Header::request(10, 1, ramjet_proto::SerializeType::Json);
        assert_eq!(response_reserve(&send, 1024), None);
    }

    #[test]
    fn tag_expressions_become_hash_sets() {
        assert_eq!(tag_filter(None), None);
        assert_eq!(tag_filter(Some("*")), None);
        assert_eq!(tag_filter(Some(" ")), None);
        assert_eq!(
            tag_filter(Some("TagA || TagB")),
            Some(vec![message::tags_code("TagA"), message::tags_code("TagB")])
        );
    }
}
