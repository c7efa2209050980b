//! The RocketMQ 5.x gRPC front end (`apache.rocketmq.v2.MessagingService`) of a real
//! broker process, driven by a raw tonic client built from the same protobuf files.
//!
//! Goal: a 5.x client's calls work against the broker's `--grpc-port`: QueryRoute points
//! at the gRPC address, SendMessage stores messages 4.x consumers read, ReceiveMessage pops
//! them (invisible, acked, redelivered with the attempt counted, then the DLQ), and the
//! POP state survives a SIGKILL: nothing acked comes back, nothing unacked is lost. Error
//! statuses are the reference proxy's.
//! Method: real `ramjet-broker` processes on ephemeral loopback ports (a broker.conf lowers
//! `grpcMinInvisibleTimeMs` to 1 s so redelivery takes seconds); topics are created with
//! the 4.x admin client; receives use long polling, so waits are the broker's, bounded by
//! the request's timeout, and loops are bounded in count. Nothing asserts a timing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use ramjet_client::{Admin, Client, ClientConfig, Message, PullConsumer};
use ramjet_grpc::pb;
use ramjet_grpc::pb::messaging_service_client::MessagingServiceClient;
use ramjet_tests::{store_dir, BrokerOptions, Daemon};
use tonic::transport::Channel;

/// The longest any condition here is waited for.
const DEADLINE: Duration = Duration::from_secs(60);

fn run_tokio<Fut: std::future::Future<Output = ()>>(body: Fut) {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&runtime, body);
}

/// A broker with a broker.conf holding `conf` (plus a 1 s minimum invisible time).
fn broker(store: &Path, conf: &str) -> Daemon {
    let path = store.join("broker.conf");
    std::fs::create_dir_all(store).expect("store dir");
    std::fs::write(&path, format!("grpcMinInvisibleTimeMs=1000\n{conf}")).expect("conf");
    let mut opts = BrokerOptions::new(&store.join("data"));
    opts.extra = vec!["-c".into(), path.display().to_string()];
    Daemon::broker(&opts)
}

