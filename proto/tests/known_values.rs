//! Known-value tests: exact bytes and numbers the reference produces or accepts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use ramjet_proto::body::{from_json, ConsumeType, TopicRouteData};
use ramjet_proto::error::{FieldError, FrameError};
use ramjet_proto::frame::{decode_frame, encode_frame_to_bytes, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::header::*;
use ramjet_proto::message::{
    decode_offset_msg_id, decode_record, encode_record, offset_msg_id, record_len,
    store_timestamp_pos, tags_code, MessageMeta,
};
use ramjet_proto::{binary_header, json_header, ExtFields, Header, LanguageCode, SerializeType};

#[test]
fn json_header_with_numbers_booleans_and_ordinal_language() {
    // No serializeTypeCurrentRPC, language as an ordinal, opaque as a string, extFields
    // values as numbers and booleans, a null remark and a null ext value.
    let raw = br#"{"code":310,"language":9,"opaque":"5","flag":0,"version":121,"remark":null,
        "extFields":{"a":"g","b":"t","d":4,"e":0,"f":0,"g":1795647943273,"h":0,"k":false,
        "m":1,"i":null,"Signature":""}}"#;
    let h = json_header::decode(raw).unwrap();
    assert_eq!(h.code, 310);
    assert_eq!(h.language, LanguageCode(9));
    assert_eq!(h.language.name(), "GO");
    assert_eq!(h.opaque, 5);
    assert_eq!(h.version, 121);
    assert_eq!(h.remark, None);
    assert_eq!(h.serialize_type, SerializeType::Json);
    let ext = &h.ext_fields;
    assert_eq!(ext.get("d"), Some("4"));
    assert_eq!(ext.get("g"), Some("1795647943273"));
    assert_eq!(ext.get("k"), Some("false"));
    assert_eq!(ext.get("i"), None);
    let send = SendMessageRequestHeader::decode_for_code(h.code, ext).unwrap();
    assert_eq!(send.producer_group, "g");
    assert_eq!(send.topic, "t");
    assert_eq!(send.default_topic, "TBW102", "absent c defaults");
    assert_eq!(send.default_topic_queue_nums, 4);
    assert_eq!(send.born_timestamp, 1_795_647_943_273);
    assert_eq!(send.unit_mode, Some(false));
    assert_eq!(send.batch, Some(true), "1 is true");
    assert_eq!(send.properties, None);
    // A V1 decode of the same map fails on the first required long name.
    assert_eq!(
        SendMessageRequestHeader::decode_for_code(10, ext),
        Err(FieldError::Missing { field: "producerGroup" })
    );
}

#[test]
fn json_header_language_names_and_defaults() {
    let h = json_header::decode(br#"{"code":"105","language":"CPP","extFields":{}}"#).unwrap();
    assert_eq!(h.code, 105);
    assert_eq!(h.language.name(), "CPP");
    assert_eq!((h.opaque, h.flag, h.version), (0, 0, 0));
    let h = json_header::decode(br#"{"code":1,"language":"KLINGON"}"#).unwrap();
    assert_eq!(h.language, LanguageCode::OTHER);
    assert!(json_header::decode(b"[1]").is_err());
    assert!(json_header::decode(br#"{"code":4294967296}"#).is_err());
}

#[test]
fn json_header_encoding_is_fastjson_shaped() {
    let mut h = Header::request(34, 3, SerializeType::Json);
    h.ext_fields.insert("k", "v\"1");
    let mut out = Vec::new();
    json_header::encode(&h, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"code":34,"extFields":{"k":"v\"1"},"flag":0,"language":"RUST","opaque":3,"serializeTypeCurrentRPC":"JSON","version":401}"#
    );
}

#[test]
fn binary_header_known_bytes() {
    let mut h = Header::request(10, 7, SerializeType::RocketMq);
    h.flag = 2;
    h.remark = Some("hi".into());
    h.ext_fields.insert("a", "b");
    #[rustfmt::skip]
    let header: &[u8] = &[
        0x00, 0x0A,             // code 10
        0x0C,                   // language RUST (12)
        0x01, 0x91,             // version 401
        0x00, 0x00, 0x00, 0x07, // opaque
        0x00, 0x00, 0x00, 0x02, // flag: one-way
        0x00, 0x00, 0x00, 0x02, b'h', b'i',       // remark
        0x00, 0x00, 0x00, 0x08,                   // ext length: 2+1+4+1
        0x00, 0x01, b'a', 0x00, 0x00, 0x00, 0x01, b'b',
    ];
    let mut out = Vec::new();
    binary_header::encode(&h, &mut out);
    assert_eq!(out, header);
    assert_eq!(binary_header::decode(header).unwrap(), h);

    // The whole frame: length 4 + 31 + 2 = 37, type byte 1, header length 31.
    let frame = encode_frame_to_bytes(&h, b"xy").expect("encodes");
    let mut expected = vec![0, 0, 0, 37, 1, 0, 0, 31];
    expected.extend_from_slice(header);
    expected.extend_from_slice(b"xy");
    assert_eq!(&frame[..], &expected[..]);
    let mut buf = BytesMut::from(&expected[..]);
    let decoded = decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX).unwrap().unwrap();
    assert_eq!(decoded.header, h);
    assert_eq!(&decoded.body[..], b"xy");
    assert!(decoded.header.is_oneway());
}

#[test]
fn binary_header_rejects_truncation_and_negative_lengths() {
    let mut h = Header::request(10, 7, SerializeType::RocketMq);
    h.ext_fields.insert("key", "value");
    let mut out = Vec::new();
    binary_header::encode(&h, &mut out);
    for n in 0..out.len() {
        assert!(binary_header::decode(&out[..n]).is_err(), "prefix of {n} bytes");
    }
    let mut neg = out.clone();
    neg[13..17].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(binary_header::decode(&neg).is_err());
}

#[test]
fn frame_errors() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 3][..]);
    assert_eq!(decode_frame(&mut buf, 100), Err(FrameError::LengthTooSmall { length: 3 }));
    let mut buf = BytesMut::from(&[0xFFu8, 0xFF, 0xFF, 0xFF][..]);
    assert!(matches!(decode_frame(&mut buf, 100), Err(FrameError::LengthTooSmall { .. })));
    let mut buf = BytesMut::from(&[0u8, 0, 1, 0][..]);
    assert_eq!(
        decode_frame(&mut buf, 100),
        Err(FrameError::LengthTooLarge { length: 256, max: 100 })
    );
    let mut buf = BytesMut::from(&[0u8, 0, 0, 4, 2, 0, 0, 0][..]);
    assert_eq!(decode_frame(&mut buf, 100), Err(FrameError::SerializeTypeUnknown { value: 2 }));
    let mut buf = BytesMut::from(&[0u8, 0, 0, 4, 0, 0, 0, 9][..]);
    assert!(matches!(decode_frame(&mut buf, 100), Err(FrameError::HeaderLengthInvalid { .. })));
    let mut buf = BytesMut::from(&[0u8, 0][..]);
    assert_eq!(decode_frame(&mut buf, 100), Ok(None));
}

