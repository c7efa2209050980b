//! Push consumers against a real broker: clustering groups share queues and take over
//! from a member that leaves, broadcasting members each get everything, ordered
//! consumption keeps per-key order across a rebalance, tag subscriptions filter, both
//! header encodings work, and failed messages go through the retry topic to the DLQ.
//!
//! Every wait polls a condition under a deadline; nothing asserts a timing. Consumers
//! run with short periodic intervals (rebalance 1 s) so the group settles quickly.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ramjet_client::rebalance::allocate_averagely;
use ramjet_client::{
    Admin, Client, ClientConfig, ConsumeFromWhere, ConsumeOrderlyStatus, ConsumeStatus, Message,
    MessageListener, MessageModel, MessageQueue, Producer, PullConsumer, PullStatus, PushConsumer,
    PushConsumerConfig, SelectByHash, StoredMessage,
};
use ramjet_proto::SerializeType;
use ramjet_tests::{run_glommio, store_dir, BrokerOptions, Daemon};

/// The longest any condition in these tests is waited for.
const DEADLINE: Duration = Duration::from_secs(90);

fn client_config(ns: &str, st: SerializeType, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new(ns).expect("config");
    c.serialize_type = st;
    c.client_id = client_id.to_string();
    c
}

fn consumer_config(group: &str) -> PushConsumerConfig {
    let mut c = PushConsumerConfig::new(group);
    c.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
    c.rebalance_interval = Duration::from_secs(1);
    c.heartbeat_interval = Duration::from_secs(2);
    c.persist_offset_interval = Duration::from_millis(200);
    c.lock_interval = Duration::from_secs(1);
    c.pull_retry_delay = Duration::from_millis(200);
    c.suspend_timeout = Duration::from_secs(2);
    c.local_retry_delay = Duration::from_millis(500);
    c.suspend_current_queue_time = Duration::from_millis(100);
    c
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after [`DEADLINE`].
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates `topic` with `queues` queues and waits until the NameServer routes it.
async fn create_topic(ns: &str, broker: &str, topic: &str, queues: i32) -> Vec<MessageQueue> {
    let client = Client::new(client_config(ns, SerializeType::RocketMq, "admin"));
    Admin::new(client.clone()).create_topic(broker, topic, queues, queues).await.expect("create");
    let deadline = Instant::now() + DEADLINE;
    loop {
        client.invalidate_route(topic);
        if let Ok(route) = client.topic_route(topic).await {
            if route.write_queues.len() == queues as usize {
                return route.write_queues.clone();
            }
        }
        assert!(Instant::now() < deadline, "route of {topic} never appeared");
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

/// What a listener saw: consumer index, queue, and the message.
type Log = Rc<RefCell<Vec<(usize, MessageQueue, StoredMessage)>>>;

fn recording(index: usize, log: &Log) -> MessageListener {
    let log = log.clone();
    MessageListener::concurrently(move |msgs, ctx| {
        for m in msgs {
            log.borrow_mut().push((index, ctx.queue().clone(), m.clone()));
        }
        ConsumeStatus::Success
    })
}

async fn start_consumer(
    ns: &str,
    st: SerializeType,
    id: &str,
    config: PushConsumerConfig,
    subscriptions: &[(&str, &str)],
    listener: MessageListener,
) -> PushConsumer {
    let consumer = PushConsumer::new(client_config(ns, st, id), config);
    for (topic, expression) in subscriptions {
        consumer.subscribe(topic, expression).expect("subscribe");
    }
    consumer.register_listener(listener).expect("listener");
    consumer.start().await.expect("start");
    consumer
}

fn body_text(m: &StoredMessage) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

fn of_topic(queues: Vec<MessageQueue>, topic: &str) -> BTreeSet<MessageQueue> {
    queues.into_iter().filter(|q| q.topic == topic).collect()
}

/// True when the members' queues of `topic` are disjoint and cover `all`.
fn partitioned(members: &[&PushConsumer], topic: &str, all: &[MessageQueue]) -> bool {
    let mut seen = BTreeSet::new();
    for m in members {
        for q in of_topic(m.assigned_queues(), topic) {
            if !seen.insert(q) {
                return false;
            }
        }
    }
    seen == all.iter().cloned().collect()
}

// Goal: a clustering group splits a topic's queues, each queue consumed by exactly one
// member, nothing is lost, and when a member leaves the others take over its queues.
// Method: three consumers, 8 queues; wait for the averaging allocation; send 240
// messages and check each was consumed by its queue's owner; shut one consumer down,
// wait for the two others to cover every queue, send 240 more; every message of both
// rounds is consumed at least once.
#[test]
fn clustering_group_shares_queues_and_takes_over_when_one_leaves() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        const TOPIC: &str = "cl-topic";
        const ROUND: usize = 240;
        let queues = create_topic(&ns, &addr, TOPIC, 8).await;
        let log: Log = Rc::default();
        let ids = ["cl-c0", "cl-c1", "cl-c2"];
        let mut members = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let c = start_consumer(
                &ns,
                SerializeType::RocketMq,
                id,
                consumer_config("cl-group"),
                &[(TOPIC, "*")],
                recording(i, &log),
            )
            .await;
            members.push(c);
        }
        let all: Vec<&PushConsumer> = members.iter().collect();
        wait_until("three members split the queues", || partitioned(&all, TOPIC, &queues)).await;
        let id_list: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let mut owner: BTreeMap<MessageQueue, usize> = BTreeMap::new();
        for (i, m) in members.iter().enumerate() {
            let want: BTreeSet<MessageQueue> =
                allocate_averagely(ids[i], &queues, &id_list).into_iter().collect();
            assert_eq!(of_topic(m.assigned_queues(), TOPIC), want, "{} allocation", ids[i]);
            owner.extend(want.into_iter().map(|q| (q, i)));
        }

        let producer =
            Producer::new(Client::new(client_config(&ns, SerializeType::Json, "p")), "pg");
        let mut sent = BTreeSet::new();
        for i in 0..ROUND {
            let text = format!("first-{i}");
            producer.send(Message::new(TOPIC, text.clone())).await.expect("send");
            sent.insert(text);
        }
        let received = |log: &Log| -> BTreeSet<String> {
            log.borrow().iter().map(|(_, _, m)| body_text(m)).collect()
        };
        wait_until("the first round is consumed", || sent.is_subset(&received(&log))).await;
        for (i, q, m) in log.borrow().iter() {
            assert_eq!(owner[q], *i, "{} from {q:?} consumed by its owner", body_text(m));
        }

        let leaving = members.remove(0);
        leaving.shutdown().await;
        let rest: Vec<&PushConsumer> = members.iter().collect();
        wait_until("two members cover every queue", || partitioned(&rest, TOPIC, &queues)).await;
        for i in 0..ROUND {
            let text = format!("second-{i}");
            producer.send(Message::new(TOPIC, text.clone())).await.expect("send");
            sent.insert(text);
        }
        wait_until("both rounds are consumed", || sent.is_subset(&received(&log))).await;
        let extra: Vec<String> = received(&log).difference(&sent).cloned().collect();
        assert!(extra.is_empty(), "only sent messages arrive: {extra:?}");
        for m in members {
            m.shutdown().await;
        }
    });
}

