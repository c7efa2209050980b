//! The remoting command header: the part of every frame that is not the body.
//!
//! ```text
//! Header { code, language, version, opaque, flag, remark, ext_fields }
//!   flag bit 0 (0x1): this frame is a response
//!   flag bit 1 (0x2): one-way request, no response expected
//! ```
//!
//! `ext_fields` is the typed request or response header flattened to string pairs.
//! Values from JSON headers arrive as strings, numbers or booleans; the JSON decoder turns
//! every scalar into its text so that typed headers parse one representation only.

use crate::error::FieldError;

/// Flag bit: the frame is a response.
pub const FLAG_RESPONSE: i32 = 0x1;
/// Flag bit: one-way request; the receiver sends no response.
pub const FLAG_ONEWAY: i32 = 0x2;

/// Header encoding, the high byte of the frame's header-length word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SerializeType {
    /// JSON header (fastjson on the Java side); what third-party clients send.
    #[default]
    Json,
    /// The binary `ROCKETMQ` header; ramjet's fast path.
    RocketMq,
}

impl SerializeType {
    /// The wire byte of this encoding.
    pub fn as_byte(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    /// Parses the wire byte; `None` for anything but 0 and 1.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }
}

/// `LanguageCode` ordinals (`LanguageCode.java`). The byte value is the ordinal.
pub const LANGUAGE_NAMES: [&str; 14] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP",
    "OMS", "RUST", "NODE_JS",
];

/// Language code of the peer (`LanguageCode.java` ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LanguageCode(pub u8);

impl LanguageCode {
    /// Java.
    pub const JAVA: LanguageCode = LanguageCode(0);
    /// Rust: what ramjet's own client sends.
    pub const RUST: LanguageCode = LanguageCode(12);
    /// Other / unknown.
    pub const OTHER: LanguageCode = LanguageCode(7);

    /// The JSON name of this language (`"JAVA"`); unknown ordinals are `"OTHER"`.
    pub fn name(self) -> &'static str {
        LANGUAGE_NAMES.get(usize::from(self.0)).copied().unwrap_or("OTHER")
    }

    /// Parses a JSON name; unknown names map to OTHER, as lenient peers expect.
    pub fn from_name(name: &str) -> LanguageCode {
        LANGUAGE_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .and_then(|p| u8::try_from(p).ok())
            .map_or(LanguageCode::OTHER, LanguageCode)
    }
}

impl Default for LanguageCode {
    fn default() -> Self {
        LanguageCode::RUST
    }
}

/// The `version` ramjet writes in its own frames: V4_9_4 (401), so NameServer replies to
/// our client are standard JSON.
pub const VERSION_CURRENT: i32 = 401;

/// Most `extFields` entries a decoded header may carry; a header with more is refused
/// (`HeaderError::TooManyExtFields`: the connection is closed, as for any header that does
/// not decode). The largest request of the reference carries about 30; the bound keeps a
/// 16 MiB header of `"a":0,` pairs from becoming millions of strings.
pub const EXT_FIELDS_COUNT_MAX: usize = 1024;

/// The string map carried in `extFields`, kept in arrival order.
///
/// A small vector beats a hash map here: headers have at most ~20 fields, and lookups are
/// by short literal names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtFields(Vec<(String, String)>);

impl ExtFields {
    /// An empty map.
    pub fn new() -> Self {
        ExtFields(Vec::new())
    }

