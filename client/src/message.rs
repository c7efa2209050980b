//! The client's domain types: messages to send, send and pull results, and the
//! generator of client-side unique message ids (UNIQ_KEY).
//!
//! Wire types (`proto::header`, `proto::body`) are converted to these at the edge, in
//! [`crate::protocol`].

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ramjet_proto::message::{property, StoredMessage};

pub use ramjet_proto::body::MessageQueue;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Body, sent as is.
    pub body: Bytes,
    /// Tags (the `TAGS` property); consumers filter on them.
    pub tags: Option<String>,
    /// Keys (the `KEYS` property, space-separated); the broker indexes them.
    pub keys: Option<String>,
    /// Further user properties.
    pub properties: Vec<(String, String)>,
    /// User flag, stored with the message.
    pub flag: i32,
}

impl Message {
    /// A message with only a topic and a body.
    ///
    /// ```
    /// let m = ramjet_client::Message::new("orders", "hello");
    /// assert_eq!(&m.body[..], b"hello");
    /// ```
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Message {
        Message { topic: topic.into(), body: body.into(), ..Message::default() }
    }

    /// Sets the tags (builder style).
    pub fn with_tags(mut self, tags: impl Into<String>) -> Message {
        self.tags = Some(tags.into());
        self
    }

    /// Sets the keys (builder style).
    pub fn with_keys(mut self, keys: impl Into<String>) -> Message {
        self.keys = Some(keys.into());
        self
    }

    /// The value of a user property.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets a user property, replacing an earlier value.
    pub fn set_property(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.properties.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.properties.push((name, value)),
        }
    }

    /// Asks for delivery after delay level `level` (property DELAY; level 1 is 1 s in
    /// the default `1s 5s 10s 30s 1m ...` table), builder style.
    ///
    /// ```
    /// let m = ramjet_client::Message::new("t", "b").with_delay_level(3);
    /// assert_eq!(m.property("DELAY"), Some("3"));
    /// ```
    pub fn with_delay_level(mut self, level: i32) -> Message {
        self.set_property(property::DELAY_TIME_LEVEL, level.to_string());
        self
    }

    /// Asks for delivery at `deliver_time_ms` (ms since the Unix epoch; property
    /// TIMER_DELIVER_MS, a 5.x timer message), builder style.
    pub fn with_deliver_time_ms(mut self, deliver_time_ms: i64) -> Message {
        self.set_property(property::TIMER_DELIVER_MS, deliver_time_ms.to_string());
        self
    }

    /// Asks for delivery `delay_ms` after the broker stores it (property TIMER_DELAY_MS,
    /// a 5.x timer message), builder style.
    pub fn with_delay_ms(mut self, delay_ms: i64) -> Message {
        self.set_property(property::TIMER_DELAY_MS, delay_ms.to_string());
        self
    }

    /// The UNIQ_KEY property, when set.
    pub fn unique_key(&self) -> Option<&str> {
        self.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
    }
}

/// How the broker stored a message that it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Stored (and flushed and replicated as the broker is configured).
    Ok,
    /// Stored, but the sync flush did not finish in time (FLUSH_DISK_TIMEOUT, 10).
    FlushDiskTimeout,
    /// Stored, but the slave did not confirm in time (FLUSH_SLAVE_TIMEOUT, 12).
    FlushSlaveTimeout,
    /// Stored, but no slave is available (SLAVE_NOT_AVAILABLE, 11).
    SlaveNotAvailable,
}

/// The outcome of a send the broker accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// How the message was stored.
    pub status: SendStatus,
    /// The client-side id (UNIQ_KEY); comma-joined for a batch.
    pub msg_id: String,
    /// The broker-side id (store host + commit-log offset); comma-joined for a batch.
    pub offset_msg_id: String,
    /// The queue written.
    pub queue: MessageQueue,
    /// The queue offset of the (first) message.
    pub queue_offset: i64,
}

