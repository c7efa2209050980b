//! JSON bodies: routes, cluster info, topic configs, heartbeats, locks, key-value tables.
//!
//! The Java side writes these with fastjson 1.x, which is lenient in ways serde is not.
//! Reading here is as lenient as fastjson reading:
//!
//! - every field may be missing or `null`: it takes its default;
//! - integers may be JSON numbers or numeric strings (`"subVersion":"1795647963615"`);
//!   booleans may be `true`/`false`, `1`/`0` or those as strings;
//! - enums may be names (`"CLUSTERING"`) or ordinals (`1`); they are written as names;
//! - map keys may be unquoted (`{0:"127.0.0.1:10911"}`) or whole JSON objects
//!   (`{{"brokerName":"b","queueId":0,"topic":"t"}:{...}}`): [`from_json`] first tries
//!   standard JSON and, when that fails, quotes such keys (an object key becomes a string
//!   holding its JSON text) and tries again;
//! - unknown fields are ignored.
//!
//! Writing is standard JSON ([`to_json`]); [`TopicRouteData::to_json_fastjson`] writes the
//! `brokerAddrs` keys unquoted, as a Java NameServer does for old clients.
//!
//! ```
//! use ramjet_proto::body::{from_json, TopicRouteData};
//!
//! let raw = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"b",
//!     "cluster":"c"}],"queueDatas":[]}"#;
//! let route: TopicRouteData = from_json(raw).unwrap();
//! assert_eq!(route.broker_datas[0].broker_addrs[&0], "127.0.0.1:10911");
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::json_header::write_json_string;

/// A JSON body does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON, or JSON of the wrong shape, even after quoting bare keys.
    Json {
        /// serde_json's message.
        message: String,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
    },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Json { message, line, column } => {
                write!(f, "bad JSON body at line {line} column {column}: {message}")
            }
        }
    }
}

impl std::error::Error for BodyError {}

impl From<serde_json::Error> for BodyError {
    fn from(e: serde_json::Error) -> Self {
        BodyError::Json {
            message: crate::text::clip_echo(&e.to_string()),
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Parses a JSON body, accepting fastjson's unquoted and object map keys.
///
/// # Errors
/// `BodyError::Json` when the bytes are not JSON of `T`'s shape even after quoting keys.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(first) => {
            let quoted = quote_bare_keys(bytes);
            if quoted == bytes {
                return Err(first.into());
            }
            serde_json::from_slice(&quoted).map_err(BodyError::from)
        }
    }
}

/// Writes standard JSON.
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // The body types only hold strings, integers, booleans and maps keyed by strings or
    // integers, which serde_json always serializes; an empty body is the fallback for a
    // foreign type that cannot be written.
    serde_json::to_vec(value).unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Ctx {
    /// Inside an object; true while the next token is a key.
    Object(bool),
    Array,
}

/// Rewrites fastjson's non-standard keys into JSON strings.
///
/// Inside an object, where a key is due: a bare token (`0`, `abc`) becomes `"0"`; an
/// object or array (`{"topic":"t"}`) becomes a string holding its text. Strings are copied
/// untouched, escapes included, so braces and colons inside them do not confuse the scan.
/// Anything malformed is copied as is and left to serde_json to reject.
pub fn quote_bare_keys(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 16);
    let mut stack: Vec<Ctx> = Vec::new();
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        let expecting_key = matches!(stack.last(), Some(Ctx::Object(true)));
        match b {
            b'"' => {
                if expecting_key {
                    set_expect_key(&mut stack, false);
                }
                let end = string_end(input, i);
                out.extend_from_slice(input.get(i..end).unwrap_or_default());
                i = end;
                continue;
            }
            b'{' | b'[' if expecting_key => {
                let end = container_end(input, i);
                let key = input.get(i..end).unwrap_or_default();
                write_json_string(&mut out, &String::from_utf8_lossy(key));
                set_expect_key(&mut stack, false);
                i = end;
                continue;
            }
            b'{' => stack.push(Ctx::Object(true)),
            b'[' => stack.push(Ctx::Array),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if matches!(stack.last(), Some(Ctx::Object(_))) {
                    set_expect_key(&mut stack, true);
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' | b':' => {}
            _ if expecting_key => {
                let mut end = i;
                while let Some(&c) = input.get(end) {
                    if matches!(c, b':' | b' ' | b'\t' | b'\r' | b'\n' | b'}' | b',') {
                        break;
                    }
                    end += 1;
                }
                let key = input.get(i..end).unwrap_or_default();
                write_json_string(&mut out, &String::from_utf8_lossy(key));
                set_expect_key(&mut stack, false);
                i = end;
                continue;
            }
            _ => {}
        }
        out.push(b);
        i += 1;
    }
    out
}

