//! JSON bodies of the admin and statistics requests `mqadmin` sends: topic and consume
//! statistics, producer connections, subscription groups, all consumer offsets, offset
//! resets and broker statistics.
//!
//! Several of these carry a map keyed by a `MessageQueue` object. fastjson writes such a
//! map with the key object itself in key position, which is not standard JSON:
//!
//! ```text
//! {"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{...}}}
//! ```
//!
//! Reading accepts that form (through [`crate::body::from_json`], which turns the key into
//! a string holding its JSON text) and the standard form with the key as a JSON string.
//! Writing uses the fastjson form (`to_json_fastjson`), which the Java admin tools read.
//!
//! ```
//! use ramjet_proto::admin_body::{ConsumeStats, OffsetWrapper};
//! use ramjet_proto::body::{from_json, MessageQueue};
//!
//! let mut stats = ConsumeStats::default();
//! let mq = MessageQueue { topic: "t".into(), broker_name: "b".into(), queue_id: 0 };
//! stats.offset_table.push((mq, OffsetWrapper { broker_offset: 5, ..Default::default() }));
//! let back: ConsumeStats = from_json(&stats.to_json_fastjson()).unwrap();
//! assert_eq!(back.offset_table[0].1.broker_offset, 5);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::body::{from_json, to_json, Connection, DataVersion, MessageQueue};

/// Entries of a map keyed by `MessageQueue`, in key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MqTable<V>(pub Vec<(MessageQueue, V)>);

impl<V> std::ops::Deref for MqTable<V> {
    type Target = Vec<(MessageQueue, V)>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<V> std::ops::DerefMut for MqTable<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<V: Serialize> MqTable<V> {
    /// Appends `{key}:value,...` in fastjson's form (no surrounding braces).
    fn write_fastjson(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (mq, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&to_json(mq));
            out.push(b':');
            out.extend_from_slice(&to_json(v));
        }
        out.push(b'}');
    }
}

impl<'de, V: DeserializeOwned> Deserialize<'de> for MqTable<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: DeserializeOwned> Visitor<'de> for V2<V> {
            type Value = MqTable<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map keyed by MessageQueue")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MqTable(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, V>()? {
                    let mq: MessageQueue = from_json(key.as_bytes())
                        .map_err(|e| serde::de::Error::custom(format!("queue key {key}: {e}")))?;
                    out.push((mq, value));
                }
                out.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(MqTable(out))
            }
        }
        d.deserialize_any(V2(PhantomData))
    }
}

/// Offsets of one queue (GET_TOPIC_STATS_INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicOffset {
    /// Oldest queue offset still stored.
    pub min_offset: i64,
    /// Next queue offset to be written.
    pub max_offset: i64,
    /// Store time of the newest message, ms (0 when the queue is empty).
    pub last_update_timestamp: i64,
}

/// GET_TOPIC_STATS_INFO (202) response body.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicStatsTable {
    /// Per queue offsets.
    pub offset_table: MqTable<TopicOffset>,
}

impl TopicStatsTable {
    /// fastjson's form of the body.
    pub fn to_json_fastjson(&self) -> Vec<u8> {
        let mut out = b"{\"offsetTable\":".to_vec();
        self.offset_table.write_fastjson(&mut out);
        out.push(b'}');
        out
    }
}

/// A group's progress on one queue (GET_CONSUME_STATS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OffsetWrapper {
    /// Next queue offset to be written (the queue's max offset).
    pub broker_offset: i64,
    /// The group's committed offset.
    pub consumer_offset: i64,
    /// The offset the group last pulled from (5.x; 0 when unknown).
    pub pull_offset: i64,
    /// Store time of the last consumed message, ms (0 when none).
    pub last_timestamp: i64,
}

/// GET_CONSUME_STATS (208) response body.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumeStats {
    /// Per queue progress.
    pub offset_table: MqTable<OffsetWrapper>,
    /// Messages pulled per second by the group (over the last minute).
    pub consume_tps: f64,
}

