//! Access control (core): RocketMQ's plain ACL, from `plain_acl.yml` to a yes/no per
//! request. Not yet wired into dispatch; the broker calls, per request:
//!
//! 1. [`resource::resources`] — what the request names and the permission it needs
//!    (under [`resource::Policy::Reference`], or the opt-in `Extended` table);
//! 2. [`decision::validate`] — the reference's decision, over the current
//!    [`config::AclConfig`] (kept fresh by [`reload::AclReloader`]);
//! 3. on refusal, answers [`decision::DENIED_RESPONSE_CODE`] with
//!    [`decision::AclDenied::remark`].
//!
//! Lives on: every shard (each holds an `Rc` of the current config; the config is
//! immutable, a reload builds a new one).
//!
//! The signature itself is `ramjet_proto::acl` (shared with the client).

pub mod address;
pub mod config;
pub mod decision;
pub mod perm;
pub mod reload;
pub mod resource;
