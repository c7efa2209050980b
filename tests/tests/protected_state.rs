//! The broker's own state is not client-writable (issue 12), with real processes: sends to
//! the reference's not-allowed-send topics and offset writes for reserved groups, unknown
//! topics and queues are refused; END_TRANSACTION acts only on a half message; the
//! transaction check survives a half that cannot be re-put. After each attack the broker
//! serves on every shard (new connections included) and every message stored before —
//! delayed and transactional included — is delivered intact.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ramjet_client::{
    Admin, Client, ClientConfig, Connection, ConnectionOptions, Message, MessageQueue, Producer,
    PullConsumer,
};
use ramjet_proto::batch::{encode_batch, BatchMessage};
use ramjet_proto::body::{self, HeartbeatData, ProducerData};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CommandHeader, ConsumerSendMsgBackRequestHeader, EndTransactionRequestHeader,
    SendMessageRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use ramjet_proto::message::{self, decode_offset_msg_id, encode_properties, StoredMessage};
use ramjet_proto::{Frame, Header, SerializeType};
use ramjet_tests::{
    assert_every_shard_serves, client, run_glommio, store_dir, wait_for_route, BrokerOptions,
    Daemon, FRESH_CONNECTIONS,
};

const TIMEOUT: Duration = Duration::from_secs(20);
const TOPIC: &str = "guarded";
const QUEUES: i32 = 8;
const GROUP: &str = "tx-producers";
const ENCODINGS: [SerializeType; 2] = [SerializeType::RocketMq, SerializeType::Json];
/// The reference's NOT_ALLOWED_SEND_TOPIC_SET.
const NOT_ALLOWED: [&str; 6] = [
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
];
const NO_HALF: &str = "Find prepared transaction message failed";
const TABLE_OFFSET_WRONG: &str = "The transaction state table offset wrong";

/// A handler of broker-initiated requests.
type Handler = Rc<dyn Fn(&Frame) -> Option<Frame>>;

fn tx_client(ns: &str, st: SerializeType, handler: Option<Handler>) -> Client {
    let mut c = ClientConfig::new(ns).expect("config");
    c.serialize_type = st;
    Client::with_handler(c, handler)
}

fn request_with(code: i32, st: SerializeType, fields: &[(&str, &str)]) -> Header {
    let mut h = Header::request(code, 0, st);
    for (k, v) in fields {
        h.ext_fields.insert(*k, *v);
    }
    h
}

async fn ask(conn: &Connection, h: Header, body: &[u8]) -> Frame {
    conn.request(h, body, TIMEOUT).await.expect("a reply")
}

fn assert_code(reply: &Frame, code: i32, what: &str) {
    assert_eq!(reply.header.code, code, "{what}: {:?}", reply.header.remark);
}

/// Refused because the group is the broker's (not for any other missing permission).
fn assert_reserved(reply: &Frame, what: &str) {
    assert_code(reply, response::NO_PERMISSION, what);
    let remark = reply.header.remark.as_deref().unwrap_or_default();
    assert!(remark.contains("is reserved for the broker"), "{what}: {remark}");
}

/// A send request of `code` (SEND_MESSAGE, _V2 or SEND_BATCH_MESSAGE) in `st`.
fn send_request(
    code: i32,
    st: SerializeType,
    topic: &str,
    queue_id: i32,
    sys_flag: i32,
    properties: Vec<u8>,
) -> Header {
    let mut h = Header::request(code, 0, st);
    let header = SendMessageRequestHeader {
        producer_group: GROUP.into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag,
        born_timestamp: ramjet_client::client::now_ms(),
        flag: 0,
        properties: Some(String::from_utf8(properties).expect("utf8")),
        reconsume_times: None,
        unit_mode: None,
        max_reconsume_times: None,
        batch: None,
        broker_name: None,
    };
    if code == request::SEND_MESSAGE {
        header.encode(&mut h.ext_fields);
    } else {
        header.encode_v2(&mut h.ext_fields);
    }
    h
}

/// A stored half message: its commit-log offset and half-queue offset.
#[derive(Debug, Clone, Copy)]
struct Half {
    offset: i64,
    queue_offset: i64,
}

