//! Goal: requests carry the fields the reference broker reads, and replies map to the
//! right statuses and errors. Method: build requests and decode them with the broker-side
//! `proto` decoders; build replies by hand as a broker would.

use bytes::{BufMut, Bytes, BytesMut};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{CommandHeader, PullMessageRequestHeader, SendMessageRequestHeader};
use ramjet_proto::message::{encode_record, parse_properties, property, MessageMeta};
use ramjet_proto::{Frame, Header, SerializeType};

use super::*;
use crate::message::{Message, MessageQueue, PullStatus, SendStatus};

fn mq() -> MessageQueue {
    MessageQueue { topic: "t".into(), broker_name: "b".into(), queue_id: 3 }
}

fn ctx() -> SendContext<'static> {
    SendContext {
        producer_group: "g",
        serialize_type: SerializeType::RocketMq,
        born_timestamp_ms: 42,
    }
}

fn reply(code: i32, ext: &[(&str, &str)], body: Bytes) -> Frame {
    let mut header = Header::response_to(&Header::request(0, 9, SerializeType::Json), code);
    for (k, v) in ext {
        header.ext_fields.insert(*k, *v);
    }
    header.remark = Some(format!("remark {code}"));
    Frame { header, body }
}

#[test]
fn send_request_is_v2_with_properties_and_decodes_as_the_broker_would() {
    let msg = Message::new("t", "hello").with_tags("TagA").with_keys("k1 k2");
    let h = send_request(&ctx(), &msg, &mq(), "0123456789ABCDEF0123456789ABCDEF");
    assert_eq!(h.code, request::SEND_MESSAGE_V2);
    assert_eq!(h.ext_fields.get("a"), Some("g"), "V2 keys are single letters");
    let decoded =
        SendMessageRequestHeader::decode_for_code(h.code, &h.ext_fields).expect("decodes");
    assert_eq!((decoded.topic.as_str(), decoded.queue_id), ("t", 3));
    assert_eq!(decoded.born_timestamp, 42);
    let props = parse_properties(decoded.properties.as_deref().unwrap_or("").as_bytes());
    let get = |n: &str| props.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get(property::TAGS), Some("TagA"));
    assert_eq!(get(property::KEYS), Some("k1 k2"));
    assert_eq!(get(property::WAIT_STORE_MSG_OK), Some("true"));
    assert_eq!(
        get(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX),
        Some("0123456789ABCDEF0123456789ABCDEF")
    );
}

#[test]
fn user_set_unique_key_is_kept() {
    let mut msg = Message::new("t", "x");
    msg.set_property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, "MINE");
    let props = message_properties(&msg, "GENERATED");
    let parsed = parse_properties(props.as_bytes());
    let keys: Vec<_> = parsed.iter().filter(|(k, _)| k == "UNIQ_KEY").collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].1, "MINE");
}

#[test]
fn batch_request_encodes_inner_messages_back_to_back() {
    let msgs = vec![Message::new("t", "a"), Message::new("t", "bcd")];
    let keys = vec!["K1".to_string(), "K2".to_string()];
    let (h, body) = batch_request(&ctx(), &msgs, &mq(), &keys).expect("batch");
    assert_eq!(h.code, request::SEND_BATCH_MESSAGE);
    let decoded = SendMessageRequestHeader::decode_for_code(h.code, &h.ext_fields).expect("hdr");
    assert_eq!(decoded.batch, Some(true));
    let inner = ramjet_proto::batch::decode_batch(&Bytes::from(body)).expect("broker decodes");
    let bodies: Vec<&[u8]> = inner.iter().map(|m| &m.body[..]).collect();
    assert_eq!(bodies, [&b"a"[..], &b"bcd"[..]]);
    let second_key = ramjet_proto::message::property_value(&inner[1].properties, "UNIQ_KEY");
    assert_eq!(second_key.as_deref(), Some("K2"));
    assert!(batch_request(&ctx(), &[], &mq(), &[]).is_err());
    let mixed = vec![Message::new("t", "a"), Message::new("u", "b")];
    assert!(batch_request(&ctx(), &mixed, &mq(), &keys).is_err());
}