#[test]
fn tags_code_is_java_string_hash_code() {
    assert_eq!(tags_code("TagA"), 2_598_919);
    assert_eq!(tags_code(""), 0);
    assert_eq!(tags_code("标签"), 857_175);
    assert_eq!(tags_code("ünïcødé"), -609_219_977);
    // A surrogate pair counts as two UTF-16 units.
    assert_eq!(tags_code("😀"), 1_772_899);
    // Overflow wraps as Java's int does, and sign-extends.
    assert_eq!(tags_code("polygenelubricants"), i64::from(i32::MIN));
}

#[test]
fn offset_msg_id_known_values() {
    // From a recorded CONSUMER_SEND_MSG_BACK: offset 16882 on 127.0.0.1:19876.
    let addr = "127.0.0.1:19876".parse().unwrap();
    assert_eq!(offset_msg_id(&addr, 16882), "7F00000100004DA400000000000041F2");
    assert_eq!(decode_offset_msg_id("7F00000100004DA400000000000041F2"), Some((addr, 16882)));
    let v6 = "[::1]:10911".parse().unwrap();
    let id = offset_msg_id(&v6, 1);
    assert_eq!(id, "0000000000000000000000000000000100002A9F0000000000000001");
    assert_eq!(decode_offset_msg_id(&id), Some((v6, 1)));
    assert_eq!(decode_offset_msg_id("7F00000100004DA400000000000041F"), None);
    assert_eq!(decode_offset_msg_id("ZZ00000100004DA400000000000041F2"), None);
}

#[test]
fn stored_record_layout() {
    let meta = MessageMeta {
        queue_id: 3,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: "10.0.0.1:5000".parse().unwrap(),
        store_host: "10.0.0.2:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
    };
    // 84 fixed + 4 + 3 body + 1 + 1 topic + 2 + 0 properties.
    assert_eq!(record_len(&meta, 3, 1, 0), 95);
    let mut out = Vec::new();
    assert_eq!(encode_record(&mut out, &meta, b"abc", "t", b"").unwrap(), 95);
    assert_eq!(out.len(), 95);
    assert_eq!(&out[..4], &95i32.to_be_bytes());
    assert_eq!(&out[4..8], &[0xDA, 0xA3, 0x20, 0xA7]);
    assert_eq!(store_timestamp_pos(0), 56);
    assert_eq!(&out[48..52], &[10, 0, 0, 1]);
    assert_eq!(&out[52..56], &5000i32.to_be_bytes());
    let m = decode_record(&Bytes::from(out), true).unwrap();
    assert_eq!(&m.body[..], b"abc");
    // An IPv6 born host adds 12 bytes and moves STORETIMESTAMP.
    let meta6 = MessageMeta { born_host: "[::1]:1".parse().unwrap(), ..meta };
    assert_eq!(record_len(&meta6, 3, 1, 0), 107);
    assert_eq!(store_timestamp_pos(0x10), 68);
}

