//! Messages between the 5.x shape (`pb::Message`) and the stored record's (properties
//! string, header fields), as the reference proxy maps them.

use std::collections::HashMap;

use ramjet_proto::header::SendMessageRequestHeader;
use ramjet_proto::message::{self, property as prop, StoredMessage};

use crate::pb;

/// The 5.x message group, stored as the reference's sharding key property.
pub const PROPERTY_SHARDING_KEY: &str = "__SHARDINGKEY";

/// Largest body accepted (the reference's `maxMessageSize`, 4 MiB).
pub const BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Properties that are the broker's or the protocol's, never user properties.
const SYSTEM_KEYS: &[&str] = &[
    prop::KEYS,
    prop::TAGS,
    prop::WAIT_STORE_MSG_OK,
    prop::DELAY_TIME_LEVEL,
    prop::RETRY_TOPIC,
    prop::REAL_TOPIC,
    prop::REAL_QUEUE_ID,
    prop::TRANSACTION_PREPARED,
    prop::PRODUCER_GROUP,
    prop::MIN_OFFSET,
    prop::MAX_OFFSET,
    prop::ORIGIN_MESSAGE_ID,
    prop::RECONSUME_TIME,
    prop::MSG_REGION,
    prop::TRACE_SWITCH,
    prop::UNIQ_CLIENT_MESSAGE_ID_KEYIDX,
    prop::MAX_RECONSUME_TIMES,
    prop::TRANSACTION_ID,
    prop::TRANSACTION_CHECK_TIMES,
    prop::CHECK_IMMUNITY_TIME_IN_SECONDS,
    prop::CLUSTER,
    prop::TIMER_DELAY_SEC,
    prop::TIMER_DELIVER_MS,
    prop::TIMER_DELAY_MS,
    prop::DLQ_ORIGIN_TOPIC,
    prop::DLQ_ORIGIN_MESSAGE_ID,
    PROPERTY_SHARDING_KEY,
    "CONSUME_START_TIME",
    "__BORNHOST",
    "TRAN_PREPARED_QUEUE_OFFSET",
];

/// Why a message cannot be sent, with the 5.x code.
#[derive(Debug)]
pub struct Refusal {
    /// The status code.
    pub code: pb::Code,
    /// Its message.
    pub message: String,
}

fn refuse(code: pb::Code, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// The remoting send of one 5.x message: header (queue chosen later) and body.
pub struct Outgoing {
    /// Header of SEND_MESSAGE_V2.
    pub header: SendMessageRequestHeader,
    /// Body.
    pub body: bytes::Bytes,
    /// UNIQ_KEY.
    pub message_id: String,
    /// Message group (FIFO), for queue selection.
    pub group: Option<String>,
}

fn ts_ms(t: &prost_types::Timestamp) -> i64 {
    t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos / 1_000_000))
}