fn half_properties(uniq: &str, pad: usize) -> Vec<u8> {
    let padding = "p".repeat(pad);
    let mut pairs = vec![("TRAN_MSG", "true"), ("PGROUP", GROUP), ("UNIQ_KEY", uniq), ("app", "x")];
    if pad > 0 {
        pairs.push(("pad", padding.as_str()));
    }
    encode_properties(pairs)
}

/// Sends a half message of body `body` (also its UNIQ_KEY) to `TOPIC` queue `queue_id`.
async fn send_half(
    conn: &Connection,
    st: SerializeType,
    queue_id: i32,
    body: &str,
    pad: usize,
) -> Half {
    let props = half_properties(body, pad);
    let h = send_request(
        request::SEND_MESSAGE_V2,
        st,
        TOPIC,
        queue_id,
        message::SYSFLAG_TRANSACTION_PREPARED,
        props,
    );
    let reply = ask(conn, h, body.as_bytes()).await;
    assert_code(&reply, response::SUCCESS, "send half");
    let msg_id = reply.header.ext_fields.get("msgId").expect("msgId");
    let (_, offset) = decode_offset_msg_id(msg_id).expect("offset msg id");
    let queue_offset =
        reply.header.ext_fields.get("queueOffset").and_then(|v| v.parse().ok()).expect("offset");
    Half { offset, queue_offset }
}

fn end_request(
    st: SerializeType,
    group: &str,
    offset: i64,
    queue_offset: i64,
    outcome: i32,
    from_check: bool,
) -> Header {
    let mut h = Header::request(request::END_TRANSACTION, 0, st);
    EndTransactionRequestHeader {
        topic: None,
        producer_group: group.into(),
        tran_state_table_offset: queue_offset,
        commit_log_offset: offset,
        commit_or_rollback: outcome,
        from_transaction_check: Some(from_check),
        msg_id: "m".into(),
        transaction_id: None,
    }
    .encode(&mut h.ext_fields);
    h
}

/// The record stored at commit-log `offset` (VIEW_MESSAGE_BY_ID).
async fn stored_at(conn: &Connection, offset: i64) -> StoredMessage {
    let off = offset.to_string();
    let h = request_with(request::VIEW_MESSAGE_BY_ID, SerializeType::RocketMq, &[("offset", &off)]);
    let reply = ask(conn, h, b"").await;
    assert_code(&reply, response::SUCCESS, "view message");
    message::decode_record(&reply.body, true).expect("a record")
}

/// Bodies of every message of `queue`, reading until `expect` arrived (bounded).
async fn bodies(c: &PullConsumer, queue: &MessageQueue, expect: usize) -> Vec<StoredMessage> {
    let got = ramjet_tests::read_queue(c, queue, expect, TIMEOUT).await;
    assert_eq!(got.len(), expect, "queue {}: {:?}", queue.queue_id, names(&got));
    got
}

