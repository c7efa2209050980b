//! The stored-message record: RocketMQ's commit-log layout, so a pull response is a
//! slice of log bytes that any RocketMQ client decodes (`MessageDecoder.java`).
//!
//! ```text
//! off  size  field
//!   0     4  TOTALSIZE            i32, whole record including this field
//!   4     4  MAGICCODE            0xDAA320A7 (v1: 1-byte topic length)
//!   8     4  BODYCRC              IEEE CRC32 of the body as stored, & 0x7FFFFFFF
//!  12     4  QUEUEID
//!  16     4  FLAG                 user flag
//!  20     8  QUEUEOFFSET          entry index in the consume queue   (patched on append)
//!  28     8  PHYSICALOFFSET       commit-log offset of this record   (patched on append)
//!  36     4  SYSFLAG
//!  40     8  BORNTIMESTAMP
//!  48   8|20 BORNHOST             IPv4 4+port 4, or IPv6 16+port 4 (SYSFLAG 0x10)
//!  56     8  STORETIMESTAMP       at 56 when the born host is IPv4   (patched on append)
//!  64   8|20 STOREHOST            (SYSFLAG 0x20 for IPv6)
//!  72     4  RECONSUMETIMES
//!  76     8  PREPARED TRANSACTION OFFSET
//!  84   4+n  BODY                 i32 length + bytes
//!   .   1+t  TOPIC                v1: 1-byte length (t <= 127); v2: 2-byte length
//!   .   2+p  PROPERTIES           i16 length + properties string
//! ```
//! With both hosts IPv4 the fixed part is 84 bytes, so a record is
//! `84 + 4 + n + 1 + t + 2 + p` bytes; each IPv6 host adds 12.
//!
//! Readers of stored bytes use [`RecordView`] (checked accessors over one record) and
//! [`classify_slot`] (zeros, blank filler or record head), both in `message/view.rs`; the
//! positions above are the named constants and `*_pos` functions below.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::{BufMut, Bytes};

mod view;

pub use view::{classify_slot, RecordLayout, RecordView, Slot, SlotError, SlotHead};

/// Magic of a v1 record (1-byte topic length).
pub const MAGIC_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// Magic of a v2 record (2-byte topic length, topics over 127 bytes).
pub const MAGIC_V2: i32 = 0xDAA3_20AB_u32 as i32;
/// Magic of the blank filler at the end of a segment.
pub const BLANK_MAGIC: i32 = 0xCBD4_3194_u32 as i32;

/// Bytes of the fixed record fields other than BORNHOST and STOREHOST.
pub const RECORD_FIXED_BYTES_WITHOUT_HOSTS: usize = 68;

/// Position of TOTALSIZE.
pub const TOTAL_SIZE_POS: usize = 0;
/// Position of MAGICCODE.
pub const MAGIC_POS: usize = 4;
/// Position of BODYCRC.
pub const BODY_CRC_POS: usize = 8;
/// Position of QUEUEID.
pub const QUEUE_ID_POS: usize = 12;
/// Position of FLAG.
pub const FLAG_POS: usize = 16;
/// Position of QUEUEOFFSET.
pub const QUEUE_OFFSET_POS: usize = 20;
/// Position of PHYSICALOFFSET.
pub const PHYSICAL_OFFSET_POS: usize = 28;
/// Position of SYSFLAG.
pub const SYS_FLAG_POS: usize = 36;
/// Position of BORNTIMESTAMP.
pub const BORN_TIMESTAMP_POS: usize = 40;
/// Position of BORNHOST.
pub const BORN_HOST_POS: usize = 48;

/// Bytes of a slot's head: TOTALSIZE and MAGICCODE (a blank filler is only its head).
pub const SLOT_HEAD_BYTES: usize = 8;
/// Smallest record: the 84-byte fixed part with IPv4 hosts, an empty body, a 1-byte topic
/// length and an empty properties string (84 + 4 + 1 + 2).
pub const RECORD_BYTES_MIN: usize = 91;

