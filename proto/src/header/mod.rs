//! Typed request and response headers: the `extFields` of a frame as Rust structs.
//!
//! Every header implements [`CommandHeader`]: `decode` reads the string map of a received
//! frame, `encode` writes the Java field names back. Decoding is as lenient as the
//! reference broker (`RemotingCommand.decodeCommandCustomHeader`):
//!
//! ```text
//! field state in extFields      required (!)            optional (?) / defaulted
//! ----------------------------  ----------------------  -------------------------
//! absent                        FieldError::Missing     None / the default
//! present, parses               the value               Some(value) / the value
//! present, does not parse       FieldError::Invalid     FieldError::Invalid
//! ```
//!
//! Values arrive as text whatever the header encoding: the JSON decoder turns numbers and
//! booleans into their text. Integers ignore surrounding whitespace; booleans are
//! `true`/`false` (any case) or `1`/`0`; an empty integer or boolean counts as absent.
//! Unknown keys (`Signature`, `AccessKey`, `bname`, `ns`, ...) are ignored.
//!
//! Encoding writes every non-optional field and only the `Some` optionals, in declaration
//! order, integers in decimal and booleans as `true`/`false`.
//!
//! ```
//! use ramjet_proto::ExtFields;
//! use ramjet_proto::header::{CommandHeader, GetMaxOffsetRequestHeader};
//!
//! let mut ext = ExtFields::new();
//! ext.insert("topic", "t");
//! ext.insert("queueId", "3");
//! let h = GetMaxOffsetRequestHeader::decode(&ext).unwrap();
//! assert_eq!(h.queue_id, 3);
//! assert_eq!(h.to_ext_fields(), ext);
//! ```

mod send;

use crate::command::ExtFields;
use crate::error::FieldError;

pub use send::SendMessageRequestHeader;

/// A typed header carried in a frame's `extFields`.
pub trait CommandHeader: Sized {
    /// Parses the header from received ext fields.
    ///
    /// # Errors
    /// `Missing` for an absent required field, `Invalid` for a value of the wrong type.
    fn decode(ext: &ExtFields) -> Result<Self, FieldError>;

    /// Writes the header's fields into `ext` (replacing earlier values of the same keys).
    fn encode(&self, ext: &mut ExtFields);

    /// The header as a new ext-field map.
    fn to_ext_fields(&self) -> ExtFields {
        let mut ext = ExtFields::with_capacity(16);
        self.encode(&mut ext);
        ext
    }
}

/// A scalar header field: how it reads from and writes to ext-field text.
pub trait HeaderValue: Sized {
    /// Reads field `name`: `Ok(None)` when absent.
    ///
    /// # Errors
    /// `FieldError::Invalid` when the text does not parse as this type.
    fn read(ext: &ExtFields, name: &'static str) -> Result<Option<Self>, FieldError>;

    /// The text written on the wire.
    fn text(&self) -> String;
}

impl HeaderValue for String {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Option<Self>, FieldError> {
        Ok(ext.opt_str(name).map(str::to_string))
    }
    fn text(&self) -> String {
        self.clone()
    }
}

impl HeaderValue for i32 {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Option<Self>, FieldError> {
        ext.opt_int(name)
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

impl HeaderValue for i64 {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Option<Self>, FieldError> {
        ext.opt_int(name)
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

impl HeaderValue for bool {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Option<Self>, FieldError> {
        ext.opt_bool(name)
    }
    fn text(&self) -> String {
        if *self { "true" } else { "false" }.to_string()
    }
}

/// Reads a required field.
///
/// # Errors
/// `Missing` when absent, `Invalid` when it does not parse.
pub fn required<T: HeaderValue>(ext: &ExtFields, name: &'static str) -> Result<T, FieldError> {
    T::read(ext, name)?.ok_or(FieldError::Missing { field: name })
}

/// Reads an optional field.
///
/// # Errors
/// `Invalid` when present but it does not parse.
pub fn optional<T: HeaderValue>(
    ext: &ExtFields,
    name: &'static str,
) -> Result<Option<T>, FieldError> {
    T::read(ext, name)
}

/// Writes `Some` values only.
pub fn put_opt<T: HeaderValue>(ext: &mut ExtFields, name: &'static str, value: &Option<T>) {
    if let Some(v) = value {
        ext.insert(name, v.text());
    }
}

/// Declares a header struct and its [`CommandHeader`] impl from a field table.
///
/// Each field is `req name: Type = "wireName"` (absent is an error), `opt name: Type =
/// "wireName"` (the struct field is `Option<Type>`), or `def name: Type = "wireName" or
/// default_expr` (absent takes the default).
macro_rules! header {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $kind:ident $field:ident : $ty:ty = $wire:literal $(or $default:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: header!(@ty $kind $ty),
            )*
        }

