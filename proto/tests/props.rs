//! Property tests: round trips of every codec, and no panics on arbitrary or mutated
//! input for every decoder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ramjet_proto::batch::{decode_batch, encode_batch, BatchMessage};
use ramjet_proto::body::{
    self, from_json, ClusterInfo, ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData,
    KvTable, LockBatchRequestBody, MessageModel, RegisterBrokerBody, SubscriptionData,
    TopicRouteData,
};
use ramjet_proto::frame::{decode_frame, encode_frame_to_bytes, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::header::*;
use ramjet_proto::message::{
    decode_offset_msg_id, decode_record, decode_records, encode_properties, encode_record,
    offset_msg_id, parse_properties, patch_record, property_value, record_len, MessageMeta,
    MAGIC_V1, MAGIC_V2,
};
use ramjet_proto::{binary_header, json_header};
use ramjet_proto::{ExtFields, Header, LanguageCode, SerializeType};

// ---------------------------------------------------------------------------------------
// Strategies.

fn ext_fields() -> impl Strategy<Value = ExtFields> {
    prop::collection::btree_map(any::<String>(), any::<String>(), 0..8).prop_map(|m| {
        let mut ext = ExtFields::new();
        for (k, v) in m {
            ext.insert(k, v);
        }
        ext
    })
}

prop_compose! {
    fn header(serialize_type: SerializeType)(
        code in any::<i16>(),
        language in 0u8..14,
        version in any::<i16>(),
        opaque in any::<i32>(),
        flag in any::<i32>(),
        remark in proptest::option::of(any::<String>()),
        ext_fields in ext_fields(),
    ) -> Header {
        Header {
            code: i32::from(code),
            language: LanguageCode(language),
            version: i32::from(version),
            opaque,
            flag,
            remark,
            ext_fields,
            serialize_type,
        }
    }
}

fn sorted(ext: &ExtFields) -> BTreeMap<String, String> {
    ext.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

/// Random values from which every typed header is built.
#[derive(Debug, Clone)]
struct Pool {
    s: [String; 5],
    i: [i32; 5],
    l: [i64; 5],
    b: bool,
    os: [Option<String>; 3],
    oi: [Option<i32>; 2],
    ol: Option<i64>,
    ob: [Option<bool>; 2],
}

fn pool() -> impl Strategy<Value = Pool> {
    (
        any::<[String; 5]>(),
        any::<[i32; 5]>(),
        any::<[i64; 5]>(),
        any::<bool>(),
        any::<[Option<String>; 3]>(),
        any::<[Option<i32>; 2]>(),
        any::<Option<i64>>(),
        any::<[Option<bool>; 2]>(),
    )
        .prop_map(|(s, i, l, b, os, oi, ol, ob)| Pool { s, i, l, b, os, oi, ol, ob })
}

/// Encodes `h`, carries it through a frame in both header encodings, decodes it again.
fn check_header<H: CommandHeader + PartialEq + std::fmt::Debug>(h: H) {
    let ext = h.to_ext_fields();
    assert_eq!(H::decode(&ext).unwrap(), h, "direct");
    for st in [SerializeType::Json, SerializeType::RocketMq] {
        let mut header = Header::request(10, 1, st);
        header.ext_fields = ext.clone();
        let mut buf = BytesMut::from(&encode_frame_to_bytes(&header, b"").expect("encodes")[..]);
        let frame = decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX).unwrap().unwrap();
        assert_eq!(H::decode(&frame.header.ext_fields).unwrap(), h, "through {st:?}");
    }
}

fn every_header(p: &Pool) {
    let s = |n: usize| p.s[n].clone();
    let send = SendMessageRequestHeader {
        producer_group: s(0),
        topic: s(1),
        default_topic: s(2),
        default_topic_queue_nums: p.i[0],
        queue_id: p.i[1],
        sys_flag: p.i[2],
        born_timestamp: p.l[0],
        flag: p.i[3],
        properties: p.os[0].clone(),
        reconsume_times: p.oi[0],
        unit_mode: p.ob[0],
        max_reconsume_times: p.oi[1],
        batch: p.ob[1],
        broker_name: p.os[1].clone(),
    };
    let mut v2 = ExtFields::new();
    send.encode_v2(&mut v2);
    assert!(v2.iter().all(|(k, _)| k.len() == 1), "V2 keys are letters");
    assert_eq!(SendMessageRequestHeader::decode_v2(&v2).unwrap(), send);
    assert_eq!(SendMessageRequestHeader::decode_for_code(310, &v2).unwrap(), send);
    assert_eq!(SendMessageRequestHeader::decode_for_code(320, &v2).unwrap(), send);
    assert_eq!(SendMessageRequestHeader::decode_for_code(10, &send.to_ext_fields()).unwrap(), send);
    check_header(send);
    check_header(SendMessageResponseHeader {
        msg_id: s(0),
        queue_id: p.i[0],
        queue_offset: p.l[0],
        transaction_id: p.os[0].clone(),
    });
    check_header(PullMessageRequestHeader {
        consumer_group: s(0),
        topic: s(1),
        queue_id: p.i[0],
        queue_offset: p.l[0],
        max_msg_nums: p.i[1],
        sys_flag: p.i[2],
        commit_offset: p.l[1],
        suspend_timeout_millis: p.l[2],
        subscription: p.os[0].clone(),
        sub_version: p.l[3],
        expression_type: p.os[1].clone(),
        max_msg_bytes: p.oi[0],
    });
    check_header(PullMessageResponseHeader {
        suggest_which_broker_id: p.l[0],
        next_begin_offset: p.l[1],
        min_offset: p.l[2],
        max_offset: p.l[3],
    });
    check_header(QueryConsumerOffsetRequestHeader {
        consumer_group: s(0),
        topic: s(1),
        queue_id: p.i[0],
        set_zero_if_not_found: p.ob[0],
    });
    check_header(QueryConsumerOffsetResponseHeader { offset: p.l[0] });
    check_header(UpdateConsumerOffsetRequestHeader {
        consumer_group: s(0),
        topic: s(1),
        queue_id: p.i[0],
        commit_offset: p.l[0],
    });
    check_header(GetMaxOffsetRequestHeader { topic: s(0), queue_id: p.i[0] });
    check_header(GetMaxOffsetResponseHeader { offset: p.l[0] });
    check_header(GetMinOffsetRequestHeader { topic: s(0), queue_id: p.i[0] });
    check_header(GetMinOffsetResponseHeader { offset: p.l[0] });
    check_header(SearchOffsetRequestHeader { topic: s(0), queue_id: p.i[0], timestamp: p.l[0] });
    check_header(SearchOffsetResponseHeader { offset: p.l[0] });
    check_header(GetEarliestMsgStoretimeRequestHeader { topic: s(0), queue_id: p.i[0] });
    check_header(GetEarliestMsgStoretimeResponseHeader { timestamp: p.l[0] });
    check_header(QueryMessageRequestHeader {
        topic: s(0),
        key: s(1),
        max_num: p.i[0],
        begin_timestamp: p.l[0],
        end_timestamp: p.l[1],
    });
    check_header(QueryMessageResponseHeader {
        index_last_update_timestamp: p.l[0],
        index_last_update_phyoffset: p.l[1],
    });
    check_header(ViewMessageRequestHeader { topic: p.os[0].clone(), offset: p.l[0] });
    check_header(GetConsumerListByGroupRequestHeader { consumer_group: s(0) });
    check_header(NotifyConsumerIdsChangedRequestHeader { consumer_group: s(0) });
    check_header(UnregisterClientRequestHeader {
        client_id: s(0),
        producer_group: p.os[0].clone(),
        consumer_group: p.os[1].clone(),
    });
    check_header(ConsumerSendMsgBackRequestHeader {
        offset: p.l[0],
        group: s(0),
        delay_level: p.i[0],
        origin_msg_id: p.os[0].clone(),
        origin_topic: p.os[1].clone(),
        max_reconsume_times: p.oi[0],
    });
    check_header(EndTransactionRequestHeader {
        topic: p.os[0].clone(),
        producer_group: s(0),
        tran_state_table_offset: p.l[0],
        commit_log_offset: p.l[1],
        commit_or_rollback: p.i[0],
        from_transaction_check: p.ob[0],
        msg_id: s(1),
        transaction_id: p.os[1].clone(),
    });
    check_header(CheckTransactionStateRequestHeader {
        topic: p.os[0].clone(),
        tran_state_table_offset: p.l[0],
        commit_log_offset: p.l[1],
        msg_id: p.os[1].clone(),
        transaction_id: p.os[2].clone(),
        offset_msg_id: None,
    });
    check_header(CreateTopicRequestHeader {
        topic: s(0),
        default_topic: s(1),
        read_queue_nums: p.i[0],
        write_queue_nums: p.i[1],
        perm: p.i[2],
        topic_filter_type: s(2),
        topic_sys_flag: p.oi[0],
        order: p.b,
    });
    check_header(DeleteTopicRequestHeader { topic: s(0) });
    check_header(GetRouteInfoRequestHeader { topic: s(0), accept_standard_json_only: p.ob[0] });
    check_header(RegisterBrokerRequestHeader {
        broker_name: s(0),
        broker_addr: s(1),
        cluster_name: s(2),
        ha_server_addr: s(3),
        broker_id: p.l[0],
        heartbeat_timeout_millis: p.ol,
        compressed: p.ob[0],
        body_crc32: p.oi[0],
    });
    check_header(RegisterBrokerResponseHeader {
        ha_server_addr: p.os[0].clone(),
        master_addr: p.os[1].clone(),
    });
    check_header(UnRegisterBrokerRequestHeader {
        broker_name: s(0),
        broker_addr: s(1),
        cluster_name: s(2),
        broker_id: p.l[0],
    });
    check_header(QueryDataVersionRequestHeader {
        broker_name: s(0),
        broker_addr: s(1),
        cluster_name: s(2),
        broker_id: p.l[0],
    });
    check_header(QueryDataVersionResponseHeader { changed: p.b });
    check_header(PutKvConfigRequestHeader { namespace: s(0), key: s(1), value: s(2) });
    check_header(GetKvConfigRequestHeader { namespace: s(0), key: s(1) });
    check_header(GetKvConfigResponseHeader { value: p.os[0].clone() });
    check_header(DeleteKvConfigRequestHeader { namespace: s(0), key: s(1) });
    check_header(GetKvListByNamespaceRequestHeader { namespace: s(0) });
    check_header(DeleteTopicFromNamesrvRequestHeader { topic: s(0) });
    check_header(GetTopicsByClusterRequestHeader { cluster: s(0) });
    check_header(WipeWritePermOfBrokerRequestHeader { broker_name: s(0) });
    check_header(WipeWritePermOfBrokerResponseHeader { wipe_topic_count: p.i[0] });
}

fn meta() -> impl Strategy<Value = MessageMeta> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        socket_addr(),
        socket_addr(),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(
            |(queue_id, flag, sys_flag, born_timestamp, born, store, reconsume, prep)| {
                MessageMeta {
                    queue_id,
                    flag,
                    sys_flag,
                    born_timestamp,
                    born_host: born,
                    store_host: store,
                    reconsume_times: reconsume,
                    prepared_transaction_offset: prep,
                }
            },
        )
}