fn set_expect_key(stack: &mut [Ctx], expect: bool) {
    if let Some(top @ Ctx::Object(_)) = stack.last_mut() {
        *top = Ctx::Object(expect);
    }
}

/// The index just past the string starting at `start` (a `"`), or the input's end.
fn string_end(input: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&c) = input.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    input.len()
}

/// The index just past the object or array starting at `start`, or the input's end.
fn container_end(input: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while let Some(&c) = input.get(i) {
        match c {
            b'"' => {
                i = string_end(input, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    input.len()
}

// ---------------------------------------------------------------------------------------
// Lenient field readers.

pub(crate) mod lenient {
    //! `deserialize_with` helpers: null is the default, numbers may be strings, booleans
    //! may be numbers or strings, strings may be numbers.

    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Bool(bool),
        I64(i64),
        U64(u64),
        F64(f64),
        Str(String),
    }

    fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Scalar>, D::Error> {
        Option::<Scalar>::deserialize(d)
    }

    fn int_of<E: de::Error>(s: Scalar) -> Result<i64, E> {
        match s {
            Scalar::Bool(b) => Ok(i64::from(b)),
            Scalar::I64(v) => Ok(v),
            Scalar::U64(v) => i64::try_from(v).map_err(|_| E::custom("integer out of range")),
            Scalar::F64(v) if v.fract() == 0.0 && v.abs() < 9.0e18 => Ok(v as i64),
            Scalar::F64(v) => Err(E::custom(format!("{v} is not an integer"))),
            Scalar::Str(t) => {
                let t = t.trim();
                if t.is_empty() {
                    Ok(0)
                } else {
                    t.parse().map_err(|_| E::custom(format!("{t:?} is not an integer")))
                }
            }
        }
    }

    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        scalar(d)?.map_or(Ok(0), int_of)
    }

    pub fn i32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        let v = i64(d)?;
        i32::try_from(v).map_err(|_| de::Error::custom(format!("{v} out of i32 range")))
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match scalar(d)? {
            None => Ok(false),
            Some(Scalar::Bool(b)) => Ok(b),
            Some(Scalar::Str(t)) => {
                let t = t.trim();
                Ok(t.eq_ignore_ascii_case("true") || t == "1")
            }
            Some(other) => Ok(int_of::<D::Error>(other)? != 0),
        }
    }

    fn text_of(s: Scalar) -> String {
        match s {
            Scalar::Bool(b) => b.to_string(),
            Scalar::I64(v) => v.to_string(),
            Scalar::U64(v) => v.to_string(),
            Scalar::F64(v) => v.to_string(),
            Scalar::Str(t) => t,
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(scalar(d)?.map(text_of).unwrap_or_default())
    }

    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(scalar(d)?.map(text_of))
    }

    /// `null` is the default; anything else as `T` reads it.
    pub fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }

    /// A list of integers, each lenient.
    pub fn vec_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i32>, D::Error> {
        let raw: Option<Vec<Option<Scalar>>> = Option::deserialize(d)?;
        let mut out = Vec::new();
        for s in raw.unwrap_or_default().into_iter().flatten() {
            let v = int_of::<D::Error>(s)?;
            out.push(i32::try_from(v).map_err(|_| de::Error::custom("out of i32 range"))?);
        }
        Ok(out)
    }

    /// A nullable integer (a Java `Long`): `null` or absent is `None`.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        scalar(d)?.map(int_of).transpose()
    }

    /// A nullable `Integer`.
    pub fn opt_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
        match opt_i64(d)? {
            None => Ok(None),
            Some(v) => i32::try_from(v)
                .map(Some)
                .map_err(|_| de::Error::custom(format!("{v} out of i32 range"))),
        }
    }

    /// A list (or set) of integers, each lenient; nulls are dropped.
    pub fn vec_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        let raw: Option<Vec<Option<Scalar>>> = Option::deserialize(d)?;
        raw.unwrap_or_default().into_iter().flatten().map(int_of::<D::Error>).collect()
    }

    /// A list of strings, each lenient; nulls are dropped.
    pub fn vec_string<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let raw: Option<Vec<Option<Scalar>>> = Option::deserialize(d)?;
        Ok(raw.unwrap_or_default().into_iter().flatten().map(text_of).collect())
    }

    /// `expressionType`: null or empty is `TAG`.
    pub fn expression_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = string(d)?;
        Ok(if s.trim().is_empty() { super::EXPRESSION_TYPE_TAG.to_string() } else { s })
    }
}