/// A timestamp of `ms` since the epoch.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A duration of `ms`.
pub fn duration(ms: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// Milliseconds of a duration (negative → 0).
pub fn duration_ms(d: &prost_types::Duration) -> u64 {
    let ms = d.seconds.saturating_mul(1000).saturating_add(i64::from(d.nanos / 1_000_000));
    u64::try_from(ms).unwrap_or(0)
}

/// Builds the remoting send of `m`.
///
/// # Errors
/// What the reference proxy refuses: no topic, a body too large, reserved property names,
/// a FIFO message with a delivery time.
pub fn outgoing(m: &pb::Message, now_ms: i64) -> Result<Outgoing, Refusal> {
    let topic = m.topic.as_ref().map(|r| r.name.as_str()).unwrap_or_default();
    if topic.is_empty() || topic.len() > 127 || topic.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(refuse(pb::Code::IllegalTopic, "topic name is illegal"));
    }
    if m.body.len() > BODY_BYTES_MAX {
        return Err(refuse(pb::Code::MessageBodyTooLarge, "message body is too large"));
    }
    let sys = m.system_properties.clone().unwrap_or_default();
    let mut props: Vec<(String, String)> = Vec::with_capacity(m.user_properties.len() + 6);
    for (k, v) in &m.user_properties {
        if SYSTEM_KEYS.contains(&k.as_str()) || k.is_empty() {
            return Err(refuse(
                pb::Code::IllegalMessagePropertyKey,
                format!("property key {} is reserved", ramjet_proto::text::clip_echo(k)),
            ));
        }
        props.push((k.clone(), v.clone()));
    }
    let message_id = if sys.message_id.is_empty() {
        return Err(refuse(pb::Code::IllegalMessageId, "message id is empty"));
    } else {
        sys.message_id.clone()
    };
    props.push((prop::UNIQ_CLIENT_MESSAGE_ID_KEYIDX.into(), message_id.clone()));
    if let Some(tag) = sys.tag.as_deref().filter(|t| !t.is_empty()) {
        if tag.contains('|') || tag.chars().any(char::is_control) {
            return Err(refuse(pb::Code::IllegalMessageTag, "tag is illegal"));
        }
        props.push((prop::TAGS.into(), tag.to_string()));
    }
    if !sys.keys.is_empty() {
        props.push((prop::KEYS.into(), sys.keys.join(" ")));
    }
    let group = sys.message_group.clone().filter(|g| !g.is_empty());
    if let Some(g) = &group {
        props.push((PROPERTY_SHARDING_KEY.into(), g.clone()));
    }
    if let Some(t) = &sys.delivery_timestamp {
        if group.is_some() {
            return Err(refuse(
                pb::Code::MessagePropertyConflictWithType,
                "a FIFO message cannot have a delivery time",
            ));
        }
        let at = ts_ms(t);
        if at > now_ms {
            props.push((prop::TIMER_DELIVER_MS.into(), at.to_string()));
        }
    }
    if sys.message_type == pb::MessageType::Transaction as i32 {
        return Err(refuse(
            pb::Code::Unsupported,
            "transactional messages over gRPC are not served by ramjet yet",
        ));
    }
    props.push((prop::WAIT_STORE_MSG_OK.into(), "true".into()));
    let raw = message::encode_properties(props.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if raw.len() > message::PROPERTIES_BYTES_MAX {
        return Err(refuse(
            pb::Code::MessagePropertiesTooLarge,
            "message properties are too large",
        ));
    }
    let born = sys.born_timestamp.as_ref().map_or(now_ms, ts_ms);
    let header = SendMessageRequestHeader {
        producer_group: "%GRPC_PRODUCER%".into(),
        topic: topic.to_string(),
        queue_id: -1,
        born_timestamp: born,
        properties: Some(String::from_utf8_lossy(&raw).into_owned()),
        ..Default::default()
    };
    Ok(Outgoing { header, body: m.body.clone(), message_id, group })
}

/// What a receive adds to a stored message.
pub struct Delivery {
    /// Receipt handle.
    pub receipt_handle: String,
    /// Invisible for, ms.
    pub invisible_ms: u64,
    /// Delivery attempt (1 = first).
    pub attempt: u32,
}

/// The 5.x message of a stored record.
pub fn incoming(m: &StoredMessage, d: &Delivery) -> pb::Message {
    let props = m.properties_map();
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let message_id = get(prop::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        .unwrap_or_else(|| message::offset_msg_id(&m.store_host, m.physical_offset));
    let group = get(PROPERTY_SHARDING_KEY);
    let delivery = get(prop::TIMER_DELIVER_MS).and_then(|v| v.parse::<i64>().ok());
    let message_type = if group.is_some() {
        pb::MessageType::Fifo
    } else if delivery.is_some() || get(prop::DELAY_TIME_LEVEL).is_some() {
        pb::MessageType::Delay
    } else if get(prop::TRANSACTION_PREPARED).is_some() {
        pb::MessageType::Transaction
    } else {
        pb::MessageType::Normal
    };
    let user: HashMap<String, String> =
        props.iter().filter(|(k, _)| !SYSTEM_KEYS.contains(&k.as_str())).cloned().collect();
    let body = m.body.clone();
    let sys = pb::SystemProperties {
        tag: get(prop::TAGS),
        keys: get(prop::KEYS)
            .map(|k| k.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
        message_id,
        // SHA-1, upper-case hex: one fixed-length form every client compares equal (the
        // clients disagree on zero-padding a CRC32's hex).
        body_digest: Some(pb::Digest {
            r#type: pb::DigestType::Sha1 as i32,
            checksum: sha1_hex(&body),
        }),
        body_encoding: pb::Encoding::Identity as i32,
        message_type: message_type as i32,
        born_timestamp: Some(timestamp(m.born_timestamp)),
        born_host: m.born_host.ip().to_string(),
        store_timestamp: Some(timestamp(m.store_timestamp)),
        store_host: m.store_host.to_string(),
        delivery_timestamp: delivery.map(timestamp),
        receipt_handle: Some(d.receipt_handle.clone()),
        queue_id: m.queue_id,
        queue_offset: Some(m.queue_offset),
        invisible_duration: Some(duration(d.invisible_ms)),
        delivery_attempt: Some(i32::try_from(d.attempt).unwrap_or(i32::MAX)),
        message_group: group,
        ..Default::default()
    };
    pb::Message {
        topic: Some(pb::Resource { resource_namespace: String::new(), name: m.topic_str() }),
        user_properties: user,
        system_properties: Some(sys),
        body,
    }
}

fn sha1_hex(body: &[u8]) -> String {
    use sha1::Digest;
    let d = sha1::Sha1::digest(body);
    let mut s = String::with_capacity(40);
    for b in d {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// A receipt handle: queue, offset, delivery generation, deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    /// Queue id.
    pub queue_id: i32,
    /// Queue offset.
    pub offset: i64,
    /// Delivery generation.
    pub gen: u64,
    /// Invisible until, ms.
    pub deadline_ms: u64,
}

impl Handle {
    /// The handle's text.
    pub fn encode(&self) -> String {
        format!("rj1_{}_{}_{}_{}", self.queue_id, self.offset, self.gen, self.deadline_ms)
    }

    /// Parses a handle's text.
    pub fn decode(s: &str) -> Option<Handle> {
        let mut it = s.strip_prefix("rj1_")?.split('_');
        let h = Handle {
            queue_id: it.next()?.parse().ok()?,
            offset: it.next()?.parse().ok()?,
            gen: it.next()?.parse().ok()?,
            deadline_ms: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_round_trip_and_garbage() {
        let h = Handle { queue_id: 3, offset: 42, gen: 7, deadline_ms: 99 };
        assert_eq!(Handle::decode(&h.encode()), Some(h));
        for bad in ["", "rj1_", "rj1_1_2_3", "rj1_1_2_3_4_5", "x_1_2_3_4", "rj1_a_2_3_4"] {
            assert_eq!(Handle::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn outgoing_maps_system_properties() {
        let m = pb::Message {
            topic: Some(pb::Resource { resource_namespace: String::new(), name: "T".into() }),
            user_properties: [("color".to_string(), "red".to_string())].into_iter().collect(),
            system_properties: Some(pb::SystemProperties {
                tag: Some("A".into()),
                keys: vec!["k1".into(), "k2".into()],
                message_id: "MID".into(),
                message_group: Some("G".into()),
                ..Default::default()
            }),
            body: b"x".to_vec().into(),
        };
        let o = outgoing(&m, 0).expect("ok");
        let props =
            message::parse_properties(o.header.properties.as_deref().unwrap_or("").as_bytes());
        let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("TAGS").as_deref(), Some("A"));
        assert_eq!(get("KEYS").as_deref(), Some("k1 k2"));
        assert_eq!(get("UNIQ_KEY").as_deref(), Some("MID"));
        assert_eq!(get(PROPERTY_SHARDING_KEY).as_deref(), Some("G"));
        assert_eq!(get("color").as_deref(), Some("red"));
        assert_eq!(o.group.as_deref(), Some("G"));
        let mut bad = m.clone();
        bad.user_properties.insert("TAGS".into(), "x".into());
        assert_eq!(
            outgoing(&bad, 0).err().map(|r| r.code),
            Some(pb::Code::IllegalMessagePropertyKey)
        );
    }
}
