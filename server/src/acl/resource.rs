//! Request code → the resources it names and the permission each needs, as
//! `PlainAccessResource.parse` (RocketMQ 5.1.4, remoting path) decides it, plus the
//! reference's admin-only codes (`acl/common/Permission.ADMIN_CODE`).
//!
//! A resource is a topic name, or a group written as its retry topic `%RETRY%group`; the
//! reference keeps both in one map, and any name starting with `%RETRY%` is checked as a
//! group.
//!
//! | code                          | resources (field names are ext fields)          |
//! |-------------------------------|-------------------------------------------------|
//! | SEND_MESSAGE (10)             | `topic` PUB; a `%RETRY%` topic: `group` SUB ¹   |
//! | SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320) | `b` PUB; a `%RETRY%` topic: group `a` SUB |
//! | CONSUMER_SEND_MSG_BACK (36)   | group `group` SUB                               |
//! | PULL_MESSAGE (11)             | `topic` SUB, group `consumerGroup` SUB          |
//! | QUERY_MESSAGE (12)            | `topic` SUB                                     |
//! | HEART_BEAT (34)               | body: every consumer group SUB, every subscribed topic SUB |
//! | UNREGISTER_CLIENT (35)        | group `consumerGroup` SUB (`clientID` required) |
//! | GET_CONSUMER_LIST_BY_GROUP (38) | group `consumerGroup` SUB (required)          |
//! | UPDATE_CONSUMER_OFFSET (15)   | group `consumerGroup` SUB, `topic` SUB ²        |
//! | every other code              | none: only the signature (and admin) is checked |
//!
//! ¹ `SendMessageRequestHeader` has no `group` field (it is `producerGroup`), so with a
//! reference client this names nothing and a V1 send to a retry topic checks no resource.
//! Kept as the reference has it. ² `queueId` and `commitOffset` must be present and numeric.
//!
//! Admin-only: UPDATE_AND_CREATE_TOPIC (17), UPDATE_BROKER_CONFIG (25),
//! DELETE_TOPIC_IN_BROKER (215), UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200),
//! DELETE_SUBSCRIPTIONGROUP (207).
//!
//! Not checked by the reference: QUERY_CONSUMER_OFFSET, END_TRANSACTION,
//! VIEW_MESSAGE_BY_ID, LOCK_BATCH_MQ / UNLOCK_BATCH_MQ, LITE_PULL_MESSAGE, offset resets;
//! `%DLQ%` topics get no group mapping. [`Policy::Extended`] (opt-in, beyond the
//! reference, for issue 14's "offsets, locks likewise") adds:
//!
//! | code                          | resources / rule                                |
//! |-------------------------------|-------------------------------------------------|
//! | QUERY_CONSUMER_OFFSET (14)    | group `consumerGroup` SUB, `topic` SUB          |
//! | LOCK_BATCH_MQ (41), UNLOCK_BATCH_MQ (42) | body: `consumerGroup` SUB, each topic SUB |
//! | INVOKE_BROKER_TO_RESET_OFFSET (222) | admin only                         |
//! | TRIGGER_DELETE_FILES (27)     | admin only                                      |
//!
//! END_TRANSACTION names no topic in its header (only `producerGroup`, which is not a
//! permission resource) and VIEW_MESSAGE_BY_ID only an offset, so neither gains a check.

use std::fmt;

use ramjet_proto::body::{HeartbeatData, LockBatchRequestBody};
use ramjet_proto::codes::request;
use ramjet_proto::ExtFields;

use super::perm::Perm;

/// `MixAll.RETRY_GROUP_TOPIC_PREFIX`.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = ramjet_proto::topic_names::RETRY_TOPIC_PREFIX;

/// The codes only an admin account may send (`Permission.ADMIN_CODE`).
pub const ADMIN_CODES: [i32; 5] = [
    request::UPDATE_AND_CREATE_TOPIC,
    request::UPDATE_BROKER_CONFIG,
    request::DELETE_TOPIC_IN_BROKER,
    request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
    request::DELETE_SUBSCRIPTIONGROUP,
];

