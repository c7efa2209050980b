//! The replication protocol's frames: a pure codec, no I/O.
//!
//! Lives on: the replication shard (master and slave sides).
//!
//! Every frame, both directions, big-endian:
//!
//! ```text
//! 0        4         8      9
//! +--------+---------+------+---------------------------------------------+
//! | length | crc32c  | kind | body (length - 5 bytes)                     |
//! +--------+---------+------+---------------------------------------------+
//!   u32      u32       u8
//!   length = 4 (crc) + 1 (kind) + body; at most FRAME_BYTES_MAX
//!   crc32c covers kind and body
//! ```
//!
//! | kind | name | direction | body |
//! |---|---|---|---|
//! | 1 | HELLO | slave → master | magic u32 `RJHA`, version u16, log count u32, segment size u64, per log: start u64, end u64, durable u64; version 2: the slave's nonce (16 bytes); then the slave's broker address (UTF-8) |
//! | 2 | WELCOME | master → slave | log count u32, segment size u64, per log: action u8, position u64; to a version 3 slave then: the master's run id u64, per log: its end when this run opened it u64; to a version 4 slave then per log: entry count u32, entries (epoch u64, run u64, start u64) of the master's epoch table (`epoch.rs`) |
//! | 3 | DATA | master → slave | log u32, position u64, raw log bytes (whole records, at most one filler, last) |
//! | 4 | HEARTBEAT | master → slave | per log: the master's written position u64 |
//! | 5 | ACK | slave → master | count u32, then count × (log u32, durable position u64) |
//! | 6 | ERROR | either | UTF-8 reason; the sender closes the connection |
//! | 7 | CHALLENGE | master → slave | the master's nonce (16 bytes), the master's proof (32 bytes) |
//! | 8 | AUTH | slave → master | the slave's proof (32 bytes) |
//! | 9 | DATA_WRITTEN | master → slave (version 3) | log u32, position u64, the master's written position u64, raw log bytes (as DATA) |
//! | 10 | METADATA | master → slave (version 3) | JSON (`replication::feed::MetaUpdate`): topic and subscription group changes, or a part of a whole-table snapshot |
//!
//! CHALLENGE and AUTH are exchanged between HELLO and WELCOME when either side has
//! `haAuthSecret` (see `replication::auth`). A version 1 HELLO (no nonce) is still
//! accepted by a master without a secret. A master sends DATA_WRITTEN and METADATA only
//! to a version 3 slave (older ones get DATA of written bytes, and no METADATA).
//!
//! WELCOME actions: 0 stream from `position` (the slave's end), 1 start the empty log at
//! `position` (the master's oldest segment), 2 truncate the slave's log to `position`
//! (the master's end: the slave ran past it), 3 not replicated (the reason is logged).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::epoch::{EpochEntry, EPOCH_ENTRIES_MAX};

/// Bytes of the length, crc and kind fields.
pub const HEADER_BYTES: usize = 9;
/// Largest `length` field accepted: a 16 MiB range plus headers.
pub const FRAME_BYTES_MAX: usize = 17 * 1024 * 1024;
/// `RJHA`.
pub const MAGIC: u32 = 0x524A_4841;
/// Protocol version this build writes: 2 adds the HELLO nonce; 3 adds DATA_WRITTEN and
/// METADATA (the master streams pending bytes and metadata changes); 4 adds the master's
/// epoch tables to WELCOME. A HELLO of a later version is taken as this one.
pub const VERSION: u16 = 4;
/// Bytes of a handshake nonce.
pub const NONCE_BYTES: usize = 16;
/// Bytes of a handshake proof (HMAC-SHA256).
pub const PROOF_BYTES: usize = 32;
/// Largest log count a HELLO or WELCOME may carry (the storage's log id limit).
pub const LOG_COUNT_MAX: u32 = 128;