#[test]
fn send_reply_codes_map_to_statuses_or_broker_errors() {
    let ext = [("msgId", "OFFSETID"), ("queueId", "2"), ("queueOffset", "17")];
    let ok = parse_send_response(reply(0, &ext, Bytes::new()), &mq(), "U".into()).expect("ok");
    assert_eq!(ok.status, SendStatus::Ok);
    assert_eq!((ok.queue.queue_id, ok.queue_offset), (2, 17));
    assert_eq!((ok.msg_id.as_str(), ok.offset_msg_id.as_str()), ("U", "OFFSETID"));
    for (code, status) in [
        (response::FLUSH_DISK_TIMEOUT, SendStatus::FlushDiskTimeout),
        (response::FLUSH_SLAVE_TIMEOUT, SendStatus::FlushSlaveTimeout),
        (response::SLAVE_NOT_AVAILABLE, SendStatus::SlaveNotAvailable),
    ] {
        let r = parse_send_response(reply(code, &ext, Bytes::new()), &mq(), "U".into());
        assert_eq!(r.expect("stored").status, status);
    }
    let err =
        parse_send_response(reply(response::SYSTEM_BUSY, &[], Bytes::new()), &mq(), "U".into());
    assert_eq!(
        err,
        Err(ClientError::Broker { code: response::SYSTEM_BUSY, remark: "remark 2".into() })
    );
    let missing = parse_send_response(reply(0, &[], Bytes::new()), &mq(), "U".into());
    assert!(matches!(missing, Err(ClientError::BadResponse { .. })));
}

#[test]
fn pull_request_sets_suspend_subscription_and_commit_flags() {
    let q = mq();
    let args = PullArgs {
        consumer_group: "g",
        queue: &q,
        offset: 5,
        max_nums: 32,
        suspend_timeout_ms: Some(15_000),
        subscription: Some("*"),
        commit_offset: Some(4),
        sub_version: 1,
    };
    let h = pull_request(&args, SerializeType::Json);
    let d = PullMessageRequestHeader::decode(&h.ext_fields).expect("decodes");
    assert_eq!(d.sys_flag, PULL_FLAG_SUSPEND | PULL_FLAG_SUBSCRIPTION | PULL_FLAG_COMMIT_OFFSET);
    assert_eq!((d.queue_offset, d.max_msg_nums, d.commit_offset), (5, 32, 4));
    assert_eq!(d.suspend_timeout_millis, 15_000);
    let bare =
        PullArgs { suspend_timeout_ms: None, subscription: None, commit_offset: None, ..args };
    let d = PullMessageRequestHeader::decode(&pull_request(&bare, SerializeType::Json).ext_fields)
        .expect("decodes");
    assert_eq!(d.sys_flag, 0);
    assert_eq!(d.subscription, None);
}

fn record(tags: &str, body: &[u8]) -> Vec<u8> {
    let meta = MessageMeta {
        queue_id: 3,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: "127.0.0.1:1".parse().unwrap(),
        store_host: "127.0.0.1:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
    };
    let props = ramjet_proto::message::encode_properties([("TAGS", tags)]);
    let mut out = BytesMut::new();
    encode_record(&mut out, &meta, body, "t", &props).expect("encodes");
    // TOTALSIZE is the record's real length (set here so this test does not depend on
    // `proto::message::record_len`, which at the time of writing was 8 bytes short).
    let len = out.len() as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.to_vec()
}

fn pull_ext() -> [(&'static str, &'static str); 4] {
    [
        ("suggestWhichBrokerId", "0"),
        ("nextBeginOffset", "9"),
        ("minOffset", "0"),
        ("maxOffset", "9"),
    ]
}

#[test]
fn pull_reply_decodes_records_and_filters_tags() {
    let mut body = BytesMut::new();
    body.put_slice(&record("A", b"one"));
    body.put_slice(&record("B", b"two"));
    let body = body.freeze();
    let all = parse_pull_response(reply(0, &pull_ext(), body.clone()), &[]).expect("found");
    assert_eq!(all.status, PullStatus::Found);
    assert_eq!(all.messages.len(), 2);
    assert_eq!(all.next_begin_offset, 9);
    let only_b =
        parse_pull_response(reply(0, &pull_ext(), body.clone()), &subscription_tags("B || C"))
            .expect("found");
    assert_eq!(only_b.messages.len(), 1);
    assert_eq!(&only_b.messages[0].body[..], b"two");
    let none =
        parse_pull_response(reply(0, &pull_ext(), body), &subscription_tags("Z")).expect("ok");
    assert_eq!(none.status, PullStatus::NoMatchedMsg);
    assert!(none.messages.is_empty());
}

