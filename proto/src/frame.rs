//! Remoting frames: length-prefixed header and body.
//!
//! ```text
//! 0        4        8                      8+H                 4+L
//! +--------+--------+----------------------+--------------------+
//! | L: i32 | T | H  | header (H bytes)     | body (L-4-H bytes) |
//! +--------+--------+----------------------+--------------------+
//!   L counts every byte after itself.
//!   T is one byte (0 JSON, 1 ROCKETMQ); H is the low 24 bits of the same i32,
//!   so a header is at most 16 MiB - 1 bytes.
//! ```
//!
//! Decoding splits one whole frame off the read buffer and freezes it; the body is a
//! slice of that allocation, so it is never copied. Encoding writes one frame into one
//! contiguous buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::command::{Frame, Header, SerializeType};
use crate::error::{EncodeError, FrameError};
use crate::{binary_header, json_header};

/// Largest frame accepted by default: 16 MiB, the reference's `frameMaxLength`.
pub const FRAME_SIZE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Bytes before the header: the length and the type+header-length words.
pub const FRAME_PREFIX_BYTES: usize = 8;

/// Splits one frame off the front of `buf` when it holds a whole one.
///
/// Returns `Ok(None)` when more bytes are needed; `buf` is then untouched. The check of
/// the length prefix happens as soon as 4 bytes are present, before any allocation for
/// the frame.
///
/// # Errors
/// A `FrameError` means the stream cannot be resynchronised: close the connection.
pub fn decode_frame(
    buf: &mut BytesMut,
    frame_size_max: usize,
) -> Result<Option<Frame>, FrameError> {
    let Some(length) = peek_frame_length(buf, frame_size_max)? else {
        return Ok(None);
    };
    if buf.len() < 4 + length {
        buf.reserve(4 + length - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let frame = buf.split_to(length).freeze();
    decode_frame_bytes(frame).map(Some)
}

/// Reads and checks the length prefix; `Ok(None)` when fewer than 4 bytes are buffered.
///
/// # Errors
/// The prefix is below 4 or above `frame_size_max`.
pub fn peek_frame_length(buf: &[u8], frame_size_max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if length < 4 {
        return Err(FrameError::LengthTooSmall { length: i64::from(length) });
    }
    let length = length as usize; // Non-negative, checked above.
    if length > frame_size_max {
        return Err(FrameError::LengthTooLarge { length: length as u64, max: frame_size_max });
    }
    Ok(Some(length))
}

/// Decodes a frame without its length prefix (`bytes` = everything after it).
///
/// # Errors
/// Bad header length, serialize type or header contents.
pub fn decode_frame_bytes(mut bytes: Bytes) -> Result<Frame, FrameError> {
    if bytes.len() < 4 {
        return Err(FrameError::LengthTooSmall { length: bytes.len() as i64 });
    }
    let word = bytes.get_u32();
    let type_byte = (word >> 24) as u8;
    let header_length = word & 0x00FF_FFFF;
    let serialize_type = SerializeType::from_byte(type_byte)
        .ok_or(FrameError::SerializeTypeUnknown { value: type_byte })?;
    let available = bytes.len();
    if header_length as usize > available {
        return Err(FrameError::HeaderLengthInvalid { header_length, available });
    }
    let header_bytes = bytes.split_to(header_length as usize);
    let header = match serialize_type {
        SerializeType::Json => json_header::decode(&header_bytes)?,
        SerializeType::RocketMq => binary_header::decode(&header_bytes)?,
    };
    Ok(Frame { header, body: bytes })
}

/// Largest encoded header: the header length is the low 24 bits of a word.
pub const HEADER_BYTES_MAX: usize = 0x00FF_FFFF;

/// Appends one encoded frame (prefix, header in `header.serialize_type`, body) to `dst`.
///
/// # Errors
/// The header encodes to more than [`HEADER_BYTES_MAX`] bytes, the frame to more than
/// `i32::MAX`, or a binary header has a key over `i16::MAX` bytes; `dst` is then left as
/// it was.
pub fn encode_frame(header: &Header, body: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
    dst.reserve(FRAME_PREFIX_BYTES + 256 + body.len());
    encode_frame_head(header, body.len(), dst)?;
    dst.put_slice(body);
    Ok(())
}

/// Appends a frame's prefix and header for a body of `body_len` bytes that the caller
/// sends right after, from its own buffer (so a large body is never copied).
///
/// # Errors
/// As [`encode_frame`]; `dst` is then left as it was.
pub fn encode_frame_head(
    header: &Header,
    body_len: usize,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    if header.serialize_type == SerializeType::RocketMq {
        // The binary encoding gives an ext-field key an i16 length.
        if let Some((k, _)) = header.ext_fields.iter().find(|(k, _)| k.len() > i16::MAX as usize) {
            return Err(EncodeError::KeyTooLong { length: k.len() });
        }
    }
    let start = dst.len();
    dst.put_u32(0); // Length, patched below.
    dst.put_u32(0); // Type and header length, patched below.
    match header.serialize_type {
        SerializeType::Json => json_header::encode(header, dst),
        SerializeType::RocketMq => binary_header::encode(header, dst),
    }
    let header_length = dst.len() - start - FRAME_PREFIX_BYTES;
    if header_length > HEADER_BYTES_MAX {
        dst.truncate(start);
        return Err(EncodeError::HeaderTooLarge { header_length, max: HEADER_BYTES_MAX });
    }
    let length = (FRAME_PREFIX_BYTES - 4 + header_length) as u64 + body_len as u64;
    let Ok(length) = i32::try_from(length) else {
        dst.truncate(start);
        return Err(EncodeError::FrameTooLarge { length });
    };
    let word = (u32::from(header.serialize_type.as_byte()) << 24) | header_length as u32;
    dst[start..start + 4].copy_from_slice(&length.to_be_bytes());
    dst[start + 4..start + 8].copy_from_slice(&word.to_be_bytes());
    Ok(())
}

/// Encodes one frame into a new buffer.
///
/// # Errors
/// As [`encode_frame`].
pub fn encode_frame_to_bytes(header: &Header, body: &[u8]) -> Result<Bytes, EncodeError> {
    let mut dst = BytesMut::with_capacity(FRAME_PREFIX_BYTES + 256 + body.len());
    encode_frame(header, body, &mut dst)?;
    Ok(dst.freeze())
}