// ---------------------------------------------------------------------------------------
// Enums written by name, read by name or ordinal.

macro_rules! java_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident default $default:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $ordinal:literal, $wire:literal $(| $alias:literal)* ; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl $name {
            /// The Java enum name.
            pub fn name(self) -> &'static str {
                match self { $( $name::$variant => $wire, )* }
            }

            /// The Java ordinal.
            pub fn ordinal(self) -> i64 {
                match self { $( $name::$variant => $ordinal, )* }
            }

            /// Parses a Java name (any case) or alias.
            pub fn from_name(name: &str) -> Option<Self> {
                let name = name.trim();
                $(
                    if name.eq_ignore_ascii_case($wire) $(|| name.eq_ignore_ascii_case($alias))* {
                        return Some($name::$variant);
                    }
                )*
                None
            }

            /// Parses a Java ordinal.
            pub fn from_ordinal(ordinal: i64) -> Option<Self> {
                match ordinal { $( $ordinal => Some($name::$variant), )* _ => None }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " name or ordinal"))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        if let Some(e) = $name::from_name(v) {
                            return Ok(e);
                        }
                        v.trim()
                            .parse::<i64>()
                            .ok()
                            .and_then($name::from_ordinal)
                            .ok_or_else(|| E::custom(format!("unknown {} {v:?}", stringify!($name))))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        $name::from_ordinal(v)
                            .ok_or_else(|| E::custom(format!("unknown {} {v}", stringify!($name))))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        self.visit_i64(i64::try_from(v).unwrap_or(-1))
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name::default())
                    }
                    fn visit_none<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name::default())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

java_enum! {
    /// How a consumer gets messages (`ConsumeType`).
    pub enum ConsumeType default ConsumePassively {
        /// Pull consumer.
        ConsumeActively = 0, "CONSUME_ACTIVELY" | "PULL";
        /// Push consumer.
        ConsumePassively = 1, "CONSUME_PASSIVELY" | "PUSH";
        /// Pop consumer (5.x).
        ConsumePop = 2, "CONSUME_POP" | "POP";
    }
}

java_enum! {
    /// Clustering or broadcasting (`MessageModel`).
    pub enum MessageModel default Clustering {
        /// Every consumer gets every message.
        Broadcasting = 0, "BROADCASTING";
        /// The group shares the queues.
        Clustering = 1, "CLUSTERING";
    }
}