// Goal: in broadcasting mode every member consumes every message, and keeps its offsets
// in its own local file. Method: two consumers (JSON headers), each with its own offsets
// directory; 100 messages; both get all 100; after shutdown each file's offsets add up
// to 100.
#[test]
fn broadcasting_members_each_receive_every_message() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    let offsets_dir = store_dir();
    let offsets_root = offsets_dir.path().to_path_buf();
    run_glommio(move || async move {
        const TOPIC: &str = "bc-topic";
        const COUNT: usize = 100;
        let queues = create_topic(&ns, &addr, TOPIC, 4).await;
        let log: Log = Rc::default();
        let mut members = Vec::new();
        for i in 0..2 {
            let mut config = consumer_config("bc-group");
            config.message_model = MessageModel::Broadcasting;
            config.offset_store_dir = offsets_root.join(format!("m{i}"));
            let id = format!("bc-c{i}");
            let c = start_consumer(
                &ns,
                SerializeType::Json,
                &id,
                config,
                &[(TOPIC, "*")],
                recording(i, &log),
            )
            .await;
            members.push(c);
        }
        let all: BTreeSet<MessageQueue> = queues.iter().cloned().collect();
        wait_until("each member holds every queue", || {
            members.iter().all(|m| of_topic(m.assigned_queues(), TOPIC) == all)
        })
        .await;
        let producer =
            Producer::new(Client::new(client_config(&ns, SerializeType::Json, "p")), "pg");
        let mut sent = BTreeSet::new();
        for i in 0..COUNT {
            let text = format!("b-{i}");
            producer.send(Message::new(TOPIC, text.clone())).await.expect("send");
            sent.insert(text);
        }
        let got = |log: &Log, member: usize| -> BTreeSet<String> {
            log.borrow()
                .iter()
                .filter(|(i, _, _)| *i == member)
                .map(|(_, _, m)| body_text(m))
                .collect()
        };
        wait_until("both members got everything", || got(&log, 0) == sent && got(&log, 1) == sent)
            .await;
        for (i, m) in members.into_iter().enumerate() {
            m.shutdown().await;
            let path = ramjet_client::offset_store::offsets_path(
                &offsets_root.join(format!("m{i}")),
                &format!("bc-c{i}"),
                "bc-group",
            );
            let offsets = ramjet_client::offset_store::load(&path).expect("offsets file");
            let total: i64 = offsets.iter().filter(|(q, _)| q.topic == TOPIC).map(|(_, o)| o).sum();
            assert_eq!(total, COUNT as i64, "member {i} offsets {offsets:?}");
        }
    });
}

