//! `ramjet-admin` and `/metrics` against real broker processes.
//!
//! Goal: every admin sub-command works against a running broker in both output forms,
//! consumer lag is what was produced minus what was consumed, the metrics page parses as
//! Prometheus text and its counters match the traffic the test made, a live config change
//! takes effect without a restart, and the tool fails clearly against a stopped broker.
//!
//! Method: start `ramjet-broker` (embedded NameServer, `--metrics-port 0`), produce and
//! consume known counts with `ramjet-client`, then run the `ramjet-admin` binary and
//! compare its JSON (and table text) with those counts.

use std::time::Duration;

use ramjet_client::{
    Client, ClientConfig, Message, MessageQueue, Producer, PullConsumer, Subscription,
};
use ramjet_proto::body::{to_json, HeartbeatData, ProducerData};
use ramjet_proto::codes::request;
use ramjet_tests::{
    admin, http_get, metric_sum, metrics_addr, parse_prometheus, run_glommio, store_dir,
    BrokerOptions, Daemon,
};

const TOPIC: &str = "adm";
const GROUP: &str = "adm-group";
const PRODUCER_GROUP: &str = "adm-producer";
const SENT: usize = 40;
const PULL_PER_QUEUE: i32 = 3;
const QUEUES: i32 = 4;

fn start_broker(dir: &std::path::Path) -> Daemon {
    let mut opts = BrokerOptions::new(dir);
    opts.extra = vec!["--metrics-port".into(), "0".into()];
    Daemon::broker(&opts)
}