/// SYSFLAG: body compressed.
pub const SYSFLAG_COMPRESSED: i32 = 0x1;
/// SYSFLAG: multi tags.
pub const SYSFLAG_MULTI_TAGS: i32 = 0x2;
/// SYSFLAG: transaction type mask (bits 2-3).
pub const SYSFLAG_TRANSACTION_MASK: i32 = 0xC;
/// SYSFLAG transaction type: prepared (half message).
pub const SYSFLAG_TRANSACTION_PREPARED: i32 = 0x4;
/// SYSFLAG transaction type: commit.
pub const SYSFLAG_TRANSACTION_COMMIT: i32 = 0x8;
/// SYSFLAG transaction type: rollback.
pub const SYSFLAG_TRANSACTION_ROLLBACK: i32 = 0xC;
/// SYSFLAG: born host is IPv6.
pub const SYSFLAG_BORNHOST_V6: i32 = 0x10;
/// SYSFLAG: store host is IPv6.
pub const SYSFLAG_STOREHOST_V6: i32 = 0x20;

/// Properties: separator between a name and its value (char 1).
pub const NAME_VALUE_SEPARATOR: u8 = 1;
/// Properties: separator after every pair (char 2).
pub const PROPERTY_SEPARATOR: u8 = 2;

/// Largest properties string (i16 length).
pub const PROPERTIES_BYTES_MAX: usize = i16::MAX as usize;
/// Largest topic a v1 record holds (signed-byte length).
pub const TOPIC_V1_BYTES_MAX: usize = 127;

/// Property names the broker reads or writes (`MessageConst.java`).
#[allow(missing_docs)]
pub mod property {
    pub const KEYS: &str = "KEYS";
    pub const TAGS: &str = "TAGS";
    pub const WAIT_STORE_MSG_OK: &str = "WAIT";
    pub const DELAY_TIME_LEVEL: &str = "DELAY";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    pub const REAL_QUEUE_ID: &str = "REAL_QID";
    pub const TRANSACTION_PREPARED: &str = "TRAN_MSG";
    pub const PRODUCER_GROUP: &str = "PGROUP";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    pub const MSG_REGION: &str = "MSG_REGION";
    pub const TRACE_SWITCH: &str = "TRACE_ON";
    pub const UNIQ_CLIENT_MESSAGE_ID_KEYIDX: &str = "UNIQ_KEY";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    pub const TRANSACTION_ID: &str = "__transactionId__";
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    pub const CLUSTER: &str = "CLUSTER";
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
    pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
}

/// Why a record is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// Fewer bytes than a field needs.
    Truncated {
        /// Offset in the record where reading stopped.
        offset: usize,
        /// Bytes needed from there.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// The magic is neither v1, v2 nor blank.
    BadMagic {
        /// The value read.
        magic: i32,
    },
    /// TOTALSIZE disagrees with the fields, or is out of range.
    BadTotalSize {
        /// TOTALSIZE as read.
        total_size: i32,
        /// The size the fields add up to (0 when unknown).
        computed: usize,
    },
    /// BODYCRC does not match the body.
    BodyCrcMismatch {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// A negative length field.
    NegativeLength {
        /// Offset of the length field.
        offset: usize,
    },
    /// A field cannot be encoded (topic or properties too long).
    TooLong {
        /// Field name.
        field: &'static str,
        /// Its length in bytes.
        length: usize,
    },
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Truncated { offset, need, have } => {
                write!(f, "record truncated at {offset}: need {need}, have {have}")
            }
            MessageError::BadMagic { magic } => write!(f, "bad record magic {magic:#x}"),
            MessageError::BadTotalSize { total_size, computed } => {
                write!(f, "record TOTALSIZE {total_size} but fields add up to {computed}")
            }
            MessageError::BodyCrcMismatch { stored, computed } => {
                write!(f, "body CRC {stored:#x} stored, {computed:#x} computed")
            }
            MessageError::NegativeLength { offset } => write!(f, "negative length at {offset}"),
            MessageError::TooLong { field, length } => {
                write!(f, "{field} of {length} bytes is too long")
            }
        }
    }
}

impl std::error::Error for MessageError {}

/// The body CRC as the reference stores it: IEEE CRC32 masked to 31 bits.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

/// Java's `String.hashCode()` over UTF-16 code units, sign-extended: the tags code of a
/// consume-queue entry. Empty tags give 0.
pub fn tags_code(tags: &str) -> i64 {
    let mut h: i32 = 0;
    for unit in tags.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    i64::from(h)
}

/// The fields of a record that the broker fills from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// Queue id.
    pub queue_id: i32,
    /// User flag.
    pub flag: i32,
    /// SYSFLAG without the IPv6 bits (the encoder sets those from the hosts).
    pub sys_flag: i32,
    /// Producer's timestamp, ms.
    pub born_timestamp: i64,
    /// Producer's address.
    pub born_host: SocketAddr,
    /// Broker's address (brokerIP1:listenPort).
    pub store_host: SocketAddr,
    /// Times this message was consumed again.
    pub reconsume_times: i32,
    /// Commit-log offset of the half message, for committed transactions.
    pub prepared_transaction_offset: i64,
}

