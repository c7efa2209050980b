//! The JSON header, as fastjson writes it and as third-party clients send it.
//!
//! Leniency, exactly as the reference broker: keys may be missing (defaults: 0, none,
//! empty); `language` may be a name (`"JAVA"`) or an ordinal; `code`, `opaque`, `flag`
//! and `version` may be numbers or numeric strings; `extFields` values may be strings,
//! numbers or booleans (turned into their text); `null` values are skipped; unknown keys,
//! `serializeTypeCurrentRPC` included, are ignored.
//!
//! The header is parsed straight into its fields: no generic JSON tree is built (a tree costs
//! about 16 times the header's bytes), and at most [`EXT_FIELDS_COUNT_MAX`] extFields entries
//! are read. As with a tree, a repeated key keeps its last value and extFields come out in
//! key order.

use std::collections::BTreeMap;
use std::fmt;

use bytes::BufMut;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::command::{ExtFields, Header, LanguageCode, SerializeType, EXT_FIELDS_COUNT_MAX};
use crate::error::HeaderError;

/// Decodes a JSON header.
///
/// # Errors
/// Not a JSON object, a numeric field out of range, or more than [`EXT_FIELDS_COUNT_MAX`]
/// extFields entries.
pub fn decode(buf: &[u8]) -> Result<Header, HeaderError> {
    if buf.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_an_object());
    }
    let raw: RawHeader = serde_json::from_slice(buf).map_err(|e| {
        if e.to_string().starts_with(TOO_MANY_EXT_FIELDS) {
            HeaderError::TooManyExtFields { max: EXT_FIELDS_COUNT_MAX }
        } else {
            HeaderError::Json { message: crate::text::clip_echo(&e.to_string()) }
        }
    })?;
    let mut header = Header { serialize_type: SerializeType::Json, ..Header::default() };
    header.language = LanguageCode::JAVA;
    // Fields in key order, as the generic tree this replaces visited them (the first
    // error reported is the same).
    if let Some(v) = &raw.code {
        header.code = int_field("code", v)?;
    }
    if let Some(v) = raw.ext_fields {
        header.ext_fields = ext_fields(v)?;
    }
    if let Some(v) = &raw.flag {
        header.flag = int_field("flag", v)?;
    }
    if let Some(v) = &raw.language {
        header.language = language_field(v);
    }
    if let Some(v) = &raw.opaque {
        header.opaque = int_field("opaque", v)?;
    }
    if let Some(v) = raw.remark {
        header.remark = scalar_text(v);
    }
    if let Some(v) = &raw.version {
        header.version = int_field("version", v)?;
    }
    Ok(header)
}

fn not_an_object() -> HeaderError {
    HeaderError::Json { message: "header is not a JSON object".into() }
}

/// Start of the serde error message that stands for `HeaderError::TooManyExtFields`.
const TOO_MANY_EXT_FIELDS: &str = "too many extFields entries";

/// One JSON value of the header, as much of it as the header needs.
enum Scalar {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    /// An object or array, kept as its JSON text.
    Nested(String),
}

/// `extFields`: an object of scalars, or something else (an error when used).
enum RawExt {
    Null,
    Map(BTreeMap<String, Scalar>),
    NotObject,
}