/// A topic of 0..300 bytes: long ones need the v2 record.
fn topic() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_%-]{0,127}", "[a-zA-Z0-9_%-]{128,300}", "\\PC{0,60}"]
}

/// A property name or value: no separators.
fn prop_text(min: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        any::<char>().prop_filter("separator", |c| *c != '\u{1}' && *c != '\u{2}'),
        min..12,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// A record, valid as encoded, to mutate.
fn some_record() -> Vec<u8> {
    let meta = MessageMeta {
        queue_id: 1,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: "127.0.0.1:1".parse().unwrap(),
        store_host: "[::1]:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
    };
    let mut out = Vec::new();
    encode_record(&mut out, &meta, b"body", "topic", b"KEYS\x01k\x02").unwrap();
    out
}

fn some_frame(st: SerializeType) -> Vec<u8> {
    let mut h = Header::request(310, 7, st);
    h.remark = Some("r".into());
    h.ext_fields.insert("a", "g");
    h.ext_fields.insert("queueId", "3");
    encode_frame_to_bytes(&h, b"body").expect("encodes").to_vec()
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    for &(i, b) in edits {
        if !bytes.is_empty() {
            let n = bytes.len();
            bytes[i % n] = b;
        }
    }
    bytes
}

/// Decodes every frame in `bytes`; must not panic.
fn decode_all_frames(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    for _ in 0..64 {
        match decode_frame(&mut buf, 1 << 16) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

fn json_bodies(bytes: &[u8]) {
    let _ = from_json::<TopicRouteData>(bytes);
    let _ = from_json::<HeartbeatData>(bytes);
    let _ = from_json::<LockBatchRequestBody>(bytes);
    let _ = from_json::<ClusterInfo>(bytes);
    let _ = from_json::<RegisterBrokerBody>(bytes);
    let _ = from_json::<KvTable>(bytes);
    let _ = from_json::<serde_json::Value>(bytes);
    let _ = body::quote_bare_keys(bytes);
}

// ---------------------------------------------------------------------------------------
// Round trips.

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn json_frame_round_trips(
        h in header(SerializeType::Json),
        body in prop::collection::vec(any::<u8>(), 0..512),
        split in any::<prop::sample::Index>(),
    ) {
        let enc = encode_frame_to_bytes(&h, &body).expect("encodes");
        // Feed it in two pieces: the first must ask for more.
        let cut = split.index(enc.len());
        let mut buf = BytesMut::from(&enc[..cut]);
        prop_assert!(decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX).unwrap().is_none());
        buf.extend_from_slice(&enc[cut..]);
        let frame = decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&frame.body[..], &body[..]);
        let d = frame.header;
        prop_assert_eq!(
            (d.code, d.language, d.version, d.opaque, d.flag, &d.remark, d.serialize_type),
            (h.code, h.language, h.version, h.opaque, h.flag, &h.remark, h.serialize_type)
        );
        prop_assert_eq!(sorted(&d.ext_fields), sorted(&h.ext_fields));
        // And the JSON header alone, with the standalone decoder.
        let mut raw = Vec::new();
        json_header::encode(&h, &mut raw);
        prop_assert_eq!(sorted(&json_header::decode(&raw).unwrap().ext_fields), sorted(&h.ext_fields));
    }

    #[test]
    fn binary_frame_round_trips(
        h in header(SerializeType::RocketMq),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut h = h;
        if h.remark.as_deref() == Some("") {
            h.remark = None; // Length 0 means no remark in the binary header.
        }
        let enc = encode_frame_to_bytes(&h, &body).expect("encodes");
        let mut buf = BytesMut::from(&enc[..]);
        let frame = decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&frame.body[..], &body[..]);
        prop_assert_eq!(&frame.header, &h);
        let mut raw = Vec::new();
        binary_header::encode(&h, &mut raw);
        prop_assert_eq!(binary_header::decode(&raw).unwrap(), h);
    }

    #[test]
    fn every_typed_header_round_trips(p in pool()) {
        every_header(&p);
    }

    #[test]
    fn batch_round_trips(
        msgs in prop::collection::vec(
            (any::<i32>(), prop::collection::vec(any::<u8>(), 0..300),
             prop::collection::vec(any::<u8>(), 0..300)),
            0..8,
        ),
    ) {
        let msgs: Vec<BatchMessage> = msgs
            .into_iter()
            .map(|(flag, b, p)| BatchMessage { flag, body: Bytes::from(b), properties: Bytes::from(p) })
            .collect();
        let enc = Bytes::from(encode_batch(&msgs));
        prop_assert_eq!(decode_batch(&enc).unwrap(), msgs);
    }

    #[test]
    fn stored_record_round_trips(
        meta in meta(),
        body in prop::collection::vec(any::<u8>(), 0..600),
        topic in topic(),
        props in prop::collection::vec(any::<u8>(), 0..300),
        queue_offset in any::<i64>(),
        physical_offset in any::<i64>(),
        store_timestamp in any::<i64>(),
        copies in 1usize..4,
    ) {
        let mut buf = Vec::new();
        let len = encode_record(&mut buf, &meta, &body, &topic, &props).unwrap();
        prop_assert_eq!(len, buf.len());
        prop_assert_eq!(len, record_len(&meta, body.len(), topic.len(), props.len()));
        patch_record(&mut buf, queue_offset, physical_offset, store_timestamp);
        let bytes = Bytes::from(buf.clone());
        let m = decode_record(&bytes, true).unwrap();
        prop_assert_eq!(m.total_size as usize, len);
        prop_assert_eq!(m.magic, if topic.len() > 127 { MAGIC_V2 } else { MAGIC_V1 });
        prop_assert_eq!(m.queue_id, meta.queue_id);
        prop_assert_eq!(m.flag, meta.flag);
        prop_assert_eq!(m.queue_offset, queue_offset);
        prop_assert_eq!(m.physical_offset, physical_offset);
        prop_assert_eq!(m.store_timestamp, store_timestamp);
        prop_assert_eq!(m.sys_flag & !0x30, meta.sys_flag & !0x30);
        prop_assert_eq!(m.sys_flag & 0x10 != 0, meta.born_host.is_ipv6());
        prop_assert_eq!(m.sys_flag & 0x20 != 0, meta.store_host.is_ipv6());
        prop_assert_eq!(m.born_timestamp, meta.born_timestamp);
        prop_assert_eq!(m.born_host, meta.born_host);
        prop_assert_eq!(m.store_host, meta.store_host);
        prop_assert_eq!(m.reconsume_times, meta.reconsume_times);
        prop_assert_eq!(m.prepared_transaction_offset, meta.prepared_transaction_offset);
        prop_assert_eq!(&m.body[..], &body[..]);
        prop_assert_eq!(m.topic_str(), topic);
        prop_assert_eq!(&m.properties[..], &props[..]);
        // Several back to back, as a pull body.
        let many = Bytes::from(buf.repeat(copies));
        let all = decode_records(&many, true).unwrap();
        prop_assert_eq!(all.len(), copies);
        prop_assert!(all.iter().all(|r| r == &m));
    }

    #[test]
    fn properties_round_trip(
        pairs in prop::collection::btree_map(prop_text(1), prop_text(0), 0..10),
    ) {
        let raw = encode_properties(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let parsed: BTreeMap<String, String> = parse_properties(&raw).into_iter().collect();
        prop_assert_eq!(&parsed, &pairs);
        for (k, v) in &pairs {
            prop_assert_eq!(property_value(&raw, k), Some(v.clone()));
        }
    }

    #[test]
    fn offset_msg_id_round_trips(addr in socket_addr(), offset in any::<i64>()) {
        let id = offset_msg_id(&addr, offset);
        prop_assert_eq!(id.len(), if addr.is_ipv4() { 32 } else { 56 });
        prop_assert_eq!(decode_offset_msg_id(&id), Some((addr, offset)));
        prop_assert_eq!(decode_offset_msg_id(&id.to_lowercase()), Some((addr, offset)));
    }

    #[test]
    fn route_body_round_trips_in_both_forms(
        brokers in prop::collection::vec(
            ("\\PC{0,12}", "\\PC{0,12}",
             prop::collection::btree_map(any::<i64>(), "\\PC{0,20}", 0..4),
             any::<bool>(), proptest::option::of("\\PC{0,8}")),
            0..4),
        queues in prop::collection::vec(("\\PC{0,12}", any::<[i32; 4]>()), 0..4),
        conf in proptest::option::of("\\PC{0,20}"),
    ) {
        let route = TopicRouteData {
            order_topic_conf: conf,
            queue_datas: queues
                .into_iter()
                .map(|(b, n)| body::QueueData {
                    broker_name: b,
                    read_queue_nums: n[0],
                    write_queue_nums: n[1],
                    perm: n[2],
                    topic_sys_flag: n[3],
                })
                .collect(),
            broker_datas: brokers
                .into_iter()
                .map(|(c, b, addrs, acting, zone)| body::BrokerData {
                    cluster: c,
                    broker_name: b,
                    broker_addrs: addrs,
                    enable_acting_master: acting,
                    zone_name: zone,
                })
                .collect(),
            filter_server_table: Default::default(),
        };
        prop_assert_eq!(from_json::<TopicRouteData>(&route.to_json()).unwrap(), route.clone());
        prop_assert_eq!(from_json::<TopicRouteData>(&route.to_json_fastjson()).unwrap(), route);
    }

    #[test]
    fn heartbeat_body_round_trips(
        client_id in "\\PC{0,20}",
        groups in prop::collection::vec(
            ("\\PC{0,12}", 0i64..3, 0i64..2, 0i64..6, any::<bool>(),
             prop::collection::vec(("\\PC{0,12}", "\\PC{0,12}", any::<i64>(),
                                    prop::collection::vec(any::<i32>(), 0..3)), 0..3)),
            0..3),
    ) {
        let hb = HeartbeatData {
            client_id,
            producer_data_set: vec![],
            consumer_data_set: groups
                .into_iter()
                .map(|(g, ct, mm, cfw, unit, subs)| ConsumerData {
                    group_name: g,
                    consume_type: ConsumeType::from_ordinal(ct).unwrap(),
                    message_model: MessageModel::from_ordinal(mm).unwrap(),
                    consume_from_where: ConsumeFromWhere::from_ordinal(cfw).unwrap(),
                    unit_mode: unit,
                    subscription_data_set: subs
                        .into_iter()
                        .map(|(t, sub, v, codes)| SubscriptionData {
                            topic: t,
                            sub_string: sub,
                            sub_version: v,
                            code_set: codes,
                            ..SubscriptionData::default()
                        })
                        .collect(),
                })
                .collect(),
        };
        prop_assert_eq!(from_json::<HeartbeatData>(&body::to_json(&hb)).unwrap(), hb);
    }
}

