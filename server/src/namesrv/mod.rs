//! The NameServer: a nearly stateless routing registry (RocketMQ's `namesrv`).
//!
//! Lives on: its own executor, embedded in the broker process (when no `-n` is given) or
//! alone in `ramjet-namesrv`. Brokers register with it every 30 s over ordinary remoting
//! connections; clients ask it for routes.

pub mod route_info;
pub mod service;

pub use service::{run_namesrv, NamesrvService};
