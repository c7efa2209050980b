//! The JSON header, as fastjson writes it and as third-party clients send it.
//!
//! Leniency, exactly as the reference broker: keys may be missing (defaults: 0, none,
//! empty); `language` may be a name (`"JAVA"`) or an ordinal; `code`, `opaque`, `flag`
//! and `version` may be numbers or numeric strings; `extFields` values may be strings,
//! numbers or booleans (turned into their text); `null` values are skipped; unknown keys,
//! `serializeTypeCurrentRPC` included, are ignored.

use bytes::BufMut;
use serde_json::Value;

use crate::command::{ExtFields, Header, LanguageCode, SerializeType};
use crate::error::HeaderError;

/// Decodes a JSON header.
///
/// # Errors
/// Not a JSON object, or a numeric field out of range.
pub fn decode(buf: &[u8]) -> Result<Header, HeaderError> {
    let value: Value = serde_json::from_slice(buf)
        .map_err(|e| HeaderError::Json { message: crate::text::clip_echo(&e.to_string()) })?;
    let Value::Object(map) = value else {
        return Err(HeaderError::Json { message: "header is not a JSON object".into() });
    };
    let mut header = Header { serialize_type: SerializeType::Json, ..Header::default() };
    header.language = LanguageCode::JAVA;
    for (key, value) in map {
        match key.as_str() {
            "code" => header.code = int_field("code", &value)?,
            "opaque" => header.opaque = int_field("opaque", &value)?,
            "flag" => header.flag = int_field("flag", &value)?,
            "version" => header.version = int_field("version", &value)?,
            "language" => header.language = language_field(&value),
            "remark" => header.remark = scalar_text(&value),
            "extFields" => header.ext_fields = ext_fields(value)?,
            _ => {}
        }
    }
    Ok(header)
}

fn int_field(field: &'static str, value: &Value) -> Result<i32, HeaderError> {
    let n = match value {
        Value::Null => return Ok(0),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let n = n.ok_or_else(|| HeaderError::Json { message: format!("{field} is not an integer") })?;
    i32::try_from(n).map_err(|_| HeaderError::FieldOutOfRange { field, value: n })
}

fn language_field(value: &Value) -> LanguageCode {
    match value {
        Value::String(s) => LanguageCode::from_name(s),
        Value::Number(n) => {
            n.as_u64().and_then(|v| u8::try_from(v).ok()).map_or(LanguageCode::OTHER, LanguageCode)
        }
        _ => LanguageCode::OTHER,
    }
}

/// The text of a scalar: strings as they are, numbers and booleans as written; `None` for
/// null; nested objects and arrays as their JSON text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn ext_fields(value: Value) -> Result<ExtFields, HeaderError> {
    match value {
        Value::Null => Ok(ExtFields::new()),
        Value::Object(map) => {
            let mut fields = ExtFields::with_capacity(map.len());
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => Some(s),
                    other => scalar_text(&other),
                };
                if let Some(text) = text {
                    fields.push(k, text);
                }
            }
            Ok(fields)
        }
        _ => Err(HeaderError::Json { message: "extFields is not an object".into() }),
    }
}

/// Appends the JSON encoding of `header` to `dst`, keys in fastjson's alphabetical order.
pub fn encode(header: &Header, dst: &mut impl BufMut) {
    let mut out = Vec::with_capacity(128 + header.ext_fields.len() * 32);
    out.extend_from_slice(b"{\"code\":");
    out.extend_from_slice(header.code.to_string().as_bytes());
    out.extend_from_slice(b",\"extFields\":{");
    for (i, (k, v)) in header.ext_fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(&mut out, k);
        out.push(b':');
        write_json_string(&mut out, v);
    }
    out.extend_from_slice(b"},\"flag\":");
    out.extend_from_slice(header.flag.to_string().as_bytes());
    out.extend_from_slice(b",\"language\":\"");
    out.extend_from_slice(header.language.name().as_bytes());
    out.extend_from_slice(b"\",\"opaque\":");
    out.extend_from_slice(header.opaque.to_string().as_bytes());
    if let Some(remark) = &header.remark {
        out.extend_from_slice(b",\"remark\":");
        write_json_string(&mut out, remark);
    }
    out.extend_from_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    out.extend_from_slice(header.version.to_string().as_bytes());
    out.push(b'}');
    dst.put_slice(&out);
}

/// Writes `s` as a JSON string literal with the escapes JSON requires.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}
