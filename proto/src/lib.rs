//! ramjet-proto: a pure codec for RocketMQ's 4.x remoting protocol.
//!
//! No I/O, no async, no runtime, no clocks: bytes in, typed values out, and back. The
//! broker, the client and the load generator share it.
//!
//! - [`frame`]: length-prefixed frames, split without copying the body.
//! - [`json_header`] and [`binary_header`]: the two header encodings.
//! - [`command`]: the decoded header and ext fields.
//! - [`codes`]: request and response codes.
//! - [`message`]: the stored-message record, properties, message ids.
//! - [`header`]: typed request and response headers over the ext fields.
//! - [`batch`]: the SEND_BATCH_MESSAGE body.
//! - [`body`]: JSON bodies (routes, heartbeats, locks), fastjson-tolerant.
//! - [`register_body`]: the compressed REGISTER_BROKER body (zlib, the reference's layout).
//! - [`admin_body`]: JSON bodies of admin and statistics requests (mqadmin's).
//! - [`acl`]: the plain-ACL request signature (HmacSHA1 over sorted ext field values).
//! - [`controller`]: the controller's headers and bodies (RocketMQ 5 controller mode).
//! - [`text`]: client text clipped before it is echoed in a remark.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod acl;
pub mod admin_body;
pub mod batch;
pub mod binary_header;
pub mod body;
pub mod codes;
pub mod command;
pub mod controller;
pub mod error;
pub mod filter;
pub mod frame;
pub mod header;
pub mod json_header;
pub mod message;
pub mod register_body;
pub mod text;
pub mod topic_names;

pub use body::BodyError;
pub use command::{ExtFields, Frame, Header, LanguageCode, SerializeType};
pub use error::{EncodeError, FieldError, FrameError, HeaderError};
pub use header::CommandHeader;
