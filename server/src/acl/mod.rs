//! Access control: RocketMQ's plain ACL, from `plain_acl.yml` to a yes/no per request.
//! With `aclEnable=true` the broker checks every request in `handler::serve_request`
//! ([`gate::check`], on the shard that received it, before routing), which calls:
//!
//! 1. [`resource::resources`] — what the request names and the permission it needs
//!    (under [`resource::Policy::Reference`], or the opt-in `Extended` table);
//! 2. [`decision::validate`] — the reference's decision, over the current
//!    [`config::AclConfig`] (kept fresh by [`reload::AclReloader`]);
//! 3. on refusal, answers [`decision::DENIED_RESPONSE_CODE`] with
//!    [`decision::AclDenied::remark`].
//!
//! Lives on: every shard (each holds an `Arc` of the current config in its
//! [`gate::AclGate`]; the config is immutable, a reload builds a new one and shard 0's
//! [`gate::reload_loop`] installs it everywhere). Denials are counted per account
//! ([`stats`]) and shown on `/metrics`.
//!
//! The NameServer's check ([`namesrv`], ramjet's own decision) reuses the same decision
//! under [`resource::Policy::NameServer`]: its write codes need an admin account.
//!
//! The signature itself is `ramjet_proto::acl` (shared with the client).

pub mod address;
pub mod config;
pub mod decision;
pub mod gate;
pub mod namesrv;
pub mod perm;
pub mod reload;
pub mod resource;
pub mod stats;
