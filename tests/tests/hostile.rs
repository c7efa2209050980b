//! Hostile clients against real processes (issue 12): a request that echoes megabytes of
//! client data gets a short error reply and the broker keeps serving on every shard; a
//! broker registered under a second cluster and then unregistered leaves the NameServer
//! answering.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ramjet_client::{Admin, Connection, ConnectionOptions, Message, Producer};
use ramjet_proto::body::ClusterInfo;
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CommandHeader, RegisterBrokerRequestHeader, UnRegisterBrokerRequestHeader,
};
use ramjet_proto::{Frame, Header, SerializeType};
use ramjet_tests::{client, run_glommio, store_dir, wait_for_route, BrokerOptions, Daemon};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Longest remark a hostile request may get back (256 echoed bytes, the cut mark, words).
const REMARK_BYTES_MAX: usize = 1024;
const TOPIC: &str = "hostile-topic";
const QUEUES: i32 = 8;

/// The value: 3.5 MB of `\x01`.
fn huge() -> String {
    "\u{1}".repeat(3_500_000)
}

fn assert_short_error(reply: &Frame, what: &str) {
    assert_ne!(reply.header.code, response::SUCCESS, "{what}");
    let remark = reply.header.remark.as_deref().unwrap_or_default();
    assert!(remark.len() <= REMARK_BYTES_MAX, "{what}: remark of {} bytes", remark.len());
    let fields: usize = reply.header.ext_fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(fields <= REMARK_BYTES_MAX, "{what}: ext fields of {fields} bytes");
}

// Goal: PULL_MESSAGE and GET_MAX_OFFSET with a 3.5 MB `queueId` in binary headers (and
// 3.5 MB of text in JSON headers), and UPDATE_BROKER_CONFIG with 3.5 MB keys and values, get short error replies;
// afterwards every shard still serves, on new connections too, and every message sent
// before is still there.
// Method: 2 shards, a topic of 8 queues (spread over both shards); one message per queue;
// the hostile requests; then 8 new connections each send to every queue; read back.
#[test]
fn huge_echoed_values_get_short_errors_and_every_shard_keeps_serving() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let admin = Admin::new(client(&ns, SerializeType::RocketMq));
        admin.create_topic(&addr, TOPIC, QUEUES, QUEUES).await.expect("create topic");
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let queues = wait_for_route(&producer, TOPIC, QUEUES as usize).await;
        for q in &queues {
            producer.send_to_queue(q, Message::new(TOPIC, "before")).await.expect("send before");
        }

        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        for st in [SerializeType::RocketMq, SerializeType::Json] {
            for code in [request::PULL_MESSAGE, request::GET_MAX_OFFSET] {
                let mut h = Header::request(code, 0, st);
                for (k, v) in [
                    ("consumerGroup", "g"),
                    ("topic", TOPIC),
                    ("queueOffset", "0"),
                    ("maxMsgNums", "32"),
                    ("sysFlag", "0"),
                    ("commitOffset", "0"),
                    ("suspendTimeoutMillis", "0"),
                ] {
                    h.ext_fields.insert(k, v);
                }
                // JSON would escape each `\x01` to six bytes, past what a frame can carry:
                // a JSON client can send 3.5 MB of plain text.
                let value = if st == SerializeType::Json { "x".repeat(3_500_000) } else { huge() };
                h.ext_fields.insert("queueId", value);
                let reply = conn.request(h, b"", TIMEOUT).await.expect("a reply");
                assert_short_error(&reply, &format!("code {code} in {st:?}"));
            }
        }
        let bodies = [
            format!("maxMessageSize={}\n", huge()),
            format!("diskMaxUsedSpaceRatio={}\n", "9".repeat(3_500_000)),
            format!("{}=1\n", "k".repeat(3_500_000)),
        ];
        for body in bodies {
            let h = Header::request(request::UPDATE_BROKER_CONFIG, 0, SerializeType::RocketMq);
            let reply = conn.request(h, body.as_bytes(), TIMEOUT).await.expect("a reply");
            assert_short_error(&reply, "UPDATE_BROKER_CONFIG");
        }

        // New connections land on both shards (SO_REUSEPORT); each sends to every queue,
        // so every shard's queues are written through every connection's shard.
        let mut sent = 0;
        for c in 0..8 {
            let conn =
                Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
            for q in &queues {
                let mut h = Header::request(request::GET_MAX_OFFSET, 0, SerializeType::RocketMq);
                h.ext_fields.insert("topic", TOPIC);
                h.ext_fields.insert("queueId", q.queue_id.to_string());
                let reply = conn.request(h, b"", TIMEOUT).await.expect("shard answers");
                assert_eq!(reply.header.code, response::SUCCESS, "connection {c} queue {q:?}");
            }
            let fresh = Producer::new(client(&ns, SerializeType::RocketMq), "pg-after");
            for q in &queues {
                let body = Bytes::from(format!("after-{c}"));
                fresh.send_to_queue(q, Message::new(TOPIC, body)).await.expect("send after");
                sent += 1;
            }
        }
        assert_eq!(sent, 8 * QUEUES);
        let consumer = ramjet_client::PullConsumer::new(client(&ns, SerializeType::RocketMq), "cg");
        for q in &queues {
            let got = ramjet_tests::read_queue(&consumer, q, 9, TIMEOUT).await;
            assert_eq!(got.len(), 9, "queue {}", q.queue_id);
            assert_eq!(&got[0].body[..], b"before", "queue {}", q.queue_id);
            for (i, m) in got[1..].iter().enumerate() {
                assert_eq!(m.body, Bytes::from(format!("after-{i}")), "queue {}", q.queue_id);
            }
        }
    });
}

