//! The reference's derived topic names (`MixAll.RETRY_GROUP_TOPIC_PREFIX`,
//! `MixAll.DLQ_GROUP_TOPIC_PREFIX`): one definition for broker, client and tools.

/// Prefix of a consumer group's retry topic.
pub const RETRY_TOPIC_PREFIX: &str = "%RETRY%";
/// Prefix of a consumer group's dead-letter topic.
pub const DLQ_TOPIC_PREFIX: &str = "%DLQ%";

/// The retry topic of a consumer group, `%RETRY%<group>`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_TOPIC_PREFIX}{group}")
}

/// The dead-letter topic of a consumer group, `%DLQ%<group>`.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_TOPIC_PREFIX}{group}")
}