fn host_len(addr: &SocketAddr) -> usize {
    match addr.ip() {
        IpAddr::V4(_) => 8,
        IpAddr::V6(_) => 20,
    }
}

/// The length of the record that [`encode_record`] writes.
pub fn record_len(
    meta: &MessageMeta,
    body_len: usize,
    topic_len: usize,
    properties_len: usize,
) -> usize {
    let topic_len_bytes = if topic_len > TOPIC_V1_BYTES_MAX { 2 } else { 1 };
    // Fixed fields without the two hosts: 4 TOTALSIZE + 4 MAGIC + 4 BODYCRC + 4 QUEUEID
    // + 4 FLAG + 8 QUEUEOFFSET + 8 PHYSICALOFFSET + 4 SYSFLAG + 8 BORNTIMESTAMP
    // + 8 STORETIMESTAMP + 4 RECONSUMETIMES + 8 PREPARED = 68; two IPv4 hosts make it 84.
    RECORD_FIXED_BYTES_WITHOUT_HOSTS
        + host_len(&meta.born_host)
        + host_len(&meta.store_host)
        + 4
        + body_len
        + topic_len_bytes
        + topic_len
        + 2
        + properties_len
}

/// The position of STORETIMESTAMP in a record with this SYSFLAG.
pub fn store_timestamp_pos(sys_flag: i32) -> usize {
    if sys_flag & SYSFLAG_BORNHOST_V6 != 0 {
        BORN_HOST_POS + 20
    } else {
        BORN_HOST_POS + 8
    }
}

/// The position of STOREHOST in a record with this SYSFLAG.
pub fn store_host_pos(sys_flag: i32) -> usize {
    store_timestamp_pos(sys_flag) + 8
}

/// The position of RECONSUMETIMES in a record with this SYSFLAG.
pub fn reconsume_times_pos(sys_flag: i32) -> usize {
    let store_host_len = if sys_flag & SYSFLAG_STOREHOST_V6 != 0 { 20 } else { 8 };
    store_host_pos(sys_flag) + store_host_len
}

/// The position of PREPARED TRANSACTION OFFSET in a record with this SYSFLAG.
pub fn prepared_transaction_offset_pos(sys_flag: i32) -> usize {
    reconsume_times_pos(sys_flag) + 4
}

/// The position of the body length (the i32 before BODY) in a record with this SYSFLAG:
/// 84 with two IPv4 hosts, each IPv6 host adds 12.
pub fn body_length_pos(sys_flag: i32) -> usize {
    prepared_transaction_offset_pos(sys_flag) + 8
}

fn put_host(dst: &mut impl BufMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => dst.put_slice(&ip.octets()),
        IpAddr::V6(ip) => dst.put_slice(&ip.octets()),
    }
    dst.put_i32(i32::from(addr.port()));
}

/// Appends a complete record to `dst`, with QUEUEOFFSET, PHYSICALOFFSET and
/// STORETIMESTAMP zero: the commit log patches them on append ([`patch_record`]).
///
/// Returns the record's length.
///
/// # Errors
/// `TooLong` when the topic exceeds i16 or the properties exceed 32767 bytes.
pub fn encode_record(
    dst: &mut impl BufMut,
    meta: &MessageMeta,
    body: &[u8],
    topic: &str,
    properties: &[u8],
) -> Result<usize, MessageError> {
    if topic.len() > i16::MAX as usize {
        return Err(MessageError::TooLong { field: "topic", length: topic.len() });
    }
    if properties.len() > PROPERTIES_BYTES_MAX {
        return Err(MessageError::TooLong { field: "properties", length: properties.len() });
    }
    let total = record_len(meta, body.len(), topic.len(), properties.len());
    let v2 = topic.len() > TOPIC_V1_BYTES_MAX;
    let mut sys_flag = meta.sys_flag & !(SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6);
    if meta.born_host.is_ipv6() {
        sys_flag |= SYSFLAG_BORNHOST_V6;
    }
    if meta.store_host.is_ipv6() {
        sys_flag |= SYSFLAG_STOREHOST_V6;
    }
    dst.put_i32(total as i32);
    dst.put_i32(if v2 { MAGIC_V2 } else { MAGIC_V1 });
    dst.put_u32(body_crc(body));
    dst.put_i32(meta.queue_id);
    dst.put_i32(meta.flag);
    dst.put_i64(0); // QUEUEOFFSET
    dst.put_i64(0); // PHYSICALOFFSET
    dst.put_i32(sys_flag);
    dst.put_i64(meta.born_timestamp);
    put_host(dst, &meta.born_host);
    dst.put_i64(0); // STORETIMESTAMP
    put_host(dst, &meta.store_host);
    dst.put_i32(meta.reconsume_times);
    dst.put_i64(meta.prepared_transaction_offset);
    dst.put_i32(body.len() as i32);
    dst.put_slice(body);
    if v2 {
        dst.put_i16(topic.len() as i16);
    } else {
        dst.put_u8(topic.len() as u8);
    }
    dst.put_slice(topic.as_bytes());
    dst.put_i16(properties.len() as i16);
    dst.put_slice(properties);
    Ok(total)
}

