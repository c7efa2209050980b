//! SQL92 property filtering end to end (issue 16, ARCHITECTURE §13) against real brokers.
//!
//! Goal: CHECK_CLIENT_CONFIG (46) answers as the reference (SUCCESS for tags and good
//! selectors, SUBSCRIPTION_PARSE_FAILED with the compile error for a bad one, SYSTEM_ERROR
//! with `enablePropertyFilter` off); pulls with a SQL92 selector (their own, or their
//! group's from a heartbeat) return exactly the messages the selector accepts, including
//! after a long-poll wake-up; a bad group selector is answered FILTER_DATA_NOT_EXIST.
//!
//! Method: one broker with `enablePropertyFilter=true` and one with the default (off),
//! two shards each; per header encoding, a topic with one queue gets messages with a
//! numeric property `a` and alternating tags; raw requests go through a client of that
//! encoding and the returned records are decoded.

use std::time::Duration;

use ramjet_client::{Admin, Client, ClientConfig, Message, MessageQueue, Producer};
use ramjet_proto::body::{ConsumerData, HeartbeatData, SubscriptionData};
use ramjet_proto::codes::{request, response};
use ramjet_proto::message::{decode_records, StoredMessage};
use ramjet_proto::{Frame, SerializeType};
use ramjet_tests::{
    http_get, metric_sum, metrics_addr, parse_prometheus, run_glommio, store_dir, wait_for_route,
    BrokerOptions, Daemon,
};

const SENT: i64 = 20;
const FLAG_SUSPEND: i32 = 0x2;
const FLAG_SUBSCRIPTION: i32 = 0x4;

fn new_client(ns: &str, st: SerializeType, id: &str) -> Client {
    let mut config = ClientConfig::new(ns).expect("config");
    config.serialize_type = st;
    config.client_id = id.to_string();
    Client::new(config)
}

async fn check_client_config(client: &Client, addr: &str, kind: &str, expression: &str) -> Frame {
    let body = serde_json::json!({
        "clientId": "sql-client",
        "group": "sql-g",
        "subscriptionData": {"topic": "t", "subString": expression, "expressionType": kind,
            "tagsSet": [], "codeSet": [], "subVersion": 1, "classFilterMode": false},
    });
    let h = client.header(request::CHECK_CLIENT_CONFIG);
    client.invoke(addr, h, body.to_string().as_bytes()).await.expect("46 answered")
}

#[derive(Clone, Copy)]
struct Pull<'a> {
    group: &'a str,
    topic: &'a str,
    offset: i64,
    /// The request's own (selector, type); `None`: the group's heartbeat subscription.
    own: Option<(&'a str, &'a str)>,
    suspend_ms: i64,
}

async fn pull(client: &Client, addr: &str, p: &Pull<'_>) -> Frame {
    let mut h = client.header(request::PULL_MESSAGE);
    let mut flag = 0;
    if p.suspend_ms > 0 {
        flag |= FLAG_SUSPEND;
    }
    let ext = &mut h.ext_fields;
    if let Some((expression, kind)) = p.own {
        flag |= FLAG_SUBSCRIPTION;
        ext.insert("subscription", expression);
        ext.insert("expressionType", kind);
    }
    for (k, v) in [
        ("consumerGroup", p.group.to_string()),
        ("topic", p.topic.to_string()),
        ("queueId", "0".into()),
        ("queueOffset", p.offset.to_string()),
        ("maxMsgNums", "32".into()),
        ("sysFlag", flag.to_string()),
        ("commitOffset", "0".into()),
        ("suspendTimeoutMillis", p.suspend_ms.to_string()),
        ("subVersion", "1".into()),
    ] {
        ext.insert(k, v.as_str());
    }
    client.invoke(addr, h, b"").await.expect("pull answered")
}

fn ext_i64(f: &Frame, key: &str) -> i64 {
    f.header.ext_fields.get(key).and_then(|v| v.parse().ok()).unwrap_or(-1)
}

fn values_of_a(f: &Frame) -> Vec<i64> {
    let records: Vec<StoredMessage> =
        decode_records(&bytes::Bytes::copy_from_slice(&f.body), false).expect("records decode");
    records.iter().filter_map(|m| m.property("a")?.parse().ok()).collect()
}