fn register(name: &str, addr: &str, cluster: &str) -> Header {
    let mut h = Header::request(request::REGISTER_BROKER, 0, SerializeType::RocketMq);
    RegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: addr.into(),
        cluster_name: cluster.into(),
        ha_server_addr: format!("{addr}1"),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        compressed: Some(false),
        body_crc32: None,
    }
    .encode(&mut h.ext_fields);
    h
}

fn unregister(name: &str, addr: &str, cluster: &str) -> Header {
    let mut h = Header::request(request::UNREGISTER_BROKER, 0, SerializeType::RocketMq);
    UnRegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: addr.into(),
        cluster_name: cluster.into(),
        broker_id: 0,
    }
    .encode(&mut h.ext_fields);
    h
}

async fn cluster_info(conn: &Connection) -> ClusterInfo {
    let h = Header::request(request::GET_BROKER_CLUSTER_INFO, 0, SerializeType::Json);
    let reply = conn.request(h, b"", TIMEOUT).await.expect("the NameServer answers");
    assert_eq!(reply.header.code, response::SUCCESS);
    ramjet_proto::body::from_json(&reply.body).expect("cluster info")
}

const BODY: &str =
    "{\"topicConfigSerializeWrapper\":{\"topicConfigTable\":{\"t\":{\"topicName\":\"t\",\
    \"readQueueNums\":4,\"writeQueueNums\":4,\"perm\":6}}},\"filterServerList\":[]}";

