//! Bounded metrics with real processes: requests with junk topic and group names leave the
//! `/metrics` page and the broker's memory small, scrapers that never read do not block
//! other scrapers, and scrapers past `metricsMaxConnections` are closed at accept (broker
//! and NameServer), each counted in `ramjet_limit_hits_total`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ramjet_client::{Connection, ConnectionOptions, Message, Producer};
use ramjet_proto::codes::{request, response};
use ramjet_proto::{Header, SerializeType};
use ramjet_tests::{
    client, http_get, metric_sum, metrics_addr, parse_prometheus, run_glommio, store_dir,
    wait_for_route, BrokerOptions, Daemon,
};

const TIMEOUT: Duration = Duration::from_secs(30);
const TOPIC: &str = "metrics-real";
const GROUP: &str = "metrics-real-group";

/// The attack's page bound: the fixed families of a 2-shard broker with one topic are about
/// 25 KB; 64 KiB leaves room for the series of the broker's own topics (TBW102, the retry
/// and system topics) and nothing for a 1 MiB name.
const PAGE_BYTES_MAX: usize = 64 << 10;
/// The attack's RSS bound. Each 1 MiB name passes through the header decoder (JSON headers
/// expand it several times while parsed) and the offset table holds the 20 committed junk
/// keys (bounded by the table limits, not by metrics); before this change the same attack
/// took a broker to about 96 MB and then grew by about 40 MB every 10 s.
const RSS_BYTES_MAX: u64 = 80 << 20;
/// RSS growth allowed over a minute with no traffic after the junk sends (before this
/// change, each rate sample, every 10 s, copied every key: about 40 MB per sample).
const IDLE_GROWTH_BYTES_MAX: u64 = 8 << 20;
/// RSS growth allowed over two rate-sample intervals after the whole attack: more than
/// after the sends alone, as the offset table persists the 20 junk 1 MiB keys every 5 s
/// (measured up to 2 MB; the offset table's own limits bound that, not metrics).
const IDLE_GROWTH_ATTACK_BYTES_MAX: u64 = 24 << 20;

/// The daemon's metrics address, once its ready line is in its log (the log reader reports
/// the line before it appends it).
fn metrics_of(daemon: &Daemon) -> String {
    let deadline = Instant::now() + TIMEOUT;
    while !daemon.log_text().contains(" ready: ") {
        assert!(Instant::now() < deadline, "no ready line in the log");
        std::thread::sleep(Duration::from_millis(10));
    }
    metrics_addr(daemon)
}

