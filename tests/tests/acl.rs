//! Access control (`aclEnable=true`) against a real broker process, in both header
//! encodings.
//!
//! Goal: a correctly signed request passes; a wrong signature, an unknown key, a tampered
//! body or ext field, a missing signature, a missing access key, an address outside the
//! account's white list, a topic or group without permission and an admin code from a
//! non-admin account are each refused with the reference's answer (SYSTEM_ERROR, remark
//! `org.apache.rocketmq.acl.common.AclException: <message>`) and change nothing (no
//! message stored, no topic created, no offset moved); denials show up per account on
//! `/metrics`; a file edit takes effect without a restart (a bad edit keeps the last good
//! file); `ramjet-admin` with credentials works against the ACL broker, without them it is
//! refused; a missing or bad file at start stops the broker with a message naming it.
//!
//! Method: a broker with a broker.conf naming a `plain_acl.yml` in the test directory.
//! Requests are built with the client's protocol helpers, signed (or mis-signed) by the
//! test with `ramjet_proto::acl::sign_request`, and sent over a client without credentials
//! (which sends them as they are). The effects are read back with an admin account.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ramjet_client::protocol::{self, SendContext};
use ramjet_client::{Client, Credentials, Message, MessageQueue};
use ramjet_proto::acl::{sign_request, SIGNATURE};
use ramjet_proto::codes::{request, response};
use ramjet_proto::{Frame, Header, SerializeType};
use ramjet_tests::{
    admin, client, http_get, metric_sum, metrics_addr, parse_prometheus, run_glommio, store_dir,
    wait_until, BrokerOptions, Daemon, Exiting,
};

const REMARK_PREFIX: &str = "org.apache.rocketmq.acl.common.AclException: ";

const ACL_FILE: &str = "\
accounts:
  - accessKey: adminKey1
    secretKey: adminSecret1
    admin: true
  - accessKey: userKey01
    secretKey: userSecret1
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - acl-allowed=PUB|SUB
      - acl-readonly=SUB
    groupPerms:
      - g-denied=DENY
  - accessKey: trusted01
    secretKey: trustedSecret
    whiteRemoteAddress: 127.0.0.1
    defaultTopicPerm: PUB|SUB
  - accessKey: fenced001
    secretKey: fencedSecret
    whiteRemoteAddress: 10.1.2.*
    defaultTopicPerm: PUB|SUB
";

fn creds(access_key: &str, secret_key: &str) -> Credentials {
    ramjet_tests::credentials(access_key, secret_key)
}

fn admin_creds() -> Credentials {
    creds("adminKey1", "adminSecret1")
}

fn user_creds() -> Credentials {
    creds("userKey01", "userSecret1")
}

/// Writes the ACL file and a broker.conf naming it; returns the broker.conf path.
fn write_conf(dir: &Path, acl_text: &str) -> String {
    let acl = dir.join("plain_acl.yml");
    std::fs::write(&acl, acl_text).expect("write acl file");
    let conf = dir.join("broker.conf");
    std::fs::write(&conf, format!("aclEnable=true\naclFilePath={}\n", acl.display()))
        .expect("write broker.conf");
    conf.to_string_lossy().into_owned()
}

/// The test's side of one broker: a client without credentials and the broker address.
struct Probe {
    client: Client,
    broker: String,
    st: SerializeType,
    /// Denials the test caused, by the account label `/metrics` should show.
    denied: BTreeMap<String, u64>,
}

impl Probe {
    /// Sends `header` and `body` as they are.
    async fn raw(&self, header: Header, body: &[u8]) -> Frame {
        self.client.invoke(&self.broker, header, body).await.expect("transport")
    }

    /// Sends `header` signed with `creds`.
    async fn signed(&self, mut header: Header, body: &[u8], creds: &Credentials) -> Frame {
        sign_request(&mut header.ext_fields, body, creds);
        self.raw(header, body).await
    }

    /// Asserts `frame` is the reference's refusal with `message`; counts it for `account`.
    fn refused(&mut self, frame: &Frame, message: &str, account: &str) {
        assert_eq!(
            (frame.header.code, frame.header.remark.as_deref()),
            (response::SYSTEM_ERROR, Some(format!("{REMARK_PREFIX}{message}").as_str())),
            "{:?}: expected the refusal {message:?}",
            self.st
        );
        *self.denied.entry(account.to_string()).or_insert(0) += 1;
    }