/// Admin-only codes added by [`Policy::Extended`].
pub const EXTENDED_ADMIN_CODES: [i32; 2] =
    [request::INVOKE_BROKER_TO_RESET_OFFSET, request::TRIGGER_DELETE_FILES];

/// The NameServer's write codes, which need an admin account under [`Policy::NameServer`]
/// (ramjet's decision: the reference's NameServer checks nothing). Every other code sent
/// to a NameServer (routes, cluster info, topic lists, KV reads) is not checked at all.
pub const NAMESRV_ADMIN_CODES: [i32; 9] = [
    request::REGISTER_BROKER,
    request::UNREGISTER_BROKER,
    request::PUT_KV_CONFIG,
    request::DELETE_KV_CONFIG,
    request::WIPE_WRITE_PERM_OF_BROKER,
    request::ADD_WRITE_PERM_OF_BROKER,
    request::DELETE_TOPIC_IN_NAMESRV,
    request::REGISTER_TOPIC_IN_NAMESRV,
    request::UPDATE_NAMESRV_CONFIG,
];

/// Which table to check against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Exactly the reference's table (the default: wire- and behaviour-compatible).
    #[default]
    Reference,
    /// The reference's table plus ramjet's additions (see the module doc).
    Extended,
    /// The NameServer's table (ramjet's own): no resources, and the
    /// [`NAMESRV_ADMIN_CODES`] need an admin account.
    NameServer,
}

impl Policy {
    /// True when a NameServer under this policy checks `code` at all: only its write codes
    /// are; reads stay open so clients without credentials still find routes. A broker
    /// policy checks every code.
    pub fn checks(self, code: i32) -> bool {
        self != Policy::NameServer || NAMESRV_ADMIN_CODES.contains(&code)
    }
}

/// True when `code` needs an admin account (`Permission.needAdminPerm`, plus
/// [`EXTENDED_ADMIN_CODES`] under [`Policy::Extended`]; [`NAMESRV_ADMIN_CODES`] alone
/// under [`Policy::NameServer`]).
pub fn needs_admin(policy: Policy, code: i32) -> bool {
    match policy {
        Policy::Reference => ADMIN_CODES.contains(&code),
        Policy::Extended => ADMIN_CODES.contains(&code) || EXTENDED_ADMIN_CODES.contains(&code),
        Policy::NameServer => NAMESRV_ADMIN_CODES.contains(&code),
    }
}

/// A topic, or a group as its retry topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource(String);

impl Resource {
    /// A topic by name.
    pub fn topic(name: &str) -> Resource {
        Resource(name.to_string())
    }

    /// A consumer group, named by its retry topic `%RETRY%group`.
    pub fn group(name: &str) -> Resource {
        Resource(format!("{RETRY_GROUP_TOPIC_PREFIX}{name}"))
    }

    /// The name the permission tables are keyed by.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    pub fn into_name(self) -> String {
        self.0
    }

    /// True for a group (a name starting with `%RETRY%`).
    pub fn is_group(&self) -> bool {
        self.0.starts_with(RETRY_GROUP_TOPIC_PREFIX)
    }
}

impl fmt::Display for Resource {
    /// `PlainAccessResource.printStr`: `group:NAME` or `topic:NAME`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
            Some(group) => write!(f, "group:{group}"),
            None => write!(f, "topic:{}", self.0),
        }
    }
}

/// A request whose resources cannot be read (the reference wraps these in an
/// `AclException`, so the request is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceError {
    /// A field the typed header requires is absent.
    MissingField {
        /// The request code.
        code: i32,
        /// The field.
        field: &'static str,
    },
    /// A field the typed header requires is not a number.
    BadField {
        /// The request code.
        code: i32,
        /// The field.
        field: &'static str,
    },
    /// The heartbeat body is not a heartbeat.
    BadBody {
        /// The request code.
        code: i32,
        /// The decoder's message.
        reason: String,
    },
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The reference's text for a missing @CFNotNull field.
            ResourceError::MissingField { field, .. } => {
                write!(f, "the custom field <{field}> is null")
            }
            ResourceError::BadField { code, field } => {
                write!(f, "request code {code}: field {field} is not a number")
            }
            ResourceError::BadBody { code, reason } => {
                write!(f, "request code {code}: bad body: {reason}")
            }
        }
    }
}