/// A 2-shard broker with `conf` as its broker.conf and a metrics port. `segment`: commit-log
/// segment size (the tests store a few messages; `None`, the default 1 GiB, for the
/// measurement that should match the setup).
fn broker_conf(conf: &str, segment: Option<u64>) -> (tempfile::TempDir, Daemon) {
    let dir = store_dir();
    let conf_path = dir.path().join("broker.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.segment_size = segment;
    opts.extra = vec![
        "-c".into(),
        conf_path.to_string_lossy().into_owned(),
        "--metrics-port".into(),
        "0".into(),
    ];
    let broker = Daemon::broker(&opts);
    (dir, broker)
}

/// [`broker_conf`] with 16 MiB segments.
fn broker_with(conf: &str) -> (tempfile::TempDir, Daemon) {
    broker_conf(conf, Some(16 << 20))
}

/// The process's resident set, bytes (`VmRSS` of /proc/<pid>/status).
fn rss_bytes(daemon: &Daemon) -> u64 {
    let pid = daemon.pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("kB");
    kib * 1024
}

/// A 1 MiB name unique to `i` (valid characters, far past the 127-byte limit).
fn junk(i: usize) -> String {
    let mut s = format!("junk{i}-");
    s.push_str(&"x".repeat((1 << 20) - s.len()));
    s
}

fn header(code: i32, fields: &[(&str, &str)]) -> Header {
    let mut h = Header::request(code, 0, SerializeType::RocketMq);
    for (k, v) in fields {
        h.ext_fields.insert(*k, *v);
    }
    h
}

fn send_header(code: i32, topic: &str) -> Header {
    let topic_key = if code == request::SEND_MESSAGE { "topic" } else { "b" };
    let (group_key, default_key, queues_key, queue_key) = if code == request::SEND_MESSAGE {
        ("producerGroup", "defaultTopic", "defaultTopicQueueNums", "queueId")
    } else {
        ("a", "c", "d", "e")
    };
    let (flag, born, sys, props, times) = if code == request::SEND_MESSAGE {
        ("flag", "bornTimestamp", "sysFlag", "properties", "reconsumeTimes")
    } else {
        ("h", "g", "f", "i", "j")
    };
    header(
        code,
        &[
            (group_key, "pg"),
            (topic_key, topic),
            (default_key, "TBW102"),
            (queues_key, "4"),
            (queue_key, "0"),
            (sys, "0"),
            (born, "1700000000000"),
            (flag, "0"),
            (props, ""),
            (times, "0"),
        ],
    )
}

fn pull_header(topic: &str, group: &str) -> Header {
    header(
        request::PULL_MESSAGE,
        &[
            ("consumerGroup", group),
            ("topic", topic),
            ("queueId", "0"),
            ("queueOffset", "0"),
            ("maxMsgNums", "32"),
            ("sysFlag", "0"),
            ("commitOffset", "0"),
            ("suspendTimeoutMillis", "0"),
            ("subVersion", "0"),
        ],
    )
}

fn offset_header(topic: &str, group: &str) -> Header {
    header(
        request::UPDATE_CONSUMER_OFFSET,
        &[("consumerGroup", group), ("topic", topic), ("queueId", "0"), ("commitOffset", "1")],
    )
}

/// Lines of the page that name a junk topic or group.
fn junk_lines(page: &str) -> Vec<&str> {
    page.lines().filter(|l| l.contains("junk")).collect()
}

// Goal: issue 13's metrics attack. Rejected sends with 1 MiB topic names, and pulls and
// offset commits with junk group names (1 MiB, and short valid names the broker does not
// know), create no series: the page stays under PAGE_BYTES_MAX and names no junk, the
// broker's RSS stays under RSS_BYTES_MAX and does not grow while idle; the folded series
// and the request counters still count the requests, and a real topic keeps its series.
// Method: a 2-shard broker; one real message on queue 0 of TOPIC; the attack on raw
// connections; scrape and read /proc/<pid>/status; wait two rate-sample intervals (the old
// growth came from the samples) and read RSS again.
#[test]
fn junk_topic_and_group_names_leave_the_page_and_memory_small() {
    let (_dir, broker) = broker_with("");
    let metrics = metrics_of(&broker);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    let rss_start = rss_bytes(&broker);
    run_glommio(move || async move {
        let admin = ramjet_client::Admin::new(client(&ns, SerializeType::RocketMq));
        admin.create_topic(&addr, TOPIC, 1, 1).await.expect("create topic");
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let queues = wait_for_route(&producer, TOPIC, 1).await;
        producer.send_to_queue(&queues[0], Message::new(TOPIC, "real")).await.expect("send");

        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        for i in 0..40 {
            let code = if i % 2 == 0 { request::SEND_MESSAGE } else { request::SEND_MESSAGE_V2 };
            let reply =
                conn.request(send_header(code, &junk(i)), b"body", TIMEOUT).await.expect("reply");
            assert_ne!(reply.header.code, response::SUCCESS, "a 1 MiB topic name is refused");
        }
        for i in 0..20 {
            let group = if i % 2 == 0 { junk(100 + i) } else { format!("junk-short-{i}") };
            let reply = conn.request(pull_header(TOPIC, &group), b"", TIMEOUT).await.expect("pull");
            assert_eq!(
                reply.header.code,
                response::SUCCESS,
                "the real message is pulled: {:?}",
                reply.header.remark
            );
            let reply =
                conn.request(pull_header(&junk(200 + i), GROUP), b"", TIMEOUT).await.expect("pull");
            assert_ne!(reply.header.code, response::SUCCESS);
            // Whether the broker keeps the offset is the offset table's business; the page
            // must not show it either way.
            conn.request(offset_header(TOPIC, &junk(300 + i)), b"", TIMEOUT).await.expect("commit");
        }
    });
    let (code, page) = http_get(&metrics, "/metrics");
    assert_eq!(code, 200);
    let rss_after = rss_bytes(&broker);
    eprintln!(
        "page {} bytes; RSS {} KiB at start, {} KiB after the attack",
        page.len(),
        rss_start >> 10,
        rss_after >> 10
    );
    assert!(page.len() <= PAGE_BYTES_MAX, "page of {} bytes", page.len());
    assert!(junk_lines(&page).is_empty(), "junk names on the page: {:.200?}", junk_lines(&page));
    let samples = parse_prometheus(&page);
    assert_eq!(metric_sum(&samples, "ramjet_put_messages_total", &[("topic", TOPIC)]), 1.0);
    let folded_gets = metric_sum(&samples, "ramjet_get_messages_total", &[("topic", "~other")]);
    assert_eq!(folded_gets, 20.0, "the 20 junk-group pulls fold into one series");
    let sends = metric_sum(&samples, "ramjet_requests_total", &[("code", "10")])
        + metric_sum(&samples, "ramjet_requests_total", &[("code", "310")]);
    assert!(sends >= 41.0, "{sends} sends counted");
    assert!(rss_after <= RSS_BYTES_MAX, "RSS {} MiB after the attack", rss_after >> 20);

    // Idle: two rate samples (every 10 s) must not copy anything.
    std::thread::sleep(Duration::from_secs(21));
    let rss_idle = rss_bytes(&broker);
    eprintln!("RSS {} KiB after 21 s idle", rss_idle >> 10);
    assert!(
        rss_idle <= rss_after + IDLE_GROWTH_ATTACK_BYTES_MAX,
        "RSS grew from {} KiB to {} KiB while idle",
        rss_after >> 10,
        rss_idle >> 10
    );
    let (_, page) = http_get(&metrics, "/metrics");
    assert!(page.len() <= PAGE_BYTES_MAX && junk_lines(&page).is_empty());
}

/// Rows of `name` whose `label` is not the folded series.
fn own_series(samples: &[ramjet_tests::Sample], name: &str, label: &str) -> Vec<String> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter_map(|s| s.labels.get(label).filter(|v| *v != "~other").cloned())
        .collect()
}