    fn queue(&self, topic: &str) -> MessageQueue {
        MessageQueue { topic: topic.into(), broker_name: "broker-a".into(), queue_id: 0 }
    }

    /// A SEND_MESSAGE_V2 to queue 0 of `topic`, and its body.
    fn send(&self, topic: &str, body: &str) -> (Header, Bytes) {
        let ctx = SendContext {
            producer_group: "acl-producer",
            serialize_type: self.st,
            born_timestamp_ms: 1,
        };
        let msg = Message::new(topic, body.to_string());
        let header = protocol::send_request(&ctx, &msg, &self.queue(topic), "UNIQ-ACL");
        (header, msg.body)
    }

    /// The max offset of queue 0 of `topic`, asked with the admin account.
    async fn max_offset(&self, topic: &str) -> i64 {
        let h = protocol::max_offset_request(&self.queue(topic), self.st);
        let frame = self.signed(h, &[], &admin_creds()).await;
        protocol::parse_offset(frame, request::GET_MAX_OFFSET).expect("max offset")
    }

    /// `group`'s committed offset of queue 0 of `topic`, asked with the admin account.
    async fn committed(&self, group: &str, topic: &str) -> Option<i64> {
        // setZeroIfNotFound=false: no stored offset answers QUERY_NOT_FOUND, not 0.
        let h =
            protocol::query_offset_request_with(group, &self.queue(topic), Some(false), self.st);
        let frame = self.signed(h, &[], &admin_creds()).await;
        protocol::parse_query_offset(frame).expect("query offset")
    }

    /// Whether the broker's topic table holds `topic`, asked with the admin account.
    async fn topic_exists(&self, topic: &str) -> bool {
        let h = Header::request(request::GET_ALL_TOPIC_CONFIG, 0, self.st);
        let frame = self.signed(h, &[], &admin_creds()).await;
        assert_eq!(frame.header.code, response::SUCCESS, "{:?}", frame.header.remark);
        let table: serde_json::Value = serde_json::from_slice(&frame.body).expect("topic json");
        table["topicConfigTable"].get(topic).is_some()
    }
}