java_enum! {
    /// Where a new consumer group starts (`ConsumeFromWhere`).
    pub enum ConsumeFromWhere default ConsumeFromLastOffset {
        /// The queue's end.
        ConsumeFromLastOffset = 0, "CONSUME_FROM_LAST_OFFSET";
        /// Deprecated; as last offset.
        ConsumeFromLastOffsetAndFromMinWhenBootFirst = 1,
            "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST";
        /// Deprecated; the smallest offset.
        ConsumeFromMinOffset = 2, "CONSUME_FROM_MIN_OFFSET";
        /// Deprecated; the largest offset.
        ConsumeFromMaxOffset = 3, "CONSUME_FROM_MAX_OFFSET";
        /// The queue's start.
        ConsumeFromFirstOffset = 4, "CONSUME_FROM_FIRST_OFFSET";
        /// A timestamp.
        ConsumeFromTimestamp = 5, "CONSUME_FROM_TIMESTAMP";
    }
}

/// `expressionType` of tag subscriptions.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";
/// `expressionType` of SQL92 subscriptions.
pub const EXPRESSION_TYPE_SQL92: &str = "SQL92";

// ---------------------------------------------------------------------------------------
// Routes and cluster info.

/// GET_ROUTEINFO_BY_TOPIC (105) response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicRouteData {
    /// `broker-a:4;broker-b:4` for ordered topics.
    #[serde(deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    /// Queues per broker.
    #[serde(deserialize_with = "lenient::or_default")]
    pub queue_datas: Vec<QueueData>,
    /// Brokers and their addresses.
    #[serde(deserialize_with = "lenient::or_default")]
    pub broker_datas: Vec<BrokerData>,
    /// Filter servers per broker address.
    #[serde(deserialize_with = "lenient::or_default")]
    pub filter_server_table: HashMap<String, Vec<String>>,
}

impl TopicRouteData {
    /// Writes the route as a Java NameServer does for old clients: standard JSON except
    /// that `brokerAddrs` keys are bare numbers (`{0:"127.0.0.1:10911"}`).
    pub fn to_json_fastjson(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"brokerDatas\":[");
        for (i, b) in self.broker_datas.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            b.write_fastjson(&mut out);
        }
        out.extend_from_slice(b"],\"filterServerTable\":");
        out.extend_from_slice(&to_json(&self.filter_server_table));
        if let Some(conf) = &self.order_topic_conf {
            out.extend_from_slice(b",\"orderTopicConf\":");
            write_json_string(&mut out, conf);
        }
        out.extend_from_slice(b",\"queueDatas\":");
        out.extend_from_slice(&to_json(&self.queue_datas));
        out.push(b'}');
        out
    }

    /// Standard JSON ([`to_json`]).
    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// One broker's queues for a topic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueData {
    /// Broker name.
    #[serde(deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// Read queue count.
    #[serde(deserialize_with = "lenient::i32")]
    pub read_queue_nums: i32,
    /// Write queue count.
    #[serde(deserialize_with = "lenient::i32")]
    pub write_queue_nums: i32,
    /// PermName bits.
    #[serde(deserialize_with = "lenient::i32")]
    pub perm: i32,
    /// TopicSysFlag bits.
    #[serde(deserialize_with = "lenient::i32")]
    pub topic_sys_flag: i32,
}

/// A broker group: its name, cluster and addresses by broker id (0 = master).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerData {
    /// Cluster name.
    #[serde(deserialize_with = "lenient::string")]
    pub cluster: String,
    /// Broker name.
    #[serde(deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// `ip:port` by broker id.
    #[serde(deserialize_with = "lenient::or_default")]
    pub broker_addrs: BTreeMap<i64, String>,
    /// 5.x; always written, since a 5.x Rust client requires it.
    #[serde(deserialize_with = "lenient::bool")]
    pub enable_acting_master: bool,
    /// Zone (5.x).
    #[serde(deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
}