// Goal: ordered consumption delivers each key's messages in send order, also while a
// second consumer joins and takes over half of the queues.
// Method: 8 keys sent with a hash selector (same key, same queue) over 4 queues, 60
// messages per key in rounds, by a sender task; consumer A (ordered listener) runs from
// the start; B starts once half is sent. In the global arrival order, each key's
// sequence numbers never skip ahead (a redelivery may repeat earlier ones), and every
// message arrives. B must end up holding queues.
#[test]
fn ordered_consumption_keeps_key_order_across_a_rebalance() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        const TOPIC: &str = "ord-topic";
        const KEYS: usize = 8;
        const PER_KEY: usize = 60;
        let queues = create_topic(&ns, &addr, TOPIC, 4).await;
        let arrivals: Rc<RefCell<Vec<(usize, usize, usize)>>> = Rc::default();
        let listener = |index: usize| {
            let arrivals = arrivals.clone();
            MessageListener::orderly(move |msgs, _ctx| {
                for m in msgs {
                    let text = body_text(m);
                    let (key, seq) = text.split_once(':').expect("key:seq");
                    let key: usize = key.trim_start_matches("order-").parse().expect("key");
                    arrivals.borrow_mut().push((index, key, seq.parse().expect("seq")));
                }
                ConsumeOrderlyStatus::Success
            })
        };
        let a = start_consumer(
            &ns,
            SerializeType::RocketMq,
            "ord-a",
            consumer_config("ord-group"),
            &[(TOPIC, "*")],
            listener(0),
        )
        .await;
        let all: BTreeSet<MessageQueue> = queues.iter().cloned().collect();
        wait_until("A holds every queue", || of_topic(a.assigned_queues(), TOPIC) == all).await;

        let sent = Rc::new(std::cell::Cell::new(0usize));
        let sender = {
            let (ns, sent) = (ns.clone(), sent.clone());
            glommio::spawn_local(async move {
                let p =
                    Producer::new(Client::new(client_config(&ns, SerializeType::Json, "p")), "pg");
                for seq in 0..PER_KEY {
                    for key in 0..KEYS {
                        let msg = Message::new(TOPIC, format!("order-{key}:{seq}"));
                        let selector = SelectByHash::new(format!("order-{key}"));
                        p.send_with_selector(msg, &selector).await.expect("ordered send");
                        sent.set(sent.get() + 1);
                    }
                }
            })
        };
        wait_until("half is sent", || sent.get() >= KEYS * PER_KEY / 2).await;
        let b = start_consumer(
            &ns,
            SerializeType::RocketMq,
            "ord-b",
            consumer_config("ord-group"),
            &[(TOPIC, "*")],
            listener(1),
        )
        .await;
        sender.await;
        let complete = || {
            let got: BTreeSet<(usize, usize)> =
                arrivals.borrow().iter().map(|(_, k, s)| (*k, *s)).collect();
            got.len() == KEYS * PER_KEY
        };
        wait_until("every ordered message arrives", complete).await;
        wait_until("B holds queues", || !of_topic(b.assigned_queues(), TOPIC).is_empty()).await;
        let mut max_seen: BTreeMap<usize, i64> = BTreeMap::new();
        for (consumer, key, seq) in arrivals.borrow().iter() {
            let max = max_seen.entry(*key).or_insert(-1);
            assert!(
                *seq as i64 <= *max + 1,
                "key {key}: seq {seq} after {max} (consumer {consumer}) skips ahead"
            );
            *max = (*max).max(*seq as i64);
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}

