//! Bounded fuzzing of the broker's whole request path, in CI (`cargo test`): a real broker
//! (two shards on glommio executors, an O_DIRECT store in a temp dir, the embedded
//! NameServer) runs in this process, and requests go through the same path as a
//! connection's after decoding (`RunningBroker::dispatch`: request probe, routing,
//! forwarding between shards, execution), without a socket.
//!
//! Inputs: every request code in the request table (and unknown ones) in both header
//! encodings with hostile ext fields and bodies; the recorded client frames, as recorded,
//! with every value replaced by 3.5 MB, and mutated; arbitrary bytes as a frame. Every
//! request that is not one-way must get a response that encodes, with the request's opaque
//! and a bounded remark; nothing may panic (a panic on a shard would leave the request
//! unanswered, which fails the test). At the end the broker still stores and delivers a
//! message on every queue of a topic, and stops cleanly.
//!
//! Each test prints how many inputs it ran (`cargo test -- --nocapture` shows it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ramjet_proto::codes::{request, response};
use ramjet_proto::command::REMARK_BYTES_MAX;
use ramjet_proto::frame::{decode_frame, encode_frame, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::text::CUT_MARK_BYTES_MAX;
use ramjet_proto::{Frame, Header, SerializeType};
use ramjet_server::config::BrokerConfig;
use ramjet_server::handler::table::TABLE;
use ramjet_server::runtime::RunningBroker;

use common::{fuzz, mutation, recorded_frames, value, Mutation};

/// How long one request may take before the test calls it unanswered. Pulls are held at
/// most `long_poll_hold_ms_max` (50 ms here); nothing else waits on a client.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// The topic the fuzz inputs aim at (created before fuzzing, 8 queues).
const TOPIC: &str = "FuzzTopic";

/// A broker and its store; stopped and deleted when dropped (also when a check fails).
struct Fixture {
    broker: Option<RunningBroker>,
    _store: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            b.stop();
        }
    }
}

impl Fixture {
    fn broker(&self) -> &RunningBroker {
        self.broker.as_ref().expect("running")
    }
}

fn start_broker() -> Fixture {
    // A real filesystem for O_DIRECT (the target dir), not /tmp (often tmpfs).
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).expect("tmp dir");
    let store = tempfile::Builder::new().prefix("fuzz-dispatch-").tempdir_in(base).expect("tmp");
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let config = BrokerConfig {
        listen_port: 0,
        namesrv_port: 0,
        store_path: store.path().to_path_buf(),
        shards: 2,
        broker_ip: localhost,
        bind_ip: localhost,
        segment_size_bytes: 16 << 20,
        long_poll_hold_ms_max: 50,
        spin_before_park_us: 0,
        register_interval_ms: 3_600_000,
        transaction_check_interval_ms: 3_600_000,
        ..BrokerConfig::default()
    };
    let broker = ramjet_server::runtime::start(config).expect("broker starts");
    let f = Fixture { broker: Some(broker), _store: store };
    create_topic(f.broker());
    f
}

/// Creates (or resets, after the fuzzing changed it) the topic most inputs name, with 8
/// writable queues, so that sends and pulls reach the store.
fn create_topic(broker: &RunningBroker) {
    let mut h = Header::request(request::UPDATE_AND_CREATE_TOPIC, 1, SerializeType::Json);
    for (k, v) in [("topic", TOPIC), ("readQueueNums", "8"), ("writeQueueNums", "8"), ("perm", "6")]
    {
        h.ext_fields.insert(k, v);
    }
    let resp = answer(broker, 0, Frame { header: h, body: Bytes::new() }).expect("answered");
    assert_eq!(resp.header.code, response::SUCCESS, "{:?}", resp.header.remark);
}

fn peer() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000)
}

/// Dispatches `frame` on `shard` and waits for the answer (`None`: one-way).
fn answer(
    broker: &RunningBroker,
    shard: usize,
    frame: Frame,
) -> Option<ramjet_server::net::connection::Response> {
    let code = frame.header.code;
    broker
        .dispatch(shard, frame, peer())
        .recv_timeout(ANSWER_WITHIN)
        .unwrap_or_else(|e| panic!("request code {code} unanswered ({e}): a shard stalled or died"))
}

/// How many responses of each code the fuzzing drew (printed with the case counts, to show
/// the inputs reach past the decoders).
static ANSWERS: Mutex<BTreeMap<i32, usize>> = Mutex::new(BTreeMap::new());

fn print_answers(phase: &str) {
    let mut answers = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("fuzz broker {phase}: response codes (code: count) {answers:?}");
    answers.clear();
}