#[test]
fn required_optional_and_invalid_fields() {
    let mut ext = ExtFields::new();
    ext.insert("topic", "t");
    assert_eq!(
        GetMaxOffsetRequestHeader::decode(&ext),
        Err(FieldError::Missing { field: "queueId" })
    );
    ext.insert("queueId", " 2 ");
    assert_eq!(GetMaxOffsetRequestHeader::decode(&ext).unwrap().queue_id, 2);
    ext.insert("queueId", "two");
    assert_eq!(
        GetMaxOffsetRequestHeader::decode(&ext),
        Err(FieldError::Invalid { field: "queueId", value: "two".into() })
    );

    let mut ext = ExtFields::new();
    ext.insert("topic", "t");
    ext.insert("acceptStandardJsonOnly", "1");
    assert_eq!(
        GetRouteInfoRequestHeader::decode(&ext).unwrap().accept_standard_json_only,
        Some(true)
    );
    ext.insert("acceptStandardJsonOnly", "maybe");
    assert!(GetRouteInfoRequestHeader::decode(&ext).is_err());

    let mut ext = ExtFields::new();
    ext.insert("topic", "t");
    let c = CreateTopicRequestHeader::decode(&ext).unwrap();
    assert_eq!((c.read_queue_nums, c.write_queue_nums, c.perm), (8, 8, 6));
    assert_eq!(c.topic_filter_type, "SINGLE_TAG");
    assert!(!c.order);
    assert_eq!(c.topic_sys_flag, None);

    // clientID keeps its Java capitalisation on the wire.
    let u = UnregisterClientRequestHeader {
        client_id: "c".into(),
        producer_group: None,
        consumer_group: Some("g".into()),
    };
    let ext = u.to_ext_fields();
    assert_eq!(ext.get("clientID"), Some("c"));
    assert_eq!(ext.get("producerGroup"), None);
    assert_eq!(ext.len(), 2);
}

#[test]
fn send_header_v1_accepts_bname_and_encodes_long_names() {
    let mut ext = ExtFields::new();
    for (k, v) in [
        ("producerGroup", "pg"),
        ("topic", "t"),
        ("queueId", "1"),
        ("sysFlag", "0"),
        ("bornTimestamp", "5"),
        ("flag", "0"),
        ("batch", "1"),
        ("bname", "broker-a"),
    ] {
        ext.insert(k, v);
    }
    let h = SendMessageRequestHeader::decode(&ext).unwrap();
    assert!(h.is_batch());
    assert_eq!(h.broker_name.as_deref(), Some("broker-a"));
    let out = h.to_ext_fields();
    assert_eq!(out.get("defaultTopic"), Some("TBW102"));
    assert_eq!(out.get("batch"), Some("true"));
    assert_eq!(out.get("brokerName"), Some("broker-a"));
    let mut v2 = ExtFields::new();
    h.encode_v2(&mut v2);
    assert_eq!(v2.get("a"), Some("pg"));
    assert_eq!(v2.get("m"), Some("true"));
    assert_eq!(v2.get("n"), Some("broker-a"));
}

#[test]
fn route_bodies_from_old_nameservers() {
    let raw = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSynFlag":0,"writeQueueNums":4}]}"#;
    let route: TopicRouteData = from_json(raw).unwrap();
    assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
    assert_eq!(route.queue_datas[0].write_queue_nums, 4);
    assert_eq!(ConsumeType::from_name("PUSH"), Some(ConsumeType::ConsumePassively));
}

#[test]
fn properties_can_be_removed_and_set_without_touching_the_others() {
    use ramjet_proto::message::{
        encode_properties, parse_properties, remove_properties, set_property,
    };
    let raw = encode_properties([("TAGS", "a"), ("DELAY", "3"), ("KEYS", "k1 k2")]);
    let without = remove_properties(&raw, &["DELAY"]);
    assert_eq!(without, encode_properties([("TAGS", "a"), ("KEYS", "k1 k2")]));
    let set = set_property(&raw, "TAGS", "b");
    let map = parse_properties(&set);
    assert!(map.contains(&("TAGS".to_string(), "b".to_string())));
    assert_eq!(map.len(), 3);
}

#[test]
fn a_frame_head_followed_by_its_body_is_the_whole_frame() {
    use bytes::BytesMut;
    use ramjet_proto::frame::{encode_frame, encode_frame_head};
    use ramjet_proto::{Header, SerializeType};
    for st in [SerializeType::Json, SerializeType::RocketMq] {
        let mut h = Header::request(11, 7, st);
        h.ext_fields.insert("topic", "t");
        let body = vec![9u8; 70_000];
        let mut whole = BytesMut::new();
        encode_frame(&h, &body, &mut whole).expect("encodes");
        let mut split = BytesMut::new();
        encode_frame_head(&h, body.len(), &mut split).expect("encodes");
        split.extend_from_slice(&body);
        assert_eq!(whole, split);
    }
}
