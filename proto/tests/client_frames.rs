//! Fixtures: every frame recorded from real third-party clients
//! (`proto/tests/client-frames/*.jsonl`, see its README) must decode, its header
//! must parse into the typed request of its code, its JSON or batch body must parse, and it
//! must survive a re-encode in its own header encoding.
//!
//! A missing fixture directory fails the test: it is never skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use ramjet_proto::batch::decode_batch;
use ramjet_proto::body::{from_json, HeartbeatData, LockBatchRequestBody};
use ramjet_proto::codes::request;
use ramjet_proto::frame::{decode_frame, encode_frame_to_bytes, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::header::*;
use ramjet_proto::message::{parse_properties, property};
use ramjet_proto::{ExtFields, Frame, SerializeType};

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/client-frames");

/// Standard base64 with padding, as the fixture files store frames.
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).expect("fixture base64")
}

struct Record {
    file: String,
    line: usize,
    language: String,
    version: i32,
    code: i32,
    serialize: String,
    frame: Vec<u8>,
}

fn load_records() -> Vec<Record> {
    let dir = Path::new(FIXTURE_DIR);
    assert!(
        dir.is_dir(),
        "fixture directory {} is missing: the shared folder must sit beside the checkout",
        dir.display()
    );
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "expected at least 3 fixture files, found {files:?}");
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}:{}: bad JSON line: {e}", i + 1));
            out.push(Record {
                file: name.clone(),
                line: i + 1,
                language: v["language"].as_str().unwrap().to_string(),
                version: v["version"].as_i64().unwrap() as i32,
                code: v["code"].as_i64().unwrap() as i32,
                serialize: v["serialize"].as_str().unwrap().to_string(),
                frame: base64_decode(v["frame_base64"].as_str().unwrap()),
            });
        }
    }
    out
}

fn decode_one(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX)
        .expect("frame decodes")
        .expect("frame is complete");
    assert!(buf.is_empty(), "{} bytes left after the frame", buf.len());
    frame
}

