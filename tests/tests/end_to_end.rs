//! The whole path with real processes: produce over several queues and shards, consume
//! everything back byte-identical and in per-queue order, restart the broker on the same
//! data and read it all again, long polling, consumer offsets across restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use ramjet_client::{Admin, Message, MessageQueue, Producer, PullConsumer, PullStatus};
use ramjet_proto::SerializeType;
use ramjet_tests::{client, run_glommio, store_dir, wait_for_route, BrokerOptions, Daemon};

const TOPIC: &str = "e2e-orders";
const QUEUES: i32 = 8;
const PER_QUEUE: usize = 120;

/// Body of message `i` of queue `q`: varied sizes, binary content, self-describing prefix.
fn body(q: i32, i: usize) -> Bytes {
    let mut b = format!("q{q}-m{i}-").into_bytes();
    let len = 1 + (i * 37 + q as usize * 101) % 3000;
    b.extend((0..len).map(|k| (k as u8).wrapping_mul(31).wrapping_add(i as u8)));
    Bytes::from(b)
}

/// Reads a whole queue from offset 0; returns (queue offset, body, tags) in order.
async fn read_queue(
    consumer: &PullConsumer,
    queue: &MessageQueue,
) -> Vec<(i64, Bytes, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..10_000 {
        let r = consumer.pull(queue, offset, 32, None, None).await.expect("pull");
        match r.status {
            PullStatus::Found => {
                for m in &r.messages {
                    assert_eq!(m.queue_id, queue.queue_id);
                    assert_eq!(m.topic_str(), queue.topic);
                    out.push((m.queue_offset, m.body.clone(), m.property("TAGS")));
                }
                offset = r.next_begin_offset;
            }
            PullStatus::NoNewMsg => return out,
            other => panic!("unexpected pull status {other:?} at {offset}"),
        }
    }
    panic!("queue {queue:?} never ended");
}

// Goal: what was acknowledged is read back byte-identical, in queue order, before and after
// a clean restart, and writing continues at the right offsets.
// Method: 2 shards, 8 queues, two producers (binary and JSON headers) plus a batch; read
// every queue from 0; SIGTERM; restart on the same store; read again; send one more each.
#[test]
fn produce_consume_restart_and_read_everything_again() {
    let dir = store_dir();
    let mut opts = BrokerOptions::new(dir.path());
    opts.segment_size = Some(1 << 20); // Roll segments often.
    let mut broker = Daemon::broker(&opts);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    let expected = run_glommio(move || async move {
        let admin = Admin::new(client(&ns, SerializeType::RocketMq));
        admin.create_topic(&addr, TOPIC, QUEUES, QUEUES).await.expect("create topic");
        let binary = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let json = Producer::new(client(&ns, SerializeType::Json), "pg-json");
        let queues = wait_for_route(&binary, TOPIC, QUEUES as usize).await;
        let mut expected: BTreeMap<i32, Vec<(Bytes, Option<String>)>> = BTreeMap::new();
        for i in 0..PER_QUEUE {
            for q in &queues {
                let tags = format!("T{}", i % 3);
                let msg = Message::new(TOPIC, body(q.queue_id, i))
                    .with_tags(tags.clone())
                    .with_keys(format!("k{i}"));
                let p = if i % 2 == 0 { &binary } else { &json };
                let r = p.send_to_queue(q, msg).await.expect("send");
                let list = expected.entry(q.queue_id).or_default();
                assert_eq!(r.queue_offset, list.len() as i64, "queue offsets are dense");
                list.push((body(q.queue_id, i), Some(tags)));
            }
        }
        let batch: Vec<Message> = (0..10).map(|i| Message::new(TOPIC, body(0, 1000 + i))).collect();
        let r = binary.send_batch_to_queue(&queues[0], &batch).await.expect("batch");
        assert_eq!(r.offset_msg_id.split(',').count(), 10);
        for i in 0..10 {
            expected.entry(queues[0].queue_id).or_default().push((body(0, 1000 + i), None));
        }
        expected
    });
    let verify = |broker: &Daemon, expected: BTreeMap<i32, Vec<(Bytes, Option<String>)>>| {
        let ns = broker.namesrv_addr.clone();
        run_glommio(move || async move {
            let consumer = PullConsumer::new(client(&ns, SerializeType::RocketMq), "cg");
            let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
            let queues = wait_for_route(&producer, TOPIC, QUEUES as usize).await;
            for q in &queues {
                let got = read_queue(&consumer, q).await;
                let want = &expected[&q.queue_id];
                assert_eq!(got.len(), want.len(), "queue {} length", q.queue_id);
                for (n, ((offset, body, tags), (want_body, want_tags))) in
                    got.iter().zip(want).enumerate()
                {
                    assert_eq!(*offset, n as i64);
                    assert!(body == want_body, "queue {} offset {n}: body differs", q.queue_id);
                    assert_eq!(tags, want_tags);
                }
            }
        });
    };
    verify(&broker, expected.clone());
    let status = broker.stop().expect("stopped");
    assert!(status.success(), "clean stop: {status:?}\n{}", broker.log_text());
    let broker = Daemon::broker(&opts);
    verify(&broker, expected.clone());
    let ns = broker.namesrv_addr.clone();
    run_glommio(move || async move {
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let queues = wait_for_route(&producer, TOPIC, QUEUES as usize).await;
        for q in &queues {
            let r = producer
                .send_to_queue(q, Message::new(TOPIC, "after restart"))
                .await
                .expect("send");
            assert_eq!(r.queue_offset, expected[&q.queue_id].len() as i64, "offsets continue");
        }
    });
}

