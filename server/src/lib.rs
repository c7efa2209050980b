//! ramjet-server: the broker and NameServer daemons.
//!
//! - [`runtime`] starts the shards (one pinned glommio executor per core) and the
//!   embedded NameServer; [`shard`] is a shard's state and the cross-shard messages.
//! - [`handler`] holds the request handlers, one file per request-code family.
//! - [`namesrv`] is the NameServer (route registry) and its handlers.
//! - [`net`] is the connection driver shared by both daemons.
//! - [`replication`] is master/slave replication on its own shard.
//! - [`panic`]: a panic on any thread ends the process (the hook both binaries install).

#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod acl;
pub mod client_registry;
pub mod clock;
pub mod config;
pub mod consumer_offset;
pub mod controller;
pub mod controller_client;
pub mod durable_file;
pub mod error;
pub mod handler;
pub mod http;
pub mod lease;
pub mod live_settings;
pub mod lock_manager;
pub mod long_poll;
pub mod metrics;
pub mod namesrv;
pub mod net;
pub mod notify;
pub mod panic;
pub mod register;
pub mod replication;
pub mod reserved;
pub mod runtime;
pub mod schedule;
pub mod shard;
pub mod shard_ops;
pub mod signal;
pub mod subscription_group;
pub mod table_limits;
pub mod topic;
pub mod topic_journal;
pub mod transaction;