/// Dispatches and checks one request: a response unless one-way, which encodes and decodes
/// back with the request's opaque and a bounded remark.
fn check(broker: &RunningBroker, shard: usize, frame: Frame) {
    let (code, opaque, oneway) = (frame.header.code, frame.header.opaque, frame.header.is_oneway());
    let resp = answer(broker, shard, frame);
    if oneway {
        return;
    }
    let resp = resp.unwrap_or_else(|| panic!("request code {code} got no response"));
    assert!(resp.header.is_response(), "code {code}: response flag");
    assert_eq!(resp.header.opaque, opaque, "code {code}: opaque");
    let remark = resp.header.remark.as_deref().unwrap_or_default();
    assert!(
        remark.len() <= REMARK_BYTES_MAX + CUT_MARK_BYTES_MAX,
        "code {code}: remark {}",
        remark.len()
    );
    let mut out = BytesMut::new();
    encode_frame(&resp.header, &whole_body(&resp), &mut out)
        .unwrap_or_else(|e| panic!("response to code {code} does not encode: {e}"));
    let back = decode_frame(&mut out, usize::MAX).expect("decodes").expect("whole frame");
    assert_eq!(back.header.opaque, opaque);
    *ANSWERS.lock().unwrap_or_else(|e| e.into_inner()).entry(resp.header.code).or_default() += 1;
}

/// A response's body as the connection writes it: `body`, then its `parts`.
fn whole_body(resp: &ramjet_server::net::connection::Response) -> Vec<u8> {
    resp.body_parts().flat_map(|p| p.iter().copied()).collect()
}

/// Every code the broker serves, and a few it does not.
fn codes() -> Vec<i32> {
    let mut v: Vec<i32> = TABLE.iter().map(|e| e.code).collect();
    v.extend([0, -1, 9999, i32::MAX, request::REGISTER_BROKER, request::GET_ROUTEINFO_BY_TOPIC]);
    v
}

/// Ext-field names the broker's request headers read (SEND_MESSAGE_V2's short names too).
const KEYS: &[&str] = &[
    "topic",
    "queueId",
    "consumerGroup",
    "producerGroup",
    "commitOffset",
    "queueOffset",
    "maxMsgNums",
    "sysFlag",
    "subscription",
    "subVersion",
    "expressionType",
    "suspendTimeoutMillis",
    "defaultTopic",
    "defaultTopicQueueNums",
    "bornTimestamp",
    "flag",
    "properties",
    "reconsumeTimes",
    "unitMode",
    "batch",
    "maxReconsumeTimes",
    "offset",
    "delayLevel",
    "originTopic",
    "originMsgId",
    "tranStateTableOffset",
    "commitLogOffset",
    "commitOrRollback",
    "fromTransactionCheck",
    "msgId",
    "transactionId",
    "clientId",
    "key",
    "beginTimestamp",
    "endTimestamp",
    "timestamp",
    "readQueueNums",
    "writeQueueNums",
    "perm",
    "topicSysFlag",
    "order",
    "group",
    "isForce",
    "timeout",
    "brokerName",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "k",
    "l",
    "m",
    "n",
];

/// A value for a broker header field: the fuzz topic, system names, numbers at the edges,
/// or the shared hostile values (short garbage, 300 B to 70 KB of `\x01`).
fn broker_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(TOPIC.to_string()),
        2 => (0i64..9).prop_map(|i| i.to_string()),
        1 => prop::sample::select(vec![
            "SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRANS_OP_HALF_TOPIC",
            "TBW102", "%RETRY%n0", "%DLQ%n0", "CID_RMQ_SYS_TRANS", "%SCHEDULE_DELIVERY%",
            "-2147483648", "2147483647", "9223372036854775807", "-9223372036854775808",
            "3.5", "true", "TAGS\u{1}a\u{2}KEYS\u{1}k\u{2}", "a = 1", "*",
        ])
        .prop_map(str::to_string),
        3 => value(),
    ]
}