/// Waits (bounded) until the NameServer has a route for `topic`.
fn wait_for_route(ns: &str, topic: &str) {
    for _ in 0..200 {
        if admin(&["topicRoute", "-n", ns, "-t", topic]).code == Some(0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no route for {topic} after 10 s");
}

/// What the traffic step did, for the assertions.
#[derive(Debug, Clone)]
struct Traffic {
    consumed: usize,
    first_msg_id: String,
    first_offset_msg_id: String,
    first_queue: i32,
    first_queue_offset: i64,
    consumer_client_id: String,
    producer_client_id: String,
}

/// The client of [`make_traffic`], kept connected (the broker forgets a client whose
/// connection closes) until the handle is dropped.
struct LiveClient {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends SENT messages with keys `k-<i>`, pulls PULL_PER_QUEUE from each queue and commits,
/// and heartbeats as a consumer and a producer so the connection lists have members; the
/// client stays connected while the returned handle lives.
fn make_traffic(ns: String) -> (Traffic, LiveClient) {
    let (traffic_tx, traffic_rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        run_glommio(move || async move {
            let (traffic, client) = traffic_and_client(ns).await;
            let _ = traffic_tx.send(traffic);
            // Bounded: a test never runs for an hour.
            for _ in 0..72_000 {
                if stop_rx.try_recv().is_ok() {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            client.close();
        })
    });
    let traffic = traffic_rx.recv().expect("traffic");
    (traffic, LiveClient { stop, thread: Some(thread) })
}

async fn traffic_and_client(ns: String) -> (Traffic, Client) {
    {
        let config = ClientConfig::new(&ns).expect("config");
        let client_id = config.client_id.clone();
        let client = Client::new(config);
        let producer = Producer::new(client.clone(), PRODUCER_GROUP);
        let mut first = None;
        for i in 0..SENT {
            let msg = Message::new(TOPIC, format!("body-{i}")).with_keys(format!("k-{i}"));
            let r = producer.send(msg).await.expect("send");
            first.get_or_insert(r);
        }
        let first = first.expect("one send");
        let consumer = PullConsumer::new(client.clone(), GROUP);
        let sub = Subscription { topic: TOPIC.into(), expression: "*".into() };
        consumer.heartbeat(std::slice::from_ref(&sub)).await.expect("consumer heartbeat");
        let mut consumed = 0;
        for queue in consumer.fetch_queues(TOPIC).await.expect("queues") {
            let r = consumer.pull(&queue, 0, PULL_PER_QUEUE, None, Some("*")).await.expect("pull");
            consumed += r.messages.len();
            consumer.update_offset(&queue, r.next_begin_offset).await.expect("commit");
        }
        // A heartbeat replaces everything its client id declared, so the producer group
        // goes under its own id (a Java client would send both groups in one heartbeat).
        let producer_id = format!("{client_id}-producer");
        producer_heartbeat(&client, &producer_id, &first.queue).await;
        let traffic = Traffic {
            consumed,
            first_msg_id: first.msg_id,
            first_offset_msg_id: first.offset_msg_id,
            first_queue: first.queue.queue_id,
            first_queue_offset: first.queue_offset,
            consumer_client_id: client_id.clone(),
            producer_client_id: producer_id,
        };
        (traffic, client)
    }
}

/// A HEART_BEAT naming the producer group (the Producer itself sends none).
async fn producer_heartbeat(client: &Client, client_id: &str, queue: &MessageQueue) {
    let hb = HeartbeatData {
        client_id: client_id.to_string(),
        producer_data_set: vec![ProducerData { group_name: PRODUCER_GROUP.into() }],
        ..Default::default()
    };
    let addr = client.master_addr(&queue.broker_name, TOPIC).await.expect("master");
    let reply =
        client.invoke(&addr, client.header(request::HEART_BEAT), &to_json(&hb)).await.expect("hb");
    assert_eq!(reply.header.code, 0, "heartbeat refused");
}

/// Sends one message of `size` bytes; the response code (0 = stored).
fn send_sized(ns: &str, size: usize) -> i32 {
    let ns = ns.to_string();
    run_glommio(move || async move {
        let producer = Producer::new(Client::new(ClientConfig::new(&ns).expect("config")), "p2");
        match producer.send(Message::new(TOPIC, vec![b'x'; size])).await {
            Ok(_) => 0,
            Err(e) => e.response_code().unwrap_or(-1),
        }
    })
}

fn lag_of(ns: &str) -> i64 {
    let j = admin(&["consumerProgress", "-n", ns, "-g", GROUP, "--json"]).ok().json();
    j["totalLag"].as_i64().expect("totalLag")
}

#[test]
fn every_admin_command_against_a_running_broker() {
    let dir = store_dir();
    let mut broker = start_broker(dir.path());
    let ns = broker.namesrv_addr.clone();
    let addr = broker.broker_addr.clone();
    let ns = ns.as_str();

    // updateTopic, topicList, topicRoute.
    let out =
        admin(&["updateTopic", "-n", ns, "-b", &addr, "-t", TOPIC, "-r", "4", "-w", "4"]).ok();
    assert!(out.stdout.contains("success") && out.stdout.contains(TOPIC), "{}", out.stdout);
    wait_for_route(ns, TOPIC);
    assert!(admin(&["topicList", "-n", ns]).ok().stdout.lines().any(|l| l == TOPIC));
    let list = admin(&["topicList", "-n", ns, "--json"]).ok().json();
    assert!(list["topics"].as_array().expect("topics").iter().any(|t| t == TOPIC));
    let route = admin(&["topicRoute", "-n", ns, "-t", TOPIC, "--json"]).ok().json();
    assert_eq!(route["queueDatas"][0]["writeQueueNums"], QUEUES);
    assert!(admin(&["topicRoute", "-n", ns, "-t", TOPIC]).ok().stdout.contains("broker-a"));

    let (traffic, live_client) = make_traffic(ns.to_string());
    assert_eq!(traffic.consumed, (PULL_PER_QUEUE * QUEUES) as usize);

    // topicStatus: max offsets add up to what was sent.
    let status = admin(&["topicStatus", "-n", ns, "-t", TOPIC, "--json"]).ok().json();
    let queues = status["queues"].as_array().expect("queues");
    assert_eq!(queues.len(), QUEUES as usize);
    let max_sum: i64 = queues.iter().map(|q| q["maxOffset"].as_i64().expect("max")).sum();
    assert_eq!(max_sum, SENT as i64);
    assert!(admin(&["topicStatus", "-n", ns, "-t", TOPIC]).ok().stdout.contains("MaxOffset"));

    // clusterList, brokerStatus, getBrokerConfig.
    let cl = admin(&["clusterList", "-n", ns]).ok();
    assert!(cl.stdout.contains(&addr) && cl.stdout.contains(" ok"), "{}", cl.stdout);
    let cl = admin(&["clusterList", "-n", ns, "--json"]).ok().json();
    assert_eq!(cl["brokers"][0]["status"], "ok");
    let bs = admin(&["brokerStatus", "-n", ns, "-b", &addr, "--json"]).ok().json();
    assert_eq!(bs[&addr]["msgPutTotalTodayNow"], SENT.to_string());
    for key in ["putTps", "getTransferedTps", "commitLogDiskRatio", "runtime", "brokerVersionDesc"]
    {
        assert!(bs[&addr].get(key).is_some(), "runtime info lacks {key}");
    }
    assert!(admin(&["brokerStatus", "-n", ns, "-b", &addr]).ok().stdout.contains("putTps"));
    let cfg = admin(&["getBrokerConfig", "-n", ns, "-b", &addr]).ok();
    assert!(cfg.stdout.contains("brokerName") && cfg.stdout.contains("broker-a"), "{}", cfg.stdout);

    // consumerProgress: lag = produced - consumed, table and JSON.
    let expected_lag = (SENT - traffic.consumed) as i64;
    assert_eq!(lag_of(ns), expected_lag);
    let progress = admin(&["consumerProgress", "-n", ns, "-g", GROUP, "-t", TOPIC]).ok();
    assert!(
        progress.stdout.contains(&format!("Diff Total: {expected_lag}")),
        "{}",
        progress.stdout
    );

    // Metrics: the page parses and its counters match the traffic.
    let (code, page) = http_get(&metrics_addr(&broker), "/metrics");
    assert_eq!(code, 200);
    let samples = parse_prometheus(&page);
    assert_eq!(metric_sum(&samples, "ramjet_put_messages_total", &[("topic", TOPIC)]), SENT as f64);
    let get =
        metric_sum(&samples, "ramjet_get_messages_total", &[("topic", TOPIC), ("group", GROUP)]);
    assert_eq!(get, traffic.consumed as f64);
    let lag =
        metric_sum(&samples, "ramjet_consumer_lag_messages", &[("topic", TOPIC), ("group", GROUP)]);
    assert_eq!(lag, expected_lag as f64);
    let sends =
        metric_sum(&samples, "ramjet_requests_total", &[("code", "310"), ("response_code", "0")]);
    assert_eq!(sends, SENT as f64);
    assert_eq!(metric_sum(&samples, "ramjet_send_latency_seconds_count", &[]), SENT as f64);
    assert!(metric_sum(&samples, "ramjet_commitlog_disk_ratio", &[]) > 0.0);
    // Every stored send went through at least one timed segment write; the writes are
    // group commits, so there are at most as many as sends.
    let writes = metric_sum(&samples, "ramjet_storage_write_latency_seconds_count", &[]);
    assert!(writes >= 1.0 && writes <= SENT as f64, "{writes} writes");
    assert_eq!(writes, metric_sum(&samples, "ramjet_storage_writes_total", &[]));
    assert_eq!(http_get(&metrics_addr(&broker), "/nope").0, 404);

    // Connections.
    let cc = admin(&["consumerConnection", "-n", ns, "-g", GROUP]).ok();
    assert!(cc.stdout.contains(&traffic.consumer_client_id), "{}", cc.stdout);
    let cc = admin(&["consumerConnection", "-n", ns, "-g", GROUP, "--json"]).ok().json();
    assert_eq!(cc["connectionSet"][0]["clientId"], traffic.consumer_client_id.as_str());
    let pc = admin(&["producerConnection", "-n", ns, "-g", PRODUCER_GROUP, "-t", TOPIC]).ok();
    assert!(pc.stdout.contains(&traffic.producer_client_id), "{}", pc.stdout);
    let pc = admin(&["producerConnection", "-n", ns, "-g", PRODUCER_GROUP, "--json"]).ok().json();
    assert_eq!(
        pc["connections"]["connectionSet"][0]["clientId"],
        traffic.producer_client_id.as_str()
    );

    drop(live_client);

    // Subscription groups.
    admin(&["updateSubGroup", "-n", ns, "-b", &addr, "-g", "sg1", "-r", "3"]).ok();
    let groups = admin(&["consumerProgress", "-n", ns, "--json"]).ok().json();
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["group"].as_str())
        .collect();
    assert!(names.contains(&"sg1") && names.contains(&GROUP), "{names:?}");
    admin(&["deleteSubGroup", "-n", ns, "-b", &addr, "-g", "sg1", "--json"]).ok();
    let groups = admin(&["consumerProgress", "-n", ns]).ok();
    assert!(!groups.stdout.contains("sg1"), "{}", groups.stdout);

    // Messages by id, key, unique key, offset.
    let by_id = admin(&["queryMsgById", "-n", ns, "-i", &traffic.first_offset_msg_id, "--json"])
        .ok()
        .json();
    assert_eq!(by_id["messages"][0]["body"], "body-0");
    assert!(admin(&["queryMsgById", "-n", ns, "-i", &traffic.first_offset_msg_id])
        .ok()
        .stdout
        .contains("body-0"));
    let by_key =
        admin(&["queryMsgByKey", "-n", ns, "-t", TOPIC, "-k", "k-7", "--json"]).ok().json();
    let msgs = by_key["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["body"], "body-7");
    assert!(admin(&["queryMsgByKey", "-n", ns, "-t", TOPIC, "-k", "k-7"])
        .ok()
        .stdout
        .contains("body-7"));
    let by_uniq = admin(&[
        "queryMsgByUniqueKey",
        "-n",
        ns,
        "-t",
        TOPIC,
        "-i",
        &traffic.first_msg_id,
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(by_uniq["messages"][0]["body"], "body-0");
    let (q, o) = (traffic.first_queue.to_string(), traffic.first_queue_offset.to_string());
    let by_offset = admin(&[
        "queryMsgByOffset",
        "-n",
        ns,
        "-t",
        TOPIC,
        "-b",
        "broker-a",
        "-i",
        &q,
        "-o",
        &o,
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(by_offset["messages"][0]["body"], "body-0");
    let missing = admin(&["queryMsgByKey", "-n", ns, "-t", TOPIC, "-k", "no-such-key"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("QUERY_NOT_FOUND") || missing.stderr.contains("no message"),
        "{}",
        missing.stderr
    );

    // updateBrokerConfig takes effect without a restart.
    admin(&["updateBrokerConfig", "-n", ns, "-b", &addr, "-k", "maxMessageSize", "-v", "64"]).ok();
    let cfg = admin(&["getBrokerConfig", "-n", ns, "-b", &addr, "--json"]).ok().json();
    assert_eq!(cfg[&addr]["maxMessageSize"], "64");
    assert_eq!(send_sized(ns, 100), ramjet_proto::codes::response::MESSAGE_ILLEGAL);
    let refused =
        admin(&["updateBrokerConfig", "-n", ns, "-b", &addr, "-k", "listenPort", "-v", "1"]);
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("listenPort cannot change"), "{}", refused.stderr);
    admin(&[
        "updateBrokerConfig",
        "-n",
        ns,
        "-b",
        &addr,
        "-k",
        "maxMessageSize",
        "-v",
        "4194304",
        "--json",
    ])
    .ok();
    assert_eq!(send_sized(ns, 100), 0);
    assert_eq!(lag_of(ns), expected_lag + 1);

    // resetOffsetByTime to the beginning: the whole topic is lag again.
    let reset =
        admin(&["resetOffsetByTime", "-n", ns, "-g", GROUP, "-t", TOPIC, "-s", "0", "--json"])
            .ok()
            .json();
    assert_eq!(reset["queues"].as_array().expect("queues").len(), QUEUES as usize);
    assert_eq!(lag_of(ns), SENT as i64 + 1);
    assert!(admin(&["resetOffsetByTime", "-n", ns, "-g", GROUP, "-t", TOPIC, "-s", "now"])
        .ok()
        .stdout
        .contains("NewOffset"));
    assert_eq!(lag_of(ns), 0);

    // deleteTopic.
    admin(&["deleteTopic", "-n", ns, "-b", &addr, "-t", TOPIC]).ok();
    let gone = admin(&["topicStatus", "-n", ns, "-t", TOPIC]);
    assert_eq!(gone.code, Some(1));
    assert!(
        gone.stderr.contains("no route") || gone.stderr.contains("TOPIC_NOT_EXIST"),
        "{}",
        gone.stderr
    );
    broker.stop();
}

#[test]
fn admin_against_a_stopped_broker_fails_with_a_clear_message() {
    let dir = store_dir();
    let mut broker = start_broker(dir.path());
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    admin(&["brokerStatus", "-n", &ns, "-b", &addr]).ok();
    broker.stop();

    let down = admin(&["brokerStatus", "-n", &ns, "-b", &addr]);
    assert_eq!(down.code, Some(1), "{down:?}");
    assert!(down.stderr.contains(&format!("broker {addr} is unreachable")), "{}", down.stderr);
    assert!(!down.stderr.contains("panicked"), "{}", down.stderr);
    assert!(down.stdout.is_empty());

    let ns_down = admin(&["clusterList", "-n", &ns, "--json"]);
    assert_eq!(ns_down.code, Some(1));
    assert!(
        ns_down.stderr.contains(&format!("NameServer {ns} is unreachable")),
        "{}",
        ns_down.stderr
    );

    let usage = admin(&["topicStatus", "-n", &ns]);
    assert_eq!(usage.code, Some(2), "a missing -t is a usage error");
}

#[test]
fn namesrv_metrics_list_registered_brokers() {
    let mut namesrv = Daemon::namesrv_with(&["--metrics-port", "0"]);
    let dir = store_dir();
    let mut opts = BrokerOptions::new(dir.path());
    opts.namesrv_addr = Some(namesrv.namesrv_addr.clone());
    let mut broker = Daemon::broker(&opts);
    // Registration follows the broker's ready line: scrape until it shows (bounded).
    let mut samples = Vec::new();
    for _ in 0..200 {
        let (code, page) = http_get(&metrics_addr(&namesrv), "/metrics");
        assert_eq!(code, 200);
        samples = parse_prometheus(&page);
        let registered = metric_sum(
            &samples,
            "ramjet_namesrv_broker_registered",
            &[("addr", broker.broker_addr.as_str()), ("broker", "broker-a")],
        );
        if registered == 1.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let want = [("addr", broker.broker_addr.as_str()), ("broker", "broker-a")];
    assert_eq!(metric_sum(&samples, "ramjet_namesrv_broker_registered", &want), 1.0);
    assert!(metric_sum(&samples, "ramjet_namesrv_topics", &[]) >= 1.0);
    broker.stop();
    namesrv.stop();
}