        impl CommandHeader for $name {
            #[allow(unused_variables)]
            fn decode(ext: &ExtFields) -> Result<Self, FieldError> {
                Ok($name {
                    $( $field: header!(@decode $kind ext $ty, $wire $(, $default)?), )*
                })
            }

            #[allow(unused_variables)]
            fn encode(&self, ext: &mut ExtFields) {
                $( header!(@encode $kind ext, $wire, &self.$field); )*
            }
        }
    };
    (@ty req $ty:ty) => { $ty };
    (@ty def $ty:ty) => { $ty };
    (@ty opt $ty:ty) => { Option<$ty> };
    (@decode req $ext:ident $ty:ty, $wire:literal) => { required::<$ty>($ext, $wire)? };
    (@decode opt $ext:ident $ty:ty, $wire:literal) => { optional::<$ty>($ext, $wire)? };
    (@decode def $ext:ident $ty:ty, $wire:literal, $default:expr) => {
        optional::<$ty>($ext, $wire)?.unwrap_or_else(|| $default)
    };
    (@encode req $ext:ident, $wire:literal, $v:expr) => {
        $ext.insert($wire, HeaderValue::text($v))
    };
    (@encode def $ext:ident, $wire:literal, $v:expr) => {
        $ext.insert($wire, HeaderValue::text($v))
    };
    (@encode opt $ext:ident, $wire:literal, $v:expr) => { put_opt($ext, $wire, $v) };
}

/// The field-table macro, for header modules outside this one (`crate::controller`).
pub(crate) use header;

// ---------------------------------------------------------------------------------------
// Send (10, 310, 320, 325); the request header is hand-written in `send.rs`.

header! {
    /// SEND_MESSAGE / SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE response.
    pub struct SendMessageResponseHeader {
        /// offsetMsgId (comma-joined for a batch).
        req msg_id: String = "msgId",
        /// Queue written.
        req queue_id: i32 = "queueId",
        /// Queue offset of the (first) message.
        req queue_offset: i64 = "queueOffset",
        /// UNIQ_KEY of the message.
        opt transaction_id: String = "transactionId",
    }
}

// ---------------------------------------------------------------------------------------
// Pull (11, 361).

header! {
    /// PULL_MESSAGE (11) / LITE_PULL_MESSAGE (361) request.
    pub struct PullMessageRequestHeader {
        /// Consumer group.
        req consumer_group: String = "consumerGroup",
        /// Topic.
        req topic: String = "topic",
        /// Queue id.
        req queue_id: i32 = "queueId",
        /// First queue offset wanted.
        req queue_offset: i64 = "queueOffset",
        /// Most messages to return.
        req max_msg_nums: i32 = "maxMsgNums",
        /// PullSysFlag bits (commit offset, suspend, subscription, class filter).
        req sys_flag: i32 = "sysFlag",
        /// Consumer offset to commit along with the pull.
        req commit_offset: i64 = "commitOffset",
        /// Long-poll timeout, ms.
        req suspend_timeout_millis: i64 = "suspendTimeoutMillis",
        /// Subscription expression (`*`, `TagA || TagB`).
        opt subscription: String = "subscription",
        /// Subscription version, ms.
        req sub_version: i64 = "subVersion",
        /// `TAG` or `SQL92`; absent means TAG.
        opt expression_type: String = "expressionType",
        /// Most bytes to return (5.x).
        opt max_msg_bytes: i32 = "maxMsgBytes",
    }
}

header! {
    /// PULL_MESSAGE response.
    pub struct PullMessageResponseHeader {
        /// Broker id the consumer should pull from next (0 = master).
        req suggest_which_broker_id: i64 = "suggestWhichBrokerId",
        /// Next queue offset to pull.
        req next_begin_offset: i64 = "nextBeginOffset",
        /// Smallest offset in the queue.
        req min_offset: i64 = "minOffset",
        /// Next offset to be written in the queue.
        req max_offset: i64 = "maxOffset",
    }
}

// ---------------------------------------------------------------------------------------
// Offsets and queries (14, 15, 29-33, 12).

header! {
    /// QUERY_CONSUMER_OFFSET (14) request.
    pub struct QueryConsumerOffsetRequestHeader {
        /// Consumer group.
        req consumer_group: String = "consumerGroup",
        /// Topic.
        req topic: String = "topic",
        /// Queue id.
        req queue_id: i32 = "queueId",
        /// Answer 0 rather than QUERY_NOT_FOUND when no offset is stored (5.x).
        opt set_zero_if_not_found: bool = "setZeroIfNotFound",
    }
}

header! {
    /// QUERY_CONSUMER_OFFSET response.
    pub struct QueryConsumerOffsetResponseHeader {
        /// The stored consumer offset.
        req offset: i64 = "offset",
    }
}

header! {
    /// UPDATE_CONSUMER_OFFSET (15) request.
    pub struct UpdateConsumerOffsetRequestHeader {
        /// Consumer group.
        req consumer_group: String = "consumerGroup",
        /// Topic.
        req topic: String = "topic",
        /// Queue id.
        req queue_id: i32 = "queueId",
        /// Offset to store.
        req commit_offset: i64 = "commitOffset",
    }
}

header! {
    /// GET_MAX_OFFSET (30) request.
    pub struct GetMaxOffsetRequestHeader {
        /// Topic.
        req topic: String = "topic",
        /// Queue id.
        req queue_id: i32 = "queueId",
    }
}

header! {
    /// GET_MAX_OFFSET response.
    pub struct GetMaxOffsetResponseHeader {
        /// Next offset to be written.
        req offset: i64 = "offset",
    }
}

header! {
    /// GET_MIN_OFFSET (31) request.
    pub struct GetMinOffsetRequestHeader {
        /// Topic.
        req topic: String = "topic",
        /// Queue id.
        req queue_id: i32 = "queueId",
    }
}

header! {
    /// GET_MIN_OFFSET response.
    pub struct GetMinOffsetResponseHeader {
        /// Smallest offset still stored.
        req offset: i64 = "offset",
    }
}

header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP (29) request.
    pub struct SearchOffsetRequestHeader {
        /// Topic.
        req topic: String = "topic",
        /// Queue id.
        req queue_id: i32 = "queueId",
        /// Store timestamp to search for, ms.
        req timestamp: i64 = "timestamp",
    }
}

header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP response.
    pub struct SearchOffsetResponseHeader {
        /// The offset found.
        req offset: i64 = "offset",
    }
}

header! {
    /// GET_EARLIEST_MSG_STORETIME (32) request.
    pub struct GetEarliestMsgStoretimeRequestHeader {
        /// Topic.
        req topic: String = "topic",
        /// Queue id.
        req queue_id: i32 = "queueId",
    }
}

header! {
    /// GET_EARLIEST_MSG_STORETIME response.
    pub struct GetEarliestMsgStoretimeResponseHeader {
        /// Store timestamp of the oldest message, ms.
        req timestamp: i64 = "timestamp",
    }
}

header! {
    /// QUERY_MESSAGE (12) request.
    pub struct QueryMessageRequestHeader {
        /// Topic.
        req topic: String = "topic",
        /// Message key (or UNIQ_KEY with ext field `_UNIQUE_KEY_QUERY`).
        req key: String = "key",
        /// Most messages to return.
        req max_num: i32 = "maxNum",
        /// Earliest store time, ms.
        req begin_timestamp: i64 = "beginTimestamp",
        /// Latest store time, ms.
        req end_timestamp: i64 = "endTimestamp",
    }
}

header! {
    /// QUERY_MESSAGE response.
    pub struct QueryMessageResponseHeader {
        /// Last index update time, ms.
        req index_last_update_timestamp: i64 = "indexLastUpdateTimestamp",
        /// Commit-log offset covered by the index.
        req index_last_update_phyoffset: i64 = "indexLastUpdatePhyoffset",
    }
}

header! {
    /// VIEW_MESSAGE_BY_ID (33) request.
    pub struct ViewMessageRequestHeader {
        /// Topic (5.x).
        opt topic: String = "topic",
        /// Commit-log offset of the record.
        req offset: i64 = "offset",
    }
}

// ---------------------------------------------------------------------------------------
// Clients (35, 36, 37, 38, 39, 40).

header! {
    /// GET_CONSUMER_LIST_BY_GROUP (38) request.
    pub struct GetConsumerListByGroupRequestHeader {
        /// Consumer group.
        req consumer_group: String = "consumerGroup",
    }
}

header! {
    /// NOTIFY_CONSUMER_IDS_CHANGED (40) request, broker to client, one-way.
    pub struct NotifyConsumerIdsChangedRequestHeader {
        /// Consumer group.
        req consumer_group: String = "consumerGroup",
    }
}

header! {
    /// UNREGISTER_CLIENT (35) request.
    pub struct UnregisterClientRequestHeader {
        /// Client id (wire name `clientID`).
        req client_id: String = "clientID",
        /// Producer group leaving, if any.
        opt producer_group: String = "producerGroup",
        /// Consumer group leaving, if any.
        opt consumer_group: String = "consumerGroup",
    }
}

header! {
    /// CONSUMER_SEND_MSG_BACK (36) request.
    pub struct ConsumerSendMsgBackRequestHeader {
        /// Commit-log offset of the message.
        req offset: i64 = "offset",
        /// Consumer group.
        req group: String = "group",
        /// Delay level; 0 lets the broker decide, < 0 sends to the DLQ.
        req delay_level: i32 = "delayLevel",
        /// Original message id.
        opt origin_msg_id: String = "originMsgId",
        /// Original topic.
        opt origin_topic: String = "originTopic",
        /// Retries before the DLQ.
        opt max_reconsume_times: i32 = "maxReconsumeTimes",
    }
}

header! {
    /// END_TRANSACTION (37) request, usually one-way.
    pub struct EndTransactionRequestHeader {
        /// Topic of the half message (5.x).
        opt topic: String = "topic",
        /// Producer group.
        req producer_group: String = "producerGroup",
        /// Queue offset of the half message.
        req tran_state_table_offset: i64 = "tranStateTableOffset",
        /// Commit-log offset of the half message.
        req commit_log_offset: i64 = "commitLogOffset",
        /// 0 unknown, 8 commit, 12 rollback.
        req commit_or_rollback: i32 = "commitOrRollback",
        /// True when answering CHECK_TRANSACTION_STATE.
        opt from_transaction_check: bool = "fromTransactionCheck",
        /// UNIQ_KEY of the message.
        req msg_id: String = "msgId",
        /// Transaction id.
        opt transaction_id: String = "transactionId",
    }
}

header! {
    /// CHECK_TRANSACTION_STATE (39) request, broker to producer, one-way.
    pub struct CheckTransactionStateRequestHeader {
        /// Topic (5.x).
        opt topic: String = "topic",
        /// Queue offset of the half message.
        req tran_state_table_offset: i64 = "tranStateTableOffset",
        /// Commit-log offset of the half message.
        req commit_log_offset: i64 = "commitLogOffset",
        /// UNIQ_KEY of the message.
        opt msg_id: String = "msgId",
        /// Transaction id.
        opt transaction_id: String = "transactionId",
        /// offsetMsgId of the half message.
        opt offset_msg_id: String = "offsetMsgId",
    }
}

// ---------------------------------------------------------------------------------------
// Topic admin (17, 215).

header! {
    /// UPDATE_AND_CREATE_TOPIC (17) request. Lenient: missing numbers take the
    /// defaults 8/8/6, the filter type SINGLE_TAG, `order` false, `defaultTopic` TBW102.
    pub struct CreateTopicRequestHeader {
        /// Topic to create or update.
        req topic: String = "topic",
        /// Template topic.
        def default_topic: String = "defaultTopic" or "TBW102".to_string(),
        /// Read queue count.
        def read_queue_nums: i32 = "readQueueNums" or 8,
        /// Write queue count.
        def write_queue_nums: i32 = "writeQueueNums" or 8,
        /// PermName bits.
        def perm: i32 = "perm" or 6,
        /// `SINGLE_TAG` or `MULTI_TAG`.
        def topic_filter_type: String = "topicFilterType" or "SINGLE_TAG".to_string(),
        /// TopicSysFlag bits.
        opt topic_sys_flag: i32 = "topicSysFlag",
        /// Ordered topic.
        def order: bool = "order" or false,
    }
}

header! {
    /// DELETE_TOPIC_IN_BROKER (215) request.
    pub struct DeleteTopicRequestHeader {
        /// Topic.
        req topic: String = "topic",
    }
}

// ---------------------------------------------------------------------------------------
// NameServer (100-106, 205, 216, 219, 224, 322).

header! {
    /// GET_ROUTEINFO_BY_TOPIC (105) request.
    pub struct GetRouteInfoRequestHeader {
        /// Topic.
        req topic: String = "topic",
        /// Answer standard JSON whatever the request version (5.x).
        opt accept_standard_json_only: bool = "acceptStandardJsonOnly",
    }
}

header! {
    /// REGISTER_BROKER (103) request.
    pub struct RegisterBrokerRequestHeader {
        /// Broker name.
        req broker_name: String = "brokerName",
        /// `ip:listenPort`.
        req broker_addr: String = "brokerAddr",
        /// Cluster name.
        req cluster_name: String = "clusterName",
        /// `ip:haPort`.
        req ha_server_addr: String = "haServerAddr",
        /// 0 = master.
        req broker_id: i64 = "brokerId",
        /// Liveness timeout the broker asks for (5.x).
        opt heartbeat_timeout_millis: i64 = "heartbeatTimeoutMillis",
        /// Body is the compressed encoding.
        opt compressed: bool = "compressed",
        /// Masked CRC32 of the body; 0 or absent skips the check.
        opt body_crc32: i32 = "bodyCrc32",
    }
}

header! {
    /// REGISTER_BROKER response.
    pub struct RegisterBrokerResponseHeader {
        /// HA address of the master.
        opt ha_server_addr: String = "haServerAddr",
        /// Address of the master, for slaves.
        opt master_addr: String = "masterAddr",
    }
}

header! {
    /// UNREGISTER_BROKER (104) request.
    pub struct UnRegisterBrokerRequestHeader {
        /// Broker name.
        req broker_name: String = "brokerName",
        /// `ip:listenPort`.
        req broker_addr: String = "brokerAddr",
        /// Cluster name.
        req cluster_name: String = "clusterName",
        /// 0 = master.
        req broker_id: i64 = "brokerId",
    }
}

header! {
    /// QUERY_DATA_VERSION (322) request.
    pub struct QueryDataVersionRequestHeader {
        /// Broker name.
        req broker_name: String = "brokerName",
        /// `ip:listenPort`.
        req broker_addr: String = "brokerAddr",
        /// Cluster name.
        req cluster_name: String = "clusterName",
        /// 0 = master.
        req broker_id: i64 = "brokerId",
    }
}

header! {
    /// QUERY_DATA_VERSION response.
    pub struct QueryDataVersionResponseHeader {
        /// True when the NameServer's data version differs from the broker's.
        req changed: bool = "changed",
    }
}

header! {
    /// PUT_KV_CONFIG (100) request.
    pub struct PutKvConfigRequestHeader {
        /// Namespace.
        req namespace: String = "namespace",
        /// Key.
        req key: String = "key",
        /// Value.
        req value: String = "value",
    }
}

header! {
    /// GET_KV_CONFIG (101) request.
    pub struct GetKvConfigRequestHeader {
        /// Namespace.
        req namespace: String = "namespace",
        /// Key.
        req key: String = "key",
    }
}

header! {
    /// GET_KV_CONFIG response.
    pub struct GetKvConfigResponseHeader {
        /// The value, when found.
        opt value: String = "value",
    }
}

header! {
    /// DELETE_KV_CONFIG (102) request.
    pub struct DeleteKvConfigRequestHeader {
        /// Namespace.
        req namespace: String = "namespace",
        /// Key.
        req key: String = "key",
    }
}

header! {
    /// GET_KVLIST_BY_NAMESPACE (219) request.
    pub struct GetKvListByNamespaceRequestHeader {
        /// Namespace.
        req namespace: String = "namespace",
    }
}

header! {
    /// DELETE_TOPIC_IN_NAMESRV (216) request.
    pub struct DeleteTopicFromNamesrvRequestHeader {
        /// Topic.
        req topic: String = "topic",
    }
}

header! {
    /// GET_TOPICS_BY_CLUSTER (224) request.
    pub struct GetTopicsByClusterRequestHeader {
        /// Cluster name.
        req cluster: String = "cluster",
    }
}

header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205) request.
    pub struct WipeWritePermOfBrokerRequestHeader {
        /// Broker name.
        req broker_name: String = "brokerName",
    }
}

header! {
    /// WIPE_WRITE_PERM_OF_BROKER response.
    pub struct WipeWritePermOfBrokerResponseHeader {
        /// Topics whose write permission was removed.
        req wipe_topic_count: i32 = "wipeTopicCount",
    }
}
