//! The send request header in its two wire forms.
//!
//! SEND_MESSAGE (10) and SEND_REPLY_MESSAGE (324) carry the long Java names;
//! SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320) and SEND_REPLY_MESSAGE_V2 (325) carry
//! one-letter keys (`SendMessageRequestHeaderV2`):
//!
//! ```text
//! a producerGroup !   e queueId !      i properties ?       m batch ?
//! b topic !           f sysFlag !      j reconsumeTimes ?   n brokerName ?
//! c defaultTopic      g bornTimestamp ! k unitMode ?
//! d defaultTopicQueueNums  h flag !    l maxReconsumeTimes ?
//! ```
//!
//! Lenient: `defaultTopic` absent is `TBW102` and `defaultTopicQueueNums` absent is 4, the
//! Java client's values. The V1 form also accepts the 5.x `bname` when `brokerName` is
//! absent.

use super::{optional, put_opt, required, CommandHeader, HeaderValue};
use crate::codes::request;
use crate::command::ExtFields;
use crate::error::FieldError;

/// Default `defaultTopic`: the auto-create template topic.
pub const DEFAULT_TOPIC: &str = "TBW102";
/// Default `defaultTopicQueueNums`, the Java client's.
pub const DEFAULT_TOPIC_QUEUE_NUMS: i32 = 4;

/// SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessageRequestHeader {
    /// Producer group.
    pub producer_group: String,
    /// Topic.
    pub topic: String,
    /// Template topic for auto-creation.
    pub default_topic: String,
    /// Queue count for auto-creation.
    pub default_topic_queue_nums: i32,
    /// Queue id; < 0 lets the broker pick.
    pub queue_id: i32,
    /// MessageSysFlag bits.
    pub sys_flag: i32,
    /// Producer timestamp, ms.
    pub born_timestamp: i64,
    /// User flag.
    pub flag: i32,
    /// Properties string (name 0x01 value 0x02 ...).
    pub properties: Option<String>,
    /// Times consumed again (retry sends).
    pub reconsume_times: Option<i32>,
    /// Unit mode.
    pub unit_mode: Option<bool>,
    /// Retries before the DLQ.
    pub max_reconsume_times: Option<i32>,
    /// The body is a batch (section 3 of the facts).
    pub batch: Option<bool>,
    /// Target broker name (5.x).
    pub broker_name: Option<String>,
}

impl Default for SendMessageRequestHeader {
    fn default() -> Self {
        SendMessageRequestHeader {
            producer_group: String::new(),
            topic: String::new(),
            default_topic: DEFAULT_TOPIC.to_string(),
            default_topic_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp: 0,
            flag: 0,
            properties: None,
            reconsume_times: None,
            unit_mode: None,
            max_reconsume_times: None,
            batch: None,
            broker_name: None,
        }
    }
}

/// Wire names of the fields, in declaration order.
struct Names {
    producer_group: &'static str,
    topic: &'static str,
    default_topic: &'static str,
    default_topic_queue_nums: &'static str,
    queue_id: &'static str,
    sys_flag: &'static str,
    born_timestamp: &'static str,
    flag: &'static str,
    properties: &'static str,
    reconsume_times: &'static str,
    unit_mode: &'static str,
    max_reconsume_times: &'static str,
    batch: &'static str,
    broker_name: &'static str,
}

const V1: Names = Names {
    producer_group: "producerGroup",
    topic: "topic",
    default_topic: "defaultTopic",
    default_topic_queue_nums: "defaultTopicQueueNums",
    queue_id: "queueId",
    sys_flag: "sysFlag",
    born_timestamp: "bornTimestamp",
    flag: "flag",
    properties: "properties",
    reconsume_times: "reconsumeTimes",
    unit_mode: "unitMode",
    max_reconsume_times: "maxReconsumeTimes",
    batch: "batch",
    broker_name: "brokerName",
};

const V2: Names = Names {
    producer_group: "a",
    topic: "b",
    default_topic: "c",
    default_topic_queue_nums: "d",
    queue_id: "e",
    sys_flag: "f",
    born_timestamp: "g",
    flag: "h",
    properties: "i",
    reconsume_times: "j",
    unit_mode: "k",
    max_reconsume_times: "l",
    batch: "m",
    broker_name: "n",
};