// Goal: a tag subscription receives exactly the messages with that tag, with either
// header encoding. Method: per encoding, a fresh topic (2 queues) gets TagA, TagB and
// untagged messages, then a TagA sentinel per queue; once both sentinels arrived every
// earlier message of each queue was delivered or filtered; the received set is exactly
// the TagA set.
#[test]
fn tag_subscription_receives_only_its_tag_in_both_header_encodings() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        for (n, st) in [SerializeType::RocketMq, SerializeType::Json].into_iter().enumerate() {
            let topic = format!("tag-topic-{n}");
            let group = format!("tag-group-{n}");
            let queues = create_topic(&ns, &addr, &topic, 2).await;
            let log: Log = Rc::default();
            let c = start_consumer(
                &ns,
                st,
                &format!("tag-c{n}"),
                consumer_config(&group),
                &[(&topic, "TagA")],
                recording(0, &log),
            )
            .await;
            let producer = Producer::new(Client::new(client_config(&ns, st, "p")), "pg");
            let mut want = BTreeSet::new();
            for i in 0..60 {
                let text = format!("t-{i}");
                let msg = match i % 3 {
                    0 => Message::new(topic.clone(), text.clone()).with_tags("TagA"),
                    1 => Message::new(topic.clone(), text.clone()).with_tags("TagB"),
                    _ => Message::new(topic.clone(), text.clone()),
                };
                if i % 3 == 0 {
                    want.insert(text);
                }
                producer.send(msg).await.expect("send");
            }
            for q in &queues {
                let text = format!("sentinel-{}", q.queue_id);
                let msg = Message::new(topic.clone(), text.clone()).with_tags("TagA");
                producer.send_to_queue(q, msg).await.expect("sentinel");
                want.insert(text);
            }
            let got = |log: &Log| -> BTreeSet<String> {
                log.borrow().iter().map(|(_, _, m)| body_text(m)).collect()
            };
            wait_until("both sentinels arrive", || {
                let g = got(&log);
                g.contains("sentinel-0") && g.contains("sentinel-1")
            })
            .await;
            assert_eq!(got(&log), want, "{st:?}: exactly the TagA messages");
            for (_, _, m) in log.borrow().iter() {
                assert_eq!(m.property("TAGS").as_deref(), Some("TagA"));
            }
            c.shutdown().await;
        }
    });
}