impl ConsumeStats {
    /// fastjson's form of the body.
    pub fn to_json_fastjson(&self) -> Vec<u8> {
        let mut out = format!("{{\"consumeTps\":{},\"offsetTable\":", json_f64(self.consume_tps))
            .into_bytes();
        self.offset_table.write_fastjson(&mut out);
        out.push(b'}');
        out
    }

    /// Sum over queues of broker offset minus consumer offset (never negative per queue).
    pub fn total_lag(&self) -> i64 {
        self.offset_table.iter().map(|(_, w)| (w.broker_offset - w.consumer_offset).max(0)).sum()
    }
}

/// RESET_CONSUMER_OFFSET / INVOKE_BROKER_TO_RESET_OFFSET (222) response body, and the body
/// of RESET_CONSUMER_CLIENT_OFFSET (220) pushed to consumers.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResetOffsetBody {
    /// The new offset of each queue.
    pub offset_table: MqTable<i64>,
}

impl ResetOffsetBody {
    /// fastjson's form of the body.
    pub fn to_json_fastjson(&self) -> Vec<u8> {
        let mut out = b"{\"offsetTable\":".to_vec();
        self.offset_table.write_fastjson(&mut out);
        out.push(b'}');
        out
    }
}

fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "0.0".into()
    }
}

/// GET_PRODUCER_CONNECTION_LIST (204) response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerConnection {
    /// The group's live producer connections.
    pub connection_set: Vec<Connection>,
}

/// QUERY_TOPIC_CONSUME_BY_WHO (300) response body: the groups consuming a topic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupList {
    /// Group names (a set in the reference; sorted here).
    pub group_list: BTreeSet<String>,
}

/// One producer client of GET_ALL_PRODUCER_INFO (328), as the reference's `ProducerInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerInfo {
    /// Client id.
    pub client_id: String,
    /// `ip:port` of the client's socket (the reference's field name).
    #[serde(rename = "remoteIP")]
    pub remote_ip: String,
    /// LanguageCode name.
    pub language: String,
    /// MQVersion ordinal.
    pub version: i32,
    /// Time of the client's last heartbeat, ms.
    pub last_update_timestamp: i64,
}

/// GET_ALL_PRODUCER_INFO (328) response body: producer clients by group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerTableInfo {
    /// Producer group to its clients.
    pub data: BTreeMap<String, Vec<ProducerInfo>>,
}

/// GET_BROKER_CONSUME_STATS (317) response body, the reference's `ConsumeStatsList`:
/// per group, the consume stats of each topic it has offsets on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumeStatsList {
    /// Group to its per-topic stats (one map per group, as the reference lists them).
    pub consume_stats_list: Vec<(String, Vec<ConsumeStats>)>,
    /// The broker's address.
    pub broker_addr: String,
    /// Sum of every queue's lag.
    pub total_diff: i64,
    /// Messages pulled but not committed (ramjet tracks none: 0).
    pub total_inflight_diff: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[derive(Default)]
struct ConsumeStatsListForm {
    consume_stats_list: Vec<BTreeMap<String, Vec<ConsumeStats>>>,
    broker_addr: String,
    total_diff: i64,
    total_inflight_diff: i64,
}

impl<'de> Deserialize<'de> for ConsumeStatsList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = ConsumeStatsListForm::deserialize(d)?;
        Ok(ConsumeStatsList {
            consume_stats_list: form.consume_stats_list.into_iter().flatten().collect(),
            broker_addr: form.broker_addr,
            total_diff: form.total_diff,
            total_inflight_diff: form.total_inflight_diff,
        })
    }
}

impl ConsumeStatsList {
    /// fastjson's form of the body (its `ConsumeStats` keep their object-keyed tables).
    pub fn to_json_fastjson(&self) -> Vec<u8> {
        let mut out = b"{\"brokerAddr\":".to_vec();
        out.extend_from_slice(&to_json(&self.broker_addr));
        out.extend_from_slice(b",\"consumeStatsList\":[");
        for (i, (group, stats)) in self.consume_stats_list.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            out.extend_from_slice(&to_json(group));
            out.extend_from_slice(b":[");
            for (j, s) in stats.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&s.to_json_fastjson());
            }
            out.extend_from_slice(b"]}");
        }
        let tail = format!(
            "],\"totalDiff\":{},\"totalInflightDiff\":{}}}",
            self.total_diff, self.total_inflight_diff
        );
        out.extend_from_slice(tail.as_bytes());
        out
    }
}

