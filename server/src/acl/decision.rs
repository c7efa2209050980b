//! The access decision for one request, step for step as RocketMQ 5.1.4's
//! `PlainAccessResource.parse` then `PlainPermissionManager.validate` then
//! `PlainPermissionChecker.check`:
//!
//! | step | condition                                   | outcome                         |
//! |------|---------------------------------------------|---------------------------------|
//! | 0    | resources unreadable (bad heartbeat body…)  | refuse, even if white-listed    |
//! | 1    | peer in `globalWhiteRemoteAddresses`        | allow, nothing else checked     |
//! | 2    | no `AccessKey`                              | refuse (M2)                     |
//! | 3    | unknown access key                          | refuse (M3)                     |
//! | 4    | peer in the account's `whiteRemoteAddress`  | allow, NO signature/perm check  |
//! | 5    | `Signature` differs or is missing           | refuse (M5)                     |
//! | 6    | `RMQ_SYS_TRACE_TOPIC` needed with exactly PUB | allow                         |
//! | 7    | account is admin                            | allow                           |
//! | 8    | admin-only code                             | refuse (M8)                     |
//! | 9    | resource not in the table, default denies   | refuse (M9)                     |
//! | 10   | resource in the table, its perm denies      | refuse (M10)                    |
//! | 11   | otherwise                                   | allow                           |
//!
//! Messages: M2 `No accessKey is configured`; M3 `No acl config for K`; M5 `Check
//! signature failed for accessKey=K`; M8 `Need admin permission for request code=C, but
//! accessKey=K is not`; M9 `No default permission for topic:T` (or `group:G`); M10 `No
//! permission for topic:T` (or `group:G`).
//!
//! `SecurityToken` is signed but never compared, as in the reference.
//!
//! The answer to a refusal: the broker's RPC hook throws, and
//! `NettyRemotingAbstract.processRequestCommand` answers `SYSTEM_ERROR` (1) with the remark
//! `UtilAll.exceptionSimpleDesc(e)` = `"org.apache.rocketmq.acl.common.AclException: " +
//! message + ", " + <top Java stack frame>`. ramjet writes the same text without the Java
//! stack frame. A one-way request gets no answer.

use std::fmt;
use std::net::IpAddr;

use ramjet_proto::acl::{self, ContentRule};
use ramjet_proto::codes::response;
use ramjet_proto::ExtFields;

use super::config::{Account, AclConfig};
use super::perm::Perm;
use super::resource::{needs_admin, resources, Policy, Resource};

/// `TopicValidator.RMQ_SYS_TRACE_TOPIC`: sends to it with PUB skip the permission check.
pub const TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";

/// The response code of a refused request (`RemotingSysResponseCode.SYSTEM_ERROR`).
pub const DENIED_RESPONSE_CODE: i32 = response::SYSTEM_ERROR;

/// The class name the reference's remark starts with.
const EXCEPTION_CLASS: &str = "org.apache.rocketmq.acl.common.AclException";

/// What the decision needs from one request.
#[derive(Debug, Clone, Copy)]
pub struct AclRequest<'a> {
    /// Request code.
    pub code: i32,
    /// The header's `version` (decides the content rule, see `ramjet_proto::acl`).
    pub version: i32,
    /// The peer's address (the port is not part of any decision).
    pub remote: IpAddr,
    /// The ext fields as received.
    pub ext: &'a ExtFields,
    /// The body as received.
    pub body: &'a [u8],
    /// Which resource table applies ([`Policy::Reference`] unless configured otherwise).
    pub policy: Policy,
}

/// Why a request was allowed (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Step 1: the peer is in `globalWhiteRemoteAddresses`.
    GlobalWhiteList,
    /// Step 4: the peer is in the account's `whiteRemoteAddress`.
    AccountWhiteList,
    /// Step 6: a PUB to the trace topic.
    TraceTopic,
    /// Step 7: an admin account.
    Admin,
    /// Step 11: every resource is granted.
    Granted,
}

/// A refused request: the reference's `AclException` message and the account, if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclDenied {
    /// The access key the request named, when it named one (for per-account metrics).
    pub access_key: Option<String>,
    /// The reference's exception message.
    pub message: String,
}

impl AclDenied {
    /// The response remark: `org.apache.rocketmq.acl.common.AclException: <message>`.
    pub fn remark(&self) -> String {
        format!("{EXCEPTION_CLASS}: {}", self.message)
    }
}

impl fmt::Display for AclDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AclDenied {}

/// Decides one request (see the module table).
///
/// # Errors
/// [`AclDenied`] with the reference's message when the request is refused.
pub fn validate(config: &AclConfig, request: &AclRequest<'_>) -> Result<Allowed, AclDenied> {
    let access_key = request.ext.get(acl::ACCESS_KEY);
    let deny = |message: String| AclDenied { access_key: access_key.map(str::to_string), message };
    // Step 0. The reference stops parsing when the request has no ext fields at all.
    let needed = if request.ext.is_empty() {
        Vec::new()
    } else {
        resources(request.policy, request.code, request.ext, request.body)
            .map_err(|e| deny(e.to_string()))?
    };
    if config.global_white.iter().any(|p| p.matches(request.remote)) {
        return Ok(Allowed::GlobalWhiteList);
    }
    let Some(key) = access_key else {
        return Err(deny("No accessKey is configured".to_string()));
    };
    let Some(account) = config.accounts.get(key) else {
        return Err(deny(format!("No acl config for {key}")));
    };
    if account.white.matches(request.remote) {
        return Ok(Allowed::AccountWhiteList);
    }
    let rule = ContentRule::Broker { version: request.version };
    if !acl::verify(request.ext, request.body, rule, &account.secret_key) {
        return Err(deny(format!("Check signature failed for accessKey={key}")));
    }
    if needed.iter().any(|(r, p)| r.name() == TRACE_TOPIC && *p == Perm::PUB) {
        return Ok(Allowed::TraceTopic);
    }
    check_perm(account, request, &needed).map_err(deny)
}

/// `PlainPermissionChecker.check`: steps 7 to 11.
fn check_perm(
    account: &Account,
    request: &AclRequest<'_>,
    needed: &[(Resource, Perm)],
) -> Result<Allowed, String> {
    let code = request.code;
    if account.admin {
        return Ok(Allowed::Admin);
    }
    if needs_admin(request.policy, code) {
        let key = &account.access_key;
        return Err(format!(
            "Need admin permission for request code={code}, but accessKey={key} is not"
        ));
    }
    for (resource, perm) in needed {
        match account.perms.get(resource.name()) {
            None => {
                let owned = if resource.is_group() {
                    account.default_group_perm
                } else {
                    account.default_topic_perm
                };
                if !owned.grants(*perm) {
                    return Err(format!("No default permission for {resource}"));
                }
            }
            Some(owned) if !owned.grants(*perm) => {
                return Err(format!("No permission for {resource}"));
            }
            Some(_) => {}
        }
    }
    Ok(Allowed::Granted)
}

#[cfg(test)]
mod tests;
