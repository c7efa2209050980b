//! A checked view of one stored record, and the one check of what a commit-log slot holds.
//!
//! Every reader of record bytes (the storage's recovery, appends, reads and replication,
//! the server's replication, [`super::decode_record`]) goes through these two: no reader
//! parses the layout by literal offsets. The layout is the byte table in [`super`].
//!
//! ```text
//!  buf:  [ record: TOTALSIZE bytes ][ more records ... ]
//!          └─ RecordView::new(buf) checks once: head readable, magic v1/v2,
//!             TOTALSIZE within buf and covering the fixed part for its SYSFLAG
//!             ──▶ fixed fields: plain accessors (always in bounds)
//!             ──▶ body, topic, properties: checked accessors (`Result`)
//!
//!  slot: [ TOTALSIZE | MAGICCODE | ... ]    classify_slot(head, room, max)
//!          0 | 0                 ──▶ Slot::Zero   (end of the written log)
//!          room | BLANK_MAGIC    ──▶ Slot::Blank  (filler to the segment end)
//!          n | MAGIC_V1/V2       ──▶ Slot::Record (n in range, a filler still fits after)
//! ```
//!
//! Neither ever panics, whatever the bytes (property-tested below).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;

use super::{
    body_crc, body_length_pos, prepared_transaction_offset_pos, reconsume_times_pos,
    store_host_pos, store_timestamp_pos, MessageError, BLANK_MAGIC, BODY_CRC_POS, BORN_HOST_POS,
    BORN_TIMESTAMP_POS, FLAG_POS, MAGIC_POS, MAGIC_V1, MAGIC_V2, PHYSICAL_OFFSET_POS, QUEUE_ID_POS,
    QUEUE_OFFSET_POS, RECORD_BYTES_MIN, SLOT_HEAD_BYTES, SYSFLAG_BORNHOST_V6, SYSFLAG_STOREHOST_V6,
    SYS_FLAG_POS, TOTAL_SIZE_POS,
};

fn read_array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn read_i16(bytes: &[u8], at: usize) -> Option<i16> {
    read_array(bytes, at).map(i16::from_be_bytes)
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    read_array(bytes, at).map(i32::from_be_bytes)
}

fn read_i64(bytes: &[u8], at: usize) -> Option<i64> {
    read_array(bytes, at).map(i64::from_be_bytes)
}

/// The head of a commit-log slot: its first [`SLOT_HEAD_BYTES`] bytes, not yet judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotHead {
    /// TOTALSIZE (for a blank filler: the bytes left in the segment).
    pub total_size: i32,
    /// MAGICCODE.
    pub magic: i32,
}

impl SlotHead {
    /// Reads the head at the start of `bytes`; `None` when fewer than 8 bytes are there.
    ///
    /// ```
    /// use ramjet_proto::message::{SlotHead, MAGIC_V1};
    /// let mut bytes = 91i32.to_be_bytes().to_vec();
    /// bytes.extend_from_slice(&MAGIC_V1.to_be_bytes());
    /// assert_eq!(SlotHead::read(&bytes), Some(SlotHead { total_size: 91, magic: MAGIC_V1 }));
    /// assert_eq!(SlotHead::read(&bytes[..7]), None);
    /// ```
    pub fn read(bytes: &[u8]) -> Option<SlotHead> {
        Some(SlotHead {
            total_size: read_i32(bytes, TOTAL_SIZE_POS)?,
            magic: read_i32(bytes, MAGIC_POS)?,
        })
    }
}

/// What a commit-log slot holds, by [`classify_slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A head of zeros: nothing was written here (the end of the log, or a zero-filled
    /// tail).
    Zero,
    /// A blank filler: the rest of the segment is unused (its head is the only bytes
    /// written).
    Blank,
    /// A record head of plausible size: magic v1 or v2, TOTALSIZE in range, and a filler
    /// still fits after it in the segment. The fields are not checked yet: view the
    /// `total_size` bytes with [`RecordView::new`].
    Record {
        /// TOTALSIZE.
        total_size: usize,
    },
}