    /// An empty map with room for `n` pairs.
    pub fn with_capacity(n: usize) -> Self {
        ExtFields(Vec::with_capacity(n))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Appends a pair without checking for an earlier one (decoders use this).
    pub fn push(&mut self, key: String, value: String) {
        self.0.push((key, value));
    }

    /// A required string field.
    ///
    /// # Errors
    /// `FieldError::Missing` when absent.
    pub fn req_str(&self, field: &'static str) -> Result<&str, FieldError> {
        self.get(field).ok_or(FieldError::Missing { field })
    }

    /// A required integer field (any integer type), lenient as the reference: surrounding
    /// whitespace is ignored.
    ///
    /// # Errors
    /// `Missing` when absent, `Invalid` when not an integer of that type.
    pub fn req_int<T: std::str::FromStr>(&self, field: &'static str) -> Result<T, FieldError> {
        let v = self.req_str(field)?;
        parse_int(field, v)
    }

    /// An optional integer field: `Ok(None)` when absent or empty.
    ///
    /// # Errors
    /// `Invalid` when present but not an integer of that type.
    pub fn opt_int<T: std::str::FromStr>(
        &self,
        field: &'static str,
    ) -> Result<Option<T>, FieldError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => parse_int(field, v).map(Some),
        }
    }

    /// An optional boolean: `true`/`false` (any case) or `1`/`0`; absent or empty is `None`.
    ///
    /// # Errors
    /// `Invalid` for any other text.
    pub fn opt_bool(&self, field: &'static str) -> Result<Option<bool>, FieldError> {
        match self.get(field).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(Some(false)),
            Some(v) => Err(FieldError::Invalid { field, value: crate::text::clip_echo(v) }),
        }
    }

    /// An optional string: absent is `None` (an empty string stays `Some("")`).
    pub fn opt_str(&self, field: &'static str) -> Option<&str> {
        self.get(field)
    }
}

fn parse_int<T: std::str::FromStr>(field: &'static str, v: &str) -> Result<T, FieldError> {
    v.trim()
        .parse::<T>()
        .map_err(|_| FieldError::Invalid { field, value: crate::text::clip_echo(v) })
}

/// The decoded header of one frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Request code, or response code in a reply.
    pub code: i32,
    /// Sender's language.
    pub language: LanguageCode,
    /// Sender's `MQVersion` ordinal.
    pub version: i32,
    /// Request id; a reply carries its request's.
    pub opaque: i32,
    /// Bit 0 response, bit 1 one-way.
    pub flag: i32,
    /// Free text, mostly error descriptions.
    pub remark: Option<String>,
    /// The typed header as string pairs.
    pub ext_fields: ExtFields,
    /// The encoding this header arrived in (or is to be written in).
    pub serialize_type: SerializeType,
}

/// Longest remark [`Header::with_remark`] keeps whole.
pub const REMARK_BYTES_MAX: usize = 4096;

impl Header {
    /// A request header with `code`, written in `serialize_type`.
    pub fn request(code: i32, opaque: i32, serialize_type: SerializeType) -> Header {
        Header {
            code,
            language: LanguageCode::RUST,
            version: VERSION_CURRENT,
            opaque,
            flag: 0,
            remark: None,
            ext_fields: ExtFields::new(),
            serialize_type,
        }
    }

    /// A response header answering `request` with `code`, in the request's encoding.
    pub fn response_to(request: &Header, code: i32) -> Header {
        Header {
            code,
            language: LanguageCode::RUST,
            version: VERSION_CURRENT,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            remark: None,
            ext_fields: ExtFields::new(),
            serialize_type: request.serialize_type,
        }
    }

    /// Sets the remark (builder style).
    ///
    /// A remark over [`REMARK_BYTES_MAX`] is clipped (see [`crate::text::clip`]): a
    /// backstop so no echoed value can make a response header unencodable.
    pub fn with_remark(mut self, remark: impl Into<String>) -> Header {
        let remark = remark.into();
        self.remark = Some(if remark.len() > REMARK_BYTES_MAX {
            crate::text::clip(&remark, REMARK_BYTES_MAX)
        } else {
            remark
        });
        self
    }

    /// True when this frame is a response.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// True when this request expects no response.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// Marks this request one-way.
    pub fn set_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }
}

/// One decoded frame: header and body. The body shares the read buffer (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// The body, possibly empty.
    pub body: bytes::Bytes,
}
