//! Delay levels and retries with real processes: a delayed message is not delivered early
//! and arrives after its delay with its properties intact; messages due while the broker
//! is stopped are delivered after the restart; a consumer's send-back lands in the retry
//! topic (after its delay) and, past the maximum, in the dead-letter queue.

use std::time::{Duration, Instant};

use ramjet_client::{Admin, Client, Message, MessageQueue, Producer, PullConsumer, PullStatus};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{CommandHeader, ConsumerSendMsgBackRequestHeader};
use ramjet_proto::message::StoredMessage;
use ramjet_proto::{Header, SerializeType};
use ramjet_tests::{client, run_glommio, store_dir, wait_for_route, BrokerOptions, Daemon};

/// Pulls `queue` from `offset` until a message arrives (bounded by `within`).
async fn next_message(
    c: &PullConsumer,
    queue: &MessageQueue,
    offset: i64,
    within: Duration,
) -> StoredMessage {
    let deadline = Instant::now() + within;
    loop {
        let r =
            c.pull(queue, offset, 1, Some(Duration::from_millis(500)), None).await.expect("pull");
        if r.status == PullStatus::Found {
            return r.messages[0].clone();
        }
        assert!(Instant::now() < deadline, "nothing arrived on {queue:?} within {within:?}");
    }
}

// Goal: a DELAY=1 message is invisible at first, then delivered no earlier than 1 s after
// it was stored, with body, tags, keys and user properties intact.
// Method: send with DELAY=1 in each header encoding; check the queue is empty right away;
// long-poll until it arrives; compare store timestamps.
#[test]
fn delayed_message_arrives_after_its_delay_and_intact() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        Admin::new(client(&ns, SerializeType::RocketMq))
            .create_topic(&addr, "delayed", 2, 2)
            .await
            .expect("create");
        for (i, st) in [SerializeType::RocketMq, SerializeType::Json].into_iter().enumerate() {
            let producer = Producer::new(client(&ns, st), "pg");
            let consumer = PullConsumer::new(client(&ns, st), "cg");
            let q = wait_for_route(&producer, "delayed", 2).await[i].clone();
            let mut msg = Message::new("delayed", format!("later {i}"))
                .with_tags("TagD")
                .with_keys("order-7");
            msg.set_property("DELAY", "1");
            msg.set_property("app", "v1");
            let sent = producer.send_to_queue(&q, msg).await.expect("send");
            let sent_at = ramjet_client::client::now_ms();
            assert_eq!(
                consumer.max_offset(&q).await.expect("max"),
                0,
                "not visible before it is due"
            );
            let m = next_message(&consumer, &q, 0, Duration::from_secs(20)).await;
            assert_eq!(&m.body[..], format!("later {i}").as_bytes());
            assert_eq!(m.property("TAGS").as_deref(), Some("TagD"));
            assert_eq!(m.property("KEYS").as_deref(), Some("order-7"));
            assert_eq!(m.property("app").as_deref(), Some("v1"));
            assert_eq!(m.property("UNIQ_KEY").as_deref(), Some(sent.msg_id.as_str()));
            assert!(m.property("DELAY").is_none(), "DELAY removed on delivery");
            assert!(
                m.store_timestamp + 50 >= sent_at + 1_000,
                "delivered {} ms after send",
                m.store_timestamp - sent_at
            );
        }
    });
}

// Goal: scheduled messages due while the broker is down are delivered after the restart,
// exactly once from the broker's side. Method: send DELAY=2 (5 s) messages, stop the
// broker at once, start it again, read the queue until all arrived, check no duplicates.
#[test]
fn messages_due_during_a_stop_are_delivered_after_restart() {
    let dir = store_dir();
    let opts = BrokerOptions::new(dir.path());
    let mut broker = Daemon::broker(&opts);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        Admin::new(client(&ns, SerializeType::RocketMq))
            .create_topic(&addr, "later", 1, 1)
            .await
            .expect("create");
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let q = wait_for_route(&producer, "later", 1).await[0].clone();
        for i in 0..5 {
            let mut msg = Message::new("later", format!("m{i}"));
            msg.set_property("DELAY", "2");
            producer.send_to_queue(&q, msg).await.expect("send");
        }
    });
    assert!(broker.stop().expect("stop").success());
    let broker = Daemon::broker(&opts);
    let ns = broker.namesrv_addr.clone();
    run_glommio(move || async move {
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let consumer = PullConsumer::new(client(&ns, SerializeType::RocketMq), "cg");
        let q = wait_for_route(&producer, "later", 1).await[0].clone();
        let mut got = Vec::new();
        for offset in 0..5 {
            let m = next_message(&consumer, &q, offset, Duration::from_secs(30)).await;
            got.push(String::from_utf8_lossy(&m.body).into_owned());
        }
        got.sort();
        assert_eq!(got, vec!["m0", "m1", "m2", "m3", "m4"]);
        // Nothing beyond: each was delivered once.
        let r =
            consumer.pull(&q, 5, 32, Some(Duration::from_millis(1500)), None).await.expect("pull");
        assert_eq!(r.status, PullStatus::NoNewMsg);
    });
}

