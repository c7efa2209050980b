//! Bounded fuzzing that runs in CI (`cargo test`): arbitrary bytes, structured hostile
//! requests and mutations of the recorded client frames (proto/tests/client-frames) go
//! through the NameServer's dispatch (in process, no sockets), the replication wire decoder
//! and the metrics HTTP request parser. Nothing may panic; every NameServer request that is
//! not one-way gets a response that encodes, and the route table stays consistent.
//!
//! Each test prints how many inputs it ran (`cargo test -- --nocapture` shows it). The
//! cargo-fuzz targets in server/fuzz run the same checks without a bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ramjet_proto::codes::request;
use ramjet_proto::command::REMARK_BYTES_MAX;
use ramjet_proto::frame::{decode_frame, encode_frame, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::text::CUT_MARK_BYTES_MAX;
use ramjet_proto::{Frame, Header, SerializeType};
use ramjet_server::http::{head_complete, parse_head, Target};
use ramjet_server::namesrv::service::NamesrvService;
use ramjet_server::replication::wire;

use common::{fuzz, mutation, recorded_frames, value, Mutation};

// ---------------------------------------------------------------------------------------
// NameServer dispatch.

/// Checks one request against the NameServer: a response when not one-way, which encodes,
/// with a bounded remark and the request's opaque; the route table stays consistent.
fn check_namesrv(ns: &NamesrvService, frame: &Frame, connection_id: u64) {
    let resp = ns.dispatch(frame, connection_id);
    if !frame.header.is_oneway() {
        assert!(resp.header.is_response());
        assert_eq!(resp.header.opaque, frame.header.opaque);
        let mut out = BytesMut::new();
        encode_frame(&resp.header, &resp.body, &mut out).unwrap_or_else(|e| {
            panic!("response to code {} does not encode: {e}", frame.header.code)
        });
        let remark = resp.header.remark.as_deref().unwrap_or_default();
        assert!(remark.len() <= REMARK_BYTES_MAX + CUT_MARK_BYTES_MAX, "remark {}", remark.len());
    }
    assert_eq!(ns.route_invariant_violation(), None, "after code {}", frame.header.code);
}

/// Every request code the NameServer handles, and a few it does not.
const NAMESRV_CODES: &[i32] = &[
    request::REGISTER_BROKER,
    request::UNREGISTER_BROKER,
    request::GET_ROUTEINFO_BY_TOPIC,
    request::GET_BROKER_CLUSTER_INFO,
    request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
    request::GET_TOPICS_BY_CLUSTER,
    request::DELETE_TOPIC_IN_NAMESRV,
    request::PUT_KV_CONFIG,
    request::GET_KV_CONFIG,
    request::DELETE_KV_CONFIG,
    request::GET_KVLIST_BY_NAMESPACE,
    0,
    -1,
    9999,
];

const KEYS: &[&str] = &[
    "brokerName",
    "brokerAddr",
    "clusterName",
    "haServerAddr",
    "brokerId",
    "heartbeatTimeoutMillis",
    "compressed",
    "bodyCrc32",
    "topic",
    "cluster",
    "namespace",
    "key",
    "value",
    "acceptStandardJsonOnly",
];

/// A register body: valid JSON with topics, empty, or garbage.
fn register_body() -> impl Strategy<Value = Bytes> {
    let valid = proptest::collection::vec(0u8..4, 0..4).prop_map(|topics| {
        let table: Vec<String> = topics
            .iter()
            .map(|t| {
                format!(
                    "\"t{t}\":{{\"topicName\":\"t{t}\",\"readQueueNums\":{t},\
                     \"writeQueueNums\":{t},\"perm\":6}}"
                )
            })
            .collect();
        Bytes::from(format!(
            "{{\"topicConfigSerializeWrapper\":{{\"topicConfigTable\":{{{}}}}},\
             \"filterServerList\":[]}}",
            table.join(",")
        ))
    });
    prop_oneof![
        3 => valid,
        1 => Just(Bytes::new()),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
    ]
}

#[derive(Debug, Clone)]
enum NsInput {
    /// A structured request.
    Request {
        code: usize,
        fields: Vec<(usize, String)>,
        body: Bytes,
        binary: bool,
        oneway: bool,
        conn: u8,
    },
    /// A recorded frame, mutated.
    Recorded { index: usize, mutation: Mutation },
    /// Arbitrary bytes as a frame (after the length prefix).
    Bytes(Vec<u8>),
    /// A connection closed.
    Close(u8),
    /// Time passed and silent brokers expired.
    Expire(u64),
}

fn ns_input() -> impl Strategy<Value = NsInput> {
    prop_oneof![
        6 => (
            0..NAMESRV_CODES.len(),
            proptest::collection::vec((0..KEYS.len(), value()), 0..9),
            register_body(),
            any::<bool>(),
            proptest::bool::weighted(0.1),
            0u8..3,
        )
            .prop_map(|(code, fields, body, binary, oneway, conn)| NsInput::Request {
                code,
                fields,
                body,
                binary,
                oneway,
                conn
            }),
        3 => (any::<usize>(), mutation())
            .prop_map(|(index, mutation)| NsInput::Recorded { index, mutation }),
        1 => proptest::collection::vec(any::<u8>(), 0..128).prop_map(NsInput::Bytes),
        1 => (0u8..3).prop_map(NsInput::Close),
        1 => (0u64..400_000).prop_map(NsInput::Expire),
    ]
}

/// Feeds one input; returns how many requests reached dispatch.
fn run_ns_input(
    ns: &NamesrvService,
    recorded: &[Vec<u8>],
    input: NsInput,
    later_ms: &mut u64,
) -> usize {
    match input {
        NsInput::Request { code, fields, body, binary, oneway, conn } => {
            let st = if binary { SerializeType::RocketMq } else { SerializeType::Json };
            let mut h = Header::request(NAMESRV_CODES[code], 7, st);
            for (k, v) in fields {
                h.ext_fields.insert(KEYS[k], v);
            }
            if oneway {
                h.set_oneway();
            }
            check_namesrv(ns, &Frame { header: h, body }, u64::from(conn));
            1
        }
        NsInput::Recorded { index, mutation } => {
            let bytes = mutation.apply(&recorded[index % recorded.len()]);
            let mut buf = BytesMut::from(&bytes[..]);
            match decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX) {
                Ok(Some(frame)) => {
                    check_namesrv(ns, &frame, 1);
                    1
                }
                _ => 0,
            }
        }
        NsInput::Bytes(bytes) => {
            match ramjet_proto::frame::decode_frame_bytes(Bytes::from(bytes)) {
                Ok(frame) => {
                    check_namesrv(ns, &frame, 2);
                    1
                }
                Err(_) => 0,
            }
        }
        NsInput::Close(conn) => {
            ns.connection_closed(u64::from(conn));
            assert_eq!(ns.route_invariant_violation(), None);
            0
        }
        NsInput::Expire(ms) => {
            // Registrations carry the wall clock: expire that far ahead of it.
            *later_ms += ms;
            ns.expire(ramjet_server::clock::now_ms() + *later_ms);
            assert_eq!(ns.route_invariant_violation(), None);
            0
        }
    }
}

