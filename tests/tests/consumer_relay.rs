//! GET_CONSUMER_RUNNING_INFO (307) and CONSUME_MESSAGE_DIRECTLY (309), relayed by a real
//! broker to ramjet's push consumer (issue 16).
//!
//! Goal: the broker forwards each request to the named consumer's connection (whichever
//! shard holds it) and answers the admin with the consumer's reply; the Rust consumer
//! answers like the Java client (ConsumerRunningInfo with its subscription and queues; the
//! listener run on the one message, CR_SUCCESS); an unknown client is SYSTEM_ERROR "not
//! online", as the reference.
//!
//! Method: one broker (two shards); per header encoding, a topic with two queues, one sent
//! message, a push consumer started on it; the admin requests go through a second client
//! of that encoding.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use ramjet_client::{
    Admin, Client, ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageListener,
    Producer, PushConsumer, PushConsumerConfig,
};
use ramjet_proto::admin_body::{ConsumeMessageDirectlyResult, ConsumerRunningInfo};
use ramjet_proto::body::from_json;
use ramjet_proto::codes::{request, response};
use ramjet_proto::{Frame, SerializeType};
use ramjet_tests::{run_glommio, store_dir, wait_for_route, wait_until, BrokerOptions, Daemon};

fn config(ns: &str, st: SerializeType, id: &str) -> ClientConfig {
    let mut c = ClientConfig::new(ns).expect("config");
    c.serialize_type = st;
    c.client_id = id.to_string();
    c
}

async fn ask(client: &Client, addr: &str, code: i32, ext: &[(&str, &str)]) -> Frame {
    let mut h = client.header(code);
    for (k, v) in ext {
        h.ext_fields.insert(*k, *v);
    }
    client.invoke(addr, h, b"").await.expect("answered")
}

async fn check_encoding(ns: String, addr: String, st: SerializeType) {
    let tag = format!("{st:?}").to_lowercase();
    let (topic, group, consumer_id) =
        (format!("relay-{tag}"), format!("relay-g-{tag}"), format!("relay-consumer-{tag}"));
    let admin_client = Client::new(config(&ns, st, &format!("relay-admin-{tag}")));
    Admin::new(admin_client.clone()).create_topic(&addr, &topic, 2, 2).await.expect("create");
    let producer = Producer::new(admin_client.clone(), format!("relay-p-{tag}").as_str());
    let queues = wait_for_route(&producer, &topic, 2).await;
    let sent = producer
        .send_to_queue(&queues[0], Message::new(topic.as_str(), "direct-body"))
        .await
        .expect("send");

    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let seen2 = seen.clone();
    let listener = MessageListener::concurrently(move |msgs, _| {
        seen2.borrow_mut().extend(msgs.iter().map(|m| m.body.to_vec()));
        ConsumeStatus::Success
    });
    let mut cc = PushConsumerConfig::new(group.as_str());
    cc.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    cc.heartbeat_interval = Duration::from_secs(2);
    let consumer = PushConsumer::new(config(&ns, st, &consumer_id), cc);
    consumer.subscribe(&topic, "*").expect("subscribe");
    consumer.register_listener(listener).expect("listener");
    consumer.start().await.expect("start");
    // Consumed once through the ordinary path, so the consumer holds its queues.
    wait_until(Duration::from_secs(20), "the message is consumed", || {
        let n = seen.borrow().len();
        async move { n >= 1 }
    })
    .await;

    // 307: the consumer's running info, relayed.
    let who = [("consumerGroup", group.as_str()), ("clientId", consumer_id.as_str())];
    let f = ask(&admin_client, &addr, request::GET_CONSUMER_RUNNING_INFO, &who).await;
    assert_eq!(f.header.code, response::SUCCESS, "307: {:?}", f.header.remark);
    let info: ConsumerRunningInfo = from_json(&f.body).expect("ConsumerRunningInfo");
    assert_eq!(
        info.properties.get("PROP_CONSUME_TYPE").map(String::as_str),
        Some("CONSUME_PASSIVELY")
    );
    assert_eq!(info.properties.get("PROP_CONSUME_ORDERLY").map(String::as_str), Some("false"));
    assert!(info.subscription_set.iter().any(|s| s.topic == topic && s.sub_string == "*"));
    assert!(info.mq_table.iter().any(|(mq, _)| mq.topic == topic), "{:?}", info.mq_table);

    // 309: the listener runs on the one message named by its offsetMsgId.
    let before = seen.borrow().len();
    let mut direct = who.to_vec();
    direct.push(("msgId", sent.offset_msg_id.as_str()));
    direct.push(("topic", topic.as_str()));
    let f = ask(&admin_client, &addr, request::CONSUME_MESSAGE_DIRECTLY, &direct).await;
    assert_eq!(f.header.code, response::SUCCESS, "309: {:?}", f.header.remark);
    let result: ConsumeMessageDirectlyResult = from_json(&f.body).expect("result");
    assert_eq!(result.consume_result, "CR_SUCCESS");
    assert!(!result.order && result.auto_commit);
    let seen_now = seen.borrow().clone();
    assert_eq!(seen_now.len(), before + 1);
    assert_eq!(seen_now.last().map(Vec::as_slice), Some(&b"direct-body"[..]));

    // The reference's refusals: a client not online; a message id that names nothing.
    let nobody = [("consumerGroup", group.as_str()), ("clientId", "nobody")];
    let f = ask(&admin_client, &addr, request::GET_CONSUMER_RUNNING_INFO, &nobody).await;
    assert_eq!(f.header.code, response::SYSTEM_ERROR);
    let remark = f.header.remark.unwrap_or_default();
    assert!(remark.contains("not online"), "{remark}");
    let mut bad = who.to_vec();
    bad.push(("msgId", "nonsense"));
    let f = ask(&admin_client, &addr, request::CONSUME_MESSAGE_DIRECTLY, &bad).await;
    assert_eq!(f.header.code, response::SYSTEM_ERROR);

    consumer.shutdown().await;
    admin_client.shutdown().await;
}

#[test]
fn consumer_requests_are_relayed_in_both_encodings() {
    let dir = store_dir();
    let mut broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    for st in [SerializeType::RocketMq, SerializeType::Json] {
        let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
        run_glommio(move || check_encoding(ns, addr, st));
    }
    broker.stop();
}