/// Every refusal of the brief, and the signed requests that pass, in one encoding.
async fn refusals(probe: &mut Probe) {
    let st = probe.st;
    let allowed = "acl-allowed";
    let user = user_creds();

    // A correctly signed send passes and stores one message.
    let before = probe.max_offset(allowed).await;
    let (h, body) = probe.send(allowed, "signed");
    let frame = probe.signed(h, &body, &user).await;
    assert_eq!(frame.header.code, response::SUCCESS, "{st:?}: {:?}", frame.header.remark);
    assert_eq!(probe.max_offset(allowed).await, before + 1);
    let stored = before + 1;

    // Wrong signature: signed with another secret.
    let (h, body) = probe.send(allowed, "wrong secret");
    let frame = probe.signed(h, &body, &creds("userKey01", "notTheSecret")).await;
    probe.refused(&frame, "Check signature failed for accessKey=userKey01", "userKey01");

    // Unknown access key.
    let (h, body) = probe.send(allowed, "stranger");
    let frame = probe.signed(h, &body, &creds("strangerKey", "strangerSecret")).await;
    probe.refused(&frame, "No acl config for strangerKey", "(none)");

    // Tampered body: signed, then the body changed.
    let (h, body) = probe.send(allowed, "original");
    let mut signed_h = h.clone();
    sign_request(&mut signed_h.ext_fields, &body, &user);
    let frame = probe.raw(signed_h.clone(), b"tampered").await;
    probe.refused(&frame, "Check signature failed for accessKey=userKey01", "userKey01");

    // Tampered ext field: signed, then the queue id (`e` in the V2 header) changed.
    let mut tampered = signed_h.clone();
    tampered.ext_fields.insert("e", "1");
    let frame = probe.raw(tampered, &body).await;
    probe.refused(&frame, "Check signature failed for accessKey=userKey01", "userKey01");

    // Missing signature: the access key alone.
    let mut unsigned = h.clone();
    unsigned.ext_fields.insert("AccessKey", "userKey01");
    assert!(unsigned.ext_fields.get(SIGNATURE).is_none());
    let frame = probe.raw(unsigned, &body).await;
    probe.refused(&frame, "Check signature failed for accessKey=userKey01", "userKey01");

    // No access key at all.
    let frame = probe.raw(h.clone(), &body).await;
    probe.refused(&frame, "No accessKey is configured", "(none)");

    // The account white list: an unsigned request passes from a listed address
    // (127.0.0.1) and is refused from outside the list (10.1.2.*).
    let mut listed = h.clone();
    listed.ext_fields.insert("AccessKey", "trusted01");
    let frame = probe.raw(listed, &body).await;
    assert_eq!(frame.header.code, response::SUCCESS, "{st:?}: {:?}", frame.header.remark);
    let stored = stored + 1;
    let mut fenced = h.clone();
    fenced.ext_fields.insert("AccessKey", "fenced001");
    let frame = probe.raw(fenced, &body).await;
    probe.refused(&frame, "Check signature failed for accessKey=fenced001", "fenced001");

    // Nothing refused was stored.
    assert_eq!(probe.max_offset(allowed).await, stored, "{st:?}: a refused send was stored");

    // A topic with SUB only refuses a send; nothing is stored.
    let (h, body) = probe.send("acl-readonly", "no pub");
    let frame = probe.signed(h, &body, &user).await;
    probe.refused(&frame, "No permission for topic:acl-readonly", "userKey01");
    assert_eq!(probe.max_offset("acl-readonly").await, 0);

    // A topic not in the account's table falls to defaultTopicPerm=DENY; the send is
    // refused before auto-creation, so the topic does not appear.
    let other = format!("acl-other-{st:?}");
    let (h, body) = probe.send(&other, "default deny");
    let frame = probe.signed(h, &body, &user).await;
    probe.refused(&frame, &format!("No default permission for topic:{other}"), "userKey01");
    assert!(!probe.topic_exists(&other).await, "{st:?}: a refused send created {other}");

    // A group with DENY cannot commit an offset; a default-SUB group can.
    let h = protocol::update_offset_request("g-denied", &probe.queue(allowed), 1, st);
    let frame = probe.signed(h, &[], &user).await;
    probe.refused(&frame, "No permission for group:g-denied", "userKey01");
    assert_eq!(probe.committed("g-denied", allowed).await, None, "{st:?}: offset moved");
    let h = protocol::update_offset_request("g-ok", &probe.queue(allowed), 1, st);
    let frame = probe.signed(h, &[], &user).await;
    assert_eq!(frame.header.code, response::SUCCESS, "{st:?}: {:?}", frame.header.remark);
    assert_eq!(probe.committed("g-ok", allowed).await, Some(1));

    // An admin code from a non-admin account; the topic is not created.
    let sneaky = format!("acl-sneaky-{st:?}");
    let h = protocol::create_topic_request(&sneaky, 1, 1, st);
    let frame = probe.signed(h, &[], &user).await;
    let code = request::UPDATE_AND_CREATE_TOPIC;
    let message =
        format!("Need admin permission for request code={code}, but accessKey=userKey01 is not");
    probe.refused(&frame, &message, "userKey01");
    assert!(!probe.topic_exists(&sneaky).await, "{st:?}: a refused create made {sneaky}");

    // The same request from the admin account passes.
    let h = protocol::create_topic_request(&sneaky, 1, 1, st);
    let frame = probe.signed(h, &[], &admin_creds()).await;
    assert_eq!(frame.header.code, response::SUCCESS, "{st:?}: {:?}", frame.header.remark);
    assert!(probe.topic_exists(&sneaky).await);
}