// Goal: a known topic and group get their own series, and lose them when the topic is
// deleted. Method: one topic, 3 messages, a pull consumer that heartbeats its subscription
// and pulls them; scrape; delete the topic (ramjet-admin deleteTopic); scrape again while
// the consumer is still connected, so only the topic's removal can take the series away.
#[test]
fn known_names_get_series_that_go_with_their_topic() {
    let (_dir, broker) = broker_with("");
    let metrics = metrics_of(&broker);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let admin = ramjet_client::Admin::new(client(&ns, SerializeType::RocketMq));
        admin.create_topic(&addr, TOPIC, 1, 1).await.expect("create topic");
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        let queues = wait_for_route(&producer, TOPIC, 1).await;
        for _ in 0..3 {
            producer.send_to_queue(&queues[0], Message::new(TOPIC, "m")).await.expect("send");
        }
        let consumer =
            ramjet_client::PullConsumer::new(client(&ns, SerializeType::RocketMq), GROUP);
        let sub = ramjet_client::Subscription { topic: TOPIC.into(), expression: "*".into() };
        consumer.heartbeat(std::slice::from_ref(&sub)).await.expect("heartbeat");
        let r = consumer.pull(&queues[0], 0, 32, None, Some("*")).await.expect("pull");
        assert_eq!(r.messages.len(), 3);

        let samples = parse_prometheus(&http_get(&metrics, "/metrics").1);
        assert_eq!(metric_sum(&samples, "ramjet_put_messages_total", &[("topic", TOPIC)]), 3.0);
        let want = [("topic", TOPIC), ("group", GROUP)];
        assert_eq!(metric_sum(&samples, "ramjet_get_messages_total", &want), 3.0);

        ramjet_tests::admin(&["deleteTopic", "-n", &ns, "-b", &addr, "-t", TOPIC]).ok();
        let samples = parse_prometheus(&http_get(&metrics, "/metrics").1);
        let puts = own_series(&samples, "ramjet_put_messages_total", "topic");
        let gets = own_series(&samples, "ramjet_get_messages_total", "topic");
        assert!(!puts.iter().chain(&gets).any(|t| t == TOPIC), "{puts:?} {gets:?}");
        drop(consumer);
    });
}

