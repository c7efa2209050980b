//! The RocketMQ Dashboard's broker read requests (issue 16) against a real broker process.
//!
//! Goal: 300 QUERY_TOPIC_CONSUME_BY_WHO, 317 GET_BROKER_CONSUME_STATS, 328
//! GET_ALL_PRODUCER_INFO, 351 GET_TOPIC_CONFIG and 352 GET_SUBSCRIPTIONGROUP_CONFIG each
//! answer with the reference's body for known names and the reference's error for
//! unknown ones, in both header encodings, and never echo a long name unclipped.
//!
//! Method: one broker (two shards, embedded NameServer); per encoding, create a topic
//! and a group, send messages, heartbeat a consumer and a producer, commit an offset,
//! then send each request through a client of that encoding and parse the body.

use std::time::{Duration, Instant};

use ramjet_client::{Admin, Subscription};
use ramjet_client::{Client, ClientConfig, Message, MessageQueue, Producer, PullConsumer};
use ramjet_proto::admin_body::{ConsumeStats, ConsumeStatsList, GroupList, ProducerTableInfo};
use ramjet_proto::body::{from_json, to_json, HeartbeatData, ProducerData, TopicConfig};
use ramjet_proto::codes::{request, response};
use ramjet_proto::{Frame, SerializeType};
use ramjet_tests::{admin, run_glommio, store_dir, wait_for_route, BrokerOptions, Daemon};

const QUEUES: i32 = 4;
const SENT: usize = 12;
/// A name far longer than any remark may echo.
const LONG: usize = 20_000;

async fn ask(client: &Client, addr: &str, code: i32, ext: &[(&str, &str)]) -> Frame {
    let mut h = client.header(code);
    for (k, v) in ext {
        h.ext_fields.insert(*k, *v);
    }
    client.invoke(addr, h, b"").await.expect("answered")
}

fn ok_body<T: serde::de::DeserializeOwned>(f: &Frame, what: &str) -> T {
    assert_eq!(f.header.code, response::SUCCESS, "{what}: {:?}", f.header.remark);
    from_json(&f.body).unwrap_or_else(|e| {
        panic!("{what}: body does not parse ({e}): {}", String::from_utf8_lossy(&f.body))
    })
}

fn assert_refused(f: &Frame, code: i32, what: &str) {
    assert_eq!(f.header.code, code, "{what}: {:?}", f.header.remark);
    let remark = f.header.remark.as_deref().unwrap_or("");
    assert!(remark.len() < 1024, "{what}: remark of {} bytes echoes the name", remark.len());
}