async fn send_back(
    c: &Client,
    addr: &str,
    m: &StoredMessage,
    group: &str,
    level: i32,
    max: i32,
) -> i32 {
    let mut h = Header::request(request::CONSUMER_SEND_MSG_BACK, 0, c.config().serialize_type);
    ConsumerSendMsgBackRequestHeader {
        offset: m.physical_offset,
        group: group.into(),
        delay_level: level,
        origin_msg_id: m.property("UNIQ_KEY"),
        origin_topic: Some(m.topic_str()),
        max_reconsume_times: Some(max),
    }
    .encode(&mut h.ext_fields);
    c.invoke(addr, h, &[]).await.expect("send back").header.code
}

// Goal: a sent-back message is redelivered through %RETRY%<group> with its reconsume
// count raised and its origin recorded, and goes to %DLQ%<group> once the maximum is
// reached. Method: consume, send back with level 1, read the retry topic; send that back
// with maxReconsumeTimes 1, read the DLQ.
#[test]
fn sent_back_messages_go_to_retry_then_dead_letter_queue() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let c = client(&ns, SerializeType::Json);
        Admin::new(client(&ns, SerializeType::RocketMq))
            .create_topic(&addr, "work", 1, 1)
            .await
            .expect("create");
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let consumer = PullConsumer::new(client(&ns, SerializeType::RocketMq), "workers");
        let q = wait_for_route(&producer, "work", 1).await[0].clone();
        producer.send_to_queue(&q, Message::new("work", "job").with_tags("J")).await.expect("send");
        let original = next_message(&consumer, &q, 0, Duration::from_secs(10)).await;
        assert_eq!(send_back(&c, &addr, &original, "workers", 1, 16).await, response::SUCCESS);
        let retry_q = MessageQueue {
            topic: "%RETRY%workers".into(),
            broker_name: q.broker_name.clone(),
            queue_id: 0,
        };
        let retried = next_message(&consumer, &retry_q, 0, Duration::from_secs(20)).await;
        assert_eq!(&retried.body[..], b"job");
        assert_eq!(retried.reconsume_times, 1);
        assert_eq!(retried.property("RETRY_TOPIC").as_deref(), Some("work"));
        assert_eq!(retried.property("TAGS").as_deref(), Some("J"));
        assert!(retried.property("ORIGIN_MESSAGE_ID").is_some());
        assert_eq!(send_back(&c, &addr, &retried, "workers", 0, 1).await, response::SUCCESS);
        let dlq = MessageQueue {
            topic: "%DLQ%workers".into(),
            broker_name: q.broker_name.clone(),
            queue_id: 0,
        };
        let dead = next_message(&consumer, &dlq, 0, Duration::from_secs(10)).await;
        assert_eq!(&dead.body[..], b"job");
        assert_eq!(dead.reconsume_times, 2);
        assert_eq!(dead.property("RETRY_TOPIC").as_deref(), Some("work"));
    });
}

// Goal: 5.x timer messages (TIMER_DELAY_MS, TIMER_DELIVER_MS) arrive no earlier than due,
// properties intact. Method: send one of each; the queue stays empty at first; long-poll
// until each arrives; compare its store time with the due time.
#[test]
fn timer_messages_arrive_no_earlier_than_due() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        Admin::new(client(&ns, SerializeType::RocketMq))
            .create_topic(&addr, "timers", 1, 1)
            .await
            .expect("create");
        let producer = Producer::new(client(&ns, SerializeType::Json), "pg");
        let consumer = PullConsumer::new(client(&ns, SerializeType::RocketMq), "cg");
        let q = wait_for_route(&producer, "timers", 1).await[0].clone();
        let start = ramjet_client::client::now_ms();
        let mut relative = Message::new("timers", "relative").with_tags("T1");
        relative.set_property("TIMER_DELAY_MS", "1500");
        let mut absolute = Message::new("timers", "absolute").with_tags("T2");
        absolute.set_property("TIMER_DELIVER_MS", (start + 2_500).to_string());
        producer.send_to_queue(&q, relative).await.expect("send");
        producer.send_to_queue(&q, absolute).await.expect("send");
        assert_eq!(consumer.max_offset(&q).await.expect("max"), 0, "not visible before due");
        let first = next_message(&consumer, &q, 0, Duration::from_secs(20)).await;
        let second = next_message(&consumer, &q, 1, Duration::from_secs(20)).await;
        for (m, body, tags, due) in
            [(&first, "relative", "T1", start + 1_500), (&second, "absolute", "T2", start + 2_500)]
        {
            assert_eq!(&m.body[..], body.as_bytes());
            assert_eq!(m.property("TAGS").as_deref(), Some(tags));
            assert!(m.property("DELAY").is_none());
            assert!(
                m.store_timestamp >= due,
                "{body} delivered {} ms early",
                due - m.store_timestamp
            );
        }
    });
}