#[test]
fn pull_reply_codes_map_to_statuses() {
    for (code, status) in [
        (response::PULL_NOT_FOUND, PullStatus::NoNewMsg),
        (response::PULL_RETRY_IMMEDIATELY, PullStatus::RetryImmediately),
        (response::PULL_OFFSET_MOVED, PullStatus::OffsetIllegal),
    ] {
        let r = parse_pull_response(reply(code, &pull_ext(), Bytes::new()), &[]).expect("maps");
        assert_eq!(r.status, status);
        assert!(r.messages.is_empty());
    }
    let err = parse_pull_response(reply(response::SUBSCRIPTION_NOT_EXIST, &[], Bytes::new()), &[]);
    assert_eq!(err.err().and_then(|e| e.response_code()), Some(response::SUBSCRIPTION_NOT_EXIST));
    let garbage = parse_pull_response(reply(0, &pull_ext(), Bytes::from_static(b"junk")), &[]);
    assert!(matches!(garbage, Err(ClientError::BadResponse { .. })));
}

#[test]
fn subscription_tags_parse_expressions() {
    assert!(subscription_tags("*").is_empty());
    assert!(subscription_tags("").is_empty());
    assert_eq!(subscription_tags(" A ||B|| "), ["A", "B"]);
}

#[test]
fn offset_replies_map_not_found_to_none() {
    let found = reply(0, &[("offset", "12")], Bytes::new());
    assert_eq!(parse_query_offset(found).expect("ok"), Some(12));
    let none = reply(response::QUERY_NOT_FOUND, &[], Bytes::new());
    assert_eq!(parse_query_offset(none).expect("ok"), None);
    let max = reply(0, &[("offset", "99")], Bytes::new());
    assert_eq!(parse_offset(max, request::GET_MAX_OFFSET).expect("ok"), 99);
}

#[test]
fn route_reply_parses_fastjson_and_maps_topic_not_exist() {
    let body = Bytes::from_static(
        br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"b","cluster":"c"}],"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,"writeQueueNums":4}]}"#,
    );
    let route = parse_route(reply(0, &[], body)).expect("ok").expect("route");
    assert_eq!(route.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
    assert_eq!(parse_route(reply(response::TOPIC_NOT_EXIST, &[], Bytes::new())).expect("ok"), None);
}

#[test]
fn heartbeat_body_names_the_group_and_its_subscriptions() {
    let subs = [Subscription { topic: "t".into(), expression: "A || B".into() }];
    let (h, body) = heartbeat_request("cid", "g", &subs, 7, SerializeType::Json);
    assert_eq!(h.code, request::HEART_BEAT);
    let data: ramjet_proto::body::HeartbeatData =
        ramjet_proto::body::from_json(&body).expect("parses");
    assert_eq!(data.client_id, "cid");
    let c = &data.consumer_data_set[0];
    assert_eq!(c.group_name, "g");
    assert_eq!(c.subscription_data_set[0].tags_set, ["A", "B"]);
    assert_eq!(c.subscription_data_set[0].code_set, [65, 66]);
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.contains("\"clientID\""), "{text}");
}