fn names(messages: &[StoredMessage]) -> Vec<String> {
    messages.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

/// What every queue holds after `assert_every_shard_serves(.., "after")`.
fn after_bodies() -> Vec<String> {
    (0..FRESH_CONNECTIONS).map(|c| format!("after-{c}")).collect()
}

async fn setup(ns: &str, addr: &str) -> (Producer, Vec<MessageQueue>) {
    let admin = Admin::new(client(ns, SerializeType::RocketMq));
    admin.create_topic(addr, TOPIC, QUEUES, QUEUES).await.expect("create topic");
    let producer = Producer::new(client(ns, SerializeType::RocketMq), "pg");
    let queues = wait_for_route(&producer, TOPIC, QUEUES as usize).await;
    for q in &queues {
        producer.send_to_queue(q, Message::new(TOPIC, "before")).await.expect("send before");
    }
    (producer, queues)
}

// Goal: sends to every not-allowed-send topic (SEND_MESSAGE, _V2, batch, both header
// encodings) are refused NO_PERMISSION with the reference's remark; offsets of reserved
// groups cannot be written by UPDATE_CONSUMER_OFFSET, a pull's commit or a reset; offsets
// of unknown topics, out-of-range queues and impossible groups are refused; the pending
// delayed message and the half message sent before are delivered intact afterwards, and
// every shard still serves.
// Method: 2 shards, a topic of 8 queues; one message per queue, one delayed (level 3,
// 10 s) and one half; the attacks, among them the UPDATE_CONSUMER_OFFSET for
// %SCHEDULE_DELIVERY% and the send of body `0` to RMQ_SYS_TRANS_OP_HALF_TOPIC; then a real
// commit, new connections on both shards, and every queue read back.
#[test]
fn system_topics_and_reserved_groups_refuse_clients_and_stored_messages_survive() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let (producer, queues) = setup(&ns, &addr).await;
        let mut delayed = Message::new(TOPIC, "delayed").with_tags("TagD").with_delay_level(3);
        delayed.set_property("app", "v1");
        let parked = producer.send_to_queue(&queues[0], delayed).await.expect("send delayed");
        let (_, parked_offset) = decode_offset_msg_id(&parked.offset_msg_id).expect("msg id");
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        let half = send_half(&conn, SerializeType::RocketMq, 1, "half-1", 0).await;

        for st in ENCODINGS {
            for topic in NOT_ALLOWED {
                for code in
                    [request::SEND_MESSAGE, request::SEND_MESSAGE_V2, request::SEND_BATCH_MESSAGE]
                {
                    let h = send_request(code, st, topic, 0, 0, Vec::new());
                    let body = if code == request::SEND_BATCH_MESSAGE {
                        encode_batch(&[BatchMessage {
                            flag: 0,
                            body: Bytes::from_static(b"0"),
                            properties: Bytes::new(),
                        }])
                    } else {
                        b"0".to_vec()
                    };
                    let reply = ask(&conn, h, &body).await;
                    let what = format!("send {code} to {topic} in {st:?}");
                    assert_code(&reply, response::NO_PERMISSION, &what);
                    assert_eq!(
                        reply.header.remark.as_deref(),
                        Some(format!("Sending message to topic[{topic}] is forbidden.").as_str()),
                        "{what}"
                    );
                }
            }
            let reserved = [
                ("%SCHEDULE_DELIVERY%", "SCHEDULE_TOPIC_XXXX", 2),
                ("SCHEDULE_CONSUMER", "SCHEDULE_TOPIC_XXXX", 2),
                ("%TRANS_CHECK%", "RMQ_SYS_TRANS_HALF_TOPIC", 0),
                ("CID_RMQ_SYS_TRANS", "RMQ_SYS_TRANS_HALF_TOPIC", 0),
            ];
            for (group, topic, queue_id) in reserved {
                let what = format!("{group} on {topic} in {st:?}");
                let mut h = Header::request(request::UPDATE_CONSUMER_OFFSET, 0, st);
                UpdateConsumerOffsetRequestHeader {
                    consumer_group: group.into(),
                    topic: topic.into(),
                    queue_id,
                    commit_offset: 1000,
                }
                .encode(&mut h.ext_fields);
                assert_reserved(&ask(&conn, h, b"").await, &what);
                let q = queue_id.to_string();
                let pull = request_with(
                    request::PULL_MESSAGE,
                    st,
                    &[
                        ("consumerGroup", group),
                        ("topic", topic),
                        ("queueId", &q),
                        ("queueOffset", "0"),
                        ("maxMsgNums", "1"),
                        ("sysFlag", "1"),
                        ("commitOffset", "1000"),
                        ("suspendTimeoutMillis", "0"),
                        ("subVersion", "0"),
                    ],
                );
                assert_reserved(&ask(&conn, pull, b"").await, &what);
                let now = ramjet_client::client::now_ms().to_string();
                let reset = request_with(
                    request::INVOKE_BROKER_TO_RESET_OFFSET,
                    st,
                    &[("topic", topic), ("group", group), ("timestamp", &now), ("isForce", "true")],
                );
                assert_reserved(&ask(&conn, reset, b"").await, &what);
            }
            // A send-back cannot copy a parked delayed message or a half into a retry
            // topic (it would be delivered early, or uncommitted).
            for (what, offset) in [("parked", parked_offset), ("half", half.offset)] {
                let mut h = Header::request(request::CONSUMER_SEND_MSG_BACK, 0, st);
                ConsumerSendMsgBackRequestHeader {
                    offset,
                    group: "cg".into(),
                    delay_level: 0,
                    origin_msg_id: None,
                    origin_topic: Some(TOPIC.into()),
                    max_reconsume_times: None,
                }
                .encode(&mut h.ext_fields);
                let what = format!("send-back of the {what} record in {st:?}");
                assert_code(&ask(&conn, h, b"").await, response::NO_PERMISSION, &what);
            }
            let refused = [
                ("cg", "no-such-topic", 0, response::TOPIC_NOT_EXIST),
                ("cg", TOPIC, 77777, response::INVALID_PARAMETER),
                ("cg", TOPIC, -1, response::INVALID_PARAMETER),
                ("a@b", TOPIC, 0, response::SUBSCRIPTION_GROUP_NOT_EXIST),
            ];
            for (group, topic, queue_id, code) in refused {
                let mut h = Header::request(request::UPDATE_CONSUMER_OFFSET, 0, st);
                UpdateConsumerOffsetRequestHeader {
                    consumer_group: group.into(),
                    topic: topic.into(),
                    queue_id,
                    commit_offset: 5,
                }
                .encode(&mut h.ext_fields);
                let what = format!("offset of {group} on {topic}:{queue_id} in {st:?}");
                assert_code(&ask(&conn, h, b"").await, code, &what);
            }
        }
        // An ordinary offset is still accepted.
        let consumer = PullConsumer::new(client(&ns, SerializeType::Json), "cg");
        consumer.update_offset(&queues[3], 1).await.expect("ordinary offset accepted");
        assert_eq!(consumer.query_offset(&queues[3]).await.expect("query"), Some(1));

        let commit = end_request(
            SerializeType::Json,
            GROUP,
            half.offset,
            half.queue_offset,
            message::SYSFLAG_TRANSACTION_COMMIT,
            false,
        );
        assert_code(&ask(&conn, commit, b"").await, response::SUCCESS, "real commit");

        let h = Header::request(request::GET_ALL_TOPIC_CONFIG, 0, SerializeType::RocketMq);
        let topics = ask(&conn, h, b"").await;
        let topics = String::from_utf8_lossy(&topics.body).into_owned();
        assert!(topics.contains(TOPIC) && !topics.contains("%RETRY%cg"), "{topics}");

        let sent = assert_every_shard_serves(&ns, &addr, &queues, "after").await;
        assert_eq!(sent, FRESH_CONNECTIONS * QUEUES as usize);
        let reader = PullConsumer::new(client(&ns, SerializeType::RocketMq), "reader");
        for q in &queues {
            let extra = usize::from(q.queue_id <= 1);
            let got = bodies(&reader, q, 1 + FRESH_CONNECTIONS + extra).await;
            let mut want = vec!["before".to_string()];
            want.extend(after_bodies());
            match q.queue_id {
                0 => want.push("delayed".into()),
                1 => want.push("half-1".into()),
                _ => {}
            }
            let mut have = names(&got);
            have.sort();
            want.sort();
            assert_eq!(have, want, "queue {}", q.queue_id);
            if q.queue_id == 0 {
                let d = got.iter().find(|m| &m.body[..] == b"delayed").expect("delayed");
                assert_eq!(d.property("app").as_deref(), Some("v1"));
                assert_eq!(d.property("TAGS").as_deref(), Some("TagD"));
            }
            if q.queue_id == 1 {
                let h = got.iter().find(|m| &m.body[..] == b"half-1").expect("committed half");
                assert_eq!(h.property("app").as_deref(), Some("x"));
                assert!(h.property("TRAN_MSG").is_none());
            }
        }
    });
}