fn yes() -> bool {
    true
}
fn one_i32() -> i32 {
    1
}
fn sixteen() -> i32 {
    16
}
fn one_i64() -> i64 {
    1
}
fn fifteen() -> i32 {
    15
}

/// A consumer group's settings (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP 200), defaults as the
/// reference's `SubscriptionGroupConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupConfig {
    /// Group name.
    #[serde(default)]
    pub group_name: String,
    /// Pulls allowed.
    #[serde(default = "yes")]
    pub consume_enable: bool,
    /// A new group may start from the queue's minimum offset.
    #[serde(default = "yes")]
    pub consume_from_min_enable: bool,
    /// Broadcasting consumption allowed.
    #[serde(default = "yes")]
    pub consume_broadcast_enable: bool,
    /// Ordered consumption (5.x).
    #[serde(default)]
    pub consume_message_orderly: bool,
    /// Queues of `%RETRY%<group>`.
    #[serde(default = "one_i32")]
    pub retry_queue_nums: i32,
    /// Redeliveries before the dead-letter queue.
    #[serde(default = "sixteen")]
    pub retry_max_times: i32,
    /// Broker id consumers read from.
    #[serde(default)]
    pub broker_id: i64,
    /// Broker id to suggest when consumption is slow.
    #[serde(default = "one_i64")]
    pub which_broker_when_consume_slowly: i64,
    /// Send NOTIFY_CONSUMER_IDS_CHANGED on membership changes.
    #[serde(default = "yes")]
    pub notify_consumer_ids_changed_enable: bool,
    /// Group system flag.
    #[serde(default)]
    pub group_sys_flag: i32,
    /// Consume timeout, minutes.
    #[serde(default = "fifteen")]
    pub consume_timeout_minute: i32,
}