/// A body: empty, arbitrary bytes, or JSON shaped like the broker's bodies.
fn body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => Just(Bytes::new()),
        2 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(Bytes::from),
        1 => (0usize..4).prop_map(|i| Bytes::from([
            "{\"clientID\":\"c\",\"producerDataSet\":[{\"groupName\":\"n0\"}],\"consumerDataSet\":[{\"groupName\":\"n0\",\"consumeType\":\"CONSUME_PASSIVELY\",\"messageModel\":\"CLUSTERING\",\"consumeFromWhere\":\"CONSUME_FROM_LAST_OFFSET\",\"subscriptionDataSet\":[{\"topic\":\"FuzzTopic\",\"subString\":\"*\"}],\"unitMode\":false}]}",
            "{\"consumerGroup\":\"n0\",\"clientId\":\"c\",\"mqSet\":[{\"topic\":\"FuzzTopic\",\"brokerName\":\"broker-a\",\"queueId\":1}]}",
            "{\"offsetTable\":{}}",
            "{\"groupName\":\"n0\",\"consumeEnable\":true,\"retryQueueNums\":1}",
        ][i])),
    ]
}

#[derive(Debug, Clone)]
enum Input {
    /// A structured request.
    Request { code: usize, fields: Vec<(usize, String)>, body: Bytes, binary: bool, oneway: bool },
    /// A recorded frame, mutated.
    Recorded { index: usize, mutation: Mutation },
    /// A recorded frame (a complete request of a real client) with some of its values
    /// replaced, in either encoding: reaches past the header checks into the handlers.
    Replaced { index: usize, values: Vec<(usize, String)>, binary: bool },
    /// Arbitrary bytes as a frame (after the length prefix).
    Bytes(Vec<u8>),
}

fn input(codes: usize) -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => (
            0..codes,
            proptest::collection::vec((0..KEYS.len(), broker_value()), 0..10),
            body(),
            any::<bool>(),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(code, fields, body, binary, oneway)| Input::Request {
                code, fields, body, binary, oneway
            }),
        3 => (any::<usize>(), mutation())
            .prop_map(|(index, mutation)| Input::Recorded { index, mutation }),
        4 => (
            any::<usize>(),
            proptest::collection::vec((any::<usize>(), broker_value()), 1..3),
            any::<bool>(),
        )
            .prop_map(|(index, values, binary)| Input::Replaced { index, values, binary }),
        1 => proptest::collection::vec(any::<u8>(), 0..128).prop_map(Input::Bytes),
    ]
}

/// Feeds one input to `shard`; returns how many requests reached dispatch.
fn run(
    broker: &RunningBroker,
    codes: &[i32],
    recorded: &[Vec<u8>],
    shard: usize,
    i: Input,
) -> usize {
    let frame = match i {
        Input::Request { code, fields, body, binary, oneway } => {
            let st = if binary { SerializeType::RocketMq } else { SerializeType::Json };
            let mut h = Header::request(codes[code], 11, st);
            for (k, v) in fields {
                h.ext_fields.insert(KEYS[k], v);
            }
            if oneway {
                h.set_oneway();
            }
            Frame { header: h, body }
        }
        Input::Recorded { index, mutation } => {
            let bytes = mutation.apply(&recorded[index % recorded.len()]);
            match decode_frame(&mut BytesMut::from(&bytes[..]), FRAME_SIZE_BYTES_MAX) {
                Ok(Some(frame)) if !frame.header.is_response() => frame,
                _ => return 0,
            }
        }
        Input::Replaced { index, values, binary } => {
            let raw = &recorded[index % recorded.len()];
            let Ok(Some(mut frame)) = decode_frame(&mut BytesMut::from(&raw[..]), usize::MAX)
            else {
                return 0;
            };
            if frame.header.is_response() {
                return 0;
            }
            let keys: Vec<String> =
                frame.header.ext_fields.iter().map(|(k, _)| k.to_string()).collect();
            for (at, v) in values {
                if let Some(k) = keys.get(at % keys.len().max(1)) {
                    frame.header.ext_fields.insert(k.clone(), v);
                }
            }
            frame.header.serialize_type =
                if binary { SerializeType::RocketMq } else { SerializeType::Json };
            frame
        }
        Input::Bytes(bytes) => match ramjet_proto::frame::decode_frame_bytes(Bytes::from(bytes)) {
            Ok(frame) if !frame.header.is_response() => frame,
            _ => return 0,
        },
    };
    check(broker, shard, frame);
    1
}

/// One broker for all phases: glommio executors lock memory and the process's
/// RLIMIT_MEMLOCK may be small, so the phases share it instead of running in parallel.
#[test]
fn broker_dispatch_survives_hostile_requests() {
    let fixture = start_broker();
    let broker = fixture.broker();
    every_code_with_nothing(broker);
    every_recorded_frame_and_its_huge_variant(broker);
    any_request_sequence(broker);
    drop(fixture);
}