// Goal: a forged END_TRANSACTION commits nothing: at the offset of an ordinary message,
// at bogus offsets, with the wrong producer group, or naming a real half with another
// half-queue offset; each is refused SYSTEM_ERROR with the reference's remarks. The real
// commit then delivers the half once; a repeated commit and a late rollback of the same
// offset are no-ops answered SUCCESS. Both header encodings.
// Method: 2 shards; per encoding one ordinary message and one half on queue 2; the forged
// ends as requests (not one-way) so their answers are seen; then the real ends; every
// queue read back after new connections on both shards.
#[test]
fn forged_end_transactions_are_refused_and_real_ones_deliver_once() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let (producer, queues) = setup(&ns, &addr).await;
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        let mut committed = Vec::new();
        for st in ENCODINGS {
            let plain = format!("plain-{st:?}");
            // As in the issue: an ordinary message that names another real queue.
            let mut msg = Message::new(TOPIC, plain.clone());
            msg.set_property("REAL_TOPIC", "no such topic !");
            msg.set_property("REAL_QID", "77777");
            msg.set_property("TRAN_MSG", "true");
            msg.set_property("PGROUP", GROUP);
            let sent = producer.send_to_queue(&queues[2], msg).await.expect("send plain");
            let (_, plain_offset) =
                decode_offset_msg_id(&sent.offset_msg_id).expect("offset msg id");
            let body = format!("half-{st:?}");
            let half = send_half(&conn, st, 2, &body, 0).await;
            let commit = message::SYSFLAG_TRANSACTION_COMMIT;
            let forged = [
                (GROUP, plain_offset, sent.queue_offset, NO_HALF),
                (GROUP, plain_offset, half.queue_offset, NO_HALF),
                (GROUP, half.offset + 1, half.queue_offset, NO_HALF),
                (GROUP, half.offset, half.queue_offset + 1, TABLE_OFFSET_WRONG),
                (GROUP, 0, 0, NO_HALF),
                (GROUP, i64::MAX, half.queue_offset, NO_HALF),
                (GROUP, -1, -1, NO_HALF),
                ("someone-else", half.offset, half.queue_offset, "The producer group wrong"),
            ];
            for (group, offset, queue_offset, remark) in forged {
                let h = end_request(st, group, offset, queue_offset, commit, false);
                let reply = ask(&conn, h, b"").await;
                let what = format!("forged end {group} {offset} {queue_offset} in {st:?}");
                assert_code(&reply, response::SYSTEM_ERROR, &what);
                assert_eq!(reply.header.remark.as_deref(), Some(remark), "{what}");
            }
            for outcome in [commit, commit, message::SYSFLAG_TRANSACTION_ROLLBACK] {
                let h = end_request(st, GROUP, half.offset, half.queue_offset, outcome, false);
                assert_code(&ask(&conn, h, b"").await, response::SUCCESS, "real end");
            }
            committed.push(body);
            // The forged ends stored nothing: the ordinary message is still only itself.
            let record = stored_at(&conn, plain_offset).await;
            assert_eq!(&record.body[..], plain.as_bytes());
        }
        let h = Header::request(request::GET_ALL_TOPIC_CONFIG, 0, SerializeType::RocketMq);
        let topics = ask(&conn, h, b"").await;
        assert_code(&topics, response::SUCCESS, "topics");
        let topics = String::from_utf8_lossy(&topics.body).into_owned();
        assert!(topics.contains(TOPIC) && !topics.contains("no such topic"), "{topics}");

        let sent = assert_every_shard_serves(&ns, &addr, &queues, "after").await;
        assert_eq!(sent, FRESH_CONNECTIONS * QUEUES as usize);
        let reader = PullConsumer::new(client(&ns, SerializeType::RocketMq), "reader");
        for q in &queues {
            let mut want = vec!["before".to_string()];
            want.extend(after_bodies());
            if q.queue_id == 2 {
                for st in ENCODINGS {
                    want.push(format!("plain-{st:?}"));
                }
                want.extend(committed.iter().cloned());
            }
            let mut have = names(&bodies(&reader, q, want.len()).await);
            have.sort();
            want.sort();
            assert_eq!(have, want, "queue {}", q.queue_id);
        }
    });
}