// Goal: the same broker name and address registered under a second cluster, then
// unregistered (or its connection closed), leaves the NameServer answering with
// consistent tables (issue 12: an assert stopped it).
#[test]
fn a_broker_that_changes_cluster_and_leaves_does_not_stop_the_namesrv() {
    let namesrv = Daemon::namesrv();
    let addr = namesrv.namesrv_addr.clone();
    run_glommio(move || async move {
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        for cluster in ["ClusterA", "ClusterB"] {
            let reply = conn
                .request(register("evil", "127.0.0.1:1", cluster), BODY.as_bytes(), TIMEOUT)
                .await
                .expect("registered");
            assert_eq!(reply.header.code, response::SUCCESS);
        }
        let info = cluster_info(&conn).await;
        assert_eq!(info.cluster_addr_table.keys().collect::<Vec<_>>(), vec!["ClusterB"]);
        let reply = conn
            .request(unregister("evil", "127.0.0.1:1", "ClusterB"), b"", TIMEOUT)
            .await
            .expect("unregistered");
        assert_eq!(reply.header.code, response::SUCCESS);
        let info = cluster_info(&conn).await;
        assert!(info.cluster_addr_table.is_empty(), "{info:?}");
        assert!(info.broker_addr_table.is_empty(), "{info:?}");

        // The same through a closed connection: register under A then B, then hang up.
        let leaving =
            Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        for cluster in ["ClusterA", "ClusterB"] {
            let reply = leaving
                .request(register("evil", "127.0.0.1:2", cluster), BODY.as_bytes(), TIMEOUT)
                .await
                .expect("registered");
            assert_eq!(reply.header.code, response::SUCCESS);
        }
        leaving.close();
        drop(leaving);
        let fresh =
            Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let info = cluster_info(&fresh).await;
            if info.broker_addr_table.is_empty() && info.cluster_addr_table.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "the closed connection's broker stays: {info:?}");
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        // And the NameServer still registers and routes an honest broker.
        let reply = fresh
            .request(register("honest", "127.0.0.1:3", "ClusterA"), BODY.as_bytes(), TIMEOUT)
            .await
            .expect("registered");
        assert_eq!(reply.header.code, response::SUCCESS);
        let mut h = Header::request(request::GET_ROUTEINFO_BY_TOPIC, 0, SerializeType::Json);
        h.ext_fields.insert("topic", "t");
        let reply = fresh.request(h, b"", TIMEOUT).await.expect("route");
        assert_eq!(reply.header.code, response::SUCCESS);
    });
}

#[test]
fn a_send_without_a_usable_default_topic_does_not_create_the_topic() {
    // Goal: auto-create as the reference decides it: an unknown topic is created only from
    // an existing, inheritable default topic (TBW102); an empty or unknown `defaultTopic`
    // answers TOPIC_NOT_EXIST (17) and creates nothing. Method: raw SEND_MESSAGE frames in
    // both encodings with an empty and an unknown default topic, then one with TBW102.
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let addr = broker.broker_addr.clone();
    run_glommio(move || async move {
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        let send = |st, default_topic: &str, topic: &str| {
            let mut h = Header::request(request::SEND_MESSAGE, 0, st);
            for (k, v) in [
                ("producerGroup", "pg"),
                ("topic", topic),
                ("defaultTopic", default_topic),
                ("defaultTopicQueueNums", "4"),
                ("queueId", "0"),
                ("sysFlag", "0"),
                ("bornTimestamp", "1700000000000"),
                ("flag", "0"),
                ("properties", ""),
                ("reconsumeTimes", "0"),
            ] {
                h.ext_fields.insert(k, v);
            }
            h
        };
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            for default_topic in ["", "NoSuchTemplate"] {
                let reply = conn
                    .request(send(st, default_topic, "never-created"), b"body", TIMEOUT)
                    .await
                    .expect("reply");
                assert_eq!(
                    reply.header.code,
                    response::TOPIC_NOT_EXIST,
                    "defaultTopic {default_topic:?}: {:?}",
                    reply.header.remark
                );
            }
        }
        let reply = conn
            .request(send(SerializeType::Json, "TBW102", "created-from-tbw102"), b"body", TIMEOUT)
            .await
            .expect("reply");
        assert_eq!(reply.header.code, response::SUCCESS, "{:?}", reply.header.remark);
        // The broker's topic table: the TBW102 send created its topic, the others nothing.
        let all = Header::request(request::GET_ALL_TOPIC_CONFIG, 0, SerializeType::Json);
        let reply = conn.request(all, b"", TIMEOUT).await.expect("reply");
        assert_eq!(reply.header.code, response::SUCCESS);
        let table = String::from_utf8_lossy(&reply.body);
        assert!(table.contains("created-from-tbw102"), "topic table: {table}");
        assert!(!table.contains("never-created"), "a refused send created its topic");
    });
}