impl Default for SubscriptionGroupConfig {
    fn default() -> Self {
        SubscriptionGroupConfig {
            group_name: String::new(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            consume_message_orderly: false,
            retry_queue_nums: 1,
            retry_max_times: 16,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
            group_sys_flag: 0,
            consume_timeout_minute: 15,
        }
    }
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201) response body and `subscriptionGroup.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupWrapper {
    /// Group name → settings.
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
    /// Bumped on every change.
    pub data_version: DataVersion,
}

/// GET_ALL_CONSUMER_OFFSET (43) response body (`consumerOffset.json`'s shape).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerOffsetSerializeWrapper {
    /// `topic@group` → queue id → committed offset.
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// One window of VIEW_BROKER_STATS_DATA.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerStatsItem {
    /// Total in the window.
    pub sum: i64,
    /// Per second.
    pub tps: f64,
    /// Average per sample.
    pub avgpt: f64,
}

/// VIEW_BROKER_STATS_DATA (315) response body.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerStatsData {
    /// Last minute.
    pub stats_minute: BrokerStatsItem,
    /// Last hour.
    pub stats_hour: BrokerStatsItem,
    /// Last day.
    pub stats_day: BrokerStatsItem,
}

/// Parses a Java-properties body (GET_BROKER_CONFIG's): `key=value` lines.
pub fn parse_properties_body(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// One queue of a consumer, in GET_CONSUMER_RUNNING_INFO's `mqTable` (the reference's
/// `ProcessQueueInfo`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessQueueInfo {
    /// The offset the consumer would commit.
    pub commit_offset: i64,
    /// Lowest queue offset held in memory.
    pub cached_msg_min_offset: i64,
    /// Highest queue offset held in memory.
    pub cached_msg_max_offset: i64,
    /// Messages held in memory.
    pub cached_msg_count: i32,
    /// Their size, MiB.
    pub cached_msg_size_in_mi_b: i32,
    /// Ordered consumption: lowest offset being consumed.
    pub transaction_msg_min_offset: i64,
    /// Ordered consumption: highest offset being consumed.
    pub transaction_msg_max_offset: i64,
    /// Ordered consumption: messages being consumed.
    pub transaction_msg_count: i32,
    /// Ordered consumption: the queue's broker lock is held.
    pub locked: bool,
    /// Unlock attempts.
    pub try_unlock_times: i64,
    /// When the lock was last renewed, ms.
    pub last_lock_timestamp: i64,
    /// The queue was dropped by a rebalance (the reference's spelling).
    pub droped: bool,
    /// Last pull, ms.
    pub last_pull_timestamp: i64,
    /// Last consumption, ms.
    pub last_consume_timestamp: i64,
}

/// Per-topic consumption rates in GET_CONSUMER_RUNNING_INFO's `statusTable`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumeStatus {
    /// Pull round trip, ms.
    #[serde(rename = "pullRT")]
    pub pull_rt: f64,
    /// Pulls per second.
    #[serde(rename = "pullTPS")]
    pub pull_tps: f64,
    /// Consumption time, ms.
    #[serde(rename = "consumeRT")]
    pub consume_rt: f64,
    /// Messages consumed per second.
    #[serde(rename = "consumeOKTPS")]
    pub consume_ok_tps: f64,
    /// Messages failed per second.
    #[serde(rename = "consumeFailedTPS")]
    pub consume_failed_tps: f64,
    /// Messages failed in the last hour.
    pub consume_failed_msgs: i64,
}

/// GET_CONSUMER_RUNNING_INFO (307) body, written by a consumer (the reference's
/// `ConsumerRunningInfo`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerRunningInfo {
    /// Settings and facts (`PROP_CONSUME_TYPE`, `PROP_CONSUME_ORDERLY`, ...).
    pub properties: BTreeMap<String, String>,
    /// Subscriptions.
    pub subscription_set: Vec<crate::body::SubscriptionData>,
    /// Queues being consumed.
    pub mq_table: MqTable<ProcessQueueInfo>,
    /// Rates per topic.
    pub status_table: BTreeMap<String, ConsumeStatus>,
    /// Application-defined facts.
    pub user_consumer_info: BTreeMap<String, String>,
    /// Thread dump (Java only).
    pub jstack: Option<String>,
}

impl ConsumerRunningInfo {
    /// fastjson's form of the body (`mqTable` keyed by queue objects).
    pub fn to_json_fastjson(&self) -> Vec<u8> {
        let mut out = b"{\"jstack\":".to_vec();
        out.extend_from_slice(&to_json(&self.jstack));
        out.extend_from_slice(b",\"mqTable\":");
        self.mq_table.write_fastjson(&mut out);
        out.extend_from_slice(b",\"properties\":");
        out.extend_from_slice(&to_json(&self.properties));
        out.extend_from_slice(b",\"statusTable\":");
        out.extend_from_slice(&to_json(&self.status_table));
        out.extend_from_slice(b",\"subscriptionSet\":");
        out.extend_from_slice(&to_json(&self.subscription_set));
        out.extend_from_slice(b",\"userConsumerInfo\":");
        out.extend_from_slice(&to_json(&self.user_consumer_info));
        out.push(b'}');
        out
    }
}

/// CONSUME_MESSAGE_DIRECTLY (309) body, written by a consumer (the reference's
/// `ConsumeMessageDirectlyResult`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumeMessageDirectlyResult {
    /// Consumed by an ordered listener.
    pub order: bool,
    /// Ordered consumption commits on its own.
    pub auto_commit: bool,
    /// `CR_SUCCESS`, `CR_LATER`, `CR_ROLLBACK`, `CR_COMMIT`, `CR_THROW_EXCEPTION`,
    /// `CR_RETURN_NULL`.
    pub consume_result: String,
    /// Why it failed.
    pub remark: Option<String>,
    /// Time the listener took, ms (the reference's spelling).
    pub spent_time_mills: i64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn consume_stats_list_reads_back_its_fastjson_form() {
        let mut stats = ConsumeStats::default();
        stats.offset_table.push((mq(1), OffsetWrapper { broker_offset: 9, ..Default::default() }));
        let list = ConsumeStatsList {
            consume_stats_list: vec![("g\"1".into(), vec![stats]), ("g2".into(), vec![])],
            broker_addr: "127.0.0.1:10911".into(),
            total_diff: 9,
            total_inflight_diff: 0,
        };
        let back: ConsumeStatsList = from_json(&list.to_json_fastjson()).unwrap();
        assert_eq!(back, list);
    }

    #[test]
    fn producer_info_uses_the_reference_field_names() {
        let mut table = ProducerTableInfo::default();
        let info = ProducerInfo {
            client_id: "c".into(),
            remote_ip: "1.2.3.4:5".into(),
            ..Default::default()
        };
        table.data.insert("p".into(), vec![info]);
        let json = String::from_utf8(to_json(&table)).unwrap();
        assert!(
            json.contains("\"remoteIP\":\"1.2.3.4:5\"") && json.contains("\"lastUpdateTimestamp\""),
            "{json}"
        );
        let groups = GroupList { group_list: ["a".to_string()].into_iter().collect() };
        assert_eq!(to_json(&groups), br#"{"groupList":["a"]}"#);
    }

    fn mq(q: i32) -> MessageQueue {
        MessageQueue { topic: "t".into(), broker_name: "b".into(), queue_id: q }
    }

    #[test]
    fn consumer_running_info_round_trips_in_fastjson_form() {
        let mut info = ConsumerRunningInfo::default();
        info.properties.insert("PROP_CONSUME_TYPE".into(), "CONSUME_PASSIVELY".into());
        info.mq_table.push((mq(1), ProcessQueueInfo { commit_offset: 7, ..Default::default() }));
        info.status_table.insert("t".into(), ConsumeStatus { pull_tps: 2.0, ..Default::default() });
        let json = info.to_json_fastjson();
        assert!(String::from_utf8_lossy(&json).contains("\"pullTPS\":2.0"));
        let back: ConsumerRunningInfo = from_json(&json).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn consume_stats_round_trip_in_fastjson_form() {
        let mut s = ConsumeStats { consume_tps: 1.5, ..Default::default() };
        s.offset_table.push((
            mq(1),
            OffsetWrapper { broker_offset: 9, consumer_offset: 4, ..Default::default() },
        ));
        s.offset_table.push((mq(0), OffsetWrapper { broker_offset: 3, ..Default::default() }));
        let json = s.to_json_fastjson();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains(r#"{{"topic":"t","brokerName":"b","queueId":1}:{"brokerOffset":9"#));
        let back: ConsumeStats = from_json(&json).unwrap();
        assert_eq!(back.offset_table.len(), 2);
        assert_eq!(back.offset_table[0].0.queue_id, 0, "sorted by queue");
        assert_eq!(back.total_lag(), 5 + 3);
        assert_eq!(back.consume_tps, 1.5);
    }

    #[test]
    fn java_written_topic_stats_parse() {
        let raw = br#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":1700000000000,"maxOffset":10,"minOffset":0}}}"#;
        let t: TopicStatsTable = from_json(raw).unwrap();
        assert_eq!(t.offset_table[0].0.broker_name, "broker-a");
        assert_eq!(t.offset_table[0].1.max_offset, 10);
        let standard = br#"{"offsetTable":{"{\"brokerName\":\"b\",\"queueId\":2,\"topic\":\"T\"}":{"maxOffset":1}}}"#;
        let t: TopicStatsTable = from_json(standard).unwrap();
        assert_eq!(t.offset_table[0].0.queue_id, 2);
    }

    #[test]
    fn subscription_group_defaults_follow_the_reference() {
        let g: SubscriptionGroupConfig = from_json(br#"{"groupName":"g"}"#).unwrap();
        assert!(g.consume_enable && g.consume_broadcast_enable);
        assert_eq!((g.retry_queue_nums, g.retry_max_times), (1, 16));
        assert_eq!(g, SubscriptionGroupConfig { group_name: "g".into(), ..Default::default() });
    }

    #[test]
    fn properties_body_parses() {
        let p = parse_properties_body(b"a=1\n# c\nb = x=y\n\n");
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "x=y");
    }
}
