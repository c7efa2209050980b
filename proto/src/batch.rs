//! The SEND_BATCH_MESSAGE (320) body: inner messages back to back
//! (`MessageDecoder.encodeMessages`).
//!
//! ```text
//! off  size  field
//!   0     4  TOTALSIZE   i32, this inner message including this field: 22 + n + p
//!   4     4  MAGICCODE   the client writes 0; ignored
//!   8     4  BODYCRC     the client writes 0; the broker recomputes it
//!  12     4  FLAG        user flag
//!  16   4+n  BODY        i32 length + bytes
//! 20+n  2+p  PROPERTIES  i16 length + properties string (its own UNIQ_KEY, KEYS, TAGS)
//! ```
//!
//! Decoding checks every length against the bytes left before slicing (bodies and
//! properties are slices of the request buffer, never copies), and TOTALSIZE against the
//! fields, so garbage is an error and never a panic or a large allocation.

use bytes::{BufMut, Bytes};

use crate::message::{MessageError, PROPERTIES_BYTES_MAX};

/// Bytes of an inner message with empty body and properties.
pub const BATCH_MESSAGE_BYTES_MIN: usize = 4 + 4 + 4 + 4 + 4 + 2;

/// One inner message of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchMessage {
    /// User flag.
    pub flag: i32,
    /// Body.
    pub body: Bytes,
    /// Properties string.
    pub properties: Bytes,
}

fn read_i32(buf: &[u8], pos: usize) -> Result<i32, MessageError> {
    let have = buf.len().saturating_sub(pos);
    let b = buf.get(pos..pos.saturating_add(4)).ok_or(MessageError::Truncated {
        offset: pos,
        need: 4,
        have,
    })?;
    Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_i16(buf: &[u8], pos: usize) -> Result<i16, MessageError> {
    let have = buf.len().saturating_sub(pos);
    let b = buf.get(pos..pos.saturating_add(2)).ok_or(MessageError::Truncated {
        offset: pos,
        need: 2,
        have,
    })?;
    Ok(i16::from_be_bytes([b[0], b[1]]))
}

fn check_fits(buf: &[u8], pos: usize, need: usize) -> Result<(), MessageError> {
    let have = buf.len().saturating_sub(pos);
    if need > have {
        return Err(MessageError::Truncated { offset: pos, need, have });
    }
    Ok(())
}

/// Decodes a batch body into its inner messages.
///
/// An empty body is an empty batch (the broker decides whether that is legal). The
/// vector costs about 72 bytes per inner message; a caller that must bound memory before
/// expanding a batch walks it with [`BatchMessages`] first.
///
/// # Errors
/// `Truncated` when a field runs past the body, `NegativeLength` for a negative body or
/// properties length, `BadTotalSize` when TOTALSIZE is not what the fields add up to.
pub fn decode_batch(body: &Bytes) -> Result<Vec<BatchMessage>, MessageError> {
    BatchMessages::new(body).collect()
}

/// The inner messages of a batch body, decoded one at a time (no allocation but the
/// `Bytes` handles of each message's slices); after the first error it yields nothing.
///
/// ```
/// use bytes::Bytes;
/// use ramjet_proto::batch::{encode_batch, BatchMessage, BatchMessages};
///
/// let body = Bytes::from(encode_batch(&[BatchMessage::default(), BatchMessage::default()]));
/// assert_eq!(BatchMessages::new(&body).count(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct BatchMessages<'a> {
    body: &'a Bytes,
    pos: usize,
    failed: bool,
}

impl<'a> BatchMessages<'a> {
    /// Walks `body` from its start.
    pub fn new(body: &'a Bytes) -> Self {
        BatchMessages { body, pos: 0, failed: false }
    }
}