/// Fills the append-time fields of an encoded record.
///
/// # Panics
/// When `record` is shorter than the fixed part, which only a caller bug can cause.
pub fn patch_record(
    record: &mut [u8],
    queue_offset: i64,
    physical_offset: i64,
    store_timestamp: i64,
) {
    record[QUEUE_OFFSET_POS..QUEUE_OFFSET_POS + 8].copy_from_slice(&queue_offset.to_be_bytes());
    record[PHYSICAL_OFFSET_POS..PHYSICAL_OFFSET_POS + 8]
        .copy_from_slice(&physical_offset.to_be_bytes());
    let sys_flag = i32::from_be_bytes([
        record[SYS_FLAG_POS],
        record[SYS_FLAG_POS + 1],
        record[SYS_FLAG_POS + 2],
        record[SYS_FLAG_POS + 3],
    ]);
    let pos = store_timestamp_pos(sys_flag);
    record[pos..pos + 8].copy_from_slice(&store_timestamp.to_be_bytes());
}

/// A decoded record. Body, topic and properties are slices of the source buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// TOTALSIZE.
    pub total_size: i32,
    /// MAGICCODE.
    pub magic: i32,
    /// BODYCRC as stored.
    pub body_crc: u32,
    /// QUEUEID.
    pub queue_id: i32,
    /// FLAG.
    pub flag: i32,
    /// QUEUEOFFSET.
    pub queue_offset: i64,
    /// PHYSICALOFFSET.
    pub physical_offset: i64,
    /// SYSFLAG.
    pub sys_flag: i32,
    /// BORNTIMESTAMP.
    pub born_timestamp: i64,
    /// BORNHOST.
    pub born_host: SocketAddr,
    /// STORETIMESTAMP.
    pub store_timestamp: i64,
    /// STOREHOST.
    pub store_host: SocketAddr,
    /// RECONSUMETIMES.
    pub reconsume_times: i32,
    /// PREPARED TRANSACTION OFFSET.
    pub prepared_transaction_offset: i64,
    /// BODY.
    pub body: Bytes,
    /// TOPIC.
    pub topic: Bytes,
    /// PROPERTIES (the raw string).
    pub properties: Bytes,
}

impl StoredMessage {
    /// The topic as text (lossy for invalid UTF-8).
    pub fn topic_str(&self) -> String {
        String::from_utf8_lossy(&self.topic).into_owned()
    }

    /// The parsed properties.
    pub fn properties_map(&self) -> Vec<(String, String)> {
        parse_properties(&self.properties)
    }

    /// One property's value.
    pub fn property(&self, name: &str) -> Option<String> {
        property_value(&self.properties, name)
    }
}

/// Decodes the record at the start of `buf` (which may hold more records after it), through
/// a [`RecordView`].
///
/// Checks TOTALSIZE against the fields; checks BODYCRC only when `check_crc`.
///
/// # Errors
/// Truncation, bad magic (a blank filler too), size mismatch, CRC mismatch.
pub fn decode_record(buf: &Bytes, check_crc: bool) -> Result<StoredMessage, MessageError> {
    let view = RecordView::new(buf)?;
    let layout = view.layout()?;
    if check_crc {
        view.check_body_crc(&layout)?;
    }
    Ok(StoredMessage {
        total_size: view.total_size() as i32,
        magic: view.magic(),
        body_crc: view.body_crc(),
        queue_id: view.queue_id(),
        flag: view.flag(),
        queue_offset: view.queue_offset(),
        physical_offset: view.physical_offset(),
        sys_flag: view.sys_flag(),
        born_timestamp: view.born_timestamp(),
        born_host: view.born_host(),
        store_timestamp: view.store_timestamp(),
        store_host: view.store_host(),
        reconsume_times: view.reconsume_times(),
        prepared_transaction_offset: view.prepared_transaction_offset(),
        body: buf.slice(layout.body),
        topic: buf.slice(layout.topic),
        properties: buf.slice(layout.properties),
    })
}