// ---------------------------------------------------------------------------------------
// No panics on garbage.

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn decoders_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        decode_all_frames(&bytes);
        // Past the length check: a plausible prefix, then garbage.
        for st in [0u8, 1u8] {
            let mut framed = Vec::with_capacity(bytes.len() + 8);
            framed.extend_from_slice(&((bytes.len() + 4) as u32).to_be_bytes());
            let hl = (bytes.len() as u32).min(0x00FF_FFFF);
            framed.extend_from_slice(&((u32::from(st) << 24) | hl).to_be_bytes());
            framed.extend_from_slice(&bytes);
            decode_all_frames(&framed);
        }
        let _ = json_header::decode(&bytes);
        let _ = binary_header::decode(&bytes);
        let b = Bytes::from(bytes.clone());
        let _ = decode_record(&b, true);
        let _ = decode_record(&b, false);
        let _ = decode_records(&b, false);
        let _ = decode_batch(&b);
        json_bodies(&bytes);
        let _ = parse_properties(&bytes);
        let _ = property_value(&bytes, "KEYS");
        let _ = decode_offset_msg_id(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn decoders_survive_mutated_valid_input(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let f = mutate(some_frame(st), &edits);
            decode_all_frames(&f);
            decode_all_frames(&f[..cut.index(f.len() + 1)]);
            let _ = json_header::decode(f.get(8..).unwrap_or_default());
            let _ = binary_header::decode(f.get(8..).unwrap_or_default());
        }
        let r = Bytes::from(mutate(some_record(), &edits));
        let _ = decode_record(&r, true);
        let _ = decode_records(&r, true);
        let _ = decode_records(&r.slice(..cut.index(r.len() + 1)), false);
        let batch = encode_batch(&[
            BatchMessage { flag: 1, body: Bytes::from_static(b"abc"), properties: Bytes::from_static(b"K\x01v\x02") },
            BatchMessage::default(),
        ]);
        let b = Bytes::from(mutate(batch, &edits));
        let _ = decode_batch(&b);
        let _ = decode_batch(&b.slice(..cut.index(b.len() + 1)));
        let route = br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"b","cluster":"c"}],"table":{{"topic":"t"}:"x"}}"#;
        json_bodies(&mutate(route.to_vec(), &edits));
    }

    #[test]
    fn json_bodies_survive_json_like_noise(text in "[{}\\[\\]\":,0-9a-z \\\\tn-]{0,200}") {
        json_bodies(text.as_bytes());
    }

    #[test]
    fn offset_msg_id_decoder_survives_hex_noise(text in "[0-9A-Fa-fxZ]{0,60}") {
        let _ = decode_offset_msg_id(&text);
    }
}