impl BrokerData {
    /// The master's address (broker id 0).
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&0).map(String::as_str)
    }

    fn write_fastjson(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"brokerAddrs\":{");
        for (i, (id, addr)) in self.broker_addrs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(id.to_string().as_bytes());
            out.push(b':');
            write_json_string(out, addr);
        }
        out.extend_from_slice(b"},\"brokerName\":");
        write_json_string(out, &self.broker_name);
        out.extend_from_slice(b",\"cluster\":");
        write_json_string(out, &self.cluster);
        out.extend_from_slice(b",\"enableActingMaster\":");
        out.extend_from_slice(if self.enable_acting_master { b"true" } else { b"false" });
        if let Some(zone) = &self.zone_name {
            out.extend_from_slice(b",\"zoneName\":");
            write_json_string(out, zone);
        }
        out.push(b'}');
    }
}

/// GET_BROKER_CLUSTER_INFO (106) response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    /// Broker data by broker name.
    #[serde(deserialize_with = "lenient::or_default")]
    pub broker_addr_table: HashMap<String, BrokerData>,
    /// Broker names by cluster name.
    #[serde(deserialize_with = "lenient::or_default")]
    pub cluster_addr_table: HashMap<String, Vec<String>>,
}

// ---------------------------------------------------------------------------------------
// Topic configs and broker registration.

/// A topic's configuration (`TopicConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    /// Topic name.
    #[serde(deserialize_with = "lenient::string")]
    pub topic_name: String,
    /// Read queue count (default 16).
    #[serde(deserialize_with = "lenient::i32")]
    pub read_queue_nums: i32,
    /// Write queue count (default 16).
    #[serde(deserialize_with = "lenient::i32")]
    pub write_queue_nums: i32,
    /// PermName bits (default 6, read + write).
    #[serde(deserialize_with = "lenient::i32")]
    pub perm: i32,
    /// `SINGLE_TAG` (default) or `MULTI_TAG`.
    #[serde(deserialize_with = "lenient::string")]
    pub topic_filter_type: String,
    /// TopicSysFlag bits.
    #[serde(deserialize_with = "lenient::i32")]
    pub topic_sys_flag: i32,
    /// Ordered topic.
    #[serde(deserialize_with = "lenient::bool")]
    pub order: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            topic_name: String::new(),
            read_queue_nums: 16,
            write_queue_nums: 16,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".to_string(),
            topic_sys_flag: 0,
            order: false,
        }
    }
}

/// The version stamp of a broker's topic configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    /// State version.
    #[serde(deserialize_with = "lenient::i64")]
    pub state_version: i64,
    /// Time of the last change, ms.
    #[serde(deserialize_with = "lenient::i64")]
    pub timestamp: i64,
    /// Change counter.
    #[serde(deserialize_with = "lenient::i64")]
    pub counter: i64,
}

/// Topic configs with their version (GET_ALL_TOPIC_CONFIG body, register body part).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigSerializeWrapper {
    /// Configs by topic name.
    #[serde(deserialize_with = "lenient::or_default")]
    pub topic_config_table: HashMap<String, TopicConfig>,
    /// Version stamp.
    #[serde(deserialize_with = "lenient::or_default")]
    pub data_version: DataVersion,
}

/// REGISTER_BROKER (103) body, uncompressed form.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    /// The broker's topics.
    #[serde(deserialize_with = "lenient::or_default")]
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    /// Filter server addresses.
    #[serde(deserialize_with = "lenient::vec_string")]
    pub filter_server_list: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Heartbeats.

/// HEART_BEAT (34) body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatData {
    /// Client id (wire name `clientID`).
    #[serde(rename = "clientID", deserialize_with = "lenient::string")]
    pub client_id: String,
    /// Producer groups of the client.
    #[serde(deserialize_with = "lenient::or_default")]
    pub producer_data_set: Vec<ProducerData>,
    /// Consumer groups of the client.
    #[serde(deserialize_with = "lenient::or_default")]
    pub consumer_data_set: Vec<ConsumerData>,
}