#[test]
fn namesrv_dispatch_survives_any_request_sequence() {
    let recorded = recorded_frames();
    fuzz("namesrv dispatch", 256, proptest::collection::vec(ns_input(), 1..24), |inputs| {
        let ns = NamesrvService::new();
        let mut later_ms = 0;
        inputs.into_iter().map(|i| run_ns_input(&ns, &recorded, i, &mut later_ms)).sum()
    });
}

/// Every recorded frame, as recorded and with every ext value replaced by 3.5 MB of
/// `\x01`, in both header encodings (the issue 12 attack, on the NameServer).
#[test]
fn namesrv_answers_every_recorded_frame_and_its_huge_variant() {
    let ns = NamesrvService::new();
    let huge = "\u{1}".repeat(3_500_000);
    let mut inputs = 0;
    for raw in recorded_frames() {
        let mut buf = BytesMut::from(&raw[..]);
        let frame = decode_frame(&mut buf, usize::MAX).expect("decodes").expect("whole");
        check_namesrv(&ns, &frame, 1);
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let mut h = frame.header.clone();
            h.serialize_type = st;
            let keys: Vec<String> = h.ext_fields.iter().map(|(k, _)| k.to_string()).collect();
            for k in keys {
                h.ext_fields.insert(k, huge.clone());
            }
            check_namesrv(&ns, &Frame { header: h, body: frame.body.clone() }, 1);
        }
        inputs += 3;
    }
    for &code in NAMESRV_CODES {
        let mut h = Header::request(code, 3, SerializeType::RocketMq);
        for k in KEYS {
            h.ext_fields.insert(*k, huge.clone());
        }
        check_namesrv(&ns, &Frame { header: h, body: Bytes::new() }, 1);
        inputs += 1;
    }
    eprintln!("fuzz namesrv huge values: {inputs} inputs");
}

// ---------------------------------------------------------------------------------------
// Replication wire decoder.

