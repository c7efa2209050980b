//! Errors of the codec. Every variant carries the numbers a log line needs.

use std::fmt;

/// A frame could not be read at all: the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix is smaller than the 4-byte header-length field it must contain.
    LengthTooSmall {
        /// The length prefix as read.
        length: i64,
    },
    /// The length prefix is over the configured maximum.
    LengthTooLarge {
        /// The length prefix as read.
        length: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The header length runs past the frame.
    HeaderLengthInvalid {
        /// Header length read from the frame.
        header_length: u32,
        /// Bytes left in the frame after the header-length field.
        available: usize,
    },
    /// The serialize-type byte is neither 0 (JSON) nor 1 (ROCKETMQ).
    SerializeTypeUnknown {
        /// The byte as read.
        value: u8,
    },
    /// The header bytes do not parse.
    Header(HeaderError),
}

/// A header (JSON or binary) is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The binary header ended early.
    UnexpectedEof {
        /// Position in the header where reading failed.
        offset: usize,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// A length field inside the binary header is negative.
    NegativeLength {
        /// Position of the length field.
        offset: usize,
        /// The value read.
        value: i64,
    },
    /// A string is not UTF-8.
    InvalidUtf8 {
        /// Position of the string in the header.
        offset: usize,
    },
    /// The JSON header is not a JSON object with the expected fields.
    Json {
        /// serde_json's message.
        message: String,
    },
    /// A header field's value is outside its range.
    FieldOutOfRange {
        /// Field name.
        field: &'static str,
        /// The value read.
        value: i64,
    },
    /// The header carries more extFields entries than
    /// [`crate::command::EXT_FIELDS_COUNT_MAX`].
    TooManyExtFields {
        /// The maximum.
        max: usize,
    },
}

/// A typed request or response header is missing a field or has a bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// A required extFields entry is absent.
    Missing {
        /// Field name.
        field: &'static str,
    },
    /// An extFields value does not parse as the field's type.
    Invalid {
        /// Field name.
        field: &'static str,
        /// The value as received, clipped by [`crate::text::clip_echo`].
        value: String,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LengthTooSmall { length } => {
                write!(f, "frame length {length} is smaller than 4")
            }
            FrameError::LengthTooLarge { length, max } => {
                write!(f, "frame length {length} exceeds maximum {max}")
            }
            FrameError::HeaderLengthInvalid { header_length, available } => write!(
                f,
                "header length {header_length} exceeds the {available} bytes left in the frame"
            ),
            FrameError::SerializeTypeUnknown { value } => {
                write!(f, "unknown serialize type {value}")
            }
            FrameError::Header(e) => write!(f, "bad header: {e}"),
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::UnexpectedEof { offset, need, have } => {
                write!(f, "header ends at {offset}: need {need} bytes, have {have}")
            }
            HeaderError::NegativeLength { offset, value } => {
                write!(f, "negative length {value} at header offset {offset}")
            }
            HeaderError::InvalidUtf8 { offset } => {
                write!(f, "invalid UTF-8 at header offset {offset}")
            }
            HeaderError::Json { message } => write!(f, "bad JSON header: {message}"),
            HeaderError::FieldOutOfRange { field, value } => {
                write!(f, "header field {field} value {value} out of range")
            }
            HeaderError::TooManyExtFields { max } => {
                write!(f, "header has more than {max} extFields entries")
            }
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::Missing { field } => write!(f, "the custom header field {field} is null"),
            FieldError::Invalid { field, value } => {
                // Already clipped when built by proto; clipping again leaves that unchanged
                // and bounds a value built elsewhere.
                let value = crate::text::clip(
                    value,
                    crate::text::ECHO_BYTES_MAX + crate::text::CUT_MARK_BYTES_MAX,
                );
                write!(f, "the custom header field {field} has an invalid value \"{value}\"")
            }
        }
    }
}

/// A frame could not be encoded: a header field is too large for the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded header is longer than the 24 bits of the header-length field allow.
    HeaderTooLarge {
        /// Encoded header length.
        header_length: usize,
        /// The largest header the format can carry.
        max: usize,
    },
    /// Header plus body are longer than the 31-bit frame length allows.
    FrameTooLarge {
        /// The frame length (everything after the length prefix).
        length: u64,
    },
    /// An ext-field key is longer than the binary encoding's i16 length allows.
    KeyTooLong {
        /// The key's length in bytes.
        length: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::HeaderTooLarge { header_length, max } => {
                write!(f, "encoded header of {header_length} bytes exceeds {max}")
            }
            EncodeError::FrameTooLarge { length } => {
                write!(f, "frame length {length} exceeds {}", i32::MAX)
            }
            EncodeError::KeyTooLong { length } => {
                write!(f, "ext-field key of {length} bytes exceeds {}", i16::MAX)
            }
        }
    }
}

impl std::error::Error for EncodeError {}
impl std::error::Error for FrameError {}
impl std::error::Error for HeaderError {}
impl std::error::Error for FieldError {}

impl From<HeaderError> for FrameError {
    fn from(e: HeaderError) -> Self {
        FrameError::Header(e)
    }
}
