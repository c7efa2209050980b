//! The binary `ROCKETMQ` header (`RocketMQSerializable.java`), big-endian.
//!
//! ```text
//! code i16 | language u8 | version i16 | opaque i32 | flag i32
//! remark: i32 length + UTF-8 (0 = none)
//! extFields: i32 total length, then repeated (i16 key length + key, i32 value length + value)
//! ```
//! Fixed part: 2+1+2+4+4 = 13 bytes, then 4 + remark, then 4 + pairs.

use bytes::BufMut;

use crate::command::{ExtFields, Header, LanguageCode, SerializeType, EXT_FIELDS_COUNT_MAX};
use crate::error::HeaderError;

/// Smallest valid binary header: the fixed 13 bytes plus two zero length words.
pub const BINARY_HEADER_BYTES_MIN: usize = 13 + 4 + 4;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let have = self.buf.len() - self.pos;
        let slice = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or(HeaderError::UnexpectedEof { offset: self.pos, need: n, have })?;
        self.pos += n;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, HeaderError> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, HeaderError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, HeaderError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn len_i32(&mut self) -> Result<usize, HeaderError> {
        let offset = self.pos;
        let v = self.i32()?;
        usize::try_from(v).map_err(|_| HeaderError::NegativeLength { offset, value: i64::from(v) })
    }
    fn len_i16(&mut self) -> Result<usize, HeaderError> {
        let offset = self.pos;
        let v = self.i16()?;
        usize::try_from(v).map_err(|_| HeaderError::NegativeLength { offset, value: i64::from(v) })
    }
    fn string(&mut self, n: usize) -> Result<String, HeaderError> {
        let offset = self.pos;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| HeaderError::InvalidUtf8 { offset })
    }
}

/// Decodes a binary header.
///
/// # Errors
/// Truncated input, negative lengths, invalid UTF-8, more than [`EXT_FIELDS_COUNT_MAX`]
/// extFields entries.
pub fn decode(buf: &[u8]) -> Result<Header, HeaderError> {
    let mut r = Reader { buf, pos: 0 };
    let code = i32::from(r.i16()?);
    let language = LanguageCode(r.u8()?);
    let version = i32::from(r.i16()?);
    let opaque = r.i32()?;
    let flag = r.i32()?;
    let remark_length = r.len_i32()?;
    let remark = if remark_length > 0 { Some(r.string(remark_length)?) } else { None };
    let ext_length = r.len_i32()?;
    let ext_bytes = r.take(ext_length)?;
    let ext_fields = decode_ext_fields(ext_bytes, r.pos - ext_length)?;
    Ok(Header {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        serialize_type: SerializeType::RocketMq,
    })
}

fn decode_ext_fields(buf: &[u8], base: usize) -> Result<ExtFields, HeaderError> {
    let mut r = Reader { buf, pos: 0 };
    let mut fields = ExtFields::with_capacity(16);
    while r.pos < buf.len() {
        if fields.len() >= EXT_FIELDS_COUNT_MAX {
            return Err(HeaderError::TooManyExtFields { max: EXT_FIELDS_COUNT_MAX });
        }
        let key_length = r.len_i16()?;
        let key = r.string(key_length).map_err(|e| shift(e, base))?;
        let value_length = r.len_i32()?;
        let value = r.string(value_length).map_err(|e| shift(e, base))?;
        fields.push(key, value);
    }
    Ok(fields)
}

fn shift(e: HeaderError, base: usize) -> HeaderError {
    match e {
        HeaderError::InvalidUtf8 { offset } => HeaderError::InvalidUtf8 { offset: offset + base },
        HeaderError::UnexpectedEof { offset, need, have } => {
            HeaderError::UnexpectedEof { offset: offset + base, need, have }
        }
        other => other,
    }
}

/// Appends the binary encoding of `header` to `dst`.
///
/// The code and version are written as i16, as the reference does; codes past i16 (the
/// 5.x POP codes) are truncated exactly as Java's `(short)` cast would.
pub fn encode(header: &Header, dst: &mut impl BufMut) {
    dst.put_i16(header.code as i16);
    dst.put_u8(header.language.0);
    dst.put_i16(header.version as i16);
    dst.put_i32(header.opaque);
    dst.put_i32(header.flag);
    match &header.remark {
        Some(r) if !r.is_empty() => {
            dst.put_i32(r.len() as i32);
            dst.put_slice(r.as_bytes());
        }
        _ => dst.put_i32(0),
    }
    let ext_length: usize = header.ext_fields.iter().map(|(k, v)| 2 + k.len() + 4 + v.len()).sum();
    dst.put_i32(ext_length as i32);
    for (k, v) in header.ext_fields.iter() {
        dst.put_i16(k.len() as i16);
        dst.put_slice(k.as_bytes());
        dst.put_i32(v.len() as i32);
        dst.put_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Header;

    #[test]
    fn ext_fields_past_the_maximum_are_refused() {
        let mut h = Header::request(10, 1, SerializeType::RocketMq);
        for i in 0..EXT_FIELDS_COUNT_MAX {
            h.ext_fields.push(format!("k{i}"), String::new());
        }
        let mut buf = Vec::new();
        encode(&h, &mut buf);
        assert_eq!(decode(&buf).expect("at max").ext_fields.len(), EXT_FIELDS_COUNT_MAX);
        h.ext_fields.push("one-more".into(), String::new());
        let mut buf = Vec::new();
        encode(&h, &mut buf);
        assert_eq!(
            decode(&buf).unwrap_err(),
            HeaderError::TooManyExtFields { max: EXT_FIELDS_COUNT_MAX }
        );
    }
}
