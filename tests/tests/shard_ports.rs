//! Per-shard ports (issue 17): ramjet's client sends each queue's requests over a
//! connection that lands on the queue's owner shard, so sends and pulls cross no shard;
//! a client that ignores them (as any third-party client) still works on the main port.

use std::time::{Duration, Instant};

use ramjet_client::{Client, ClientConfig, Message, Producer, PullConsumer, PullStatus};
use ramjet_proto::SerializeType;
use ramjet_tests::{
    http_get, metric_sum, metrics_addr, parse_prometheus, run_glommio, store_dir, wait_for_route,
    BrokerOptions, Daemon,
};

const TOPIC: &str = "shard-ports";
const QUEUES: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Client requests forwarded between shards so far (`ramjet_forwarded_requests_total`).
fn forwarded(metrics: &str) -> f64 {
    let (status, text) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    metric_sum(&parse_prometheus(&text), "ramjet_forwarded_requests_total", &[])
}

fn client(ns: &str, shard_aware: bool) -> Client {
    let mut c = ClientConfig::new(ns).expect("client config");
    c.serialize_type = SerializeType::RocketMq;
    c.shard_aware = shard_aware;
    Client::new(c)
}

// Goal: with per-shard ports, ramjet's client never makes the broker hop between shards
// for sends, batches and pulls, and a client without them (main port) is served the same.
// Method: 2 shards, 4 queues (auto-created, spread over both shards); a shard-aware
// producer sends a message and a batch to every queue and pulls every queue back: the
// broker's forward counter does not move. Then a client with `shard_aware = false` does
// the same over one connection: every message arrives, and the counter moves (half the
// queues live on the other shard).
#[test]
fn the_shard_aware_client_crosses_no_shard() {
    let dir = store_dir();
    let mut opts = BrokerOptions::new(dir.path());
    opts.extra = vec!["--metrics-port".into(), "0".into()];
    let broker = Daemon::broker(&opts);
    let deadline = Instant::now() + TIMEOUT;
    while !broker.log_text().contains(" ready: ") {
        assert!(Instant::now() < deadline, "no ready line in the log");
        std::thread::sleep(Duration::from_millis(10));
    }
    let metrics = metrics_addr(&broker);
    let ns = broker.namesrv_addr.clone();
    run_glommio(move || async move {
        // Setup (auto-creating the topic) may cross shards: count from after it.
        let setup = Producer::new(client(&ns, false), "setup");
        setup.send(Message::new(TOPIC, "create")).await.expect("create the topic");
        let queues = wait_for_route(&setup, TOPIC, QUEUES).await;
        let mut expect = [0usize; QUEUES];
        for aware in [true, false] {
            let before = forwarded(&metrics);
            let c = client(&ns, aware);
            let producer = Producer::new(c.clone(), format!("p-{aware}"));
            for q in &queues {
                let m = Message::new(TOPIC, format!("one-{aware}-{}", q.queue_id));
                producer.send_to_queue(q, m).await.expect("send");
                let batch: Vec<Message> =
                    (0..3).map(|i| Message::new(TOPIC, format!("b{i}-{aware}"))).collect();
                producer.send_batch_to_queue(q, &batch).await.expect("batch");
            }
            let consumer = PullConsumer::new(c, format!("g-{aware}"));
            for q in &queues {
                let qi = q.queue_id as usize;
                expect[qi] += 4;
                let r = consumer.pull(q, 0, 64, None, None).await.expect("pull");
                assert_eq!(r.status, PullStatus::Found);
                let bodies: Vec<String> = r
                    .messages
                    .iter()
                    .map(|m| String::from_utf8_lossy(&m.body).into_owned())
                    .filter(|b| b != "create")
                    .collect();
                assert_eq!(bodies.len(), expect[qi], "queue {qi}: {bodies:?}");
                assert!(bodies.contains(&format!("one-{aware}-{qi}")));
            }
            let hops = forwarded(&metrics) - before;
            if aware {
                assert_eq!(hops, 0.0, "the shard-aware client made the broker hop");
            } else {
                assert!(hops > 0.0, "one connection reaches queues of both shards by hops");
            }
        }
    });
}
