//! ramjet-client: a low-level Rust client for RocketMQ-compatible brokers (ramjet and
//! Apache RocketMQ 4.x/5.x remoting).
//!
//! Layout: protocol logic without I/O, and a thin transport around it.
//!
//! - [`pending`]: opaque allocation and the pending-request table of a connection.
//! - [`transport`]: the glommio connection (reader and writer tasks) and the pool.
//! - [`config`], [`error`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod pending;
pub mod transport;

pub use config::ClientConfig;
pub use error::ClientError;
pub use transport::{Connection, ConnectionOptions, ConnectionPool};