// Goal: `metricsMaxSeries` bounds the series; past it counts fold into `~other` and each
// fold is a limit hit. Method: limit 2 over 2 shards (one series per shard); one message
// to each of 4 existing topics; the page has at most 2 put series of its own and counts
// all 4 messages.
#[test]
fn series_past_metrics_max_series_fold_into_other() {
    let (_dir, broker) = broker_with("metricsMaxSeries=2\n");
    let metrics = metrics_of(&broker);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let admin = ramjet_client::Admin::new(client(&ns, SerializeType::RocketMq));
        let producer = Producer::new(client(&ns, SerializeType::RocketMq), "pg");
        for i in 0..4 {
            let topic = format!("bounded-{i}");
            admin.create_topic(&addr, &topic, 1, 1).await.expect("create topic");
            let queues = wait_for_route(&producer, &topic, 1).await;
            producer.send_to_queue(&queues[0], Message::new(&topic, "m")).await.expect("send");
        }
    });
    let samples = parse_prometheus(&http_get(&metrics, "/metrics").1);
    let own = own_series(&samples, "ramjet_put_messages_total", "topic");
    assert!(own.len() <= 2, "put series past metricsMaxSeries: {own:?}");
    assert_eq!(metric_sum(&samples, "ramjet_put_messages_total", &[]), 4.0);
    let hits = metric_sum(&samples, "ramjet_limit_hits_total", &[("limit", "metricsMaxSeries")]);
    assert!(hits >= 2.0, "{hits} hits");
}

/// Opens a connection that sends nothing (it holds a place until the head timeout).
fn silent(addr: &str) -> TcpStream {
    TcpStream::connect(addr).expect("connect metrics")
}

/// Sends half a request head and stops (a stalled scraper; it never reads either).
fn stalled(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\n").expect("write");
    s
}

/// Sends a scrape request and never reads the answer.
fn never_reads(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    s
}

/// Scrapes `addr`; the whole response and how long it took. Panics on a short page.
fn full_scrape(addr: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect metrics");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8(raw).expect("utf-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("Content-Length");
    assert_eq!(body.len(), length, "complete body");
    assert!(body.ends_with('\n'), "page ends with a whole line");
    (body.to_string(), started.elapsed())
}

/// True when the server closes `s` without a byte of response (EOF or reset).
fn refused(mut s: TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A write after the server's close may fail; that is a refusal too.
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("neither answered nor closed within 10 s")
        }
        Err(_) => true,
    }
}