/// A producer group in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    /// Group name.
    #[serde(deserialize_with = "lenient::string")]
    pub group_name: String,
}

/// A consumer group in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    /// Group name.
    #[serde(deserialize_with = "lenient::string")]
    pub group_name: String,
    /// Push or pull.
    pub consume_type: ConsumeType,
    /// Clustering or broadcasting.
    pub message_model: MessageModel,
    /// Where a new group starts.
    pub consume_from_where: ConsumeFromWhere,
    /// Subscriptions.
    #[serde(deserialize_with = "lenient::or_default")]
    pub subscription_data_set: Vec<SubscriptionData>,
    /// Unit mode.
    #[serde(deserialize_with = "lenient::bool")]
    pub unit_mode: bool,
}

/// One subscription of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    /// Class filter mode (unsupported; kept for the wire).
    #[serde(deserialize_with = "lenient::bool")]
    pub class_filter_mode: bool,
    /// Topic.
    #[serde(deserialize_with = "lenient::string")]
    pub topic: String,
    /// Expression; `*` means all.
    #[serde(deserialize_with = "lenient::string")]
    pub sub_string: String,
    /// Tags of a tag expression.
    #[serde(deserialize_with = "lenient::vec_string")]
    pub tags_set: Vec<String>,
    /// Java hash codes of the tags.
    #[serde(deserialize_with = "lenient::vec_i32")]
    pub code_set: Vec<i32>,
    /// Version, ms.
    #[serde(deserialize_with = "lenient::i64")]
    pub sub_version: i64,
    /// `TAG` (also when absent) or `SQL92`.
    #[serde(deserialize_with = "lenient::expression_type")]
    pub expression_type: String,
}

impl Default for SubscriptionData {
    fn default() -> Self {
        SubscriptionData {
            class_filter_mode: false,
            topic: String::new(),
            sub_string: String::new(),
            tags_set: Vec::new(),
            code_set: Vec::new(),
            sub_version: 0,
            expression_type: EXPRESSION_TYPE_TAG.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Consumers, locks, tables.

/// GET_CONSUMER_LIST_BY_GROUP (38) response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerListBody {
    /// Client ids of the group's live consumers.
    #[serde(deserialize_with = "lenient::vec_string")]
    pub consumer_id_list: Vec<String>,
}

/// A queue of a topic on a broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageQueue {
    /// Topic.
    #[serde(deserialize_with = "lenient::string")]
    pub topic: String,
    /// Broker name.
    #[serde(deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// Queue id.
    #[serde(deserialize_with = "lenient::i32")]
    pub queue_id: i32,
}

/// LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42) request body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchRequestBody {
    /// Consumer group.
    #[serde(deserialize_with = "lenient::string")]
    pub consumer_group: String,
    /// Client asking.
    #[serde(deserialize_with = "lenient::string")]
    pub client_id: String,
    /// Do not forward to other brokers.
    #[serde(deserialize_with = "lenient::bool")]
    pub only_this_broker: bool,
    /// Queues to lock or unlock.
    #[serde(deserialize_with = "lenient::or_default")]
    pub mq_set: Vec<MessageQueue>,
}

/// LOCK_BATCH_MQ response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LockBatchResponseBody {
    /// Queues now locked by the client.
    #[serde(rename = "lockOKMQSet", deserialize_with = "lenient::or_default")]
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

/// A string table (KVTable): register-broker replies, GET_KVLIST_BY_NAMESPACE.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KvTable {
    /// The pairs.
    #[serde(deserialize_with = "lenient::or_default")]
    pub table: HashMap<String, String>,
}