/// Frame kinds.
pub mod kind {
    /// Slave → master: who I am and where my logs end.
    pub const HELLO: u8 = 1;
    /// Master → slave: where each log streams from.
    pub const WELCOME: u8 = 2;
    /// Master → slave: raw log bytes.
    pub const DATA: u8 = 3;
    /// Master → slave: the master's written positions, when idle.
    pub const HEARTBEAT: u8 = 4;
    /// Slave → master: durable positions.
    pub const ACK: u8 = 5;
    /// Either: a reason, then close.
    pub const ERROR: u8 = 6;
    /// Master → slave: the master's nonce and proof of the secret.
    pub const CHALLENGE: u8 = 7;
    /// Slave → master: the slave's proof of the secret.
    pub const AUTH: u8 = 8;
    /// Master → slave: raw log bytes and how far the master had written.
    pub const DATA_WRITTEN: u8 = 9;
    /// Master → slave: topic and subscription group changes.
    pub const METADATA: u8 = 10;
}

/// What the master tells the slave to do with one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stream from this position (the slave's end).
    Stream(u64),
    /// The slave's log is empty: start it here (the master's oldest segment).
    StartAt(u64),
    /// The slave's log runs past the master's: truncate it here.
    TruncateTo(u64),
    /// Not replicated (the master logs why).
    Refused,
}

/// A master's run (WELCOME, version 3): a slave that streamed from another run may hold
/// bytes past `opened` that this run never had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Random at the master's start.
    pub run: u64,
    /// Per log, the end when this run opened it.
    pub opened: Vec<u64>,
    /// To a version 4 slave: per log, the master's epoch table.
    pub epochs: Option<Vec<Vec<EpochEntry>>>,
}

/// Where one slave log stands (HELLO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogState {
    /// Oldest segment start.
    pub start: u64,
    /// Next position to write.
    pub end: u64,
    /// Durable position.
    pub durable: u64,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// See [`kind::HELLO`].
    Hello {
        /// Protocol version (1: no nonce; 2 and later carry one).
        version: u16,
        /// Segment size of the slave's store.
        segment_size_bytes: u64,
        /// One per log.
        logs: Vec<LogState>,
        /// The slave's handshake nonce (`None`: a version 1 HELLO).
        nonce: Option<[u8; NONCE_BYTES]>,
        /// The slave's broker address (`ip:port`), for logs and metrics.
        broker_addr: String,
    },
    /// See [`kind::WELCOME`].
    Welcome {
        /// Segment size of the master's store.
        segment_size_bytes: u64,
        /// One per log.
        actions: Vec<Action>,
        /// To a version 3 slave: which run of the master this is, and where each log
        /// ended when that run opened it.
        origin: Option<Origin>,
    },
    /// See [`kind::DATA`].
    Data {
        /// Log id.
        log: u32,
        /// Log position of the first byte.
        position: u64,
        /// The bytes.
        bytes: Bytes,
    },
    /// See [`kind::DATA_WRITTEN`].
    DataWritten {
        /// Log id.
        log: u32,
        /// Log position of the first byte.
        position: u64,
        /// The master's written position of the log when it read the bytes.
        written: u64,
        /// The bytes.
        bytes: Bytes,
    },
    /// See [`kind::METADATA`].
    Metadata {
        /// The JSON body.
        json: Bytes,
    },
    /// See [`kind::HEARTBEAT`].
    Heartbeat {
        /// The master's written position of each log.
        written: Vec<u64>,
    },
    /// See [`kind::ACK`].
    Ack {
        /// (log, durable position).
        positions: Vec<(u32, u64)>,
    },
    /// See [`kind::ERROR`].
    Error {
        /// Why.
        reason: String,
    },
    /// See [`kind::CHALLENGE`].
    Challenge {
        /// The master's nonce.
        nonce: [u8; NONCE_BYTES],
        /// The master's proof.
        proof: [u8; PROOF_BYTES],
    },
    /// See [`kind::AUTH`].
    Auth {
        /// The slave's proof.
        proof: [u8; PROOF_BYTES],
    },
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// `length` is below the header or above [`FRAME_BYTES_MAX`].
    BadLength {
        /// The field.
        length: usize,
    },
    /// The checksum does not match.
    BadCrc {
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// Unknown kind.
    BadKind {
        /// The byte.
        kind: u8,
    },
    /// A body too short or inconsistent for its kind.
    BadBody {
        /// Kind.
        kind: u8,
        /// What is wrong.
        reason: &'static str,
    },
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::BadLength { length } => write!(f, "frame length {length} out of range"),
            WireError::BadCrc { stored, computed } => {
                write!(f, "frame crc32c {stored:#010x}, computed {computed:#010x}")
            }
            WireError::BadKind { kind } => write!(f, "unknown frame kind {kind}"),
            WireError::BadBody { kind, reason } => write!(f, "frame kind {kind}: {reason}"),
        }
    }
}