/// Why a slot is neither zeros, a filler nor a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// Fewer than [`SLOT_HEAD_BYTES`] bytes.
    Short {
        /// Bytes there were.
        have: usize,
    },
    /// A blank filler whose length is not exactly the rest of the segment.
    BlankSize {
        /// TOTALSIZE as read.
        total_size: i32,
        /// Bytes left in the segment at the slot.
        room: u64,
    },
    /// The magic is neither v1, v2 nor blank.
    BadMagic {
        /// The value read.
        magic: i32,
    },
    /// A record whose TOTALSIZE is out of range or leaves no room for a filler.
    RecordSize {
        /// TOTALSIZE as read.
        total_size: i32,
        /// Bytes left in the segment at the slot.
        room: u64,
    },
}

impl std::fmt::Display for SlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlotError::Short { have } => write!(f, "short header ({have} bytes)"),
            SlotError::BlankSize { total_size, room } => {
                write!(f, "blank filler of {total_size} bytes with {room} left in the segment")
            }
            SlotError::BadMagic { magic } => write!(f, "bad magic {magic:#x}"),
            SlotError::RecordSize { total_size, room } => {
                write!(f, "TOTALSIZE {total_size} out of range ({room} bytes left)")
            }
        }
    }
}

impl std::error::Error for SlotError {}

/// The one check of what the slot at the start of `bytes` holds: zeros, a blank filler
/// that ends exactly at the segment end, or a record head of plausible size.
///
/// `room` is what is left of the segment at the slot (pass `u64::MAX` when the slot's
/// segment is unknown); `record_bytes_max` is the store's largest record. A record must
/// leave room for a filler after it (RocketMQ's rule: every segment ends with a record
/// or a filler that fits exactly).
///
/// ```
/// use ramjet_proto::message::{classify_slot, Slot, SlotError, BLANK_MAGIC, MAGIC_V1};
/// let head = |total: i32, magic: i32| [total.to_be_bytes(), magic.to_be_bytes()].concat();
/// assert_eq!(classify_slot(&[0; 8], 4096, 1 << 20), Ok(Slot::Zero));
/// assert_eq!(classify_slot(&head(4096, BLANK_MAGIC), 4096, 1 << 20), Ok(Slot::Blank));
/// assert_eq!(
///     classify_slot(&head(200, MAGIC_V1), 4096, 1 << 20),
///     Ok(Slot::Record { total_size: 200 })
/// );
/// assert!(matches!(classify_slot(&head(200, 7), 4096, 1 << 20), Err(SlotError::BadMagic { .. })));
/// ```
///
/// # Errors
/// [`SlotError`]: a short head, a misplaced filler, a bad magic or a record size out of
/// range.
pub fn classify_slot(bytes: &[u8], room: u64, record_bytes_max: usize) -> Result<Slot, SlotError> {
    let SlotHead { total_size, magic } =
        SlotHead::read(bytes).ok_or(SlotError::Short { have: bytes.len() })?;
    if total_size == 0 && magic == 0 {
        return Ok(Slot::Zero);
    }
    if magic == BLANK_MAGIC {
        return match u64::try_from(total_size) {
            Ok(size) if size == room && size >= SLOT_HEAD_BYTES as u64 => Ok(Slot::Blank),
            _ => Err(SlotError::BlankSize { total_size, room }),
        };
    }
    if magic != MAGIC_V1 && magic != MAGIC_V2 {
        return Err(SlotError::BadMagic { magic });
    }
    let fits = |total: usize| {
        (RECORD_BYTES_MIN..=record_bytes_max).contains(&total)
            && (total as u64).checked_add(SLOT_HEAD_BYTES as u64).is_some_and(|end| end <= room)
    };
    match usize::try_from(total_size) {
        Ok(total) if fits(total) => Ok(Slot::Record { total_size: total }),
        _ => Err(SlotError::RecordSize { total_size, room }),
    }
}

/// Where BODY, TOPIC and PROPERTIES lie in a record (ranges of its bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLayout {
    /// BODY.
    pub body: Range<usize>,
    /// TOPIC.
    pub topic: Range<usize>,
    /// PROPERTIES (the raw string).
    pub properties: Range<usize>,
}