impl std::error::Error for ResourceError {}

/// The resources `code` names and the permission each needs, in the order named; a
/// resource named twice keeps its last permission (the reference's map `put`).
///
/// # Errors
/// [`ResourceError`] where the reference's header or body decoding throws.
pub fn resources(
    policy: Policy,
    code: i32,
    ext: &ExtFields,
    body: &[u8],
) -> Result<Vec<(Resource, Perm)>, ResourceError> {
    let mut out = Needed::default();
    if policy == Policy::NameServer {
        // A NameServer names no topic or group resources: its checks are admin-only.
        return Ok(out.0);
    }
    if policy == Policy::Extended {
        extended(&mut out, code, ext, body)?;
    }
    let retry = |t: Option<&str>| t.is_some_and(|t| t.starts_with(RETRY_GROUP_TOPIC_PREFIX));
    match code {
        request::SEND_MESSAGE => match ext.get("topic") {
            t if retry(t) => out.group(ext.get("group"), Perm::SUB),
            t => out.topic(t, Perm::PUB),
        },
        request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => match ext.get("b") {
            t if retry(t) => out.group(ext.get("a"), Perm::SUB),
            t => out.topic(t, Perm::PUB),
        },
        request::CONSUMER_SEND_MSG_BACK => out.group(ext.get("group"), Perm::SUB),
        request::PULL_MESSAGE => {
            out.topic(ext.get("topic"), Perm::SUB);
            out.group(ext.get("consumerGroup"), Perm::SUB);
        }
        request::QUERY_MESSAGE => out.topic(ext.get("topic"), Perm::SUB),
        request::HEART_BEAT => heartbeat(&mut out, code, body)?,
        request::UNREGISTER_CLIENT => {
            required(ext, code, "clientID")?;
            out.group(ext.get("consumerGroup"), Perm::SUB);
        }
        request::GET_CONSUMER_LIST_BY_GROUP => {
            out.group(Some(required(ext, code, "consumerGroup")?), Perm::SUB);
        }
        request::UPDATE_CONSUMER_OFFSET => {
            let group = required(ext, code, "consumerGroup")?;
            let topic = required(ext, code, "topic")?;
            number::<i32>(ext, code, "queueId")?;
            number::<i64>(ext, code, "commitOffset")?;
            out.group(Some(group), Perm::SUB);
            out.topic(Some(topic), Perm::SUB);
        }
        _ => {}
    }
    Ok(out.0)
}

/// The resources [`Policy::Extended`] adds; no code here is in the reference's table.
fn extended(
    out: &mut Needed,
    code: i32,
    ext: &ExtFields,
    body: &[u8],
) -> Result<(), ResourceError> {
    match code {
        request::QUERY_CONSUMER_OFFSET => {
            out.group(Some(required(ext, code, "consumerGroup")?), Perm::SUB);
            out.topic(Some(required(ext, code, "topic")?), Perm::SUB);
        }
        request::LOCK_BATCH_MQ | request::UNLOCK_BATCH_MQ => {
            let data: LockBatchRequestBody = ramjet_proto::body::from_json(body)
                .map_err(|e| ResourceError::BadBody { code, reason: e.to_string() })?;
            out.group(Some(&data.consumer_group), Perm::SUB);
            for queue in &data.mq_set {
                out.topic(Some(&queue.topic), Perm::SUB);
            }
        }
        _ => {}
    }
    Ok(())
}

fn heartbeat(out: &mut Needed, code: i32, body: &[u8]) -> Result<(), ResourceError> {
    let data: HeartbeatData = ramjet_proto::body::from_json(body)
        .map_err(|e| ResourceError::BadBody { code, reason: e.to_string() })?;
    for consumer in &data.consumer_data_set {
        out.group(Some(&consumer.group_name), Perm::SUB);
        for subscription in &consumer.subscription_data_set {
            out.topic(Some(&subscription.topic), Perm::SUB);
        }
    }
    Ok(())
}

fn required<'a>(
    ext: &'a ExtFields,
    code: i32,
    field: &'static str,
) -> Result<&'a str, ResourceError> {
    ext.get(field).ok_or(ResourceError::MissingField { code, field })
}