/// Decodes every record in `buf` (a pull response body), in order.
///
/// # Errors
/// The first record that does not decode.
pub fn decode_records(buf: &Bytes, check_crc: bool) -> Result<Vec<StoredMessage>, MessageError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = buf.slice(pos..);
        let m = decode_record(&rest, check_crc)?;
        pos += m.total_size as usize;
        out.push(m);
    }
    Ok(out)
}

/// Encodes properties as `name 0x01 value 0x02` pairs.
pub fn encode_properties<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(NAME_VALUE_SEPARATOR);
        out.extend_from_slice(v.as_bytes());
        out.push(PROPERTY_SEPARATOR);
    }
    out
}

/// Parses a properties string; malformed segments are skipped, as the reference does.
pub fn parse_properties(raw: &[u8]) -> Vec<(String, String)> {
    raw.split(|&b| b == PROPERTY_SEPARATOR)
        .filter_map(|seg| {
            let sep = seg.iter().position(|&b| b == NAME_VALUE_SEPARATOR)?;
            let (k, v) = (seg.get(..sep)?, seg.get(sep + 1..)?);
            if k.is_empty() {
                return None;
            }
            Some((String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
        })
        .collect()
}

/// One property's value from a raw properties string, without parsing the others.
pub fn property_value(raw: &[u8], name: &str) -> Option<String> {
    raw.split(|&b| b == PROPERTY_SEPARATOR).find_map(|seg| {
        let sep = seg.iter().position(|&b| b == NAME_VALUE_SEPARATOR)?;
        if seg.get(..sep)? == name.as_bytes() {
            Some(String::from_utf8_lossy(seg.get(sep + 1..)?).into_owned())
        } else {
            None
        }
    })
}

/// A properties string without the named properties (other pairs kept byte for byte,
/// malformed segments dropped).
pub fn remove_properties(raw: &[u8], names: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for seg in raw.split(|&b| b == PROPERTY_SEPARATOR) {
        let Some(sep) = seg.iter().position(|&b| b == NAME_VALUE_SEPARATOR) else {
            continue;
        };
        let name = seg.get(..sep).unwrap_or_default();
        if name.is_empty() || names.iter().any(|n| n.as_bytes() == name) {
            continue;
        }
        out.extend_from_slice(seg);
        out.push(PROPERTY_SEPARATOR);
    }
    out
}

/// A properties string with `name` set to `value` (replacing an earlier value).
pub fn set_property(raw: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut out = remove_properties(raw, &[name]);
    out.extend(encode_properties([(name, value)]));
    out
}

/// The offsetMsgId: store host (IPv4 4 bytes or IPv6 16), port i32, commit-log offset i64,
/// as upper-case hex (32 or 56 characters).
pub fn offset_msg_id(store_host: &SocketAddr, offset: i64) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut raw = Vec::with_capacity(28);
    match store_host.ip() {
        IpAddr::V4(ip) => raw.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => raw.extend_from_slice(&ip.octets()),
    }
    raw.extend_from_slice(&i32::from(store_host.port()).to_be_bytes());
    raw.extend_from_slice(&offset.to_be_bytes());
    let mut s = String::with_capacity(raw.len() * 2);
    for b in raw {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    s
}

/// Decodes an offsetMsgId into the store host and commit-log offset.
pub fn decode_offset_msg_id(id: &str) -> Option<(SocketAddr, i64)> {
    let bytes = id.as_bytes();
    if bytes.len() != 32 && bytes.len() != 56 {
        return None;
    }
    let mut raw = Vec::with_capacity(bytes.len() / 2);
    for pair in bytes.chunks(2) {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        raw.push((hi * 16 + lo) as u8);
    }
    let ip_len = if raw.len() == 16 { 4 } else { 16 };
    let ip: IpAddr = if ip_len == 4 {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(raw.get(..16)?);
        IpAddr::from(a)
    };
    let port = i32::from_be_bytes(raw.get(ip_len..ip_len + 4)?.try_into().ok()?);
    let offset = i64::from_be_bytes(raw.get(ip_len + 4..ip_len + 12)?.try_into().ok()?);
    Some((SocketAddr::new(ip, port as u16), offset))
}