/// A checked view of the stored record at the start of a buffer.
///
/// Construction checks once that the head is readable, the magic is v1 or v2, and
/// TOTALSIZE lies within the buffer and covers the fixed part its SYSFLAG implies; the
/// fixed fields then read without failing. BODY, TOPIC and PROPERTIES depend on length
/// fields and are checked on access; [`RecordView::layout`] also checks that the fields
/// add up to TOTALSIZE.
///
/// ```
/// use ramjet_proto::message::{encode_record, MessageMeta, RecordView};
/// let meta = MessageMeta {
///     queue_id: 3,
///     flag: 0,
///     sys_flag: 0,
///     born_timestamp: 1,
///     born_host: "127.0.0.1:1".parse().unwrap(),
///     store_host: "127.0.0.1:2".parse().unwrap(),
///     reconsume_times: 0,
///     prepared_transaction_offset: 0,
/// };
/// let mut bytes = Vec::new();
/// encode_record(&mut bytes, &meta, b"hello", "TopicTest", b"").unwrap();
/// let view = RecordView::new(&bytes).unwrap();
/// assert_eq!(view.total_size(), bytes.len());
/// assert_eq!(view.queue_id(), 3);
/// assert_eq!(view.body(), Ok(&b"hello"[..]));
/// assert_eq!(view.topic(), Ok(&b"TopicTest"[..]));
/// assert!(RecordView::new(&bytes[..40]).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Exactly TOTALSIZE bytes, at least `body_length_pos + 4` of them.
    bytes: &'a [u8],
    /// SYSFLAG, read once.
    sys_flag: i32,
}

impl<'a> RecordView<'a> {
    /// Views the record at the start of `buf` (more bytes may follow it).
    ///
    /// # Errors
    /// `Truncated` when `buf` is shorter than a slot head; `BadMagic` for anything but
    /// v1 or v2 (a blank filler too); `BadTotalSize` when TOTALSIZE is negative, past the
    /// end of `buf`, or shorter than the fixed part.
    pub fn new(buf: &'a [u8]) -> Result<Self, MessageError> {
        let head = SlotHead::read(buf).ok_or(MessageError::Truncated {
            offset: 0,
            need: SLOT_HEAD_BYTES,
            have: buf.len(),
        })?;
        if head.magic != MAGIC_V1 && head.magic != MAGIC_V2 {
            return Err(MessageError::BadMagic { magic: head.magic });
        }
        let total_size = head.total_size;
        let bytes = usize::try_from(total_size)
            .ok()
            .and_then(|total| buf.get(..total))
            .ok_or(MessageError::BadTotalSize { total_size, computed: 0 })?;
        let fixed = SYS_FLAG_POS + 4;
        let sys_flag = read_i32(bytes, SYS_FLAG_POS)
            .ok_or(MessageError::BadTotalSize { total_size, computed: fixed })?;
        let fixed = body_length_pos(sys_flag) + 4;
        if bytes.len() < fixed {
            return Err(MessageError::BadTotalSize { total_size, computed: fixed });
        }
        Ok(RecordView { bytes, sys_flag })
    }

    /// The record's bytes: exactly TOTALSIZE of them.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    // The fixed fields lie before the body length, which `new` checked is in bounds, so
    // these reads cannot miss; the defaults are never used.
    fn i32_at(&self, at: usize) -> i32 {
        read_i32(self.bytes, at).unwrap_or_default()
    }

    fn i64_at(&self, at: usize) -> i64 {
        read_i64(self.bytes, at).unwrap_or_default()
    }

    fn host_at(&self, at: usize, v6: bool) -> SocketAddr {
        let ip = if v6 {
            IpAddr::from(read_array::<16>(self.bytes, at).unwrap_or_default())
        } else {
            IpAddr::V4(Ipv4Addr::from(read_array::<4>(self.bytes, at).unwrap_or_default()))
        };
        let port = self.i32_at(at + if v6 { 16 } else { 4 });
        SocketAddr::new(ip, port as u16)
    }

    /// TOTALSIZE (the length of [`RecordView::as_bytes`]).
    pub fn total_size(&self) -> usize {
        self.bytes.len()
    }

    /// MAGICCODE: [`MAGIC_V1`] or [`MAGIC_V2`].
    pub fn magic(&self) -> i32 {
        self.i32_at(MAGIC_POS)
    }

    /// BODYCRC as stored.
    pub fn body_crc(&self) -> u32 {
        self.i32_at(BODY_CRC_POS) as u32
    }

    /// QUEUEID.
    pub fn queue_id(&self) -> i32 {
        self.i32_at(QUEUE_ID_POS)
    }

    /// FLAG.
    pub fn flag(&self) -> i32 {
        self.i32_at(FLAG_POS)
    }

    /// QUEUEOFFSET.
    pub fn queue_offset(&self) -> i64 {
        self.i64_at(QUEUE_OFFSET_POS)
    }