// Goal: see the module doc; one broker serves both encodings in turn, then the metrics,
// the admin tool and the reload are checked against it.
#[test]
fn acl_broker_refuses_and_reloads() {
    let dir = store_dir();
    let conf = write_conf(dir.path(), ACL_FILE);
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.extra = vec!["-c".into(), conf, "--metrics-port".into(), "0".into()];
    let broker = Daemon::broker(&opts);
    let ns = broker.namesrv_addr.clone();
    let addr = broker.broker_addr.clone();

    // The admin tool: without credentials refused, with them it creates the topics.
    let refused = admin(&["updateTopic", "-n", &ns, "-b", &addr, "-t", "acl-allowed"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("No accessKey is configured"), "{refused:?}");
    let mut denied_none = 1u64;
    for topic in ["acl-allowed", "acl-readonly"] {
        admin(&[
            "updateTopic",
            "-n",
            &ns,
            "-b",
            &addr,
            "-t",
            topic,
            "--access-key",
            "adminKey1",
            "--secret-key",
            "adminSecret1",
        ])
        .ok();
    }

    let acl_path = dir.path().join("plain_acl.yml");
    let (ns2, addr2) = (ns.clone(), addr.clone());
    let denied = run_glommio(move || async move {
        let mut denied = BTreeMap::new();
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let mut probe = Probe {
                client: client(&ns2, st),
                broker: addr2.clone(),
                st,
                denied: BTreeMap::new(),
            };
            refusals(&mut probe).await;
            for (k, v) in probe.denied {
                *denied.entry(k).or_insert(0) += v;
            }
            probe.client.close();
        }
        denied
    });
    denied_none += denied.get("(none)").copied().unwrap_or(0);

    // Denials per account on /metrics: exactly the refusals above.
    let (code, page) = http_get(&metrics_addr(&broker), "/metrics");
    assert_eq!(code, 200);
    let samples = parse_prometheus(&page);
    for (account, n) in &denied {
        let want = if account == "(none)" { denied_none } else { *n };
        let got = metric_sum(&samples, "ramjet_acl_denied_total", &[("account", account)]);
        assert_eq!(got, want as f64, "ramjet_acl_denied_total{{account={account:?}}}");
    }

    // Reload: a bad edit keeps the last good file (and says so); a good edit that puts
    // 127.0.0.1 on the global white list lets an unsigned request through, no restart.
    std::fs::write(&acl_path, "accounts: [unclosed\n").expect("write bad acl file");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !broker.log_text().contains("ACL file not reloaded") {
        assert!(Instant::now() < deadline, "bad file not reported:\n{}", broker.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let good = format!("globalWhiteRemoteAddresses:\n  - 127.0.0.1\n{ACL_FILE}");
    let (ns3, addr3) = (ns.clone(), addr.clone());
    run_glommio(move || async move {
        let st = SerializeType::RocketMq;
        let mut probe =
            Probe { client: client(&ns3, st), broker: addr3, st, denied: BTreeMap::new() };
        let queue = probe.queue("acl-allowed");
        let unsigned = move || protocol::max_offset_request(&queue, st);
        // Still the last good file: unsigned is refused, signed passes.
        let frame = probe.raw(unsigned(), &[]).await;
        probe.refused(&frame, "No accessKey is configured", "(none)");
        assert_eq!(probe.max_offset("acl-allowed").await, 4);
        std::fs::write(&acl_path, good).expect("write acl file");
        let (p, u) = (&probe, &unsigned);
        wait_until(Duration::from_secs(20), "reloaded global white list", || async move {
            p.raw(u(), &[]).await.header.code == response::SUCCESS
        })
        .await;
        probe.client.close();
    });
}

// Goal: a missing or bad ACL file stops the broker at start, with a message naming the
// file (and, for a syntax error, the line).
#[test]
fn acl_bad_file_at_start_is_an_error() {
    let dir = store_dir();
    let store = dir.path().join("store");
    let conf = dir.path().join("broker.conf");
    let missing = dir.path().join("missing.yml");
    std::fs::write(&conf, format!("aclEnable=true\naclFilePath={}\n", missing.display()))
        .expect("write conf");
    let args = |conf: &Path| {
        vec![
            "-c".to_string(),
            conf.to_string_lossy().into_owned(),
            "--store-path".into(),
            store.to_string_lossy().into_owned(),
            "--listen-port".into(),
            "0".into(),
            "--namesrv-port".into(),
            "0".into(),
            "--shards".into(),
            "1".into(),
        ]
    };
    let run = |conf: &Path| {
        let a = args(conf);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut p = Exiting::start("ramjet-broker", &a, &[]);
        let status = p.wait_exit(Duration::from_secs(30)).expect("broker did not exit");
        assert!(!status.success(), "{}", p.log_text());
        p
    };
    // The log is read by another thread: wait (bounded) for the line, not for the exit.
    let p = run(&conf);
    let named = missing.display().to_string();
    assert!(p.wait_for_log(&named, Duration::from_secs(10)), "{}", p.log_text());

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "accounts:\n  - accessKey: userKey01\n    secretKey: [unclosed\n")
        .expect("write bad");
    std::fs::write(&conf, format!("aclEnable=true\naclFilePath={}\n", bad.display()))
        .expect("write conf");
    let p = run(&conf);
    assert!(p.wait_for_log("line 3", Duration::from_secs(10)), "{}", p.log_text());
    assert!(p.log_text().contains(&bad.display().to_string()), "{}", p.log_text());
}
