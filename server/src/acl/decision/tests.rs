//! Goal: every row of the decision table, with signed requests, gives the reference's
//! outcome and message. Method: one config, requests built and signed with the client's
//! `sign_request`, plus one request whose signature was computed independently.

use std::net::{IpAddr, Ipv4Addr};

use ramjet_proto::acl::{sign_request, Credentials, ACCESS_KEY, SIGNATURE};
use ramjet_proto::codes::request;

use super::*;
use crate::acl::config;

const CONFIG: &str = "\
globalWhiteRemoteAddresses: [10.10.103.*]
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress: 192.168.7.*
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms: [topicA=DENY, topicB=PUB|SUB, topicC=SUB, topicP=PUB]
    groupPerms: [groupA=DENY, groupB=PUB|SUB]
  - accessKey: rocketmq2
    secretKey: 87654321
    admin: true
";

const OUTSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 16, 0, 9));

fn config() -> AclConfig {
    config::parse(CONFIG).unwrap_or_else(|e| panic!("{e}"))
}

fn creds(access_key: &str, secret_key: &str) -> Credentials {
    Credentials {
        access_key: access_key.into(),
        secret_key: secret_key.into(),
        security_token: None,
    }
}

fn signed(pairs: &[(&str, &str)], body: &[u8], credentials: &Credentials) -> ExtFields {
    let mut ext = ExtFields::new();
    for (k, v) in pairs {
        ext.insert(*k, *v);
    }
    sign_request(&mut ext, body, credentials);
    ext
}

fn decide(code: i32, ext: &ExtFields, body: &[u8], remote: IpAddr) -> Result<Allowed, String> {
    let request = AclRequest { code, version: 401, remote, ext, body, policy: Policy::Reference };
    validate(&config(), &request).map_err(|d| d.message)
}

fn send(topic: &str, c: &Credentials) -> Result<Allowed, String> {
    let ext = signed(&[("a", "PG"), ("b", topic)], b"hello", c);
    decide(request::SEND_MESSAGE_V2, &ext, b"hello", OUTSIDE)
}

#[test]
fn signature_from_an_independent_hmac_is_accepted() {
    // python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b'12345678',
    //   b'RocketMQPGTopicATBW10240hello',hashlib.sha1).digest()).decode())"
    // Sorted keys: AccessKey a b c d e -> values RocketMQ PG TopicA TBW102 4 0, then body.
    let mut ext = ExtFields::new();
    for (k, v) in [("a", "PG"), ("b", "topicB"), ("c", "TBW102"), ("d", "4"), ("e", "0")] {
        ext.insert(k, v);
    }
    ext.insert(ACCESS_KEY, "RocketMQ");
    ext.insert("b", "TopicA");
    ext.insert(SIGNATURE, "lA35YmRfQzD3dR0AZcUCHzxn3G8=");
    // TopicA is not in the table and the default topic perm is DENY: the signature passed.
    assert_eq!(
        decide(request::SEND_MESSAGE_V2, &ext, b"hello", OUTSIDE),
        Err("No default permission for topic:TopicA".into())
    );
    ext.insert("b", "topicB");
    assert_eq!(
        decide(request::SEND_MESSAGE_V2, &ext, b"hello", OUTSIDE),
        Err("Check signature failed for accessKey=RocketMQ".into())
    );
}

#[test]
fn topic_permissions() {
    let c = creds("RocketMQ", "12345678");
    assert_eq!(send("topicB", &c), Ok(Allowed::Granted));
    assert_eq!(send("topicP", &c), Ok(Allowed::Granted));
    assert_eq!(send("topicA", &c), Err("No permission for topic:topicA".into()));
    assert_eq!(send("topicC", &c), Err("No permission for topic:topicC".into()));
    assert_eq!(send("other", &c), Err("No default permission for topic:other".into()));
}

#[test]
fn pull_needs_topic_and_group_sub() {
    let c = creds("RocketMQ", "12345678");
    let pull = |topic: &str, group: &str| {
        let ext = signed(&[("topic", topic), ("consumerGroup", group)], b"", &c);
        decide(request::PULL_MESSAGE, &ext, b"", OUTSIDE)
    };
    assert_eq!(pull("topicC", "groupB"), Ok(Allowed::Granted));
    assert_eq!(pull("topicC", "anyGroup"), Ok(Allowed::Granted), "default group perm SUB");
    assert_eq!(pull("topicC", "groupA"), Err("No permission for group:groupA".into()));
    assert_eq!(pull("topicP", "groupB"), Err("No permission for topic:topicP".into()));
}

#[test]
fn retry_topic_send_is_checked_as_its_group() {
    let c = creds("RocketMQ", "12345678");
    let send_back = |group: &str| {
        let ext = signed(&[("a", group), ("b", &format!("%RETRY%{group}"))], b"m", &c);
        decide(request::SEND_MESSAGE_V2, &ext, b"m", OUTSIDE)
    };
    assert_eq!(send_back("groupB"), Ok(Allowed::Granted));
    assert_eq!(send_back("groupA"), Err("No permission for group:groupA".into()));
}