// Goal: a pull that finds nothing is held, and answered as soon as a message arrives.
// Method: pull at the queue's end with a 20 s suspend; check it is still held after a
// moment; send one message; the held pull returns it.
#[test]
fn held_pull_is_answered_when_a_message_arrives() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let admin = Admin::new(client(&ns, SerializeType::RocketMq));
        admin.create_topic(&addr, "lp", 4, 4).await.expect("create");
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let queues = wait_for_route(&producer, "lp", 4).await;
        let consumer = std::rc::Rc::new(PullConsumer::new(client(&ns, SerializeType::Json), "cg"));
        for q in queues {
            let finished = std::rc::Rc::new(std::cell::Cell::new(false));
            let held = {
                let (consumer, q, finished) = (consumer.clone(), q.clone(), finished.clone());
                glommio::spawn_local(async move {
                    let r = consumer.pull(&q, 0, 32, Some(Duration::from_secs(20)), None).await;
                    finished.set(true);
                    r
                })
            };
            glommio::timer::sleep(Duration::from_millis(300)).await;
            assert!(!finished.get(), "an empty pull with suspend must be held");
            producer.send_to_queue(&q, Message::new("lp", "wake up")).await.expect("send");
            let r = held.await.expect("pull");
            assert_eq!(r.status, PullStatus::Found);
            assert_eq!(&r.messages[0].body[..], b"wake up");
        }
        // A hold that nothing ends times out as PULL_NOT_FOUND.
        let q = MessageQueue { topic: "lp".into(), broker_name: "broker-a".into(), queue_id: 0 };
        let r =
            consumer.pull(&q, 1, 32, Some(Duration::from_millis(300)), None).await.expect("pull");
        assert_eq!(r.status, PullStatus::NoNewMsg);
    });
}

// Goal: committed consumer offsets survive a restart. Method: commit offsets on every
// queue, stop cleanly, restart, query them back.
#[test]
fn consumer_offsets_survive_a_restart() {
    let dir = store_dir();
    let opts = BrokerOptions::new(dir.path());
    let mut broker = Daemon::broker(&opts);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let admin = Admin::new(client(&ns, SerializeType::RocketMq));
        admin.create_topic(&addr, "offs", 4, 4).await.expect("create");
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let consumer = PullConsumer::new(client(&ns, SerializeType::RocketMq), "cg");
        for q in wait_for_route(&producer, "offs", 4).await {
            for _ in 0..5 {
                producer.send_to_queue(&q, Message::new("offs", "x")).await.expect("send");
            }
            consumer.update_offset(&q, 3 + i64::from(q.queue_id) % 3).await.expect("commit");
        }
    });
    assert!(broker.stop().expect("stop").success());
    let broker = Daemon::broker(&opts);
    let ns = broker.namesrv_addr.clone();
    run_glommio(move || async move {
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let consumer = PullConsumer::new(client(&ns, SerializeType::Json), "cg");
        for q in wait_for_route(&producer, "offs", 4).await {
            let got = consumer.query_offset(&q).await.expect("query");
            assert_eq!(got, Some(3 + i64::from(q.queue_id) % 3));
        }
    });
}