// Goal: a message the listener keeps failing is redelivered from %RETRY%<group> with a
// growing reconsume count, then lands in %DLQ%<group>.
// Method: max_reconsume_times 2 and delay level 1 (1 s) so it takes seconds; a listener
// that always answers ReconsumeLater; 3 messages; each is seen with reconsume times
// 0, 1, 2 (redeliveries under the original topic), then all 3 are pulled from the DLQ.
#[test]
fn failing_messages_are_retried_then_dead_lettered() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        const TOPIC: &str = "retry-topic";
        const GROUP: &str = "retry-group";
        create_topic(&ns, &addr, TOPIC, 2).await;
        let seen: Rc<RefCell<BTreeMap<String, Vec<i32>>>> = Rc::default();
        let topics: Rc<RefCell<BTreeSet<String>>> = Rc::default();
        let listener = {
            let (seen, topics) = (seen.clone(), topics.clone());
            MessageListener::concurrently(move |msgs, ctx| {
                for m in msgs {
                    topics.borrow_mut().insert(m.topic_str());
                    let id = m.property("UNIQ_KEY").unwrap_or_default();
                    seen.borrow_mut().entry(id).or_default().push(m.reconsume_times);
                }
                ctx.set_delay_level_when_next_consume(1);
                ConsumeStatus::ReconsumeLater
            })
        };
        let mut config = consumer_config(GROUP);
        config.max_reconsume_times = Some(2);
        let c = start_consumer(
            &ns,
            SerializeType::RocketMq,
            "retry-c",
            config,
            &[(TOPIC, "*")],
            listener,
        )
        .await;
        let producer =
            Producer::new(Client::new(client_config(&ns, SerializeType::RocketMq, "p")), "pg");
        let mut ids = BTreeSet::new();
        for i in 0..3 {
            let r = producer.send(Message::new(TOPIC, format!("fail-{i}"))).await.expect("send");
            ids.insert(r.msg_id);
        }
        wait_until("each message was tried three times", || {
            let seen = seen.borrow();
            ids.iter().all(|id| {
                let mut times = seen.get(id).cloned().unwrap_or_default();
                times.dedup();
                times == [0, 1, 2]
            })
        })
        .await;
        let dlq = format!("%DLQ%{GROUP}");
        let puller = PullConsumer::new(
            Client::new(client_config(&ns, SerializeType::Json, "dlq")),
            "dlq-reader",
        );
        let deadline = Instant::now() + DEADLINE;
        let mut dead: BTreeSet<String> = BTreeSet::new();
        while dead != ids {
            assert!(Instant::now() < deadline, "DLQ holds {dead:?}, want {ids:?}");
            if let Ok(queues) = puller.fetch_queues(&dlq).await {
                dead.clear();
                for q in &queues {
                    let r = puller.pull(q, 0, 32, None, None).await.expect("pull DLQ");
                    if r.status == PullStatus::Found {
                        for m in &r.messages {
                            assert_eq!(m.topic_str(), dlq);
                            dead.extend(m.property("UNIQ_KEY"));
                        }
                    }
                }
            }
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        c.shutdown().await;
        let topics = topics.borrow().clone();
        assert_eq!(
            topics,
            BTreeSet::from([TOPIC.to_string()]),
            "redeliveries carry the original topic"
        );
        for id in &ids {
            let times = seen.borrow()[id].clone();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{id}: reconsume times {times:?}");
        }
    });
}

// Goal: a new group starts where its consume-from setting says, and async sends with
// many in flight all land. Method: send 10 messages; start groups from the last offset,
// the first offset and (when `with_timestamp`) timestamp 0; once each holds both queues,
// send 10 more with send_async (all in flight, then awaited). First and timestamp 0 get
// all 20; last gets exactly the 10 sent after it started.
fn new_groups_start_where_configured(with_timestamp: bool) {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        const TOPIC: &str = "from-topic";
        let queues = create_topic(&ns, &addr, TOPIC, 2).await;
        let producer =
            Producer::new(Client::new(client_config(&ns, SerializeType::RocketMq, "p")), "pg");
        let mut before = BTreeSet::new();
        for i in 0..10 {
            let text = format!("before-{i}");
            producer.send(Message::new(TOPIC, text.clone())).await.expect("send");
            before.insert(text);
        }
        let log: Log = Rc::default();
        let mut settings = vec![
            ("from-last", ConsumeFromWhere::ConsumeFromLastOffset, None),
            ("from-first", ConsumeFromWhere::ConsumeFromFirstOffset, None),
        ];
        if with_timestamp {
            settings.push(("from-ts", ConsumeFromWhere::ConsumeFromTimestamp, Some(0)));
        }
        let mut members = Vec::new();
        for (i, (group, from, ts)) in settings.into_iter().enumerate() {
            let mut config = consumer_config(group);
            config.consume_from_where = from;
            config.consume_timestamp_ms = ts;
            let st = if i % 2 == 0 { SerializeType::Json } else { SerializeType::RocketMq };
            let c =
                start_consumer(&ns, st, group, config, &[(TOPIC, "*")], recording(i, &log)).await;
            members.push(c);
        }
        let all: BTreeSet<MessageQueue> = queues.iter().cloned().collect();
        wait_until("every group holds both queues", || {
            members.iter().all(|m| of_topic(m.assigned_queues(), TOPIC) == all)
        })
        .await;
        let mut after = BTreeSet::new();
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let text = format!("after-{i}");
                after.insert(text.clone());
                producer.send_async(Message::new(TOPIC, text))
            })
            .collect();
        for h in handles {
            h.await.expect("async send");
        }
        let got = |member: usize| -> BTreeSet<String> {
            log.borrow()
                .iter()
                .filter(|(i, _, _)| *i == member)
                .map(|(_, _, m)| body_text(m))
                .collect()
        };
        let everything: BTreeSet<String> = before.union(&after).cloned().collect();
        let count = members.len();
        wait_until("first and timestamp 0 get everything", || {
            (1..count).all(|i| got(i) == everything)
        })
        .await;
        wait_until("last gets what was sent after it started", || after.is_subset(&got(0))).await;
        assert_eq!(got(0), after, "a group from the last offset skips older messages");
        for m in members {
            m.shutdown().await;
        }
    });
}

