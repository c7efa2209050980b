//! Response memory with a real broker (issue 13): responses and pushes aimed at a client
//! that never reads are bounded by the per-connection response budget
//! (`serverConnectionResponseBytesMax`), while other clients keep being served and every
//! message stored before stays intact. Each test prints the broker's RSS before and during
//! the attack and a normal producer's send rate without and with it (run with
//! `--nocapture` to see them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ramjet_client::{Message, MessageQueue, Producer, PullConsumer};
use ramjet_proto::body::{to_json, ConsumerData, HeartbeatData, SubscriptionData};
use ramjet_proto::codes::{request, response};
use ramjet_proto::frame::{decode_frame, encode_frame};
use ramjet_proto::{Header, SerializeType};
use ramjet_tests::{read_queue, run_glommio, store_dir, BrokerOptions, Daemon};

const MIB: u64 = 1 << 20;

fn broker_with(conf: &str) -> (tempfile::TempDir, Daemon) {
    let dir = store_dir();
    let conf_path = dir.path().join("broker.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.extra = vec!["-c".into(), conf_path.to_string_lossy().into_owned()];
    let broker = Daemon::broker(&opts);
    (dir, broker)
}

/// A `/proc/<pid>/status` field in bytes (`VmRSS`: resident now, `VmHWM`: peak resident).
fn proc_status_bytes(broker: &Daemon, field: &str) -> u64 {
    let pid = broker.pid().expect("broker runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).expect("field present");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Waits (bounded) until the broker's log contains `needle`.
fn wait_for_log(broker: &Daemon, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !broker.log_text().contains(needle) {
        assert!(Instant::now() < deadline, "`{needle}` never logged:\n{}", broker.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Message bodies of `size` bytes, each a different byte pattern.
fn bodies(count: usize, size: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| (0..size).map(|j| (i * 31 + j % 251) as u8).collect()).collect()
}

/// Stores `bodies` in one queue of `topic` and returns it.
fn store(namesrv: &str, topic: &str, bodies: &[Vec<u8>]) -> MessageQueue {
    let namesrv = namesrv.to_string();
    let topic = topic.to_string();
    let bodies = bodies.to_vec();
    run_glommio(move || async move {
        let producer = Producer::new(ramjet_tests::client(&namesrv, SerializeType::Json), "pg");
        let first = producer.send(Message::new(topic.as_str(), bodies[0].clone())).await;
        let queue = first.expect("send").queue;
        for b in &bodies[1..] {
            producer.send_to_queue(&queue, Message::new(topic.as_str(), b.clone())).await.unwrap();
        }
        queue
    })
}

/// Every message of `queue` is there, in order, with its body as sent.
fn assert_intact(namesrv: &str, queue: &MessageQueue, bodies: &[Vec<u8>]) {
    let namesrv = namesrv.to_string();
    let queue = queue.clone();
    let want = bodies.to_vec();
    run_glommio(move || async move {
        let consumer =
            PullConsumer::new(ramjet_tests::client(&namesrv, SerializeType::Json), "checker");
        let got = read_queue(&consumer, &queue, want.len(), Duration::from_secs(20)).await;
        assert_eq!(got.len(), want.len(), "messages stored before the attack are missing");
        for (i, (m, b)) in got.iter().zip(&want).enumerate() {
            assert!(m.body[..] == b[..], "message {i} changed");
        }
    });
}

/// A normal client: sends 1 KiB messages to `topic` one after another until `stop`, then
/// returns how many it sent per second and its slowest send. Every send must succeed.
fn produce_until(namesrv: String, topic: &'static str, stop: Arc<AtomicBool>) -> (f64, Duration) {
    run_glommio(move || async move {
        let producer = Producer::new(ramjet_tests::client(&namesrv, SerializeType::Json), "normal");
        let start = Instant::now();
        let (mut sent, mut slowest) = (0u64, Duration::ZERO);
        while !stop.load(Ordering::SeqCst) {
            let t = Instant::now();
            producer.send(Message::new(topic, vec![b'n'; 1024])).await.expect("normal send");
            slowest = slowest.max(t.elapsed());
            sent += 1;
        }
        (sent as f64 / start.elapsed().as_secs_f64(), slowest)
    })
}

/// Runs the normal producer for `window`, returning its rate and slowest send.
fn produce_for(namesrv: &str, topic: &'static str, window: Duration) -> (f64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (namesrv, stop) = (namesrv.to_string(), stop.clone());
        std::thread::spawn(move || produce_until(namesrv, topic, stop))
    };
    std::thread::sleep(window); // a measurement window, not a wait for a condition
    stop.store(true, Ordering::SeqCst);
    worker.join().expect("producer thread")
}

/// One PULL_MESSAGE frame for one message at `offset`.
fn pull_frame(opaque: i32, queue: &MessageQueue, offset: i64, out: &mut BytesMut) {
    let mut h = Header::request(request::PULL_MESSAGE, opaque, SerializeType::Json);
    for (k, v) in [
        ("consumerGroup", "never-reads".to_string()),
        ("topic", queue.topic.clone()),
        ("queueId", queue.queue_id.to_string()),
        ("queueOffset", offset.to_string()),
        ("maxMsgNums", "1".to_string()),
        ("sysFlag", "0".to_string()),
        ("commitOffset", "0".to_string()),
        ("suspendTimeoutMillis", "0".to_string()),
        ("subVersion", "0".to_string()),
    ] {
        h.ext_fields.insert(k, v);
    }
    encode_frame(&h, b"", out).expect("encodes");
}

#[test]
fn pipelined_pulls_never_read_hold_no_more_than_the_connection_budget() {
    // Goal: 400 pipelined pulls of 787 KB that the client never reads (296 MB of responses;
    // RSS grew by about that before) hold at most the connection's response budget, because
    // each pull is dispatched only once its worst-case response is reserved; another client
    // keeps sending and pulling meanwhile, and the stored messages stay intact.
    // Method: budget 16 MiB; 8 messages of 787 KB; the attacker pipelines 400 pulls of one of
    // them on a raw socket and never reads; RSS before vs peak (VmHWM) after the broker has
    // made the attacker wait; a normal producer's send rate for 2 s without, then 2 s with
    // the attack.
    let (_dir, broker) = broker_with("serverConnectionResponseBytesMax=16777216\n");
    let ns = broker.namesrv_addr.clone();
    let big = bodies(8, 787 * 1000);
    let queue = store(&ns, "Big", &big);
    assert_intact(&ns, &queue, &big); // also warms the read path before measuring
    let (rate_before, slowest_before) = produce_for(&ns, "Normal", Duration::from_secs(2));
    let rss_before = proc_status_bytes(&broker, "VmRSS");

    let mut attacker = TcpStream::connect(&broker.broker_addr).unwrap();
    let mut frames = BytesMut::new();
    for i in 0..400 {
        pull_frame(i, &queue, i64::from(i % 8), &mut frames);
    }
    attacker.write_all(&frames).unwrap();
    // The broker stops dispatching the attacker's pulls once its budget is reserved.
    wait_for_log(&broker, "serverConnectionResponseBytesMax", Duration::from_secs(30));
    let (rate_during, slowest_during) = produce_for(&ns, "Normal", Duration::from_secs(2));
    assert_intact(&ns, &queue, &big);
    let rss_during = proc_status_bytes(&broker, "VmRSS");
    let peak = proc_status_bytes(&broker, "VmHWM");
    println!(
        "pull attack: RSS {} MiB before, {} MiB during (peak {} MiB); normal producer \
         {rate_before:.0} sends/s (slowest {slowest_before:?}) without, {rate_during:.0} \
         sends/s (slowest {slowest_during:?}) with the attack",
        rss_before / MIB,
        rss_during / MIB,
        peak / MIB
    );
    assert!(
        peak < rss_before + 64 * MIB,
        "RSS peaked at {} MiB from {} MiB: responses are not bounded by the 16 MiB budget",
        peak / MIB,
        rss_before / MIB
    );
    assert!(rate_during > 0.0, "the normal producer stalled during the attack");
    // The attacker gets its answers once it reads: nothing was dropped, only held back.
    attacker.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (mut read, mut answered, mut chunk) = (BytesMut::new(), 0, vec![0u8; 1 << 20]);
    while answered < 400 {
        match decode_frame(&mut read, usize::MAX).expect("reply decodes") {
            Some(f) => {
                assert_eq!(f.header.code, response::SUCCESS);
                assert_eq!(f.body.len(), big[0].len() + record_overhead(&f.body));
                answered += 1;
            }
            None => match attacker.read(&mut chunk) {
                Ok(0) => panic!("closed after {answered} answers"),
                Ok(n) => read.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read after {answered} answers: {e}"),
            },
        }
    }
}

/// Bytes of a stored record besides its body (the record is one message).
fn record_overhead(record: &bytes::Bytes) -> usize {
    let m = ramjet_proto::message::decode_record(record, false).expect("a stored record");
    record.len() - m.body.len()
}

/// A HEART_BEAT registering consumer group `group` on `topic`.
fn consumer_heartbeat(group: &str, topic: &str) -> Vec<u8> {
    let hb = HeartbeatData {
        client_id: "never-reads@1".into(),
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            subscription_data_set: vec![SubscriptionData {
                topic: topic.into(),
                sub_string: "*".into(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = BytesMut::new();
    let mut h = Header::request(request::HEART_BEAT, 1, SerializeType::Json);
    h.language = ramjet_proto::LanguageCode::JAVA;
    encode_frame(&h, &to_json(&hb), &mut out).expect("encodes");
    out.to_vec()
}

#[test]
fn offset_resets_pushed_to_a_consumer_that_never_reads_are_dropped_past_its_budget() {
    // Goal: RESET_CONSUMER_CLIENT_OFFSET pushes to a consumer that never reads count against
    // its connection's response budget; past it they are dropped (and the drop logged)
    // instead of queued without bound (1,200 resets added 96 MB before), and the write
    // timeout closes that consumer's connection; other clients are served meanwhile.
    // Method: budget 8 MiB, write timeout 3 s; a topic of 1,024 queues (a reset push body
    // of about 60 KB); a raw socket registers a consumer of it and then never reads; 1,200
    // resets from 4 concurrent admin tasks while a normal producer sends.
    let (_dir, broker) =
        broker_with("serverConnectionResponseBytesMax=8388608\nserverWriteTimeoutSeconds=3\n");
    let ns = broker.namesrv_addr.clone();
    let addr = broker.broker_addr.clone();
    {
        let (ns, addr) = (ns.clone(), addr.clone());
        run_glommio(move || async move {
            let admin = ramjet_client::Admin::new(ramjet_tests::client(&ns, SerializeType::Json));
            admin.create_topic(&addr, "Reset", 1024, 1024).await.expect("create topic");
        });
    }
    let stored = bodies(16, 4096);
    let queue = store(&ns, "Reset", &stored);
    let (rate_before, slowest_before) = produce_for(&ns, "Normal", Duration::from_secs(2));
    let rss_before = proc_status_bytes(&broker, "VmRSS");

    let mut consumer = TcpStream::connect(&addr).unwrap();
    consumer.write_all(&consumer_heartbeat("resetg", "Reset")).unwrap();
    // Read the heartbeat's answer (the group is registered), then never read again.
    consumer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut read = BytesMut::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        if let Some(f) = decode_frame(&mut read, usize::MAX).expect("decodes") {
            if !f.header.is_response() {
                continue; // a push (NOTIFY_CONSUMER_IDS_CHANGED)
            }
            assert_eq!(f.header.code, response::SUCCESS, "heartbeat refused");
            break;
        }
        let n = consumer.read(&mut chunk).expect("heartbeat answer");
        assert!(n > 0, "closed before the heartbeat answer");
        read.extend_from_slice(&chunk[..n]);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let normal = {
        let (ns, stop) = (ns.clone(), stop.clone());
        std::thread::spawn(move || produce_until(ns, "Normal", stop))
    };
    {
        let (ns, addr) = (ns.clone(), addr.clone());
        run_glommio(move || async move {
            let client = std::rc::Rc::new(ramjet_tests::client(&ns, SerializeType::Json));
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let (client, addr) = (client.clone(), addr.clone());
                    glommio::spawn_local(async move {
                        for _ in 0..300 {
                            let mut h = client.header(request::INVOKE_BROKER_TO_RESET_OFFSET);
                            h.ext_fields.insert("topic", "Reset");
                            h.ext_fields.insert("group", "resetg");
                            h.ext_fields.insert("timestamp", "0");
                            h.ext_fields.insert("isForce", "true");
                            let reply = client.invoke(&addr, h, &[]).await.expect("reset");
                            assert_eq!(reply.header.code, response::SUCCESS);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
        });
    }
    stop.store(true, Ordering::SeqCst);
    let (rate_during, slowest_during) = normal.join().expect("producer thread");
    wait_for_log(&broker, "push dropped", Duration::from_secs(10));
    let rss_after = proc_status_bytes(&broker, "VmRSS");
    let peak = proc_status_bytes(&broker, "VmHWM");
    println!(
        "reset attack: RSS {} MiB before, {} MiB after (peak {} MiB); normal producer \
         {rate_before:.0} sends/s (slowest {slowest_before:?}) without, {rate_during:.0} \
         sends/s (slowest {slowest_during:?}) during the resets",
        rss_before / MIB,
        rss_after / MIB,
        peak / MIB
    );
    assert!(
        peak < rss_before + 48 * MIB,
        "RSS peaked at {} MiB from {} MiB: pushes are not bounded by the 8 MiB budget",
        peak / MIB,
        rss_before / MIB
    );
    assert!(rate_during > 0.0, "the normal producer stalled during the resets");
    // The consumer that never reads is closed by the write timeout.
    wait_for_log(&broker, "serverWriteTimeoutSeconds", Duration::from_secs(30));
    consumer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let start = Instant::now();
    loop {
        match consumer.read(&mut chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the consumer was never closed");
    }
    assert_intact(&ns, &queue, &stored);
}