async fn grpc(d: &Daemon) -> MessagingServiceClient<Channel> {
    assert!(!d.grpc_addr.is_empty(), "ready line without grpc");
    let channel = Channel::from_shared(format!("http://{}", d.grpc_addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    MessagingServiceClient::new(channel)
}

async fn create_topic(d: &Daemon, topic: &str, queues: i32) {
    let client = Client::new(ClientConfig::new(&d.namesrv_addr).expect("config"));
    Admin::new(client).create_topic(&d.broker_addr, topic, queues, queues).await.expect("create");
}

fn res(name: &str) -> Option<pb::Resource> {
    Some(pb::Resource { resource_namespace: String::new(), name: name.into() })
}

fn code(s: &Option<pb::Status>) -> pb::Code {
    s.as_ref().and_then(|s| pb::Code::try_from(s.code).ok()).unwrap_or(pb::Code::Unspecified)
}

fn dur(ms: u64) -> prost_types::Duration {
    prost_types::Duration { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

fn message(topic: &str, id: &str, body: &str) -> pb::Message {
    pb::Message {
        topic: res(topic),
        user_properties: [("origin".to_string(), "grpc".to_string())].into_iter().collect(),
        system_properties: Some(pb::SystemProperties {
            tag: Some("TagA".into()),
            keys: vec![format!("key-{id}")],
            message_id: id.into(),
            message_type: pb::MessageType::Normal as i32,
            ..Default::default()
        }),
        body: body.as_bytes().to_vec().into(),
    }
}

async fn send(
    c: &mut MessagingServiceClient<Channel>,
    msgs: Vec<pb::Message>,
) -> pb::SendMessageResponse {
    c.send_message(pb::SendMessageRequest { messages: msgs }).await.expect("send rpc").into_inner()
}

/// One ReceiveMessage: (status, messages).
async fn receive(
    c: &mut MessagingServiceClient<Channel>,
    group: &str,
    topic: &str,
    batch: i32,
    invisible_ms: u64,
    polling_ms: u64,
) -> (pb::Code, Vec<pb::Message>) {
    let req = pb::ReceiveMessageRequest {
        group: res(group),
        message_queue: Some(pb::MessageQueue { topic: res(topic), id: -1, ..Default::default() }),
        filter_expression: Some(pb::FilterExpression {
            r#type: pb::FilterType::Tag as i32,
            expression: "*".into(),
        }),
        batch_size: batch,
        invisible_duration: Some(dur(invisible_ms)),
        auto_renew: false,
        long_polling_timeout: Some(dur(polling_ms)),
        attempt_id: None,
    };
    let mut stream = c.receive_message(req).await.expect("receive rpc").into_inner();
    let mut status = pb::Code::Unspecified;
    let mut out = Vec::new();
    while let Some(item) = stream.message().await.expect("receive stream") {
        match item.content {
            Some(pb::receive_message_response::Content::Status(s)) => {
                status = pb::Code::try_from(s.code).unwrap_or(pb::Code::Unspecified)
            }
            Some(pb::receive_message_response::Content::Message(m)) => out.push(m),
            _ => {}
        }
    }
    (status, out)
}

/// Receives until `n` messages arrived (bounded by [`DEADLINE`] and 200 calls).
async fn receive_n(
    c: &mut MessagingServiceClient<Channel>,
    group: &str,
    topic: &str,
    n: usize,
    invisible_ms: u64,
) -> Vec<pb::Message> {
    let deadline = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    for _ in 0..200 {
        if out.len() >= n {
            break;
        }
        assert!(Instant::now() < deadline, "received {} of {n}", out.len());
        let (_, got) = receive(c, group, topic, 32, invisible_ms, 2_000).await;
        out.extend(got);
    }
    assert!(out.len() >= n, "received {} of {n}", out.len());
    out
}

fn sys(m: &pb::Message) -> &pb::SystemProperties {
    m.system_properties.as_ref().expect("system properties")
}

fn body(m: &pb::Message) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

async fn ack(
    c: &mut MessagingServiceClient<Channel>,
    group: &str,
    topic: &str,
    m: &pb::Message,
) -> pb::Code {
    let e = pb::AckMessageEntry {
        message_id: sys(m).message_id.clone(),
        receipt_handle: sys(m).receipt_handle.clone().unwrap_or_default(),
        lite_topic: None,
    };
    let r = c
        .ack_message(pb::AckMessageRequest {
            group: res(group),
            topic: res(topic),
            entries: vec![e],
        })
        .await
        .expect("ack rpc")
        .into_inner();
    code(&r.status)
}

#[test]
fn route_send_receive_ack_and_redelivery() {
    let dir = store_dir();
    let d = broker(dir.path(), "");
    run_tokio(async {
        let mut c = grpc(&d).await;
        let r = c
            .query_route(pb::QueryRouteRequest { topic: res("g5-topic"), endpoints: None })
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(code(&r.status), pb::Code::TopicNotFound);
        create_topic(&d, "g5-topic", 4).await;
        let r = c
            .query_route(pb::QueryRouteRequest { topic: res("g5-topic"), endpoints: None })
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(code(&r.status), pb::Code::Ok);
        assert_eq!(r.message_queues.len(), 4);
        for q in &r.message_queues {
            assert_eq!(q.permission, pb::Permission::ReadWrite as i32);
            let a = &q
                .broker
                .as_ref()
                .expect("broker")
                .endpoints
                .as_ref()
                .expect("endpoints")
                .addresses[0];
            assert_eq!(
                format!("{}:{}", a.host, a.port),
                d.grpc_addr,
                "endpoints are the gRPC address"
            );
        }
        let hb = c
            .heartbeat(pb::HeartbeatRequest {
                group: res("g5-group"),
                client_type: pb::ClientType::SimpleConsumer as i32,
            })
            .await
            .expect("hb")
            .into_inner();
        assert_eq!(code(&hb.status), pb::Code::Ok);

        let msgs: Vec<_> = (0..10)
            .map(|i| message("g5-topic", &format!("ID{i:04}"), &format!("body-{i}")))
            .collect();
        let s = send(&mut c, msgs).await;
        assert_eq!(code(&s.status), pb::Code::Ok);
        assert_eq!(s.entries.len(), 10);
        assert!(s.entries.iter().all(|e| code(&e.status) == pb::Code::Ok));

        // Receive all ten; every field the 5.x client reads is there.
        let got = receive_n(&mut c, "g5-group", "g5-topic", 10, 1_000).await;
        assert_eq!(got.len(), 10, "each message once");
        let by_id: BTreeMap<String, pb::Message> =
            got.iter().map(|m| (sys(m).message_id.clone(), m.clone())).collect();
        assert_eq!(by_id.len(), 10);
        for i in 0..10 {
            let m = &by_id[&format!("ID{i:04}")];
            assert_eq!(body(m), format!("body-{i}"));
            assert_eq!(sys(m).tag.as_deref(), Some("TagA"));
            assert_eq!(sys(m).keys, vec![format!("key-ID{i:04}")]);
            assert_eq!(sys(m).delivery_attempt, Some(1));
            assert_eq!(m.user_properties.get("origin").map(String::as_str), Some("grpc"));
            assert!(!m.user_properties.contains_key("UNIQ_KEY"), "system keys stay system");
        }
        // Ack nine; leave ID0009 unacked: it comes back with attempt 2 once its second passes.
        for i in 0..9 {
            assert_eq!(
                ack(&mut c, "g5-group", "g5-topic", &by_id[&format!("ID{i:04}")]).await,
                pb::Code::Ok
            );
        }
        let again = receive_n(&mut c, "g5-group", "g5-topic", 1, 30_000).await;
        assert_eq!(again.len(), 1);
        assert_eq!(sys(&again[0]).message_id, "ID0009");
        assert_eq!(sys(&again[0]).delivery_attempt, Some(2));
        // The first delivery's handle is stale now.
        assert_eq!(
            ack(&mut c, "g5-group", "g5-topic", &by_id["ID0009"]).await,
            pb::Code::InvalidReceiptHandle
        );
        // A longer invisible time keeps it away; its new handle acks it.
        let ch = c
            .change_invisible_duration(pb::ChangeInvisibleDurationRequest {
                group: res("g5-group"),
                topic: res("g5-topic"),
                receipt_handle: sys(&again[0]).receipt_handle.clone().unwrap_or_default(),
                invisible_duration: Some(dur(60_000)),
                message_id: "ID0009".into(),
                lite_topic: None,
                suspend: None,
            })
            .await
            .expect("change")
            .into_inner();
        assert_eq!(code(&ch.status), pb::Code::Ok);
        let (st, none) = receive(&mut c, "g5-group", "g5-topic", 32, 1_000, 1_500).await;
        assert_eq!((st, none.len()), (pb::Code::MessageNotFound, 0), "nothing visible");
        let mut renewed = again[0].clone();
        if let Some(s) = renewed.system_properties.as_mut() {
            s.receipt_handle = Some(ch.receipt_handle.clone());
        }
        assert_eq!(ack(&mut c, "g5-group", "g5-topic", &renewed).await, pb::Code::Ok);

        // Another group sees every message again: one store, independent groups.
        let other = receive_n(&mut c, "g5-other", "g5-topic", 10, 10_000).await;
        assert_eq!(
            other.iter().map(|m| sys(m).message_id.clone()).collect::<BTreeSet<_>>().len(),
            10
        );
    });
}

#[test]
fn dead_letter_after_max_attempts_and_error_statuses() {
    let dir = store_dir();
    let d = broker(dir.path(), "grpcMaxDeliveryAttempts=2\n");
    run_tokio(async {
        let mut c = grpc(&d).await;
        create_topic(&d, "dlq-topic", 1).await;
        let s = send(&mut c, vec![message("dlq-topic", "DEAD0001", "poison")]).await;
        assert_eq!(code(&s.status), pb::Code::Ok);
        let first = receive_n(&mut c, "dlq-group", "dlq-topic", 1, 1_000).await;
        assert_eq!(sys(&first[0]).delivery_attempt, Some(1));
        let second = receive_n(&mut c, "dlq-group", "dlq-topic", 1, 1_000).await;
        assert_eq!(sys(&second[0]).delivery_attempt, Some(2));
        // After the second delivery expires the message goes to %DLQ%dlq-group, not back.
        let deadline = Instant::now() + DEADLINE;
        let dlq = loop {
            assert!(Instant::now() < deadline, "never reached the DLQ");
            let (st, got) = receive(&mut c, "dlq-group", "dlq-topic", 32, 1_000, 2_000).await;
            assert!(got.is_empty(), "delivered a third time");
            assert_eq!(st, pb::Code::MessageNotFound);
            let (_, dead) = receive(&mut c, "dlq-reader", "%DLQ%dlq-group", 32, 10_000, 0).await;
            if !dead.is_empty() {
                break dead;
            }
        };
        assert_eq!(body(&dlq[0]), "poison");
        assert_eq!(sys(&dlq[0]).message_id, "DEAD0001");

        // Error statuses.
        let bad = |b: i32, inv: u64, poll: u64| pb::ReceiveMessageRequest {
            group: res("g"),
            message_queue: Some(pb::MessageQueue {
                topic: res("dlq-topic"),
                id: -1,
                ..Default::default()
            }),
            filter_expression: None,
            batch_size: b,
            invisible_duration: Some(dur(inv)),
            auto_renew: false,
            long_polling_timeout: Some(dur(poll)),
            attempt_id: None,
        };
        for (req, want) in [
            (bad(0, 5_000, 0), pb::Code::BadRequest),
            (bad(1, 10, 0), pb::Code::IllegalInvisibleTime),
            (bad(1, 5_000, 3_600_000), pb::Code::IllegalPollingTime),
        ] {
            let mut st = c.receive_message(req).await.expect("rpc").into_inner();
            let first = st.message().await.expect("stream").expect("one response");
            match first.content {
                Some(pb::receive_message_response::Content::Status(s)) => {
                    assert_eq!(s.code, want as i32)
                }
                other => panic!("expected a status, got {other:?}"),
            }
        }
        let ack_bad = c
            .ack_message(pb::AckMessageRequest {
                group: res("g"),
                topic: res("dlq-topic"),
                entries: vec![pb::AckMessageEntry {
                    message_id: "x".into(),
                    receipt_handle: "garbage".into(),
                    lite_topic: None,
                }],
            })
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(code(&ack_bad.status), pb::Code::InvalidReceiptHandle);
        let mut tx = message("dlq-topic", "TX1", "t");
        if let Some(s) = tx.system_properties.as_mut() {
            s.message_type = pb::MessageType::Transaction as i32;
        }
        let mut reserved = message("dlq-topic", "R1", "r");
        reserved.user_properties.insert("UNIQ_KEY".into(), "x".into());
        let r = send(&mut c, vec![tx, reserved]).await;
        assert_eq!(code(&r.status), pb::Code::MultipleResults);
        assert_eq!(code(&r.entries[0].status), pb::Code::Unsupported);
        assert_eq!(code(&r.entries[1].status), pb::Code::IllegalMessagePropertyKey);
        let e = c
            .end_transaction(pb::EndTransactionRequest {
                topic: res("dlq-topic"),
                ..Default::default()
            })
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(code(&e.status), pb::Code::NotImplemented);
        let u =
            c.update_offset(pb::UpdateOffsetRequest::default()).await.expect("rpc").into_inner();
        assert_eq!(code(&u.status), pb::Code::NotImplemented);
        let mut p =
            c.pull_message(pb::PullMessageRequest::default()).await.expect("rpc").into_inner();
        let first = p.message().await.expect("stream").expect("one");
        assert!(
            matches!(first.content, Some(pb::pull_message_response::Content::Status(ref s)) if s.code == pb::Code::NotImplemented as i32)
        );
        // Telemetry: the client's settings come back with the broker's.
        let settings = pb::TelemetryCommand {
            status: None,
            command: Some(pb::telemetry_command::Command::Settings(pb::Settings {
                client_type: Some(pb::ClientType::SimpleConsumer as i32),
                pub_sub: Some(pb::settings::PubSub::Subscription(pb::Subscription {
                    group: res("g"),
                    ..Default::default()
                })),
                ..Default::default()
            })),
        };
        let mut t =
            c.telemetry(tokio_stream::iter(vec![settings])).await.expect("rpc").into_inner();
        let reply = t.message().await.expect("stream").expect("settings back");
        assert_eq!(code(&reply.status), pb::Code::Ok);
        match reply.command {
            Some(pb::telemetry_command::Command::Settings(s)) => {
                assert_eq!(s.backoff_policy.map(|b| b.max_attempts), Some(2));
            }
            other => panic!("expected settings, got {other:?}"),
        }
        let n = c
            .notify_client_termination(pb::NotifyClientTerminationRequest { group: res("g") })
            .await
            .expect("rpc")
            .into_inner();
        assert_eq!(code(&n.status), pb::Code::Ok);
    });
}

#[test]
fn remoting_and_grpc_share_one_store() {
    let dir = store_dir();
    let d = broker(dir.path(), "");
    run_tokio(async {
        let mut c = grpc(&d).await;
        create_topic(&d, "mixed-topic", 2).await;
        let client = Client::new(ClientConfig::new(&d.namesrv_addr).expect("config"));
        let deadline = Instant::now() + DEADLINE;
        loop {
            client.invalidate_route("mixed-topic");
            if client.topic_route("mixed-topic").await.is_ok_and(|r| r.write_queues.len() == 2) {
                break;
            }
            assert!(Instant::now() < deadline, "no route");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // 4.x producer -> 5.x consumer.
        let producer = ramjet_client::Producer::new(client.clone(), "mixed-pg");
        let mut ids = BTreeSet::new();
        for i in 0..6 {
            let r = producer
                .send(Message::new("mixed-topic", format!("v4-{i}")).with_tags("T4"))
                .await
                .expect("send");
            ids.insert(r.msg_id);
        }
        let got = receive_n(&mut c, "mixed-g5", "mixed-topic", 6, 10_000).await;
        assert_eq!(
            got.iter().map(|m| sys(m).message_id.clone()).collect::<BTreeSet<_>>(),
            ids,
            "UNIQ_KEY is the 5.x message id"
        );
        assert!(got.iter().all(|m| sys(m).tag.as_deref() == Some("T4")));
        // 5.x producer -> 4.x pull consumer.
        let s = send(&mut c, vec![message("mixed-topic", "FROM5", "v5-body")]).await;
        assert_eq!(code(&s.status), pb::Code::Ok);
        let pull = PullConsumer::new(client.clone(), "mixed-g4");
        let mut found = None;
        for q in 0..2 {
            let mq = ramjet_proto::body::MessageQueue {
                topic: "mixed-topic".into(),
                broker_name: "broker-a".into(),
                queue_id: q,
            };
            let r = pull.pull(&mq, 0, 32, None, None).await.expect("pull");
            for m in r.messages {
                if m.property("UNIQ_KEY").as_deref() == Some("FROM5") {
                    found = Some(m);
                }
            }
        }
        let m = found.expect("the 5.x message is pulled by a 4.x consumer");
        assert_eq!(&m.body[..], b"v5-body");
        assert_eq!(m.property("TAGS").as_deref(), Some("TagA"));
        assert_eq!(m.property("origin").as_deref(), Some("grpc"));
    });
}

#[test]
fn pop_state_survives_sigkill() {
    let dir = store_dir();
    let mut d = broker(dir.path(), "");
    let acked: BTreeSet<String> = run_tokio_ret(async {
        let mut c = grpc(&d).await;
        create_topic(&d, "kill-topic", 2).await;
        let msgs: Vec<_> =
            (0..8).map(|i| message("kill-topic", &format!("K{i}"), &format!("k-{i}"))).collect();
        assert_eq!(code(&send(&mut c, msgs).await.status), pb::Code::Ok);
        let got = receive_n(&mut c, "kill-group", "kill-topic", 8, 2_000).await;
        let mut acked = BTreeSet::new();
        for m in got.iter().filter(|m| body(m).ends_with(['0', '2', '4', '6'])) {
            assert_eq!(ack(&mut c, "kill-group", "kill-topic", m).await, pb::Code::Ok);
            acked.insert(sys(m).message_id.clone());
        }
        acked
    });
    assert_eq!(acked.len(), 4);
    d.kill();
    let d = broker(dir.path(), "");
    run_tokio(async {
        let mut c = grpc(&d).await;
        let back = receive_n(&mut c, "kill-group", "kill-topic", 4, 30_000).await;
        let ids: BTreeSet<String> = back.iter().map(|m| sys(m).message_id.clone()).collect();
        assert_eq!(
            ids,
            ["K1", "K3", "K5", "K7"].iter().map(|s| s.to_string()).collect(),
            "the unacked, once each"
        );
        assert!(
            back.iter().all(|m| sys(m).delivery_attempt == Some(2)),
            "attempts counted across the restart"
        );
        let (st, more) = receive(&mut c, "kill-group", "kill-topic", 32, 1_000, 1_000).await;
        assert_eq!((st, more.len()), (pb::Code::MessageNotFound, 0), "acked ones never come back");
    });
}

fn run_tokio_ret<T, Fut: std::future::Future<Output = T>>(body: Fut) -> T {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&runtime, body)
}