impl Iterator for BatchMessages<'_> {
    type Item = Result<BatchMessage, MessageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.body.len() {
            return None;
        }
        match decode_one(self.body, self.pos) {
            Ok((message, end)) => {
                self.pos = end;
                Some(Ok(message))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Decodes the inner message at `start`; returns it and where the next one starts.
fn decode_one(body: &Bytes, start: usize) -> Result<(BatchMessage, usize), MessageError> {
    let buf: &[u8] = body;
    let total_size = read_i32(buf, start)?;
    let total = usize::try_from(total_size)
        .ok()
        .filter(|t| *t >= BATCH_MESSAGE_BYTES_MIN)
        .ok_or(MessageError::BadTotalSize { total_size, computed: 0 })?;
    check_fits(buf, start, total)?;
    // MAGICCODE at +4 and BODYCRC at +8 are ignored.
    let flag = read_i32(buf, start + 12)?;
    let body_len_pos = start + 16;
    let body_len = usize::try_from(read_i32(buf, body_len_pos)?)
        .map_err(|_| MessageError::NegativeLength { offset: body_len_pos })?;
    let body_start = body_len_pos + 4;
    check_fits(buf, body_start, body_len)?;
    let props_len_pos = body_start + body_len;
    let props_len = usize::try_from(read_i16(buf, props_len_pos)?)
        .map_err(|_| MessageError::NegativeLength { offset: props_len_pos })?;
    let props_start = props_len_pos + 2;
    check_fits(buf, props_start, props_len)?;
    let end = props_start + props_len;
    if end - start != total {
        return Err(MessageError::BadTotalSize { total_size, computed: end - start });
    }
    let message = BatchMessage {
        flag,
        body: body.slice(body_start..props_len_pos),
        properties: body.slice(props_start..end),
    };
    Ok((message, end))
}

/// The encoded length of one inner message.
pub fn batch_message_len(message: &BatchMessage) -> usize {
    BATCH_MESSAGE_BYTES_MIN + message.body.len() + message.properties.len()
}

/// Encodes inner messages as a batch body (magic and CRC written as 0, as the Java
/// client does).
///
/// # Panics
/// When a message's properties exceed 32767 bytes or its size exceeds `i32::MAX`: the
/// caller builds the messages and must keep them within the wire's limits.
pub fn encode_batch(messages: &[BatchMessage]) -> Vec<u8> {
    let mut out = Vec::with_capacity(messages.iter().map(batch_message_len).sum());
    for m in messages {
        let total = batch_message_len(m);
        // The properties length is an i16 and TOTALSIZE an i32 on the wire.
        assert!(m.properties.len() <= PROPERTIES_BYTES_MAX, "batch properties over 32767 bytes");
        assert!(total <= i32::MAX as usize, "batch message over i32::MAX bytes");
        out.put_i32(total as i32);
        out.put_i32(0); // MAGICCODE
        out.put_i32(0); // BODYCRC
        out.put_i32(m.flag);
        out.put_i32(m.body.len() as i32);
        out.put_slice(&m.body);
        out.put_i16(m.properties.len() as i16);
        out.put_slice(&m.properties);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let msgs = vec![
            BatchMessage { flag: 1, body: Bytes::from_static(b"hello"), properties: Bytes::new() },
            BatchMessage {
                flag: -7,
                body: Bytes::new(),
                properties: Bytes::from_static(b"KEYS\x01k\x02"),
            },
        ];
        let enc = Bytes::from(encode_batch(&msgs));
        assert_eq!(enc.len(), 22 + 5 + 22 + 7);
        assert_eq!(decode_batch(&enc).unwrap(), msgs);
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_batch(&Bytes::from_static(&[0, 0, 0])).is_err());
        // TOTALSIZE negative.
        assert!(decode_batch(&Bytes::from_static(&[0xff; 30])).is_err());
        // Body length huge: must not allocate or panic.
        let mut b = vec![0u8; 22];
        b[3] = 22;
        b[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode_batch(&Bytes::from(b.clone())),
            Err(MessageError::Truncated { .. })
        ));
        b[16..20].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(decode_batch(&Bytes::from(b)), Err(MessageError::NegativeLength { .. })));
        // TOTALSIZE disagrees with the fields.
        let mut b = encode_batch(&[BatchMessage::default()]);
        b.extend_from_slice(&[0, 0]);
        b[3] = 24;
        assert!(matches!(decode_batch(&Bytes::from(b)), Err(MessageError::BadTotalSize { .. })));
    }
}