fn sorted(ext: &ExtFields) -> BTreeMap<String, String> {
    ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Parses the header (and body) of `frame` as its code's typed request; returns a short
/// description for failure messages.
fn parse_typed(frame: &Frame) -> Result<String, String> {
    let ext = &frame.header.ext_fields;
    let code = frame.header.code;
    let e = |e: ramjet_proto::FieldError| e.to_string();
    match code {
        request::SEND_MESSAGE
        | request::SEND_MESSAGE_V2
        | request::SEND_BATCH_MESSAGE
        | request::SEND_REPLY_MESSAGE
        | request::SEND_REPLY_MESSAGE_V2 => {
            let h = SendMessageRequestHeader::decode_for_code(code, ext).map_err(e)?;
            if h.topic.is_empty() || h.producer_group.is_empty() {
                return Err("empty topic or group".into());
            }
            if code == request::SEND_BATCH_MESSAGE || h.is_batch() {
                let msgs = decode_batch(&frame.body).map_err(|e| e.to_string())?;
                if msgs.is_empty() {
                    return Err("empty batch".into());
                }
                for m in &msgs {
                    let props = parse_properties(&m.properties);
                    if !props.iter().any(|(k, _)| k == property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX) {
                        return Err("batch message without UNIQ_KEY".into());
                    }
                }
                Ok(format!("batch of {} to {}", msgs.len(), h.topic))
            } else {
                Ok(format!("send to {}", h.topic))
            }
        }
        request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
            let h = PullMessageRequestHeader::decode(ext).map_err(e)?;
            Ok(format!("pull {}:{}@{}", h.topic, h.queue_id, h.queue_offset))
        }
        request::QUERY_CONSUMER_OFFSET => {
            QueryConsumerOffsetRequestHeader::decode(ext).map_err(e).map(|h| h.topic)
        }
        request::UPDATE_CONSUMER_OFFSET => {
            UpdateConsumerOffsetRequestHeader::decode(ext).map_err(e).map(|h| h.topic)
        }
        request::GET_MAX_OFFSET => {
            GetMaxOffsetRequestHeader::decode(ext).map_err(e).map(|h| h.topic)
        }
        request::GET_MIN_OFFSET => {
            GetMinOffsetRequestHeader::decode(ext).map_err(e).map(|h| h.topic)
        }
        request::SEARCH_OFFSET_BY_TIMESTAMP => {
            SearchOffsetRequestHeader::decode(ext).map_err(e).map(|h| h.topic)
        }
        request::GET_EARLIEST_MSG_STORETIME => {
            GetEarliestMsgStoretimeRequestHeader::decode(ext).map_err(e).map(|h| h.topic)
        }
        request::QUERY_MESSAGE => QueryMessageRequestHeader::decode(ext).map_err(e).map(|h| h.key),
        request::VIEW_MESSAGE_BY_ID => {
            ViewMessageRequestHeader::decode(ext).map_err(e).map(|h| h.offset.to_string())
        }
        request::HEART_BEAT => {
            let hb: HeartbeatData = from_json(&frame.body).map_err(|e| e.to_string())?;
            if hb.client_id.is_empty() {
                return Err("heartbeat without clientID".into());
            }
            for c in &hb.consumer_data_set {
                if c.group_name.is_empty()
                    || c.subscription_data_set.iter().any(|s| s.topic.is_empty())
                {
                    return Err("consumer data without group or topic".into());
                }
            }
            Ok(format!(
                "heartbeat {} ({} producers, {} consumers)",
                hb.client_id,
                hb.producer_data_set.len(),
                hb.consumer_data_set.len()
            ))
        }
        request::UNREGISTER_CLIENT => {
            UnregisterClientRequestHeader::decode(ext).map_err(e).map(|h| h.client_id)
        }
        request::CONSUMER_SEND_MSG_BACK => {
            ConsumerSendMsgBackRequestHeader::decode(ext).map_err(e).map(|h| h.group)
        }
        request::END_TRANSACTION => {
            let h = EndTransactionRequestHeader::decode(ext).map_err(e)?;
            if ![0, 8, 12].contains(&h.commit_or_rollback) {
                return Err(format!("commitOrRollback {}", h.commit_or_rollback));
            }
            Ok(h.msg_id)
        }
        request::GET_CONSUMER_LIST_BY_GROUP => {
            GetConsumerListByGroupRequestHeader::decode(ext).map_err(e).map(|h| h.consumer_group)
        }
        request::LOCK_BATCH_MQ | request::UNLOCK_BATCH_MQ => {
            let b: LockBatchRequestBody = from_json(&frame.body).map_err(|e| e.to_string())?;
            if b.consumer_group.is_empty() || b.client_id.is_empty() || b.mq_set.is_empty() {
                return Err("lock body without group, client or queues".into());
            }
            Ok(format!("lock {} queues", b.mq_set.len()))
        }
        request::GET_ROUTEINFO_BY_TOPIC => {
            GetRouteInfoRequestHeader::decode(ext).map_err(e).map(|h| h.topic)
        }
        request::UPDATE_AND_CREATE_TOPIC => {
            CreateTopicRequestHeader::decode(ext).map_err(e).map(|h| h.topic)
        }
        request::REGISTER_BROKER => {
            RegisterBrokerRequestHeader::decode(ext).map_err(e).map(|h| h.broker_name)
        }
        request::UNREGISTER_BROKER => {
            UnRegisterBrokerRequestHeader::decode(ext).map_err(e).map(|h| h.broker_name)
        }
        other => Err(format!("no typed parse for request code {other}: add one to this test")),
    }
}