#[test]
fn heartbeat_checks_every_group_and_subscription() {
    let c = creds("RocketMQ", "12345678");
    let beat = |group: &str, topic: &str| {
        let body = format!(
            r#"{{"clientID":"c","consumerDataSet":[{{"groupName":"{group}",
            "subscriptionDataSet":[{{"topic":"topicC"}},{{"topic":"{topic}"}}]}}]}}"#
        );
        let ext = signed(&[], body.as_bytes(), &c);
        decide(request::HEART_BEAT, &ext, body.as_bytes(), OUTSIDE)
    };
    assert_eq!(beat("groupB", "topicB"), Ok(Allowed::Granted));
    assert_eq!(beat("groupB", "topicA"), Err("No permission for topic:topicA".into()));
    assert_eq!(beat("groupA", "topicB"), Err("No permission for group:groupA".into()));
}

#[test]
fn admin_codes_need_an_admin_account() {
    let user = creds("RocketMQ", "12345678");
    let ext = signed(&[("topic", "t")], b"", &user);
    assert_eq!(
        decide(request::UPDATE_AND_CREATE_TOPIC, &ext, b"", OUTSIDE),
        Err("Need admin permission for request code=17, but accessKey=RocketMQ is not".into())
    );
    let admin = creds("rocketmq2", "87654321");
    let ext = signed(&[("topic", "t")], b"", &admin);
    assert_eq!(decide(request::UPDATE_AND_CREATE_TOPIC, &ext, b"", OUTSIDE), Ok(Allowed::Admin));
    assert_eq!(send("topicA", &admin), Ok(Allowed::Admin), "admin passes every resource");
}

#[test]
fn identity_and_signature_failures() {
    let body = b"hello";
    let unsigned = {
        let mut e = ExtFields::new();
        e.insert("b", "topicB");
        e
    };
    assert_eq!(
        decide(request::SEND_MESSAGE_V2, &unsigned, body, OUTSIDE),
        Err("No accessKey is configured".into())
    );
    assert_eq!(
        send("topicB", &creds("Unknown1", "12345678")),
        Err("No acl config for Unknown1".into())
    );
    assert_eq!(
        send("topicB", &creds("RocketMQ", "wrongsecret")),
        Err("Check signature failed for accessKey=RocketMQ".into())
    );
    let mut no_signature = signed(&[("b", "topicB")], body, &creds("RocketMQ", "12345678"));
    no_signature = {
        let mut e = ExtFields::new();
        for (k, v) in no_signature.iter().filter(|(k, _)| *k != SIGNATURE) {
            e.insert(k, v);
        }
        e
    };
    assert_eq!(
        decide(request::SEND_MESSAGE_V2, &no_signature, body, OUTSIDE),
        Err("Check signature failed for accessKey=RocketMQ".into())
    );
    let good = signed(&[("b", "topicB")], body, &creds("RocketMQ", "12345678"));
    assert_eq!(
        decide(request::SEND_MESSAGE_V2, &good, b"hellO", OUTSIDE),
        Err("Check signature failed for accessKey=RocketMQ".into()),
        "a tampered body"
    );
}

#[test]
fn white_lists_skip_checks_as_the_reference() {
    let global: IpAddr = "10.10.103.5".parse().unwrap_or(OUTSIDE);
    let unsigned = ExtFields::new();
    assert_eq!(
        decide(request::UPDATE_AND_CREATE_TOPIC, &unsigned, b"", global),
        Ok(Allowed::GlobalWhiteList)
    );
    // The account's white list skips the signature and the permissions (step 4).
    let account_white: IpAddr = "192.168.7.20".parse().unwrap_or(OUTSIDE);
    let bad = signed(&[("b", "topicA")], b"", &creds("RocketMQ", "wrongsecret"));
    assert_eq!(
        decide(request::SEND_MESSAGE_V2, &bad, b"", account_white),
        Ok(Allowed::AccountWhiteList)
    );
    // Even a white-listed peer is refused when its heartbeat cannot be read (step 0).
    let beat = signed(&[], b"garbage", &creds("RocketMQ", "12345678"));
    assert!(decide(request::HEART_BEAT, &beat, b"garbage", global).is_err());
}

#[test]
fn trace_topic_publish_skips_permissions() {
    let c = creds("RocketMQ", "12345678");
    assert_eq!(send(TRACE_TOPIC, &c), Ok(Allowed::TraceTopic));
}

#[test]
fn refusal_is_answered_as_the_reference() {
    let denied = AclDenied { access_key: Some("k".into()), message: "No acl config for k".into() };
    assert_eq!(denied.remark(), "org.apache.rocketmq.acl.common.AclException: No acl config for k");
    assert_eq!(DENIED_RESPONSE_CODE, 1);
}

// Goal: the extended policy refuses an offset reset from a non-admin account, which the
// reference's table lets through on a good signature alone.
#[test]
fn extended_policy_adds_admin_codes() {
    let c = creds("RocketMQ", "12345678");
    let ext = signed(&[("topic", "topicB"), ("group", "groupB")], b"", &c);
    let code = request::INVOKE_BROKER_TO_RESET_OFFSET;
    let under = |policy| {
        let request =
            AclRequest { code, version: 401, remote: OUTSIDE, ext: &ext, body: b"", policy };
        validate(&config(), &request).map_err(|d| d.message)
    };
    assert_eq!(under(Policy::Reference), Ok(Allowed::Granted));
    assert_eq!(
        under(Policy::Extended),
        Err("Need admin permission for request code=222, but accessKey=RocketMQ is not".into())
    );
}