#[test]
fn new_groups_start_from_the_last_or_the_first_offset() {
    new_groups_start_where_configured(false);
}

#[test]

fn new_group_starts_from_a_timestamp() {
    new_groups_start_where_configured(true);
}

// Goal: a producer whose broker dies keeps sending: the failed attempt is retried on the
// other broker, and the dead broker is then avoided.
// Method: a NameServer and two brokers serving one topic; sends reach both; SIGKILL one;
// 40 more sends all succeed on the survivor, and the dead broker is either gone from the
// route or marked unavailable by fault avoidance.
#[test]
fn producer_retries_on_another_broker_and_avoids_a_dead_one() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let (dir_a, dir_b) = (store_dir(), store_dir());
    let start = |dir: &std::path::Path, name: &str| {
        let mut opts = BrokerOptions::new(dir);
        opts.namesrv_addr = Some(ns.clone());
        opts.broker_name = Some(name.to_string());
        Daemon::broker(&opts)
    };
    let mut broker_a = start(dir_a.path(), "broker-a");
    let broker_b = start(dir_b.path(), "broker-b");
    let addrs = [broker_a.broker_addr.clone(), broker_b.broker_addr.clone()];
    let producer_ns = ns.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        run_glommio(move || async move {
            const TOPIC: &str = "ha-topic";
            let client = Client::new(client_config(&producer_ns, SerializeType::RocketMq, "p"));
            let admin = Admin::new(client.clone());
            for addr in &addrs {
                admin.create_topic(addr, TOPIC, 4, 4).await.expect("create");
            }
            let producer = Producer::new(client.clone(), "pg");
            let deadline = Instant::now() + DEADLINE;
            loop {
                client.invalidate_route(TOPIC);
                if producer.write_queues(TOPIC).await.map_or(0, |q| q.len()) == 8 {
                    break;
                }
                assert!(Instant::now() < deadline, "route never covered both brokers");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            let mut brokers = BTreeSet::new();
            for i in 0..20 {
                let r = producer.send(Message::new(TOPIC, format!("a-{i}"))).await.expect("send");
                brokers.insert(r.queue.broker_name);
            }
            assert_eq!(brokers.len(), 2, "round robin reaches both brokers: {brokers:?}");
            tx.send(()).expect("signal kill");
            done_rx.recv().expect("broker killed");
            for i in 0..40 {
                let r = producer.send(Message::new(TOPIC, format!("b-{i}"))).await.expect("send");
                assert_eq!(r.queue.broker_name, "broker-b", "message {i}");
            }
            let route_has_a = producer
                .write_queues(TOPIC)
                .await
                .expect("route")
                .iter()
                .any(|q| q.broker_name == "broker-a");
            assert!(
                !route_has_a || !producer.is_broker_available("broker-a"),
                "a dead broker still in the route is avoided"
            );
        });
    });
    rx.recv_timeout(DEADLINE).expect("first sends done");
    broker_a.kill();
    done_tx.send(()).expect("continue");
    sender.join().expect("sender thread");
    drop(broker_b);
}