/// The 5.x `RpcRequestHeader` broker name, a fallback for `brokerName`.
const BNAME: &str = "bname";

impl SendMessageRequestHeader {
    fn decode_with(ext: &ExtFields, n: &Names) -> Result<Self, FieldError> {
        let broker_name = match optional::<String>(ext, n.broker_name)? {
            Some(b) => Some(b),
            None => optional::<String>(ext, BNAME)?,
        };
        Ok(SendMessageRequestHeader {
            producer_group: required(ext, n.producer_group)?,
            topic: required(ext, n.topic)?,
            default_topic: optional(ext, n.default_topic)?
                .unwrap_or_else(|| DEFAULT_TOPIC.to_string()),
            default_topic_queue_nums: optional(ext, n.default_topic_queue_nums)?
                .unwrap_or(DEFAULT_TOPIC_QUEUE_NUMS),
            queue_id: required(ext, n.queue_id)?,
            sys_flag: required(ext, n.sys_flag)?,
            born_timestamp: required(ext, n.born_timestamp)?,
            flag: required(ext, n.flag)?,
            properties: optional(ext, n.properties)?,
            reconsume_times: optional(ext, n.reconsume_times)?,
            unit_mode: optional(ext, n.unit_mode)?,
            max_reconsume_times: optional(ext, n.max_reconsume_times)?,
            batch: optional(ext, n.batch)?,
            broker_name,
        })
    }

    fn encode_with(&self, ext: &mut ExtFields, n: &Names) {
        ext.insert(n.producer_group, self.producer_group.text());
        ext.insert(n.topic, self.topic.text());
        ext.insert(n.default_topic, self.default_topic.text());
        ext.insert(n.default_topic_queue_nums, self.default_topic_queue_nums.text());
        ext.insert(n.queue_id, self.queue_id.text());
        ext.insert(n.sys_flag, self.sys_flag.text());
        ext.insert(n.born_timestamp, self.born_timestamp.text());
        ext.insert(n.flag, self.flag.text());
        put_opt(ext, n.properties, &self.properties);
        put_opt(ext, n.reconsume_times, &self.reconsume_times);
        put_opt(ext, n.unit_mode, &self.unit_mode);
        put_opt(ext, n.max_reconsume_times, &self.max_reconsume_times);
        put_opt(ext, n.batch, &self.batch);
        put_opt(ext, n.broker_name, &self.broker_name);
    }

    /// Decodes the V2 form (keys `a`..`n`).
    ///
    /// # Errors
    /// A required field is absent, or a value does not parse.
    pub fn decode_v2(ext: &ExtFields) -> Result<Self, FieldError> {
        Self::decode_with(ext, &V2)
    }

    /// Encodes the V2 form (keys `a`..`n`).
    pub fn encode_v2(&self, ext: &mut ExtFields) {
        self.encode_with(ext, &V2);
    }

    /// True when requests with `code` carry the V2 form: 310, 320 and 325.
    pub fn is_v2_code(code: i32) -> bool {
        matches!(
            code,
            request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE | request::SEND_REPLY_MESSAGE_V2
        )
    }

    /// Decodes the form that request `code` carries: V2 for 310, 320 and 325, V1
    /// otherwise.
    ///
    /// # Errors
    /// A required field is absent, or a value does not parse.
    pub fn decode_for_code(code: i32, ext: &ExtFields) -> Result<Self, FieldError> {
        if Self::is_v2_code(code) {
            Self::decode_v2(ext)
        } else {
            Self::decode(ext)
        }
    }

    /// True when the header marks a batch body.
    pub fn is_batch(&self) -> bool {
        self.batch == Some(true)
    }
}

impl CommandHeader for SendMessageRequestHeader {
    fn decode(ext: &ExtFields) -> Result<Self, FieldError> {
        Self::decode_with(ext, &V1)
    }

    fn encode(&self, ext: &mut ExtFields) {
        self.encode_with(ext, &V1);
    }
}