fn number<T: std::str::FromStr>(
    ext: &ExtFields,
    code: i32,
    field: &'static str,
) -> Result<T, ResourceError> {
    let text = required(ext, code, field)?;
    text.trim().parse().map_err(|_| ResourceError::BadField { code, field })
}

/// The resources collected so far; an absent name is skipped, as the reference's
/// `addResourceAndPerm(null, …)` is.
#[derive(Default)]
struct Needed(Vec<(Resource, Perm)>);

impl Needed {
    fn topic(&mut self, name: Option<&str>, perm: Perm) {
        if let Some(name) = name {
            self.put(Resource::topic(name), perm);
        }
    }

    fn group(&mut self, name: Option<&str>, perm: Perm) {
        if let Some(name) = name {
            self.put(Resource::group(name), perm);
        }
    }

    fn put(&mut self, resource: Resource, perm: Perm) {
        match self.0.iter_mut().find(|(r, _)| *r == resource) {
            Some(slot) => slot.1 = perm,
            None => self.0.push((resource, perm)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(pairs: &[(&str, &str)]) -> ExtFields {
        let mut e = ExtFields::new();
        for (k, v) in pairs {
            e.insert(*k, *v);
        }
        e
    }

    fn names(v: &[(Resource, Perm)]) -> Vec<(String, Perm)> {
        v.iter().map(|(r, p)| (r.to_string(), *p)).collect()
    }

    fn res(code: i32, pairs: &[(&str, &str)], body: &[u8]) -> Vec<(String, Perm)> {
        names(
            &resources(Policy::Reference, code, &ext(pairs), body)
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    // Goal: each code of the reference's table names the resources it names there.
    #[test]
    fn table_matches_reference() {
        let t = |s: &str, p| (s.to_string(), p);
        assert_eq!(res(request::SEND_MESSAGE, &[("topic", "T")], b""), [t("topic:T", Perm::PUB)]);
        assert_eq!(
            res(request::SEND_MESSAGE, &[("topic", "%RETRY%G"), ("group", "G")], b""),
            [t("group:G", Perm::SUB)]
        );
        assert!(res(request::SEND_MESSAGE, &[("topic", "%RETRY%G"), ("producerGroup", "G")], b"")
            .is_empty());
        assert_eq!(
            res(request::SEND_MESSAGE_V2, &[("b", "T"), ("a", "P")], b""),
            [t("topic:T", Perm::PUB)]
        );
        assert_eq!(
            res(request::SEND_BATCH_MESSAGE, &[("b", "%RETRY%G"), ("a", "G")], b""),
            [t("group:G", Perm::SUB)]
        );
        assert_eq!(
            res(request::CONSUMER_SEND_MSG_BACK, &[("group", "G")], b""),
            [t("group:G", Perm::SUB)]
        );
        assert_eq!(
            res(request::PULL_MESSAGE, &[("topic", "T"), ("consumerGroup", "G")], b""),
            [t("topic:T", Perm::SUB), t("group:G", Perm::SUB)]
        );
        assert_eq!(res(request::QUERY_MESSAGE, &[("topic", "T")], b""), [t("topic:T", Perm::SUB)]);
        assert_eq!(
            res(request::UNREGISTER_CLIENT, &[("clientID", "c"), ("consumerGroup", "G")], b""),
            [t("group:G", Perm::SUB)]
        );
        assert_eq!(
            res(request::GET_CONSUMER_LIST_BY_GROUP, &[("consumerGroup", "G")], b""),
            [t("group:G", Perm::SUB)]
        );
        let offset =
            [("consumerGroup", "G"), ("topic", "T"), ("queueId", "1"), ("commitOffset", "9")];
        assert_eq!(
            res(request::UPDATE_CONSUMER_OFFSET, &offset, b""),
            [t("group:G", Perm::SUB), t("topic:T", Perm::SUB)]
        );
        for code in
            [request::QUERY_CONSUMER_OFFSET, request::END_TRANSACTION, request::LOCK_BATCH_MQ]
        {
            assert!(res(code, &[("topic", "T"), ("consumerGroup", "G")], b"").is_empty());
        }
    }

    // Goal: a heartbeat names every consumer group and every subscribed topic; producers
    // name nothing; a repeated topic is listed once.
    #[test]
    fn heartbeat_names_groups_and_subscriptions() {
        let body = br#"{"clientID":"c","producerDataSet":[{"groupName":"P"}],
            "consumerDataSet":[{"groupName":"G1","subscriptionDataSet":[{"topic":"T1"},
            {"topic":"T2"}]},{"groupName":"G2","subscriptionDataSet":[{"topic":"T1"}]}]}"#;
        let got = res(request::HEART_BEAT, &[], body);
        let want: Vec<(String, Perm)> = ["group:G1", "topic:T1", "topic:T2", "group:G2"]
            .iter()
            .map(|s| (s.to_string(), Perm::SUB))
            .collect();
        assert_eq!(got, want);
    }

    // Goal: where the reference's decoding throws, the request is refused with a reason.
    #[test]
    fn undecodable_requests_are_errors() {
        let e = resources(Policy::Reference, request::HEART_BEAT, &ExtFields::new(), b"not json");
        assert!(matches!(e, Err(ResourceError::BadBody { .. })));
        let e = resources(
            Policy::Reference,
            request::UNREGISTER_CLIENT,
            &ext(&[("consumerGroup", "G")]),
            b"",
        );
        assert_eq!(e, Err(ResourceError::MissingField { code: 35, field: "clientID" }));
        let offset =
            [("consumerGroup", "G"), ("topic", "T"), ("queueId", "x"), ("commitOffset", "9")];
        let e = resources(Policy::Reference, request::UPDATE_CONSUMER_OFFSET, &ext(&offset), b"");
        assert_eq!(e, Err(ResourceError::BadField { code: 15, field: "queueId" }));
        let e = resources(
            Policy::Reference,
            request::GET_CONSUMER_LIST_BY_GROUP,
            &ExtFields::new(),
            b"",
        );
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err("the custom field <consumerGroup> is null".to_string())
        );
    }

    #[test]
    fn admin_codes_are_the_reference_five() {
        for code in [17, 25, 215, 200, 207] {
            assert!(needs_admin(Policy::Reference, code));
        }
        for code in [request::SEND_MESSAGE, request::GET_BROKER_CONFIG, 222, 27] {
            assert!(!needs_admin(Policy::Reference, code));
        }
        assert!(needs_admin(Policy::Extended, 222) && needs_admin(Policy::Extended, 27));
        assert!(needs_admin(Policy::Extended, 17));
    }

    // Goal: the extended policy adds offsets and locks, and keeps the reference's table.
    #[test]
    fn extended_policy_adds_offsets_and_locks() {
        let ext_res = |code, pairs: &[(&str, &str)], body: &[u8]| {
            names(&resources(Policy::Extended, code, &ext(pairs), body).unwrap_or_default())
        };
        let t = |s: &str| (s.to_string(), Perm::SUB);
        let q = [("consumerGroup", "G"), ("topic", "T"), ("queueId", "0")];
        assert_eq!(ext_res(request::QUERY_CONSUMER_OFFSET, &q, b""), [t("group:G"), t("topic:T")]);
        assert!(res(request::QUERY_CONSUMER_OFFSET, &q, b"").is_empty());
        let body = br#"{"consumerGroup":"G","clientId":"c","mqSet":[{"topic":"T1",
            "brokerName":"b","queueId":0},{"topic":"T2","brokerName":"b","queueId":1}]}"#;
        let want = [t("group:G"), t("topic:T1"), t("topic:T2")];
        assert_eq!(ext_res(request::LOCK_BATCH_MQ, &[], body), want);
        assert_eq!(ext_res(request::UNLOCK_BATCH_MQ, &[], body), want);
        let bad = resources(Policy::Extended, request::LOCK_BATCH_MQ, &ext(&[]), b"{");
        assert!(matches!(bad, Err(ResourceError::BadBody { .. })));
        let pull = [("topic", "T"), ("consumerGroup", "G")];
        assert_eq!(
            ext_res(request::PULL_MESSAGE, &pull, b""),
            res(request::PULL_MESSAGE, &pull, b"")
        );
    }
}