/// A topic list (GET_ALL_TOPIC_LIST_FROM_NAMESERVER, GET_TOPICS_BY_CLUSTER, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicList {
    /// Topic names.
    #[serde(deserialize_with = "lenient::vec_string")]
    pub topic_list: Vec<String>,
    /// Broker address, when the list is one broker's.
    #[serde(deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bare_numeric_keys_are_quoted() {
        let raw = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911", 1 : "h:1"},"brokerName":"b","cluster":"c"}],"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
        let route: TopicRouteData = from_json(raw).unwrap();
        assert_eq!(route.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
        assert_eq!(route.broker_datas[0].broker_addrs[&1], "h:1");
        assert_eq!(route.queue_datas[0].read_queue_nums, 4);
        assert!(!route.broker_datas[0].enable_acting_master);
    }

    #[test]
    fn object_keys_become_their_text() {
        let raw = br#"{"table":{{"brokerName":"b","queueId":0,"topic":"t:{x}"}:"v"}}"#;
        let t: KvTable = from_json(raw).unwrap();
        let (k, v) = t.table.iter().next().unwrap();
        assert_eq!(v, "v");
        let mq: MessageQueue = from_json(k.as_bytes()).unwrap();
        assert_eq!(mq.topic, "t:{x}");
        assert_eq!(mq.broker_name, "b");
    }

    #[test]
    fn strings_with_braces_and_colons_survive() {
        let raw = br#"{"table":{a:"x:{}\"y", b:"{0:1}"}}"#;
        let t: KvTable = from_json(raw).unwrap();
        assert_eq!(t.table["a"], "x:{}\"y");
        assert_eq!(t.table["b"], "{0:1}");
    }

    #[test]
    fn fastjson_route_round_trips() {
        let mut route = TopicRouteData::default();
        let mut b =
            BrokerData { cluster: "c".into(), broker_name: "b".into(), ..Default::default() };
        b.broker_addrs.insert(0, "127.0.0.1:10911".into());
        b.broker_addrs.insert(2, "127.0.0.1:10912".into());
        route.broker_datas.push(b);
        route.queue_datas.push(QueueData {
            broker_name: "b".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        });
        let fj = route.to_json_fastjson();
        let text = String::from_utf8(fj.clone()).unwrap();
        assert!(text.contains(r#"{0:"127.0.0.1:10911",2:"127.0.0.1:10912"}"#), "{text}");
        assert!(text.contains(r#""enableActingMaster":false"#), "{text}");
        assert!(serde_json::from_slice::<serde_json::Value>(&fj).is_err());
        assert_eq!(from_json::<TopicRouteData>(&fj).unwrap(), route);
        let std = to_json(&route);
        let text = String::from_utf8(std.clone()).unwrap();
        assert!(text.contains(r#""brokerAddrs":{"0":"127.0.0.1:10911""#), "{text}");
        assert!(text.contains(r#""enableActingMaster":false"#), "{text}");
        assert_eq!(serde_json::from_slice::<TopicRouteData>(&std).unwrap(), route);
    }

    #[test]
    fn heartbeat_with_ordinals_and_string_numbers() {
        let raw = br#"{"clientID":"c1","consumerDataSet":[{"consumeFromWhere":0,"consumeType":1,"groupName":"g","messageModel":1,"subscriptionDataSet":[{"subString":"*","subVersion":"1795647963615","topic":"t"}]}]}
"#;
        let hb: HeartbeatData = from_json(raw).unwrap();
        assert_eq!(hb.client_id, "c1");
        let c = &hb.consumer_data_set[0];
        assert_eq!(c.consume_type, ConsumeType::ConsumePassively);
        assert_eq!(c.message_model, MessageModel::Clustering);
        assert_eq!(c.consume_from_where, ConsumeFromWhere::ConsumeFromLastOffset);
        assert_eq!(c.subscription_data_set[0].sub_version, 1_795_647_963_615);
        assert_eq!(c.subscription_data_set[0].expression_type, "TAG");
        assert!(hb.producer_data_set.is_empty());
        let text = String::from_utf8(to_json(&hb)).unwrap();
        assert!(text.contains(r#""consumeType":"CONSUME_PASSIVELY""#), "{text}");
        assert!(text.contains(r#""clientID":"c1""#), "{text}");
    }

    #[test]
    fn heartbeat_with_names_nulls_and_bools_as_strings() {
        let raw = br#"{"clientID":"c","producerDataSet":null,"consumerDataSet":[{"groupName":"g","consumeType":"CONSUME_ACTIVELY","messageModel":"BROADCASTING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","unitMode":"1","subscriptionDataSet":[{"topic":"t","expressionType":null,"tagsSet":["a",null],"codeSet":[97,"98"],"classFilterMode":0}]}]}"#;
        let hb: HeartbeatData = from_json(raw).unwrap();
        let c = &hb.consumer_data_set[0];
        assert_eq!(c.consume_type, ConsumeType::ConsumeActively);
        assert_eq!(c.message_model, MessageModel::Broadcasting);
        assert_eq!(c.consume_from_where, ConsumeFromWhere::ConsumeFromFirstOffset);
        assert!(c.unit_mode);
        let s = &c.subscription_data_set[0];
        assert_eq!(s.tags_set, vec!["a".to_string()]);
        assert_eq!(s.code_set, vec![97, 98]);
        assert_eq!(s.expression_type, "TAG");
    }

    #[test]
    fn topic_config_defaults() {
        let t: TopicConfig = from_json(br#"{"topicName":"t"}"#).unwrap();
        assert_eq!((t.read_queue_nums, t.write_queue_nums, t.perm), (16, 16, 6));
        assert_eq!(t.topic_filter_type, "SINGLE_TAG");
        let w: TopicConfigSerializeWrapper = from_json(
            br#"{"topicConfigTable":{"t":{"topicName":"t","perm":7}},"dataVersion":{"counter":3,"timestamp":5}}"#,
        )
        .unwrap();
        assert_eq!(w.topic_config_table["t"].perm, 7);
        assert_eq!(w.data_version.counter, 3);
    }

    #[test]
    fn lock_bodies() {
        let r: LockBatchResponseBody =
            from_json(br#"{"lockOKMQSet":[{"brokerName":"b","queueId":1,"topic":"t"}]}"#).unwrap();
        assert_eq!(r.lock_ok_mq_set[0].queue_id, 1);
        let text = String::from_utf8(to_json(&r)).unwrap();
        assert!(text.starts_with(r#"{"lockOKMQSet":["#), "{text}");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(from_json::<HeartbeatData>(b"{").is_err());
        assert!(from_json::<HeartbeatData>(b"\xff").is_err());
        assert!(from_json::<HeartbeatData>(b"").is_err());
        let e = from_json::<HeartbeatData>(b"[1,2]").unwrap_err();
        assert!(e.to_string().contains("bad JSON body"));
    }
}

/// One client connection, as GET_CONSUMER_CONNECTION_LIST and
/// GET_PRODUCER_CONNECTION_LIST report it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    /// Client id.
    #[serde(deserialize_with = "lenient::string")]
    pub client_id: String,
    /// `ip:port` of the client's socket.
    #[serde(deserialize_with = "lenient::string")]
    pub client_addr: String,
    /// LanguageCode name.
    #[serde(deserialize_with = "lenient::string")]
    pub language: String,
    /// MQVersion ordinal.
    #[serde(deserialize_with = "lenient::i32")]
    pub version: i32,
}

/// GET_CONSUMER_CONNECTION_LIST (203) response body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerConnection {
    /// The group's live connections.
    #[serde(deserialize_with = "lenient::or_default")]
    pub connection_set: Vec<Connection>,
    /// Subscriptions by topic.
    #[serde(deserialize_with = "lenient::or_default")]
    pub subscription_table: HashMap<String, SubscriptionData>,
    /// Push or pull.
    pub consume_type: ConsumeType,
    /// Clustering or broadcasting.
    pub message_model: MessageModel,
    /// Where a new group starts.
    pub consume_from_where: ConsumeFromWhere,
}