#[test]
fn consumer_list_request_and_reply() {
    let h = consumer_list_request("g", SerializeType::RocketMq);
    assert_eq!(h.code, request::GET_CONSUMER_LIST_BY_GROUP);
    assert_eq!(h.ext_fields.get("consumerGroup"), Some("g"));
    let ok = reply(response::SUCCESS, &[], Bytes::from_static(br#"{"consumerIdList":["b","a"]}"#));
    assert_eq!(parse_consumer_list(ok).expect("parses"), ["b", "a"]);
    let refused = reply(response::SYSTEM_ERROR, &[], Bytes::new());
    assert_eq!(
        parse_consumer_list(refused).unwrap_err().response_code(),
        Some(response::SYSTEM_ERROR)
    );
}

#[test]
fn lock_and_unlock_bodies_carry_group_client_and_queues() {
    let queues = [mq()];
    let (h, body) = lock_batch_request("g", "cid", &queues, SerializeType::Json);
    assert_eq!(h.code, request::LOCK_BATCH_MQ);
    let parsed: ramjet_proto::body::LockBatchRequestBody =
        ramjet_proto::body::from_json(&body).expect("parses");
    assert_eq!(parsed.consumer_group, "g");
    assert_eq!(parsed.client_id, "cid");
    assert_eq!(parsed.mq_set, queues);
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.contains("\"mqSet\"") && text.contains("\"brokerName\""), "{text}");
    let (h, _) = unlock_batch_request("g", "cid", &queues, SerializeType::Json);
    assert_eq!(h.code, request::UNLOCK_BATCH_MQ);
    let ok = reply(
        response::SUCCESS,
        &[],
        Bytes::from_static(br#"{"lockOKMQSet":[{"topic":"t","brokerName":"b","queueId":3}]}"#),
    );
    assert_eq!(parse_lock_batch(ok).expect("parses"), queues);
}

#[test]
fn send_back_header_decodes_as_the_broker_would() {
    let args = SendBackArgs {
        group: "g",
        commit_log_offset: 1234,
        delay_level: 0,
        origin_msg_id: "ID",
        origin_topic: "t",
        max_reconsume_times: 16,
    };
    let h = send_back_request(&args, SerializeType::RocketMq);
    assert_eq!(h.code, request::CONSUMER_SEND_MSG_BACK);
    let d = ramjet_proto::header::ConsumerSendMsgBackRequestHeader::decode(&h.ext_fields)
        .expect("decodes");
    assert_eq!(d.offset, 1234);
    assert_eq!(d.group, "g");
    assert_eq!(d.delay_level, 0);
    assert_eq!(d.origin_msg_id.as_deref(), Some("ID"));
    assert_eq!(d.origin_topic.as_deref(), Some("t"));
    assert_eq!(d.max_reconsume_times, Some(16));
}

#[test]
fn unregister_search_offset_and_notify() {
    let h = unregister_consumer_request("cid", "g", SerializeType::Json);
    assert_eq!(h.code, request::UNREGISTER_CLIENT);
    assert_eq!(h.ext_fields.get("clientID"), Some("cid"));
    assert_eq!(h.ext_fields.get("consumerGroup"), Some("g"));
    assert_eq!(h.ext_fields.get("producerGroup"), None);
    let h = search_offset_request(&mq(), 99, SerializeType::RocketMq);
    assert_eq!(h.code, request::SEARCH_OFFSET_BY_TIMESTAMP);
    assert_eq!(h.ext_fields.get("timestamp"), Some("99"));
    assert_eq!(h.ext_fields.get("queueId"), Some("3"));
    let offset = reply(response::SUCCESS, &[("offset", "17")], Bytes::new());
    assert_eq!(parse_offset(offset, request::SEARCH_OFFSET_BY_TIMESTAMP).expect("offset"), 17);

    let mut notify = Header::request(request::NOTIFY_CONSUMER_IDS_CHANGED, 5, SerializeType::Json);
    notify.ext_fields.insert("consumerGroup", "g");
    let frame = Frame { header: notify, body: Bytes::new() };
    assert_eq!(parse_notify_consumer_ids_changed(&frame).as_deref(), Some("g"));
    let other = Frame {
        header: Header::request(request::HEART_BEAT, 5, SerializeType::Json),
        body: Bytes::new(),
    };
    assert_eq!(parse_notify_consumer_ids_changed(&other), None);
    assert_eq!(retry_topic("g"), "%RETRY%g");
    assert_eq!(dlq_topic("g"), "%DLQ%g");
}

#[test]
fn push_consumer_heartbeat_names_model_and_start() {
    use ramjet_proto::body::{ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel};
    let subs = [
        Subscription { topic: "t".into(), expression: "TagA".into() },
        Subscription { topic: retry_topic("g"), expression: "*".into() },
    ];
    let consumer = ConsumerData {
        group_name: "g".into(),
        consume_type: ConsumeType::ConsumePassively,
        message_model: MessageModel::Broadcasting,
        consume_from_where: ConsumeFromWhere::ConsumeFromTimestamp,
        subscription_data_set: subs.iter().map(|s| subscription_data(s, 3)).collect(),
        unit_mode: false,
    };
    let (_, body) = consumer_heartbeat_request("cid", consumer, SerializeType::RocketMq);
    let text = String::from_utf8(body).expect("utf8");
    for want in ["CONSUME_PASSIVELY", "BROADCASTING", "CONSUME_FROM_TIMESTAMP", "%RETRY%g"] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let data: ramjet_proto::body::HeartbeatData =
        ramjet_proto::body::from_json(text.as_bytes()).expect("parses");
    let subs = &data.consumer_data_set[0].subscription_data_set;
    assert_eq!(subs[0].code_set, [2_598_919]);
    assert!(subs[1].tags_set.is_empty(), "* subscribes to every tag");
}

#[test]
fn query_offset_can_ask_for_not_found_instead_of_zero() {
    let plain = query_offset_request("g", &mq(), SerializeType::Json);
    assert_eq!(plain.ext_fields.get("setZeroIfNotFound"), None);
    let strict = query_offset_request_with("g", &mq(), Some(false), SerializeType::Json);
    assert_eq!(strict.code, request::QUERY_CONSUMER_OFFSET);
    assert_eq!(strict.ext_fields.get("setZeroIfNotFound"), Some("false"));
    assert_eq!(strict.ext_fields.get("consumerGroup"), Some("g"));
}