/// Sends 300 until `group` is listed for `topic` (subscriptions reach every shard a little
/// after the heartbeat's answer): bounded to 10 s.
async fn consumers_of(client: &Client, addr: &str, topic: &str, group: &str) -> GroupList {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let f = ask(client, addr, request::QUERY_TOPIC_CONSUME_BY_WHO, &[("topic", topic)]).await;
        let list: GroupList = ok_body(&f, "300");
        if list.group_list.contains(group) || Instant::now() > deadline {
            return list;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

async fn check_encoding(ns: String, addr: String, st: SerializeType) {
    let tag = format!("{st:?}").to_lowercase();
    let (topic, group, offline, producer_group) = (
        format!("dash-{tag}"),
        format!("dash-g-{tag}"),
        format!("dash-o-{tag}"),
        format!("dash-p-{tag}"),
    );
    let mut config = ClientConfig::new(&ns).expect("config");
    config.serialize_type = st;
    config.client_id = format!("dash-client-{tag}");
    let client = Client::new(config);
    Admin::new(client.clone()).create_topic(&addr, &topic, QUEUES, QUEUES).await.expect("create");

    // 351: the topic's config; an unknown topic is TOPIC_NOT_EXIST.
    let f = ask(&client, &addr, request::GET_TOPIC_CONFIG, &[("topic", &topic)]).await;
    let config: TopicConfig = ok_body(&f, "351");
    assert_eq!(config.topic_name, topic);
    assert_eq!((config.read_queue_nums, config.write_queue_nums, config.perm), (QUEUES, QUEUES, 6));
    let long = "x".repeat(LONG);
    let f = ask(&client, &addr, request::GET_TOPIC_CONFIG, &[("topic", &long)]).await;
    assert_refused(&f, response::TOPIC_NOT_EXIST, "351 unknown");
    let f = ask(&client, &addr, request::GET_TOPIC_CONFIG, &[]).await;
    assert_ne!(f.header.code, response::SUCCESS, "351 without a topic");

    // Traffic: messages, a consumer group online and committing, an offline group with
    // an offset only, a producer group heartbeat.
    let producer = Producer::new(client.clone(), producer_group.as_str());
    let queues: Vec<MessageQueue> = wait_for_route(&producer, &topic, QUEUES as usize).await;
    for i in 0..SENT {
        let q = &queues[i % queues.len()];
        producer
            .send_to_queue(q, Message::new(topic.as_str(), format!("m{i}")))
            .await
            .expect("send");
    }
    let consumer = PullConsumer::new(client.clone(), group.as_str());
    let sub = Subscription { topic: topic.clone(), expression: "*".into() };
    consumer.heartbeat(std::slice::from_ref(&sub)).await.expect("consumer heartbeat");
    consumer.update_offset(&queues[0], 1).await.expect("commit");
    PullConsumer::new(client.clone(), offline.as_str())
        .update_offset(&queues[1], 2)
        .await
        .expect("commit offline");
    let hb = HeartbeatData {
        client_id: format!("dash-producer-{tag}"),
        producer_data_set: vec![ProducerData { group_name: producer_group.clone() }],
        ..Default::default()
    };
    let reply = client.invoke(&addr, client.header(request::HEART_BEAT), &to_json(&hb)).await;
    assert_eq!(reply.expect("hb").header.code, response::SUCCESS, "producer heartbeat");

    // 300: the online subscriber and the group with an offset; an unknown topic, none.
    let list = consumers_of(&client, &addr, &topic, &group).await;
    assert!(list.group_list.contains(&group), "300 lacks the subscriber: {list:?}");
    assert!(list.group_list.contains(&offline), "300 lacks the offset group: {list:?}");
    assert_eq!(list.group_list.len(), 2, "{list:?}");
    let f = ask(&client, &addr, request::QUERY_TOPIC_CONSUME_BY_WHO, &[("topic", &long)]).await;
    let none: GroupList = ok_body(&f, "300 unknown");
    assert!(none.group_list.is_empty());

    // 352: an online group gets default settings, a created one its own; unknown refused.
    let f = ask(&client, &addr, request::GET_SUBSCRIPTIONGROUP_CONFIG, &[("group", &group)]).await;
    let g: serde_json::Value = ok_body(&f, "352 online");
    assert_eq!(g["groupName"], group.as_str());
    assert_eq!(g["consumeEnable"], true);
    let created = format!("dash-c-{tag}");
    let body = serde_json::json!({"groupName": created, "retryMaxTimes": 7});
    let f = client
        .invoke(
            &addr,
            client.header(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP),
            body.to_string().as_bytes(),
        )
        .await
        .expect("200");
    assert_eq!(f.header.code, response::SUCCESS, "200: {:?}", f.header.remark);
    let f =
        ask(&client, &addr, request::GET_SUBSCRIPTIONGROUP_CONFIG, &[("group", &created)]).await;
    let g: serde_json::Value = ok_body(&f, "352 created");
    assert_eq!(
        (g["groupName"].as_str(), g["retryMaxTimes"].as_i64()),
        (Some(created.as_str()), Some(7))
    );
    let f = ask(&client, &addr, request::GET_SUBSCRIPTIONGROUP_CONFIG, &[("group", &long)]).await;
    assert_refused(&f, response::SUBSCRIPTION_GROUP_NOT_EXIST, "352 unknown");

    // 328: the producer group's client, from its heartbeat.
    let f = ask(&client, &addr, request::GET_ALL_PRODUCER_INFO, &[]).await;
    let table: ProducerTableInfo = ok_body(&f, "328");
    let members = table.data.get(&producer_group).expect("328 lists the producer group");
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].client_id, hb.client_id);
    assert!(members[0].remote_ip.starts_with("127.0.0.1:"), "{members:?}");
    assert!(members[0].last_update_timestamp > 0);
    // ramjet-admin `producer -b` prints it as mqadmin does (blocking here is fine: the
    // broker is another process).
    let out = admin(&["producer", "-n", &ns, "-b", &addr]).ok();
    let line = format!("producer group ({producer_group}) instance : clientId={}", hb.client_id);
    assert!(out.stdout.contains(&line), "{}", out.stdout);
    let js = admin(&["producer", "-n", &ns, "-b", &addr, "--json"]).ok().json();
    assert_eq!(js["data"][&producer_group][0]["clientId"], hb.client_id.as_str());

    // 317: the online group's stats on the topic (the offline, unconfigured group is not
    // a known group); lag is what was sent minus the committed offset.
    let f = ask(&client, &addr, request::GET_BROKER_CONSUME_STATS, &[("isOrder", "false")]).await;
    let stats: ConsumeStatsList = ok_body(&f, "317");
    assert_eq!(stats.broker_addr, addr);
    let mine: Vec<&Vec<ConsumeStats>> =
        stats.consume_stats_list.iter().filter(|(g, _)| *g == group).map(|(_, s)| s).collect();
    assert_eq!(mine.len(), 1, "317 lists the group once: {stats:?}");
    assert_eq!(mine[0].len(), 1, "one topic");
    let table = &mine[0][0].offset_table;
    assert_eq!(table.len(), QUEUES as usize);
    assert!(table.iter().all(|(mq, _)| mq.topic == topic));
    let lag: i64 = mine[0][0].total_lag();
    assert_eq!(lag, SENT as i64 - 1);
    assert!(stats.total_diff >= lag);
    assert!(stats.consume_stats_list.iter().all(|(g, _)| *g != offline));
    let f = ask(&client, &addr, request::GET_BROKER_CONSUME_STATS, &[("isOrder", "true")]).await;
    let ordered: ConsumeStatsList = ok_body(&f, "317 ordered");
    assert!(ordered.consume_stats_list.iter().all(|(g, _)| *g != group));
    // ramjet-admin `brokerConsumeStats -b`: the group's queues, lag summed.
    let js = admin(&["brokerConsumeStats", "-n", &ns, "-b", &addr, "--json"]).ok().json();
    let rows: Vec<&serde_json::Value> = js["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter(|r| r["group"] == group.as_str())
        .collect();
    assert_eq!(rows.len(), QUEUES as usize, "{js}");
    assert_eq!(rows.iter().map(|r| r["diff"].as_i64().expect("diff")).sum::<i64>(), lag);
    let out = admin(&["brokerConsumeStats", "-n", &ns, "-b", &addr]).ok();
    assert!(out.stdout.contains("#Consumer Offset") && out.stdout.contains("Diff Total: "));
    client.shutdown().await;
}

#[test]
fn dashboard_reads_in_both_encodings() {
    let dir = store_dir();
    let mut broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    for st in [SerializeType::RocketMq, SerializeType::Json] {
        let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
        run_glommio(move || check_encoding(ns, addr, st));
    }
    broker.stop();
}