/// Scrapes until a complete page comes back (places free up as the server notices closes).
fn scrape_when_free(addr: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut s = TcpStream::connect(addr).expect("connect metrics");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut raw = String::new();
        if s.read_to_string(&mut raw).is_ok() && raw.starts_with("HTTP/1.1 200") {
            return raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).expect("body");
        }
        assert!(Instant::now() < deadline, "no place freed within {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// Goal: scrapers that never read hold only their own connection: a 17th scraper gets a
// complete page at once (before, 16 stuck scrapers held every place, until the 10 s head
// timeout or, for a large page, forever). Method: 8 silent connections, 8 that stop in the
// middle of their request head, and 4 that send a request and never read; then a full
// scrape, timed against the head timeout.
#[test]
fn sixteen_stuck_scrapers_do_not_block_a_seventeenth() {
    let (_dir, broker) = broker_with("");
    let metrics = metrics_of(&broker);
    let mut stuck: Vec<TcpStream> = (0..8).map(|_| silent(&metrics)).collect();
    stuck.extend((0..8).map(|_| stalled(&metrics)));
    stuck.extend((0..4).map(|_| never_reads(&metrics)));
    let (page, took) = full_scrape(&metrics);
    assert!(took < Duration::from_secs(5), "the 17th scrape took {took:?}");
    assert!(page.contains("ramjet_limit_hits_total{limit=\"metricsMaxConnections\"} 0"), "{page}");
    drop(stuck);
}

// Goal: `metricsMaxConnections` bounds the connections the /metrics listener serves; one
// past it is closed without an answer and counted; places free up when connections close.
// The NameServer's listener behaves the same. Method: limit 4; 4 silent connections, a 5th
// that is refused; close them, scrape until a place is free, read the hit counter.
#[test]
fn scrapers_past_the_connection_limit_are_closed_at_accept() {
    let (dir, broker) = broker_with("metricsMaxConnections=4\n");
    let metrics = metrics_of(&broker);
    let held: Vec<TcpStream> = (0..4).map(|_| silent(&metrics)).collect();
    assert!(refused(silent(&metrics)), "a 5th connection is closed");
    drop(held);
    let page = scrape_when_free(&metrics);
    let hits = metric_sum(
        &parse_prometheus(&page),
        "ramjet_limit_hits_total",
        &[("limit", "metricsMaxConnections")],
    );
    assert!(hits >= 1.0, "limit hits: {hits}");

    let conf = dir.path().join("namesrv.conf");
    std::fs::write(&conf, "metricsMaxConnections=2\n").unwrap();
    let conf = conf.to_string_lossy().into_owned();
    let namesrv = Daemon::namesrv_with(&["-c", &conf, "--metrics-port", "0"]);
    let metrics = metrics_of(&namesrv);
    let held: Vec<TcpStream> = (0..2).map(|_| silent(&metrics)).collect();
    assert!(refused(silent(&metrics)), "a 3rd NameServer scraper is closed");
    drop(held);
    let page = scrape_when_free(&metrics);
    let hits = metric_sum(
        &parse_prometheus(&page),
        "ramjet_limit_hits_total",
        &[("limit", "metricsMaxConnections")],
    );
    assert!(hits >= 1.0, "NameServer limit hits: {hits}");
}

// Goal: the measurement, a minute long (run by hand: `cargo test -p ramjet-tests
// --test metrics_bounds -- --ignored --nocapture`; RAMJET_BIN_DIR picks the binaries to
// measure). 40 rejected sends with 1 MiB topic names, then a minute with no traffic: the
// page stays under PAGE_BYTES_MAX and RSS grows by at most IDLE_GROWTH_BYTES_MAX per minute.
// Method: RSS before and after the sends and every 10 s of the idle minute, printed.
#[test]
#[ignore = "a minute long; the figures of the issue-13 note"]
fn a_minute_after_the_junk_sends() {
    let (_dir, broker) = broker_conf("", None);
    let metrics = metrics_of(&broker);
    let addr = broker.broker_addr.clone();
    let before = rss_bytes(&broker);
    run_glommio(move || async move {
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        for i in 0..40 {
            let code = if i % 2 == 0 { request::SEND_MESSAGE } else { request::SEND_MESSAGE_V2 };
            let reply =
                conn.request(send_header(code, &junk(i)), b"body", TIMEOUT).await.expect("reply");
            assert_ne!(reply.header.code, response::SUCCESS, "a 1 MiB topic name is refused");
        }
    });
    let after = rss_bytes(&broker);
    let mut line = format!("RSS KiB: before {} after-sends {}", before >> 10, after >> 10);
    for s in 1..=6 {
        std::thread::sleep(Duration::from_secs(10));
        line.push_str(&format!(" +{}s {}", s * 10, rss_bytes(&broker) >> 10));
    }
    let idle = rss_bytes(&broker);
    let (_, page) = http_get(&metrics, "/metrics");
    eprintln!(
        "{line}; growth {} KiB/min; page {} bytes; RSS after the scrape {} KiB",
        (idle.saturating_sub(after)) >> 10,
        page.len(),
        rss_bytes(&broker) >> 10
    );
    assert!(page.len() <= PAGE_BYTES_MAX, "page of {} bytes", page.len());
    assert!(
        idle <= after + IDLE_GROWTH_BYTES_MAX,
        "RSS grew {} KiB in a minute",
        (idle - after) >> 10
    );
}
