//! The broker's own topics and consumer groups, which clients may not write.
//!
//! Topics: the reference's `TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET` — a client send to
//! one of them is answered NO_PERMISSION, "Sending message to topic[..] is forbidden."
//! (`AbstractSendMessageProcessor.msgCheck`). The broker itself still stores there (delay
//! parking, half and op records, re-checks): those appends go through the typed shard API,
//! never through the send handler. The reference's other system topics (TBW102,
//! `BenchmarkTest`, `RMQ_SYS_TRACE_TOPIC`, `rmq_sys_*`) stay writable, as there.
//!
//! Groups: ramjet keeps the progress of its own tasks as consumer offsets of reserved
//! groups ([`crate::schedule::DELIVERY_GROUP`], [`crate::transaction::CHECK_GROUP`]); with
//! the reference's broker-internal group names they may not be written by any client
//! request (UPDATE_CONSUMER_OFFSET, a pull's commit, INVOKE_BROKER_TO_RESET_OFFSET).
//! The reference keeps its own progress out of the consumer offset table and so has no
//! such check; ramjet answers NO_PERMISSION, the reference's code for a forbidden write.

use ramjet_proto::text::clip_echo;

use crate::error::BrokerError;
use crate::topic::{SCHEDULE_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC};

/// The reference's `TRANS_CHECK_MAX_TIME_TOPIC` (halves past their last check).
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// The reference's `SELF_TEST_TOPIC`.
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
/// The reference's `OFFSET_MOVED_EVENT`.
pub const OFFSET_MOVED_EVENT: &str = "OFFSET_MOVED_EVENT";

/// Topics no client may send to: the reference's `NOT_ALLOWED_SEND_TOPIC_SET`.
pub const NOT_ALLOWED_SEND_TOPICS: [&str; 6] = [
    SCHEDULE_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
];

/// Consumer groups whose offsets only the broker writes: ramjet's task groups and the
/// reference's broker-internal ones (`SCHEDULE_CONSUMER`, `CID_RMQ_SYS_TRANS`).
pub const RESERVED_GROUPS: [&str; 4] = [
    crate::schedule::DELIVERY_GROUP,
    crate::transaction::CHECK_GROUP,
    "SCHEDULE_CONSUMER",
    "CID_RMQ_SYS_TRANS",
];

/// Prefix of the reference's system consumer groups (`MixAll.isSysConsumerGroup`).
pub const SYS_GROUP_PREFIX: &str = "CID_RMQ_SYS_";

/// Longest consumer group name accepted for an offset (the reference's
/// `Validators.CHARACTER_MAX_LENGTH`).
pub const GROUP_NAME_BYTES_MAX: usize = 255;

/// Whether clients are refused sends to `topic`.
pub fn is_not_allowed_send_topic(topic: &str) -> bool {
    NOT_ALLOWED_SEND_TOPICS.contains(&topic)
}

/// Refuses a client send to a topic of [`NOT_ALLOWED_SEND_TOPICS`], as the reference.
///
/// # Errors
/// `NoPermission` for those topics.
pub fn check_send_topic(topic: &str) -> Result<(), BrokerError> {
    if is_not_allowed_send_topic(topic) {
        return Err(BrokerError::NoPermission(format!(
            "Sending message to topic[{topic}] is forbidden."
        )));
    }
    Ok(())
}

/// Whether `group` is reserved for the broker.
pub fn is_reserved_group(group: &str) -> bool {
    RESERVED_GROUPS.contains(&group) || group.starts_with(SYS_GROUP_PREFIX)
}

/// Whether a client may write offsets of `group`: a reserved group is refused
/// (NO_PERMISSION); a name that could never be a group (blank, over 255 bytes, a
/// character outside `[A-Za-z0-9%_|-]`, which also keeps `@` out of the `topic@group`
/// keys) is refused SUBSCRIPTION_GROUP_NOT_EXIST, the code the reference answers for a
/// group it will not create.
///
/// # Errors
/// As above.
pub fn check_offset_group(group: &str) -> Result<(), BrokerError> {
    if is_reserved_group(group) {
        return Err(BrokerError::NoPermission(format!(
            "the consumer group[{}] is reserved for the broker, its offsets are not writable",
            clip_echo(group)
        )));
    }
    let legal = !group.is_empty()
        && group.len() <= GROUP_NAME_BYTES_MAX
        && group.bytes().all(|b| b.is_ascii_alphanumeric() || b"%_|-".contains(&b));
    if !legal {
        return Err(BrokerError::Refused {
            code: ramjet_proto::codes::response::SUBSCRIPTION_GROUP_NOT_EXIST,
            remark: format!("subscription group [{}] does not exist", clip_echo(group)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramjet_proto::codes::response;

    #[test]
    fn the_reference_not_allowed_send_set_is_refused_and_the_rest_is_not() {
        for t in NOT_ALLOWED_SEND_TOPICS {
            let e = check_send_topic(t).expect_err("refused");
            assert_eq!(e.response_code(), response::NO_PERMISSION);
            assert_eq!(e.to_string(), format!("Sending message to topic[{t}] is forbidden."));
        }
        for t in ["TBW102", "RMQ_SYS_TRACE_TOPIC", "%RETRY%g", "%DLQ%g", "BenchmarkTest", "t"] {
            assert!(check_send_topic(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn reserved_and_impossible_groups_are_refused_for_offsets() {
        for g in ["%SCHEDULE_DELIVERY%", "%TRANS_CHECK%", "SCHEDULE_CONSUMER", "CID_RMQ_SYS_X"] {
            let e = check_offset_group(g).expect_err("reserved");
            assert_eq!(e.response_code(), response::NO_PERMISSION, "{g}");
        }
        for g in ["", "a@b", "a b", &"g".repeat(256)] {
            let e = check_offset_group(g).expect_err("impossible");
            assert_eq!(e.response_code(), response::SUBSCRIPTION_GROUP_NOT_EXIST, "{g}");
        }
        for g in ["cg", "TOOLS_CONSUMER", "CID_ONSAPI_PULL", "%RETRY%x", &"g".repeat(255)] {
            assert!(check_offset_group(g).is_ok(), "{g}");
        }
    }
}