#[test]
fn every_recorded_frame_decodes_and_parses() {
    let records = load_records();
    assert!(records.len() >= 150, "only {} fixture frames found", records.len());
    let mut failures = Vec::new();
    let mut by_encoding = BTreeMap::new();
    for r in &records {
        let at = format!("{}:{} (code {}, {})", r.file, r.line, r.code, r.serialize);
        let frame = decode_one(&r.frame);
        let h = &frame.header;
        assert_eq!(h.code, r.code, "{at}: code");
        assert_eq!(h.version, r.version, "{at}: version");
        assert_eq!(h.language.name(), r.language, "{at}: language");
        assert!(!h.is_response(), "{at}: a request has the response bit");
        let expected = match r.serialize.as_str() {
            "JSON" => SerializeType::Json,
            "ROCKETMQ" => SerializeType::RocketMq,
            other => panic!("{at}: unknown serialize {other}"),
        };
        assert_eq!(h.serialize_type, expected, "{at}: serialize type");
        *by_encoding.entry(r.serialize.clone()).or_insert(0) += 1;

        match parse_typed(&frame) {
            Ok(_) => {}
            Err(e) => failures.push(format!("{at}: {e}")),
        }

        // Re-encode in the same header encoding and decode again: the same frame.
        let again = decode_one(&encode_frame_to_bytes(h, &frame.body).expect("encodes"));
        assert_eq!(again.body, frame.body, "{at}: body after re-encode");
        assert_eq!(again.header.code, h.code, "{at}");
        assert_eq!(again.header.opaque, h.opaque, "{at}");
        assert_eq!(again.header.flag, h.flag, "{at}");
        assert_eq!(again.header.version, h.version, "{at}");
        assert_eq!(again.header.language, h.language, "{at}");
        assert_eq!(sorted(&again.header.ext_fields), sorted(&h.ext_fields), "{at}");
    }
    assert!(failures.is_empty(), "{} frames failed:\n{}", failures.len(), failures.join("\n"));
    assert!(by_encoding.get("ROCKETMQ").copied().unwrap_or(0) > 0, "no binary frames seen");
}

#[test]
fn recorded_bodies_have_the_expected_shapes() {
    let records = load_records();
    let mut heartbeats = 0;
    let mut locks = 0;
    let mut batches = 0;
    for r in &records {
        let frame = decode_one(&r.frame);
        match frame.header.code {
            request::HEART_BEAT => {
                let hb: HeartbeatData = from_json(&frame.body).unwrap();
                for c in &hb.consumer_data_set {
                    for s in &c.subscription_data_set {
                        assert!(
                            s.expression_type == "TAG" || s.expression_type == "SQL92",
                            "{}:{}: expression type {}",
                            r.file,
                            r.line,
                            s.expression_type
                        );
                    }
                }
                heartbeats += 1;
            }
            request::LOCK_BATCH_MQ | request::UNLOCK_BATCH_MQ => {
                let b: LockBatchRequestBody = from_json(&frame.body).unwrap();
                assert!(b.mq_set.iter().all(|mq| !mq.topic.is_empty() && mq.queue_id >= 0));
                locks += 1;
            }
            request::SEND_BATCH_MESSAGE => {
                let body = Bytes::copy_from_slice(&frame.body);
                let msgs = decode_batch(&body).unwrap();
                assert!(msgs.iter().all(|m| !m.body.is_empty()));
                batches += 1;
            }
            _ => {}
        }
    }
    assert!(heartbeats > 0 && locks > 0 && batches > 0, "{heartbeats} {locks} {batches}");
}

#[test]
fn send_headers_from_each_client_agree_on_meaning() {
    for r in load_records() {
        if ![request::SEND_MESSAGE, request::SEND_MESSAGE_V2].contains(&r.code) {
            continue;
        }
        let frame = decode_one(&r.frame);
        let h =
            SendMessageRequestHeader::decode_for_code(frame.header.code, &frame.header.ext_fields)
                .unwrap();
        assert_eq!(h.default_topic, "TBW102", "{}:{}", r.file, r.line);
        assert_eq!(h.default_topic_queue_nums, 4, "{}:{}", r.file, r.line);
        assert!(h.born_timestamp > 1_600_000_000_000, "{}:{}", r.file, r.line);
        assert!(h.batch != Some(true), "{}:{}: plain sends are not batches", r.file, r.line);
        let props = parse_properties(h.properties.as_deref().unwrap_or("").as_bytes());
        assert!(!props.is_empty(), "{}:{}: properties", r.file, r.line);
    }
}