/// Pulls from `offset` until the queue's end (bounded: 2 x SENT rounds), collecting `a`.
async fn pull_all(client: &Client, addr: &str, p: Pull<'_>) -> Vec<i64> {
    let mut out = Vec::new();
    let mut offset = p.offset;
    for _ in 0..2 * SENT {
        let f = pull(client, addr, &Pull { offset, ..p }).await;
        match f.header.code {
            response::SUCCESS => out.extend(values_of_a(&f)),
            response::PULL_RETRY_IMMEDIATELY => {}
            response::PULL_NOT_FOUND => return out,
            other => panic!("pull answered {other}: {:?}", f.header.remark),
        }
        offset = ext_i64(&f, "nextBeginOffset");
    }
    panic!("pull never reached the queue's end");
}

async fn heartbeat(client: &Client, addr: &str, group: &str, topic: &str, expression: &str) {
    let hb = HeartbeatData {
        client_id: format!("hb-{group}"),
        consumer_data_set: vec![ConsumerData {
            group_name: group.to_string(),
            subscription_data_set: vec![SubscriptionData {
                topic: topic.to_string(),
                sub_string: expression.to_string(),
                expression_type: "SQL92".into(),
                sub_version: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let body = ramjet_proto::body::to_json(&hb);
    let f = client.invoke(addr, client.header(request::HEART_BEAT), &body).await.expect("hb");
    // A bad selector does not fail the heartbeat (the reference logs it).
    assert_eq!(f.header.code, response::SUCCESS, "heartbeat: {:?}", f.header.remark);
}

async fn send(producer: &Producer, queue: &MessageQueue, topic: &str, a: i64) {
    let tag = if a % 2 == 0 { "even" } else { "odd" };
    let mut m = Message::new(topic, format!("m{a}")).with_tags(tag);
    m.set_property("a", a.to_string());
    producer.send_to_queue(queue, m).await.expect("send");
}

async fn filtering_broker(ns: String, addr: String, metrics: String, st: SerializeType) {
    let tag = format!("{st:?}").to_lowercase();
    let topic = format!("sql-{tag}");
    let client = new_client(&ns, st, &format!("sql-client-{tag}"));
    Admin::new(client.clone()).create_topic(&addr, &topic, 1, 1).await.expect("create");
    let producer = Producer::new(client.clone(), format!("sql-p-{tag}").as_str());
    let queue = wait_for_route(&producer, &topic, 1).await.remove(0);
    for a in 0..SENT {
        send(&producer, &queue, &topic, a).await;
    }

    // 46: tags, a good selector and no subscription pass; a bad selector is refused with
    // the compile error.
    let f = check_client_config(&client, &addr, "TAG", "even || odd").await;
    assert_eq!(f.header.code, response::SUCCESS, "{:?}", f.header.remark);
    let f = check_client_config(&client, &addr, "SQL92", "a > 3 AND TAGS = 'odd'").await;
    assert_eq!(f.header.code, response::SUCCESS, "{:?}", f.header.remark);
    let f = client.invoke(&addr, client.header(request::CHECK_CLIENT_CONFIG), b"").await;
    assert_eq!(f.expect("46").header.code, response::SUCCESS);
    let f = check_client_config(&client, &addr, "SQL92", "a > AND").await;
    assert_eq!(f.header.code, response::SUBSCRIPTION_PARSE_FAILED);
    let remark = f.header.remark.clone().unwrap_or_default();
    assert!(remark.contains("Invalid MessageSelector"), "{remark}");
    let huge = format!("a IN ({})", vec!["'x'"; 10_000].join(","));
    let f = check_client_config(&client, &addr, "SQL92", &huge).await;
    assert_eq!(f.header.code, response::SUBSCRIPTION_PARSE_FAILED, "over the length cap");
    assert!(f.header.remark.unwrap_or_default().len() < 1024);

    // A pull's own selector: exactly the accepted messages, in order.
    let selector = "a BETWEEN 5 AND 15 AND TAGS = 'odd' OR a IS NULL";
    let own = Pull {
        group: "sql-own",
        topic: &topic,
        offset: 0,
        own: Some((selector, "SQL92")),
        suspend_ms: 0,
    };
    assert_eq!(pull_all(&client, &addr, own).await, vec![5, 7, 9, 11, 13, 15]);
    let f = pull(&client, &addr, &Pull { own: Some(("a >", "SQL92")), ..own }).await;
    assert_eq!(f.header.code, response::SUBSCRIPTION_PARSE_FAILED, "{:?}", f.header.remark);
    // A selector nothing matches: the pull moves past what it read.
    let f = pull(&client, &addr, &Pull { own: Some(("a > 1000", "SQL92")), ..own }).await;
    assert!(
        [response::PULL_RETRY_IMMEDIATELY, response::PULL_NOT_FOUND].contains(&f.header.code),
        "{}",
        f.header.code
    );
    assert!(ext_i64(&f, "nextBeginOffset") > 0);

    // The group's selector from its heartbeat (pull without the subscription bit).
    let group = format!("sql-g-{tag}");
    heartbeat(&client, &addr, &group, &topic, "a BETWEEN 1 AND 3 OR (a >= 18 AND a <> 19)").await;
    let by_group = Pull { group: &group, own: None, ..own };
    // Subscriptions reach every shard a little after the heartbeat's answer: bounded.
    let mut got = Vec::new();
    for _ in 0..200 {
        got = pull_all(&client, &addr, by_group).await;
        if got.len() < SENT as usize {
            break;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, vec![1, 2, 3, 18]);
    let bad = format!("sql-bad-{tag}");
    heartbeat(&client, &addr, &bad, &topic, "a = = 1").await;
    let mut code = 0;
    for _ in 0..200 {
        code = pull(&client, &addr, &Pull { group: &bad, ..by_group }).await.header.code;
        if code != response::SUCCESS {
            break;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(code, response::FILTER_DATA_NOT_EXIST);

    // Long poll at the end: a rejected arrival does not answer the pull, a matching one
    // does, alone; the answer's next offset is past both.
    let waiting = Pull { offset: SENT, suspend_ms: 15_000, ..by_group };
    let parked_before = long_poll_holds(&metrics);
    let arrivals = async {
        // Send only once the broker counts the pull as parked, so the wake-up path runs
        // (bounded: 500 checks, 20 ms apart).
        let mut parked = false;
        for _ in 0..500 {
            if long_poll_holds(&metrics) > parked_before {
                parked = true;
                break;
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        assert!(parked, "the pull never parked");
        send(&producer, &queue, &topic, 19).await;
        send(&producer, &queue, &topic, 2).await;
    };
    let (f, ()) = futures_lite::future::zip(pull(&client, &addr, &waiting), arrivals).await;
    assert_eq!(f.header.code, response::SUCCESS, "{:?}", f.header.remark);
    assert_eq!(values_of_a(&f), vec![2]);
    assert_eq!(ext_i64(&f, "nextBeginOffset"), SENT + 2);
    client.shutdown().await;
}

/// Pulls parked by long polling so far, summed over shards (`ramjet_long_poll_holds`).
fn long_poll_holds(metrics: &str) -> f64 {
    let (status, body) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    metric_sum(&parse_prometheus(&body), "ramjet_long_poll_holds_total", &[])
}

async fn plain_broker(ns: String, addr: String, st: SerializeType) {
    let tag = format!("{st:?}").to_lowercase();
    let topic = format!("sql-off-{tag}");
    let client = new_client(&ns, st, &format!("sql-off-{tag}"));
    Admin::new(client.clone()).create_topic(&addr, &topic, 1, 1).await.expect("create");
    let remark = Some("The broker does not support consumer to filter message by SQL92".into());
    let f = check_client_config(&client, &addr, "SQL92", "a > 1").await;
    assert_eq!((f.header.code, f.header.remark), (response::SYSTEM_ERROR, remark.clone()));
    let f = check_client_config(&client, &addr, "TAG", "*").await;
    assert_eq!(f.header.code, response::SUCCESS);
    let p =
        Pull { group: "g", topic: &topic, offset: 0, own: Some(("a > 1", "SQL92")), suspend_ms: 0 };
    let f = pull(&client, &addr, &p).await;
    assert_eq!((f.header.code, f.header.remark), (response::SYSTEM_ERROR, remark));
    client.shutdown().await;
}

#[test]
fn sql92_filters_in_both_encodings() {
    let dir = store_dir();
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "enablePropertyFilter=true\n").expect("conf");
    let mut opts = BrokerOptions::new(&dir.path().join("on"));
    opts.extra =
        vec!["-c".into(), conf.to_string_lossy().into_owned(), "--metrics-port".into(), "0".into()];
    let mut on = Daemon::broker(&opts);
    let metrics = metrics_addr(&on);
    let mut off = Daemon::broker(&BrokerOptions::new(&dir.path().join("off")));
    for st in [SerializeType::RocketMq, SerializeType::Json] {
        let (ns, addr, m) = (on.namesrv_addr.clone(), on.broker_addr.clone(), metrics.clone());
        run_glommio(move || filtering_broker(ns, addr, m, st));
        let (ns, addr) = (off.namesrv_addr.clone(), off.broker_addr.clone());
        run_glommio(move || plain_broker(ns, addr, st));
    }
    on.stop();
    off.stop();
}