// Goal: a request signed by the client verifies on the broker for any fields and body, and
// any change to one byte of the body, or to one field value, makes it fail.
proptest! {
    #[test]
    fn acl_signed_request_verifies_and_tampering_fails(
        fields in proptest::collection::btree_map("[a-zA-Z_]{1,8}", "[ -~]{0,12}", 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        secret in "[ -~]{7,20}",
        flip in any::<prop::sample::Index>(),
    ) {
        use ramjet_proto::acl::{sign_request, verify, ContentRule, Credentials};
        let creds = Credentials {
            access_key: "accessKey1".into(),
            secret_key: secret.clone(),
            security_token: None,
        };
        let mut ext = ramjet_proto::ExtFields::new();
        for (k, v) in &fields {
            ext.insert(k.as_str(), v.as_str());
        }
        sign_request(&mut ext, &body, &creds);
        let rule = ContentRule::Broker { version: 401 };
        prop_assert!(verify(&ext, &body, rule, &secret));
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 1;
            prop_assert!(!verify(&ext, &tampered, rule, &secret));
        }
        if let Some((k, v)) = fields.iter().next() {
            let mut changed = ext.clone();
            changed.insert(k.as_str(), format!("{v}x"));
            prop_assert!(!verify(&changed, &body, rule, &secret));
        }
    }
}