impl std::error::Error for WireError {}

fn crc_of(kind: u8, pieces: &[&[u8]]) -> u32 {
    let mut crc = crc32c::crc32c(&[kind]);
    for piece in pieces {
        crc = crc32c::crc32c_append(crc, piece);
    }
    crc
}

/// The header of a frame whose body is `pieces`, back to back (for DATA frames written
/// without copying the log bytes).
pub fn header(kind: u8, pieces: &[&[u8]]) -> [u8; HEADER_BYTES] {
    let body_len: usize = pieces.iter().map(|p| p.len()).sum();
    let mut out = [0u8; HEADER_BYTES];
    out[..4].copy_from_slice(&((body_len + 5) as u32).to_be_bytes());
    out[4..8].copy_from_slice(&crc_of(kind, pieces).to_be_bytes());
    out[8] = kind;
    out
}

/// The body prefix of a DATA frame (log and position); the log bytes follow.
pub fn data_prefix(log: u32, position: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..4].copy_from_slice(&log.to_be_bytes());
    out[4..].copy_from_slice(&position.to_be_bytes());
    out
}

/// The body prefix of a DATA_WRITTEN frame (log, position, written); the log bytes follow.
pub fn data_written_prefix(log: u32, position: u64, written: u64) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..4].copy_from_slice(&log.to_be_bytes());
    out[4..12].copy_from_slice(&position.to_be_bytes());
    out[12..].copy_from_slice(&written.to_be_bytes());
    out
}