fn any_request_sequence(broker: &RunningBroker) {
    let codes = codes();
    let recorded = recorded_frames();
    {
        let shards = broker.shard_count();
        let strategy = (proptest::collection::vec(input(codes.len()), 1..16), 0..shards);
        fuzz("broker dispatch", 384, strategy, |(inputs, shard)| {
            inputs.into_iter().map(|i| run(broker, &codes, &recorded, shard, i)).sum()
        });
        print_answers("dispatch");
        still_serves(broker);
    }
}

/// Every recorded frame as recorded, and with every ext value replaced by 3.5 MB of
/// `\x01`, in both header encodings, on every shard (the issue 12 attack).
fn every_recorded_frame_and_its_huge_variant(broker: &RunningBroker) {
    let huge = "\u{1}".repeat(3_500_000);
    {
        let mut inputs = 0;
        for (n, raw) in recorded_frames().into_iter().enumerate() {
            let frame = decode_frame(&mut BytesMut::from(&raw[..]), usize::MAX)
                .expect("decodes")
                .expect("whole");
            if frame.header.is_response() {
                continue;
            }
            let shard = n % broker.shard_count();
            check(broker, shard, frame.clone());
            inputs += 1;
            for st in [SerializeType::Json, SerializeType::RocketMq] {
                let mut h = frame.header.clone();
                h.serialize_type = st;
                let keys: Vec<String> = h.ext_fields.iter().map(|(k, _)| k.to_string()).collect();
                for k in keys {
                    h.ext_fields.insert(k, huge.clone());
                }
                check(broker, shard, Frame { header: h, body: frame.body.clone() });
                inputs += 1;
            }
        }
        eprintln!("fuzz broker recorded frames: {inputs} inputs");
        print_answers("recorded frames");
        still_serves(broker);
    }
}

/// Every code in the table, both encodings, no fields and no body: the least a client can
/// send.
fn every_code_with_nothing(broker: &RunningBroker) {
    {
        let mut inputs = 0;
        for code in codes() {
            for st in [SerializeType::Json, SerializeType::RocketMq] {
                for shard in 0..broker.shard_count() {
                    check(
                        broker,
                        shard,
                        Frame { header: Header::request(code, 3, st), body: Bytes::new() },
                    );
                    inputs += 1;
                }
            }
        }
        eprintln!("fuzz broker empty requests: {inputs} inputs");
        print_answers("empty requests");
        still_serves(broker);
    }
}

/// After the fuzzing: a message sent to each queue of the topic is pulled back intact,
/// through whichever shard receives the request. The topic is reset first: the fuzzing
/// may have changed its queues or permissions, as any administrator may.
fn still_serves(broker: &RunningBroker) {
    create_topic(broker);
    for queue in 0..8 {
        let body = format!("still serving {queue}");
        let mut h = Header::request(request::SEND_MESSAGE, 5, SerializeType::Json);
        for (k, v) in [
            ("producerGroup", "still-p"),
            ("topic", TOPIC),
            ("defaultTopic", "TBW102"),
            ("defaultTopicQueueNums", "4"),
            ("queueId", &queue.to_string()),
            ("sysFlag", "0"),
            ("bornTimestamp", "1"),
            ("flag", "0"),
            ("properties", ""),
            ("reconsumeTimes", "0"),
            ("unitMode", "false"),
        ] {
            h.ext_fields.insert(k, v);
        }
        let resp = answer(broker, queue, Frame { header: h, body: Bytes::from(body.clone()) })
            .expect("send answered");
        assert_eq!(
            resp.header.code,
            response::SUCCESS,
            "send to queue {queue}: {:?}",
            resp.header.remark
        );
        let offset = resp.header.ext_fields.get("queueOffset").expect("queueOffset").to_string();
        let mut h = Header::request(request::PULL_MESSAGE, 6, SerializeType::RocketMq);
        for (k, v) in [
            ("consumerGroup", "still-c"),
            ("topic", TOPIC),
            ("queueId", &queue.to_string()),
            ("queueOffset", &offset),
            ("maxMsgNums", "1"),
            ("sysFlag", "0"),
            ("commitOffset", "0"),
            ("suspendTimeoutMillis", "0"),
            ("subVersion", "0"),
        ] {
            h.ext_fields.insert(k, v);
        }
        let resp = answer(broker, queue + 1, Frame { header: h, body: Bytes::new() })
            .expect("pull answered");
        assert_eq!(
            resp.header.code,
            response::SUCCESS,
            "pull of queue {queue}: {:?}",
            resp.header.remark
        );
        let found = whole_body(&resp).windows(body.len()).any(|w| w == body.as_bytes());
        assert!(found, "queue {queue}: the message pulled back is not the one sent");
    }
}