/// What a pull found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullStatus {
    /// Messages were returned (SUCCESS).
    Found,
    /// Nothing new at this offset (PULL_NOT_FOUND, 19): the queue's end was reached.
    NoNewMsg,
    /// Messages were found but the client-side tag check dropped all of them (the
    /// broker filters by tag hash, which can collide).
    NoMatchedMsg,
    /// The offset is outside the queue (PULL_OFFSET_MOVED, 21): restart from
    /// `next_begin_offset`.
    OffsetIllegal,
    /// The broker skipped entries (filtered out, or data being removed) and asks for an
    /// immediate pull from `next_begin_offset` (PULL_RETRY_IMMEDIATELY, 20). The
    /// reference client reports this as NO_MATCHED_MSG.
    RetryImmediately,
}

/// The outcome of one pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullResult {
    /// What the pull found.
    pub status: PullStatus,
    /// The offset to pull next.
    pub next_begin_offset: i64,
    /// The queue's smallest offset.
    pub min_offset: i64,
    /// The queue's next offset to be written.
    pub max_offset: i64,
    /// The messages, decoded without copying their bodies.
    pub messages: Vec<StoredMessage>,
}

/// Generates UNIQ_KEY values: 16 bytes as 32 upper-case hex characters.
///
/// ```text
/// 0        4      6              10             14     16
/// +--------+------+--------------+--------------+------+
/// | IPv4   | pid  | instance     | time ms      | count|
/// +--------+------+--------------+--------------+------+
/// ```
///
/// The layout follows the reference's `MessageClientIDSetter`; `instance` is drawn from
/// the clock at creation (the reference uses a class-loader hash) and `time` counts
/// milliseconds since creation plus that clock's low bits, so two generators in one
/// process differ in `instance`. Unique per generator while fewer than 65,536 ids are
/// made in one millisecond.
#[derive(Debug)]
pub struct UniqueIdGenerator {
    prefix: [u8; 10],
    created: Instant,
    time_base_ms: u32,
    counter: u16,
}

impl UniqueIdGenerator {
    /// A generator for a client at `ip`.
    pub fn new(ip: [u8; 4]) -> UniqueIdGenerator {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let nanos = since_epoch.as_nanos() as u64;
        let instance = (nanos ^ (nanos >> 32)) as u32;
        let pid = std::process::id() as u16;
        let mut prefix = [0u8; 10];
        prefix[..4].copy_from_slice(&ip);
        prefix[4..6].copy_from_slice(&pid.to_be_bytes());
        prefix[6..10].copy_from_slice(&instance.to_be_bytes());
        UniqueIdGenerator {
            prefix,
            created: Instant::now(),
            time_base_ms: since_epoch.as_millis() as u32,
            counter: 0,
        }
    }

    /// The next id.
    pub fn next_id(&mut self) -> String {
        let elapsed_ms = self.created.elapsed().as_millis() as u32;
        let time = self.time_base_ms.wrapping_add(elapsed_ms);
        self.counter = self.counter.wrapping_add(1);
        let mut raw = [0u8; 16];
        raw[..10].copy_from_slice(&self.prefix);
        raw[10..14].copy_from_slice(&time.to_be_bytes());
        raw[14..16].copy_from_slice(&self.counter.to_be_bytes());
        hex_upper(&raw)
    }
}

fn hex_upper(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(raw.len() * 2);
    for &b in raw {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_are_32_upper_hex_and_distinct() {
        let mut g = UniqueIdGenerator::new([127, 0, 0, 1]);
        let ids: Vec<String> = (0..1000).map(|_| g.next_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
            assert!(id.starts_with("7F000001"));
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[test]
    fn set_property_replaces() {
        let mut m = Message::new("t", "b");
        m.set_property("a", "1");
        m.set_property("a", "2");
        assert_eq!(m.property("a"), Some("2"));
        assert_eq!(m.properties.len(), 1);
    }
}