/// Encodes a whole frame (every kind; DATA copies its bytes, see [`header`] to avoid it).
pub fn encode(message: &Message) -> BytesMut {
    let mut body = BytesMut::new();
    let kind = match message {
        Message::Hello { version, segment_size_bytes, logs, nonce, broker_addr } => {
            body.put_u32(MAGIC);
            // A nonce makes it version 2 at least; none makes it version 1.
            body.put_u16(if nonce.is_some() { (*version).max(2) } else { 1 });
            body.put_u32(logs.len() as u32);
            body.put_u64(*segment_size_bytes);
            for log in logs {
                body.put_u64(log.start);
                body.put_u64(log.end);
                body.put_u64(log.durable);
            }
            if let Some(nonce) = nonce {
                body.put_slice(nonce);
            }
            body.put_slice(broker_addr.as_bytes());
            kind::HELLO
        }
        Message::Welcome { segment_size_bytes, actions, origin } => {
            body.put_u32(actions.len() as u32);
            body.put_u64(*segment_size_bytes);
            for action in actions {
                let (code, position) = match *action {
                    Action::Stream(p) => (0, p),
                    Action::StartAt(p) => (1, p),
                    Action::TruncateTo(p) => (2, p),
                    Action::Refused => (3, 0),
                };
                body.put_u8(code);
                body.put_u64(position);
            }
            if let Some(origin) = origin {
                body.put_u64(origin.run);
                for end in &origin.opened {
                    body.put_u64(*end);
                }
                for table in origin.epochs.iter().flatten() {
                    body.put_u32(table.len() as u32);
                    for entry in table {
                        body.put_u64(entry.epoch);
                        body.put_u64(entry.run);
                        body.put_u64(entry.start);
                    }
                }
            }
            kind::WELCOME
        }
        Message::Data { log, position, bytes } => {
            body.put_slice(&data_prefix(*log, *position));
            body.put_slice(bytes);
            kind::DATA
        }
        Message::DataWritten { log, position, written, bytes } => {
            body.put_slice(&data_written_prefix(*log, *position, *written));
            body.put_slice(bytes);
            kind::DATA_WRITTEN
        }
        Message::Metadata { json } => {
            body.put_slice(json);
            kind::METADATA
        }
        Message::Heartbeat { written } => {
            for w in written {
                body.put_u64(*w);
            }
            kind::HEARTBEAT
        }
        Message::Ack { positions } => {
            body.put_u32(positions.len() as u32);
            for (log, position) in positions {
                body.put_u32(*log);
                body.put_u64(*position);
            }
            kind::ACK
        }
        Message::Error { reason } => {
            body.put_slice(reason.as_bytes());
            kind::ERROR
        }
        Message::Challenge { nonce, proof } => {
            body.put_slice(nonce);
            body.put_slice(proof);
            kind::CHALLENGE
        }
        Message::Auth { proof } => {
            body.put_slice(proof);
            kind::AUTH
        }
    };
    let mut out = BytesMut::with_capacity(HEADER_BYTES + body.len());
    out.put_slice(&header(kind, &[&body]));
    out.put_slice(&body);
    out
}

