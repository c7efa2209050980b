//! Transports: the only code in the client that touches sockets and timers.
//!
//! Everything above this module (routing, queue selection, request building, reply
//! parsing) is plain state and pure functions. A transport supplies a [`Connection`]
//! with `request`, `oneway` and `close`, and a [`ConnectionPool`] keyed by address.
//! The glommio transport is here; a tokio one is meant to slot in beside it behind a
//! cargo feature, reusing [`completion`] and [`crate::pending`].

pub mod completion;
mod connection;
mod pool;

pub use connection::{Connection, ConnectionOptions, ServerRequestHandler};
pub use pool::ConnectionPool;