/// The top-level keys the header uses; a repeated key keeps its last value.
#[derive(Default)]
struct RawHeader {
    code: Option<Scalar>,
    opaque: Option<Scalar>,
    flag: Option<Scalar>,
    version: Option<Scalar>,
    language: Option<Scalar>,
    remark: Option<Scalar>,
    ext_fields: Option<RawExt>,
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
                let mut h = RawHeader::default();
                while let Some(key) = map.next_key::<KeyName>()? {
                    match key {
                        KeyName::Code => h.code = Some(map.next_value()?),
                        KeyName::Opaque => h.opaque = Some(map.next_value()?),
                        KeyName::Flag => h.flag = Some(map.next_value()?),
                        KeyName::Version => h.version = Some(map.next_value()?),
                        KeyName::Language => h.language = Some(map.next_value()?),
                        KeyName::Remark => h.remark = Some(map.next_value()?),
                        KeyName::ExtFields => h.ext_fields = Some(map.next_value()?),
                        KeyName::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// A top-level key, matched without keeping its text.
enum KeyName {
    Code,
    Opaque,
    Flag,
    Version,
    Language,
    Remark,
    ExtFields,
    Other,
}

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<KeyName, E> {
                Ok(match key {
                    "code" => KeyName::Code,
                    "opaque" => KeyName::Opaque,
                    "flag" => KeyName::Flag,
                    "version" => KeyName::Version,
                    "language" => KeyName::Language,
                    "remark" => KeyName::Remark,
                    "extFields" => KeyName::ExtFields,
                    _ => KeyName::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        // serde_json hands only finite numbers to visitors.
        Ok(serde_json::Number::from_f64(v).map_or(Scalar::Null, Scalar::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::String(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        // Rare (a nested object as a value): its text is what the header keeps. The tree
        // is bounded by the header's bytes, and dropped at once.
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Scalar::Nested(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Scalar::Nested(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for RawExt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawExt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("extFields")
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawExt, E> {
                Ok(RawExt::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawExt, A::Error> {
                let mut fields = BTreeMap::new();
                let mut count = 0usize;
                while let Some(key) = map.next_key::<String>()? {
                    count += 1;
                    if count > EXT_FIELDS_COUNT_MAX {
                        return Err(de::Error::custom(TOO_MANY_EXT_FIELDS));
                    }
                    let value: Scalar = map.next_value()?;
                    fields.insert(key, value);
                }
                Ok(RawExt::Map(fields))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawExt, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawExt::NotObject)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawExt, E> {
                Ok(RawExt::NotObject)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawExt, E> {
                Ok(RawExt::NotObject)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawExt, E> {
                Ok(RawExt::NotObject)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawExt, E> {
                Ok(RawExt::NotObject)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<RawExt, E> {
                Ok(RawExt::NotObject)
            }
        }
        d.deserialize_any(V)
    }
}

fn int_field(field: &'static str, value: &Scalar) -> Result<i32, HeaderError> {
    let n = match value {
        Scalar::Null => return Ok(0),
        Scalar::Number(n) => n.as_i64(),
        Scalar::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let n = n.ok_or_else(|| HeaderError::Json { message: format!("{field} is not an integer") })?;
    i32::try_from(n).map_err(|_| HeaderError::FieldOutOfRange { field, value: n })
}

fn language_field(value: &Scalar) -> LanguageCode {
    match value {
        Scalar::String(s) => LanguageCode::from_name(s),
        Scalar::Number(n) => {
            n.as_u64().and_then(|v| u8::try_from(v).ok()).map_or(LanguageCode::OTHER, LanguageCode)
        }
        _ => LanguageCode::OTHER,
    }
}

/// The text of a scalar: strings as they are, numbers and booleans as written; `None` for
/// null; nested objects and arrays as their JSON text.
fn scalar_text(value: Scalar) -> Option<String> {
    match value {
        Scalar::Null => None,
        Scalar::String(s) | Scalar::Nested(s) => Some(s),
        Scalar::Bool(b) => Some(if b { "true" } else { "false" }.to_string()),
        Scalar::Number(n) => Some(n.to_string()),
    }
}

fn ext_fields(value: RawExt) -> Result<ExtFields, HeaderError> {
    match value {
        RawExt::Null => Ok(ExtFields::new()),
        RawExt::Map(map) => {
            let mut fields = ExtFields::with_capacity(map.len());
            for (k, v) in map {
                if let Some(text) = scalar_text(v) {
                    fields.push(k, text);
                }
            }
            Ok(fields)
        }
        RawExt::NotObject => {
            Err(HeaderError::Json { message: "extFields is not an object".into() })
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_a_tree_would_read_them() {
        let h = decode(
            br#" {"code":"12","opaque":7,"flag":null,"language":"GO","remark":{"a":[1,2.5]},
                "extFields":{"b":true,"a":1.5,"c":null,"d":"x","b":"last","n":{"k":1}},
                "unknown":[{"deep":[]}]}"#,
        )
        .expect("decodes");
        assert_eq!((h.code, h.opaque, h.flag), (12, 7, 0));
        assert_eq!(h.language, LanguageCode::from_name("GO"));
        assert_eq!(h.remark.as_deref(), Some(r#"{"a":[1,2.5]}"#));
        let ext: Vec<(&str, &str)> = h.ext_fields.iter().collect();
        assert_eq!(ext, vec![("a", "1.5"), ("b", "last"), ("d", "x"), ("n", r#"{"k":1}"#)]);
    }

    #[test]
    fn errors_are_those_of_the_first_bad_field_in_key_order() {
        let e = decode(br#"{"version":"x","code":1.5}"#).unwrap_err();
        assert_eq!(e, HeaderError::Json { message: "code is not an integer".into() });
        let e = decode(br#"{"opaque":4294967296}"#).unwrap_err();
        assert_eq!(e, HeaderError::FieldOutOfRange { field: "opaque", value: 4_294_967_296 });
        assert_eq!(decode(b"[1]").unwrap_err(), not_an_object());
        assert_eq!(decode(b"  7").unwrap_err(), not_an_object());
        let e = decode(br#"{"extFields":[1]}"#).unwrap_err();
        assert_eq!(e, HeaderError::Json { message: "extFields is not an object".into() });
        assert!(matches!(decode(br#"{"code":1"#), Err(HeaderError::Json { .. })));
    }

    #[test]
    fn ext_fields_past_the_maximum_are_refused() {
        let pairs = |n: usize| (0..n).map(|i| format!("\"k{i}\":0")).collect::<Vec<_>>();
        let at_max = format!("{{\"extFields\":{{{}}}}}", pairs(EXT_FIELDS_COUNT_MAX).join(","));
        assert_eq!(decode(at_max.as_bytes()).expect("at max").ext_fields.len(), 1024);
        let past = format!("{{\"extFields\":{{{}}}}}", pairs(EXT_FIELDS_COUNT_MAX + 1).join(","));
        assert_eq!(
            decode(past.as_bytes()).unwrap_err(),
            HeaderError::TooManyExtFields { max: EXT_FIELDS_COUNT_MAX }
        );
        // Repeats count too: the work per header is bounded, not only what it keeps.
        let repeats = format!("{{\"extFields\":{{{}}}}}", vec!["\"k\":0"; 2000].join(","));
        assert!(decode(repeats.as_bytes()).is_err());
    }
}
