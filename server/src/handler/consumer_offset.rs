//! QUERY_CONSUMER_OFFSET (14) and UPDATE_CONSUMER_OFFSET (15), on the owner shard of the
//! queue, whose `ConsumerOffsets` hold the group's committed offsets.

use ramjet_proto::codes::response;
use ramjet_proto::header::{
    CommandHeader, QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
};
use ramjet_proto::text::clip_echo;
use ramjet_proto::Header;

use super::{error, error_response, field_error, success};
use crate::error::BrokerError;
use crate::net::connection::Response;
use crate::shard::Shard;

/// QUERY_CONSUMER_OFFSET: the stored offset; with none stored, 0 when the queue still
/// starts at 0 (4.9.x behaviour, so a new group reads from the beginning), else
/// QUERY_NOT_FOUND so the client applies its consume-from setting. A 5.x client that sends
/// `setZeroIfNotFound=false` always gets QUERY_NOT_FOUND.
pub fn query(shard: &Shard, h: &Header) -> Response {
    let req = match QueryConsumerOffsetRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let log = shard.log_for(&req.topic, req.queue_id);
    let stored = shard.offsets.borrow().get(log, &req.consumer_group, &req.topic, req.queue_id);
    let offset = match stored {
        Some(o) if o >= 0 => o,
        _ => {
            let min = shard
                .store_for(&req.topic, req.queue_id)
                .map_or(0, |s| s.min_offset(&req.topic, req.queue_id));
            if req.set_zero_if_not_found == Some(false) || min > 0 {
                return error(
                    h,
                    response::QUERY_NOT_FOUND,
                    "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
                );
            }
            0
        }
    };
    let mut header = success(h);
    QueryConsumerOffsetResponseHeader { offset }.encode(&mut header.ext_fields);
    Response::new(header)
}

/// UPDATE_CONSUMER_OFFSET: stores the offset (persisted within a few seconds) of an
/// existing topic's queue, as the reference's `ConsumerManageProcessor` (TOPIC_NOT_EXIST
/// for an unknown topic), and further: the queue id must be in the topic's range
/// (INVALID_PARAMETER, as a pull answers) and the group one a client may write
/// (`reserved::check_offset_group`); SYSTEM_ERROR for a name over the reference's limits
/// or a new entry past `consumerOffsetMaxCount`.
pub fn update(shard: &Shard, h: &Header) -> Response {
    let req = match UpdateConsumerOffsetRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    if let Err(e) = check_offset_write(shard, &req.consumer_group, &req.topic, req.queue_id) {
        return error_response(h, &e);
    }
    let log = shard.log_for(&req.topic, req.queue_id);
    let stored = shard.offsets.borrow_mut().set_from_client(
        log,
        &req.consumer_group,
        &req.topic,
        req.queue_id,
        req.commit_offset,
    );
    match stored {
        Ok(()) => Response::new(success(h)),
        Err(e) => error(h, response::SYSTEM_ERROR, e.to_string()),
    }
}

/// Whether a client may write `group`'s offset of `topic`:`queue_id`: the topic exists
/// (TOPIC_NOT_EXIST, "Topic .. not exist!" as the reference), the queue id is within its
/// read or write queues (INVALID_PARAMETER), the group may be written by clients.
///
/// # Errors
/// As above.
pub fn check_offset_write(
    shard: &Shard,
    group: &str,
    topic: &str,
    queue_id: i32,
) -> Result<(), BrokerError> {
    crate::reserved::check_offset_group(group)?;
    let table = shard.topic_table();
    let Some(config) = table.get(topic) else {
        return Err(BrokerError::Refused {
            code: response::TOPIC_NOT_EXIST,
            remark: format!("Topic {} not exist!", clip_echo(topic)),
        });
    };
    let queues = config.read_queue_nums.max(config.write_queue_nums);
    if queue_id < 0 || queue_id >= queues {
        return Err(BrokerError::InvalidParameter(format!(
            "queueId[{queue_id}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}]",
            clip_echo(topic),
            config.read_queue_nums
        )));
    }
    Ok(())
}