    /// PHYSICALOFFSET.
    pub fn physical_offset(&self) -> i64 {
        self.i64_at(PHYSICAL_OFFSET_POS)
    }

    /// SYSFLAG.
    pub fn sys_flag(&self) -> i32 {
        self.sys_flag
    }

    /// BORNTIMESTAMP.
    pub fn born_timestamp(&self) -> i64 {
        self.i64_at(BORN_TIMESTAMP_POS)
    }

    /// BORNHOST.
    pub fn born_host(&self) -> SocketAddr {
        self.host_at(BORN_HOST_POS, self.sys_flag & SYSFLAG_BORNHOST_V6 != 0)
    }

    /// STORETIMESTAMP.
    pub fn store_timestamp(&self) -> i64 {
        self.i64_at(store_timestamp_pos(self.sys_flag))
    }

    /// STOREHOST.
    pub fn store_host(&self) -> SocketAddr {
        self.host_at(store_host_pos(self.sys_flag), self.sys_flag & SYSFLAG_STOREHOST_V6 != 0)
    }

    /// RECONSUMETIMES.
    pub fn reconsume_times(&self) -> i32 {
        self.i32_at(reconsume_times_pos(self.sys_flag))
    }

    /// PREPARED TRANSACTION OFFSET.
    pub fn prepared_transaction_offset(&self) -> i64 {
        self.i64_at(prepared_transaction_offset_pos(self.sys_flag))
    }

    /// The `len` bytes from `start`, as a range inside the record.
    fn span(&self, start: usize, len: usize) -> Result<Range<usize>, MessageError> {
        let have = self.bytes.len().saturating_sub(start);
        match start.checked_add(len) {
            Some(end) if end <= self.bytes.len() => Ok(start..end),
            _ => Err(MessageError::Truncated { offset: start, need: len, have }),
        }
    }

    /// A length field (i16 or i32, signed as stored) at `at`, as a `usize`.
    fn length_at(&self, at: usize, width: usize) -> Result<usize, MessageError> {
        let have = self.bytes.len().saturating_sub(at);
        let truncated = MessageError::Truncated { offset: at, need: width, have };
        let length = match width {
            1 => self.bytes.get(at).map(|&b| i64::from(b)),
            2 => read_i16(self.bytes, at).map(i64::from),
            _ => read_i32(self.bytes, at).map(i64::from),
        };
        let length = length.ok_or(truncated)?;
        usize::try_from(length).map_err(|_| MessageError::NegativeLength { offset: at })
    }

    fn body_range(&self) -> Result<Range<usize>, MessageError> {
        let at = body_length_pos(self.sys_flag);
        self.span(at + 4, self.length_at(at, 4)?)
    }

    fn topic_range(&self, body_end: usize) -> Result<Range<usize>, MessageError> {
        // v1: a 1-byte topic length; v2 (topics over 127 bytes): an i16.
        let width = if self.magic() == MAGIC_V2 { 2 } else { 1 };
        self.span(body_end + width, self.length_at(body_end, width)?)
    }

    fn properties_range(&self, topic_end: usize) -> Result<Range<usize>, MessageError> {
        self.span(topic_end + 2, self.length_at(topic_end, 2)?)
    }