/// Decodes frames from `bytes` until one is missing or refused; returns how many decodes
/// ran. What decodes re-encodes to a frame that decodes to the same message.
fn decode_all(bytes: &[u8]) -> usize {
    let mut buf = BytesMut::from(bytes);
    let mut n = 0;
    for _ in 0..64 {
        n += 1;
        match wire::decode(&mut buf) {
            Ok(Some(m)) => {
                let mut again = wire::encode(&m);
                assert_eq!(wire::decode(&mut again).expect("re-decodes"), Some(m));
            }
            Ok(None) | Err(_) => break,
        }
    }
    n
}

fn sample_messages() -> Vec<Vec<u8>> {
    use wire::{Action, LogState, Message, Origin};
    let messages = [
        Message::Hello {
            version: wire::VERSION,
            segment_size_bytes: 1 << 20,
            logs: vec![LogState { start: 0, end: 10, durable: 9 }],
            nonce: Some([5; wire::NONCE_BYTES]),
            broker_addr: "127.0.0.1:10911".into(),
        },
        Message::Welcome {
            segment_size_bytes: 1 << 20,
            actions: vec![Action::Stream(5), Action::Refused],
            origin: Some(Origin { run: 7, opened: vec![5, 0], epochs: None }),
        },
        Message::Data { log: 1, position: 9, bytes: Bytes::from_static(b"record bytes") },
        Message::DataWritten {
            log: 1,
            position: 9,
            written: 4,
            bytes: Bytes::from_static(b"record bytes"),
        },
        Message::Metadata { json: Bytes::from_static(br#"{"snapshot":0}"#) },
        Message::Heartbeat { written: vec![1, 2] },
        Message::Ack { positions: vec![(0, 5)] },
        Message::Error { reason: "no".into() },
        Message::Challenge { nonce: [1; wire::NONCE_BYTES], proof: [2; wire::PROOF_BYTES] },
        Message::Auth { proof: [3; wire::PROOF_BYTES] },
    ];
    messages.iter().map(|m| wire::encode(m).to_vec()).collect()
}

#[test]
fn wire_decoder_survives_arbitrary_bytes() {
    fuzz("wire arbitrary", 1024, proptest::collection::vec(any::<u8>(), 0..256), |bytes| {
        decode_all(&bytes)
    });
}

/// Any body under a valid length and checksum, so the body decoders see it all.
#[test]
fn wire_decoder_survives_any_body_with_a_valid_checksum() {
    let strategy = (0u8..8, proptest::collection::vec(any::<u8>(), 0..200));
    fuzz("wire checksummed bodies", 1024, strategy, |(kind, body)| {
        let mut frame = wire::header(kind, &[&body]).to_vec();
        frame.extend_from_slice(&body);
        decode_all(&frame)
    });
}

#[test]
fn wire_decoder_survives_mutated_messages() {
    let samples = sample_messages();
    let strategy = (0..samples.len(), mutation(), any::<bool>());
    fuzz("wire mutated messages", 1024, strategy, |(index, mutation, rechecksum)| {
        let mut v = mutation.apply(&samples[index]);
        if rechecksum && v.len() >= wire::HEADER_BYTES {
            // Fix length and checksum so the mutation reaches the body decoder.
            let kind = v[8];
            let body = v[wire::HEADER_BYTES..].to_vec();
            v = wire::header(kind, &[&body]).to_vec();
            v.extend_from_slice(&body);
        }
        decode_all(&v)
    });
}

// ---------------------------------------------------------------------------------------
// Metrics HTTP request parser.

#[test]
fn http_parser_survives_arbitrary_heads() {
    fuzz("http arbitrary", 1024, proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
        let _ = head_complete(&bytes);
        let _ = parse_head(&String::from_utf8_lossy(&bytes));
        1
    });
}

#[test]
fn http_parser_routes_generated_requests() {
    let strategy = (
        prop_oneof![Just("GET".to_string()), Just("POST".to_string()), "[A-Z]{0,8}"],
        prop_oneof![
            Just("/metrics".to_string()),
            Just("/".to_string()),
            Just("/metrics?x=1".to_string()),
            "[ -~]{0,40}"
        ],
        "[ -~]{0,80}",
    );
    fuzz("http generated", 1024, strategy, |(method, path, tail)| {
        let head = format!("{method} {path} HTTP/1.1\r\n{tail}\r\n\r\n");
        assert!(head_complete(head.as_bytes()));
        let target = parse_head(&head);
        let clean = !path.is_empty() && !path.contains(char::is_whitespace);
        if clean && method == "GET" {
            let expected = match path.split('?').next() {
                Some("/metrics") => Target::Metrics,
                Some("/") => Target::Index,
                _ => Target::NotFound,
            };
            assert_eq!(target, expected, "{head:?}");
        }
        if !method.is_empty() && method != "GET" {
            assert_eq!(target, Target::MethodNotAllowed, "{head:?}");
        }
        1
    });
}