// Goal: a half message whose properties would pass 32767 bytes once the check adds its
// count does not stop the transaction check: the half sent after it is still checked and
// its commit delivered; the oversized half itself is asked about once as stored and its
// commit delivered too, intact. The broker logs the skip.
// Method: short transaction timeouts; a producer that heartbeats and answers every
// CHECK_TRANSACTION_STATE with commit; a probe half measures what the broker adds to a
// half's properties, so the big half is stored just under the limit; then a normal half.
#[test]
fn a_half_that_cannot_be_re_put_does_not_stop_the_transaction_check() {
    let dir = store_dir();
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "transactionTimeOut=1000\ntransactionCheckInterval=300\n").expect("conf");
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.extra = vec!["-c".into(), conf.to_string_lossy().into_owned()];
    let broker = Daemon::broker(&opts);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    let log = broker.log.clone();
    run_glommio(move || async move {
        let (_producer, queues) = setup(&ns, &addr).await;
        let checks: Rc<RefCell<Vec<(i64, i64, String)>>> = Rc::default();
        let seen = checks.clone();
        let handler: Handler = Rc::new(move |f: &Frame| {
            if f.header.code == request::CHECK_TRANSACTION_STATE {
                let e = &f.header.ext_fields;
                let record = message::decode_record(&f.body, false).expect("a record");
                seen.borrow_mut().push((
                    e.get("commitLogOffset").and_then(|v| v.parse().ok()).unwrap_or(-1),
                    e.get("tranStateTableOffset").and_then(|v| v.parse().ok()).unwrap_or(-1),
                    String::from_utf8_lossy(&record.body).into_owned(),
                ));
            }
            None
        });
        let c = tx_client(&ns, SerializeType::Json, Some(handler));
        let hb = HeartbeatData {
            client_id: "tx-client".into(),
            producer_data_set: vec![ProducerData { group_name: GROUP.into() }],
            ..Default::default()
        };
        let mut h = Header::request(request::HEART_BEAT, 0, SerializeType::Json);
        h.language = ramjet_proto::LanguageCode::JAVA;
        let reply = c.invoke(&addr, h, &body::to_json(&hb)).await.expect("heartbeat");
        assert_eq!(reply.header.code, response::SUCCESS);
        let conn = c.connection(&addr).await.expect("connection");

        // The probe: what the broker adds to a half's properties. Rolled back at once.
        let probe_pad = 100;
        let probe = send_half(&conn, SerializeType::RocketMq, 0, "probe-0", probe_pad).await;
        let stored = stored_at(&conn, probe.offset).await.properties.len();
        let added = stored - half_properties("probe-0", probe_pad).len();
        let rollback = end_request(
            SerializeType::RocketMq,
            GROUP,
            probe.offset,
            probe.queue_offset,
            message::SYSFLAG_TRANSACTION_ROLLBACK,
            false,
        );
        assert_code(&ask(&conn, rollback, b"").await, response::SUCCESS, "probe rollback");
        // Stored 8 bytes under the limit: the check count (26 bytes) cannot be added.
        let target = 32767 - 8;
        let big_pad = probe_pad + target - stored;
        let big = send_half(&conn, SerializeType::RocketMq, 0, "big-0-1", big_pad).await;
        let big_stored = stored_at(&conn, big.offset).await;
        assert_eq!(big_stored.properties.len(), target, "{added} bytes added by the broker");
        let normal = send_half(&conn, SerializeType::Json, 0, "normal1", 0).await;

        let deadline = Instant::now() + TIMEOUT;
        let mut answered: Vec<(String, i64)> = Vec::new();
        while answered.len() < 2 {
            assert!(Instant::now() < deadline, "checks answered: {answered:?}");
            glommio::timer::sleep(Duration::from_millis(50)).await;
            let pending: Vec<_> = checks.borrow_mut().drain(..).collect();
            for (offset, queue_offset, body) in pending {
                if answered.iter().any(|(b, _)| *b == body) {
                    continue;
                }
                let h = end_request(
                    SerializeType::Json,
                    GROUP,
                    offset,
                    queue_offset,
                    message::SYSFLAG_TRANSACTION_COMMIT,
                    true,
                );
                assert_code(&ask(&conn, h, b"").await, response::SUCCESS, "check answer");
                answered.push((body, offset));
            }
        }
        // The big half was asked about as stored (not re-put); the normal one re-put.
        let big_check = answered.iter().find(|(b, _)| b == "big-0-1").expect("big checked");
        assert_eq!(big_check.1, big.offset);
        let normal_check = answered.iter().find(|(b, _)| b == "normal1").expect("normal checked");
        assert_ne!(normal_check.1, normal.offset);
        let text = log.lock().expect("log").clone();
        assert!(text.contains("cannot be re-put skipped"), "{text}");

        let sent = assert_every_shard_serves(&ns, &addr, &queues, "after").await;
        assert_eq!(sent, FRESH_CONNECTIONS * QUEUES as usize);
        let reader = PullConsumer::new(client(&ns, SerializeType::RocketMq), "reader");
        let got = bodies(&reader, &queues[0], 1 + FRESH_CONNECTIONS + 2).await;
        let mut have = names(&got);
        have.sort();
        let mut want = vec!["before".to_string(), "big-0-1".into(), "normal1".into()];
        want.extend(after_bodies());
        want.sort();
        assert_eq!(have, want);
        let delivered = got.iter().find(|m| &m.body[..] == b"big-0-1").expect("big delivered");
        assert_eq!(delivered.property("pad").map(|p| p.len()), Some(big_pad), "intact");
    });
}
