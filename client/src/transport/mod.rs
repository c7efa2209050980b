//! Transports: the connection and the pool, over the sockets and timers of [`crate::runtime`].
//!
//! Everything above this module (routing, queue selection, request building, reply
//! parsing) is plain state and pure functions. A transport supplies a [`Connection`]
//! with `request`, `oneway` and `close`, and a [`ConnectionPool`] keyed by address.
//! The same code runs on glommio and on tokio: it reaches the runtime only through
//! [`crate::runtime`] (spawn, sleep, a polled `TcpStream`), and its wake-ups
//! ([`completion`]) are runtime-agnostic.

pub mod completion;
mod connection;
mod pool;

pub use connection::{Connection, ConnectionOptions, ServerRequestHandler};
pub use pool::ConnectionPool;