/// Splits one frame off the front of `buf`: `Ok(None)` until a whole frame is there.
/// DATA bytes are a zero-copy slice of `buf`.
///
/// # Errors
/// A bad length (checked before waiting for the body), checksum, kind or body.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
    let Some(length) = buf.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
        return Ok(None);
    };
    let length = length as usize;
    if !(5..=FRAME_BYTES_MAX).contains(&length) {
        return Err(WireError::BadLength { length });
    }
    if buf.len() < 4 + length {
        buf.reserve(4 + length - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(4 + length).freeze();
    frame.advance(4);
    let stored = frame.get_u32();
    let computed = crc32c::crc32c(&frame);
    if stored != computed {
        return Err(WireError::BadCrc { stored, computed });
    }
    let kind = frame.get_u8();
    decode_body(kind, frame).map(Some)
}

fn short(kind: u8) -> WireError {
    WireError::BadBody { kind, reason: "body too short" }
}

fn decode_body(kind: u8, mut body: Bytes) -> Result<Message, WireError> {
    match kind {
        kind::HELLO => {
            if body.len() < 18 {
                return Err(short(kind));
            }
            let (magic, version) = (body.get_u32(), body.get_u16());
            if magic != MAGIC || version == 0 {
                return Err(WireError::BadBody { kind, reason: "bad magic or version" });
            }
            let count = body.get_u32();
            let segment_size_bytes = body.get_u64();
            let nonce_len = if version >= 2 { NONCE_BYTES } else { 0 };
            if count > LOG_COUNT_MAX || body.len() < count as usize * 24 + nonce_len {
                return Err(WireError::BadBody { kind, reason: "log count and body disagree" });
            }
            let logs = (0..count)
                .map(|_| LogState {
                    start: body.get_u64(),
                    end: body.get_u64(),
                    durable: body.get_u64(),
                })
                .collect();
            let nonce = (version >= 2).then(|| {
                let mut n = [0u8; NONCE_BYTES];
                body.copy_to_slice(&mut n);
                n
            });
            let broker_addr = String::from_utf8_lossy(&body).into_owned();
            Ok(Message::Hello { version, segment_size_bytes, logs, nonce, broker_addr })
        }
        kind::WELCOME => {
            if body.len() < 12 {
                return Err(short(kind));
            }
            let count = body.get_u32();
            let segment_size_bytes = body.get_u64();
            let with_origin = count as usize * 9 + 8 + count as usize * 8;
            if count > LOG_COUNT_MAX
                || (body.len() != count as usize * 9 && body.len() < with_origin)
            {
                return Err(WireError::BadBody { kind, reason: "log count and body disagree" });
            }
            let mut actions = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let code = body.get_u8();
                let position = body.get_u64();
                actions.push(match code {
                    0 => Action::Stream(position),
                    1 => Action::StartAt(position),
                    2 => Action::TruncateTo(position),
                    3 => Action::Refused,
                    _ => return Err(WireError::BadBody { kind, reason: "unknown action" }),
                });
            }
            let origin = if body.is_empty() {
                None
            } else {
                let run = body.get_u64();
                let opened = (0..count).map(|_| body.get_u64()).collect();
                let epochs = if body.is_empty() {
                    None
                } else {
                    let mut tables = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        let bad = WireError::BadBody { kind, reason: "epoch table" };
                        if body.len() < 4 {
                            return Err(bad);
                        }
                        let entries = body.get_u32() as usize;
                        if entries > EPOCH_ENTRIES_MAX || body.len() < entries * 24 {
                            return Err(bad);
                        }
                        tables.push(
                            (0..entries)
                                .map(|_| EpochEntry {
                                    epoch: body.get_u64(),
                                    run: body.get_u64(),
                                    start: body.get_u64(),
                                })
                                .collect(),
                        );
                    }
                    if !body.is_empty() {
                        return Err(WireError::BadBody { kind, reason: "bytes after the epochs" });
                    }
                    Some(tables)
                };
                Some(Origin { run, opened, epochs })
            };
            Ok(Message::Welcome { segment_size_bytes, actions, origin })
        }
        kind::DATA => {
            if body.len() < 12 {
                return Err(short(kind));
            }
            let log = body.get_u32();
            let position = body.get_u64();
            Ok(Message::Data { log, position, bytes: body })
        }
        kind::DATA_WRITTEN => {
            if body.len() < 20 {
                return Err(short(kind));
            }
            let log = body.get_u32();
            let position = body.get_u64();
            let written = body.get_u64();
            Ok(Message::DataWritten { log, position, written, bytes: body })
        }
        kind::METADATA => Ok(Message::Metadata { json: body }),
        kind::HEARTBEAT => {
            if !body.len().is_multiple_of(8) || body.len() / 8 > LOG_COUNT_MAX as usize {
                return Err(WireError::BadBody { kind, reason: "not a list of positions" });
            }
            let written = (0..body.len() / 8).map(|_| body.get_u64()).collect();
            Ok(Message::Heartbeat { written })
        }
        kind::ACK => {
            if body.len() < 4 {
                return Err(short(kind));
            }
            let count = body.get_u32() as usize;
            if count > LOG_COUNT_MAX as usize || body.len() != count * 12 {
                return Err(WireError::BadBody { kind, reason: "count and body disagree" });
            }
            let positions = (0..count).map(|_| (body.get_u32(), body.get_u64())).collect();
            Ok(Message::Ack { positions })
        }
        kind::ERROR => Ok(Message::Error { reason: String::from_utf8_lossy(&body).into_owned() }),
        kind::CHALLENGE => {
            if body.len() != NONCE_BYTES + PROOF_BYTES {
                return Err(WireError::BadBody { kind, reason: "not a nonce and a proof" });
            }
            let (mut nonce, mut proof) = ([0u8; NONCE_BYTES], [0u8; PROOF_BYTES]);
            body.copy_to_slice(&mut nonce);
            body.copy_to_slice(&mut proof);
            Ok(Message::Challenge { nonce, proof })
        }
        kind::AUTH => {
            if body.len() != PROOF_BYTES {
                return Err(WireError::BadBody { kind, reason: "not a proof" });
            }
            let mut proof = [0u8; PROOF_BYTES];
            body.copy_to_slice(&mut proof);
            Ok(Message::Auth { proof })
        }
        kind => Err(WireError::BadKind { kind }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message) {
        let mut buf = encode(&message);
        buf.extend_from_slice(b"\0\0"); // the start of the next frame stays
        assert_eq!(decode(&mut buf).expect("decodes"), Some(message));
        assert_eq!(&buf[..], b"\0\0");
    }

    #[test]
    fn every_kind_round_trips() {
        let logs = vec![LogState { start: 0, end: 10, durable: 9 }, LogState::default()];
        let broker_addr = "127.0.0.1:10911".to_string();
        let hello = |version, nonce| Message::Hello {
            version,
            segment_size_bytes: 1 << 30,
            logs: logs.clone(),
            nonce,
            broker_addr: broker_addr.clone(),
        };
        round_trip(hello(1, None));
        round_trip(hello(2, Some([7; NONCE_BYTES])));
        round_trip(hello(3, Some([7; NONCE_BYTES])));
        round_trip(hello(4, Some([7; NONCE_BYTES])));
        let actions = vec![
            Action::Stream(5),
            Action::StartAt(1 << 30),
            Action::TruncateTo(7),
            Action::Refused,
        ];
        round_trip(Message::Welcome {
            segment_size_bytes: 1 << 20,
            actions: actions.clone(),
            origin: None,
        });
        let origin = Some(Origin { run: 42, opened: vec![1, 2, 3, 4], epochs: None });
        round_trip(Message::Welcome {
            segment_size_bytes: 1 << 20,
            actions: actions.clone(),
            origin,
        });
        let entry = |epoch, start| EpochEntry { epoch, run: 9, start };
        let epochs = Some(vec![vec![], vec![entry(1, 0)], vec![entry(1, 0), entry(3, 50)], vec![]]);
        let origin = Some(Origin { run: 42, opened: vec![1, 2, 3, 4], epochs });
        round_trip(Message::Welcome { segment_size_bytes: 1 << 20, actions, origin });
        round_trip(Message::Data { log: 3, position: 99, bytes: Bytes::from_static(b"abc") });
        round_trip(Message::DataWritten {
            log: 1,
            position: 64,
            written: 32,
            bytes: Bytes::from_static(b"abc"),
        });
        round_trip(Message::Metadata { json: Bytes::from_static(b"{}") });
        round_trip(Message::Heartbeat { written: vec![1, 2, 3] });
        round_trip(Message::Ack { positions: vec![(0, 5), (1, 6)] });
        round_trip(Message::Error { reason: "no".into() });
        round_trip(Message::Challenge { nonce: [1; NONCE_BYTES], proof: [2; PROOF_BYTES] });
        round_trip(Message::Auth { proof: [3; PROOF_BYTES] });
    }

    #[test]
    fn a_data_frame_from_pieces_equals_the_copied_one() {
        let bytes = Bytes::from_static(b"record bytes");
        let prefix = data_prefix(2, 4096);
        let head = header(kind::DATA, &[&prefix, &bytes[..5], &bytes[5..]]);
        let mut joined = BytesMut::new();
        joined.extend_from_slice(&head);
        joined.extend_from_slice(&prefix);
        joined.extend_from_slice(&bytes);
        assert_eq!(joined, encode(&Message::Data { log: 2, position: 4096, bytes }));
    }

    #[test]
    fn partial_frames_wait_and_damage_is_refused() {
        let whole = encode(&Message::Ack { positions: vec![(1, 2)] });
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut part), Ok(None), "cut at {cut}");
        }
        for at in 4..whole.len() {
            let mut bad = whole.clone();
            bad[at] ^= 0x40;
            assert!(decode(&mut bad).is_err(), "flip at {at}");
        }
        let mut huge = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(decode(&mut huge), Err(WireError::BadLength { .. })));
    }
}
