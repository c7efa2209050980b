//! Table test: header and body variants that real clients send, fed to a real broker and
//! NameServer as raw JSON frames. Each row is one variant and the answer it must get.

use std::io::{Read, Write};
use std::time::Duration;

use bytes::BytesMut;
use ramjet_proto::frame::decode_frame;
use ramjet_proto::Frame;
use ramjet_tests::{store_dir, BrokerOptions, Daemon};

/// One connection per address, kept open for the whole test: a consumer's heartbeat
/// counts only while its connection lives (the broker forgets clients whose connection
/// closes, as the reference does).
/// Each connection keeps its read buffer, so bytes of a later frame are never lost.
struct Conns(std::collections::HashMap<String, (std::net::TcpStream, BytesMut)>);

impl Conns {
    fn get(&mut self, addr: &str) -> &mut (std::net::TcpStream, BytesMut) {
        self.0.entry(addr.to_string()).or_insert_with(|| {
            let s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            (s, BytesMut::new())
        })
    }
}

/// Writes a JSON-header frame with `header` text and `body`, returns the reply.
fn call(conns: &mut Conns, addr: &str, header: &str, body: &[u8]) -> Frame {
    let mut out = Vec::new();
    out.extend_from_slice(&((4 + header.len() + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    let (s, buf) = conns.get(addr);
    s.write_all(&out).expect("write");
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(f) = decode_frame(buf, usize::MAX).expect("reply decodes") {
            if f.header.is_response() {
                return f;
            }
            continue;
        }
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "closed instead of answering {header}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

// Goal: every leniency of the reference broker, one row each. Method: raw JSON frames; each
// row states the expected response code (and a check of the reply where it matters).
#[test]
fn header_and_body_variants_are_accepted_like_the_reference() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let b = broker.broker_addr.as_str();
    let ns = broker.namesrv_addr.as_str();
    let hb_names = r#"{"clientID":"c1","consumerDataSet":[{"groupName":"g1","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[{"topic":"len","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1}],"unitMode":false}],"producerDataSet":[{"groupName":"p1"}]}"#;
    let hb_ordinals = r#"{"clientID":"c2","consumerDataSet":[{"groupName":"g2","consumeType":1,"messageModel":1,"consumeFromWhere":0,"subscriptionDataSet":[{"topic":"len","subString":"TagA","tagsSet":["TagA"],"codeSet":[2598919],"subVersion":"1","expressionType":"TAG"}]}]}"#;
    let hb_missing = r#"{"clientID":"c3","consumerDataSet":[{"groupName":"g3","subscriptionDataSet":[{"topic":"len","subString":"*"}]}]}"#;
    // (name, address, header JSON, body, expected code)
    let rows: Vec<(&str, &str, String, &[u8], i32)> = vec![
        ("send V2, numbers and booleans as JSON values, no serializeTypeCurrentRPC", b,
         r#"{"code":310,"language":"JAVA","opaque":1,"flag":0,"version":121,"extFields":{"a":"pg","b":"len","c":"TBW102","d":4,"e":0,"f":0,"g":1700000000000,"h":0,"i":"TAGS\u0001TagA\u0002","j":0,"k":false,"m":false}}"#.into(), b"v2", 0),
        ("send V1, everything as strings, booleans as \"0\"/\"1\", empty ACL fields", b,
         r#"{"code":10,"extFields":{"AccessKey":"","OnsChannel":"","Signature":"","producerGroup":"pg","topic":"len","defaultTopic":"TBW102","defaultTopicQueueNums":"4","queueId":"1","sysFlag":"0","bornTimestamp":"1700000000000","flag":"0","properties":"","reconsumeTimes":"0","unitMode":"0","batch":"0"},"flag":0,"language":"CPP","opaque":2,"serializeTypeCurrentRPC":"JSON","version":63}"#.into(), b"v1", 0),
        ("send with optional fields missing (no properties, no reconsumeTimes)", b,
         r#"{"code":10,"language":"RUST","opaque":3,"flag":0,"version":474,"extFields":{"producerGroup":"pg","topic":"len","defaultTopic":"TBW102","defaultTopicQueueNums":"4","queueId":"0","sysFlag":"0","bornTimestamp":"1","flag":"0"}}"#.into(), b"bare", 0),
        ("language as an ordinal, version as a string", b,
         r#"{"code":30,"language":12,"opaque":"4","flag":0,"version":"401","extFields":{"topic":"len","queueId":0}}"#.into(), b"", 0),
        ("heartbeat with enum names", b,
         r#"{"code":34,"language":"JAVA","opaque":5,"flag":0,"version":401,"extFields":{}}"#.into(), hb_names.as_bytes(), 0),
        ("heartbeat with enum ordinals and numbers as strings", b,
         r#"{"code":34,"language":"CPP","opaque":6,"flag":0,"version":63}"#.into(), hb_ordinals.as_bytes(), 0),
        ("heartbeat with missing sets and no expressionType (TAG)", b,
         r#"{"code":34,"language":"JAVA","opaque":7,"flag":0,"version":121,"extFields":null}"#.into(), hb_missing.as_bytes(), 0),
        ("pull without subscription bit uses the heartbeat's, boolean-ish numbers", b,
         r#"{"code":11,"language":"JAVA","opaque":8,"flag":0,"version":121,"extFields":{"consumerGroup":"g2","topic":"len","queueId":0,"queueOffset":0,"maxMsgNums":32,"sysFlag":0,"commitOffset":0,"suspendTimeoutMillis":0,"subVersion":0}}"#.into(), b"", 0),
        ("query offset with setZeroIfNotFound false", b,
         r#"{"code":14,"language":"RUST","opaque":9,"flag":0,"version":474,"extFields":{"consumerGroup":"nobody","topic":"len","queueId":"0","setZeroIfNotFound":"false"}}"#.into(), b"", 22),
        ("update offset sent without the one-way bit is answered", b,
         r#"{"code":15,"language":"JAVA","opaque":10,"flag":0,"version":121,"extFields":{"consumerGroup":"g1","topic":"len","queueId":0,"commitOffset":1}}"#.into(), b"", 0),
        ("a required field missing is a clear error, not a dropped connection", b,
         r#"{"code":30,"language":"JAVA","opaque":11,"flag":0,"version":121,"extFields":{"queueId":0}}"#.into(), b"", 1),
        ("a garbage heartbeat body is an error response", b,
         r#"{"code":34,"language":"JAVA","opaque":12,"flag":0,"version":121}"#.into(), b"{not json", 1),
        ("LITE_PULL_MESSAGE (5.x lite pull consumer) is a pull", b,
         r#"{"code":361,"language":"JAVA","opaque":15,"flag":0,"version":473,"extFields":{"consumerGroup":"lite","topic":"len","queueId":0,"queueOffset":0,"maxMsgNums":32,"sysFlag":16,"commitOffset":0,"suspendTimeoutMillis":0,"subVersion":0}}"#.into(), b"", 0),
        ("unknown code", b,
         r#"{"code":77777,"language":"JAVA","opaque":13,"flag":0,"version":121}"#.into(), b"", 3),
        ("route of an unknown topic", ns,
         r#"{"code":105,"language":"JAVA","opaque":14,"flag":0,"version":121,"extFields":{"topic":"nope"}}"#.into(), b"", 17),
    ];
    let mut conns = Conns(Default::default());
    for (name, addr, header, body, code) in &rows {
        let reply = call(&mut conns, addr, header, body);
        assert_eq!(reply.header.code, *code, "{name}: {:?}", reply.header.remark);
        assert_eq!(reply.header.serialize_type, ramjet_proto::SerializeType::Json, "{name}");
    }
    // The pull filtered by g2's heartbeat subscription (TagA) returns only TagA messages.
    let pull = call(&mut conns, b, &rows[7].2, b"");
    let msgs = ramjet_proto::message::decode_records(&pull.body, true).expect("records");
    assert!(!msgs.is_empty());
    let tags: Vec<_> = msgs
        .iter()
        .map(|m| (m.property("TAGS"), m.queue_id, String::from_utf8_lossy(&m.body).into_owned()))
        .collect();
    assert!(
        msgs.iter().all(|m| m.property("TAGS").as_deref() == Some("TagA")),
        "tag filter by heartbeat: {tags:?}"
    );
    // Routes: an old client (version 121) gets fastjson keys unquoted, a new one standard
    // JSON; both carry enableActingMaster.
    let old = call(
        &mut conns,
        ns,
        r#"{"code":105,"language":"JAVA","opaque":20,"flag":0,"version":121,"extFields":{"topic":"len"}}"#,
        b"",
    );
    assert_eq!(old.header.code, 0);
    let text = String::from_utf8_lossy(&old.body).into_owned();
    assert!(text.contains("{0:\""), "fastjson brokerAddrs: {text}");
    assert!(text.contains("enableActingMaster"), "{text}");
    let new = call(
        &mut conns,
        ns,
        r#"{"code":105,"language":"RUST","opaque":21,"flag":0,"version":474,"extFields":{"topic":"len"}}"#,
        b"",
    );
    let v: serde_json::Value =
        serde_json::from_slice(&new.body).expect("standard JSON for new clients");
    assert!(v["brokerDatas"][0]["brokerAddrs"]["0"].is_string());
}