    /// BODY.
    ///
    /// # Errors
    /// `NegativeLength` or `Truncated` when its length field is wrong.
    pub fn body(&self) -> Result<&'a [u8], MessageError> {
        let range = self.body_range()?;
        Ok(self.bytes.get(range).unwrap_or_default())
    }

    /// TOPIC.
    ///
    /// # Errors
    /// `NegativeLength` or `Truncated` when a length field before it is wrong.
    pub fn topic(&self) -> Result<&'a [u8], MessageError> {
        let body = self.body_range()?;
        let range = self.topic_range(body.end)?;
        Ok(self.bytes.get(range).unwrap_or_default())
    }

    /// PROPERTIES (the raw string).
    ///
    /// # Errors
    /// `NegativeLength` or `Truncated` when a length field before it is wrong.
    pub fn properties(&self) -> Result<&'a [u8], MessageError> {
        let body = self.body_range()?;
        let topic = self.topic_range(body.end)?;
        let range = self.properties_range(topic.end)?;
        Ok(self.bytes.get(range).unwrap_or_default())
    }

    /// Where BODY, TOPIC and PROPERTIES lie, checking that the fields add up to TOTALSIZE.
    ///
    /// # Errors
    /// `NegativeLength` or `Truncated` for a wrong length field; `BadTotalSize` when the
    /// fields end before TOTALSIZE.
    pub fn layout(&self) -> Result<RecordLayout, MessageError> {
        let body = self.body_range()?;
        let topic = self.topic_range(body.end)?;
        let properties = self.properties_range(topic.end)?;
        if properties.end != self.bytes.len() {
            return Err(MessageError::BadTotalSize {
                total_size: self.bytes.len() as i32,
                computed: properties.end,
            });
        }
        Ok(RecordLayout { body, topic, properties })
    }

    /// Checks BODYCRC against the body of `layout` (from [`RecordView::layout`]).
    ///
    /// # Errors
    /// `BodyCrcMismatch`.
    pub fn check_body_crc(&self, layout: &RecordLayout) -> Result<(), MessageError> {
        let computed = body_crc(self.bytes.get(layout.body.clone()).unwrap_or_default());
        let stored = self.body_crc();
        if computed != stored {
            return Err(MessageError::BodyCrcMismatch { stored, computed });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::message::{decode_record, encode_record, MessageMeta, SYSFLAG_TRANSACTION_COMMIT};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn meta(v6: bool) -> MessageMeta {
        let host = |port| {
            if v6 {
                SocketAddr::new("::1".parse().unwrap(), port)
            } else {
                SocketAddr::new("10.0.0.1".parse().unwrap(), port)
            }
        };
        MessageMeta {
            queue_id: 7,
            flag: 3,
            sys_flag: SYSFLAG_TRANSACTION_COMMIT,
            born_timestamp: 1_700_000_000_000,
            born_host: host(4321),
            store_host: host(10911),
            reconsume_times: 2,
            prepared_transaction_offset: 99,
        }
    }

    // Goal: a view reads every field as the decoder does. Method: encode records with
    // IPv4 and IPv6 hosts, v1 and v2 topics, compare each accessor with decode_record.
    #[test]
    fn view_reads_what_decode_record_reads() {
        for v6 in [false, true] {
            for topic in ["T".to_string(), "t".repeat(200)] {
                let mut out = Vec::new();
                encode_record(&mut out, &meta(v6), b"body", &topic, b"K\x01V\x02").unwrap();
                crate::message::patch_record(&mut out, 5, 6, 7);
                let decoded = decode_record(&Bytes::from(out.clone()), true).unwrap();
                let view = RecordView::new(&out).unwrap();
                assert_eq!(view.total_size() as i32, decoded.total_size);
                assert_eq!(view.magic(), decoded.magic);
                assert_eq!(view.body_crc(), decoded.body_crc);
                assert_eq!(view.queue_id(), decoded.queue_id);
                assert_eq!(view.flag(), decoded.flag);
                assert_eq!(view.queue_offset(), 5);
                assert_eq!(view.physical_offset(), 6);
                assert_eq!(view.store_timestamp(), 7);
                assert_eq!(view.sys_flag(), decoded.sys_flag);
                assert_eq!(view.born_timestamp(), decoded.born_timestamp);
                assert_eq!(view.born_host(), decoded.born_host);
                assert_eq!(view.store_host(), decoded.store_host);
                assert_eq!(view.reconsume_times(), 2);
                assert_eq!(view.prepared_transaction_offset(), 99);
                assert_eq!(view.body().unwrap(), b"body");
                assert_eq!(view.topic().unwrap(), topic.as_bytes());
                assert_eq!(view.properties().unwrap(), b"K\x01V\x02");
                view.check_body_crc(&view.layout().unwrap()).unwrap();
            }
        }
    }

    // Goal: construction rejects heads it cannot trust. Method: one broken field each.
    #[test]
    fn view_rejects_bad_heads() {
        let mut out = Vec::new();
        encode_record(&mut out, &meta(false), b"x", "T", b"").unwrap();
        assert!(matches!(RecordView::new(&out[..7]), Err(MessageError::Truncated { .. })));
        assert!(matches!(RecordView::new(&out[..60]), Err(MessageError::BadTotalSize { .. })));
        let mut bad = out.clone();
        bad[MAGIC_POS] = 0;
        assert!(matches!(RecordView::new(&bad), Err(MessageError::BadMagic { .. })));
        let mut short = out.clone();
        short[..4].copy_from_slice(&40i32.to_be_bytes());
        assert!(matches!(RecordView::new(&short), Err(MessageError::BadTotalSize { .. })));
        let mut long_body = out.clone();
        long_body[84..88].copy_from_slice(&1000i32.to_be_bytes());
        let view = RecordView::new(&long_body).unwrap();
        assert!(matches!(view.body(), Err(MessageError::Truncated { .. })));
        assert!(view.layout().is_err());
    }

    // Goal: the one slot check covers the table in the module header. Method: one head
    // per row, plus the edges of the record size and the room for a filler.
    #[test]
    fn classify_slot_rows() {
        let head = |total: i32, magic: i32| [total.to_be_bytes(), magic.to_be_bytes()].concat();
        let max = 1 << 20;
        assert_eq!(classify_slot(&head(0, 0), 100, max), Ok(Slot::Zero));
        assert_eq!(classify_slot(&head(100, BLANK_MAGIC), 100, max), Ok(Slot::Blank));
        assert!(classify_slot(&head(99, BLANK_MAGIC), 100, max).is_err());
        assert!(classify_slot(&head(4, BLANK_MAGIC), 4, max).is_err());
        assert_eq!(
            classify_slot(&head(91, MAGIC_V2), 99, max),
            Ok(Slot::Record { total_size: 91 })
        );
        assert!(classify_slot(&head(91, MAGIC_V1), 98, max).is_err(), "no room for a filler");
        assert!(classify_slot(&head(90, MAGIC_V1), 1000, max).is_err(), "below the minimum");
        assert!(classify_slot(&head(-1, MAGIC_V1), 1000, max).is_err());
        assert!(classify_slot(&head(max as i32 + 1, MAGIC_V1), u64::MAX, max).is_err());
        assert!(classify_slot(&head(0, 5), 1000, max).is_err());
        assert_eq!(classify_slot(&[0; 7], 1000, max), Err(SlotError::Short { have: 7 }));
    }

    fn read_everything(view: &RecordView<'_>) {
        let _ = (view.as_bytes(), view.total_size(), view.magic(), view.body_crc());
        let _ = (view.queue_id(), view.flag(), view.queue_offset(), view.physical_offset());
        let _ = (view.sys_flag(), view.born_timestamp(), view.born_host());
        let _ = (view.store_timestamp(), view.store_host(), view.reconsume_times());
        let _ = (view.prepared_transaction_offset(), view.body(), view.topic());
        let _ = view.properties();
        if let Ok(layout) = view.layout() {
            let _ = view.check_body_crc(&layout);
        }
    }

    proptest! {
        // Goal: no input reaches a panic. Method: arbitrary bytes (with a valid magic
        // and a TOTALSIZE within the buffer half of the time), every accessor read.
        #[test]
        fn arbitrary_bytes_never_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..400),
            fix_head in any::<bool>(),
            v2 in any::<bool>(),
            room in any::<u64>(),
        ) {
            if fix_head && bytes.len() >= 8 {
                let total = (bytes.len() as i32).to_be_bytes();
                let magic = if v2 { MAGIC_V2 } else { MAGIC_V1 }.to_be_bytes();
                bytes[..4].copy_from_slice(&total);
                bytes[4..8].copy_from_slice(&magic);
            }
            let _ = classify_slot(&bytes, room, 1 << 22);
            let _ = SlotHead::read(&bytes);
            if let Ok(view) = RecordView::new(&bytes) {
                prop_assert!(view.total_size() <= bytes.len());
                read_everything(&view);
            }
        }

        // Goal: a view of any encoded record agrees with the decoder, and a cut record
        // is never viewed as whole. Method: random fields, encode, cut at random.
        #[test]
        fn view_of_encoded_record_round_trips(
            body in proptest::collection::vec(any::<u8>(), 0..64),
            topic in "[a-z]{1,200}",
            v6 in any::<bool>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut out = Vec::new();
            encode_record(&mut out, &meta(v6), &body, &topic, b"").unwrap();
            let view = RecordView::new(&out).unwrap();
            prop_assert_eq!(view.body().unwrap(), &body[..]);
            prop_assert_eq!(view.topic().unwrap(), topic.as_bytes());
            prop_assert!(view.layout().is_ok());
            let cut = cut.index(out.len());
            prop_assert!(RecordView::new(&out[..cut]).is_err());
        }
    }
}
