//! Transactional messages with real processes: commit, rollback, check-back answering
//! commit or rollback, and a broker SIGKILL between the half message and its end. No
//! committed message is lost and none is delivered twice by the broker.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ramjet_client::{Admin, Client, ClientConfig, MessageQueue, PullConsumer};
use ramjet_proto::body::{self, HeartbeatData, ProducerData};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{CommandHeader, EndTransactionRequestHeader, SendMessageRequestHeader};
use ramjet_proto::message::{self, decode_offset_msg_id, encode_properties};
use ramjet_proto::{Frame, Header, SerializeType};
use ramjet_tests::{run_glommio, store_dir, BrokerOptions, Daemon};

const GROUP: &str = "tx-producers";

/// A handler of broker-initiated requests.
type Handler = Rc<dyn Fn(&Frame) -> Option<Frame>>;

fn client(ns: &str, st: SerializeType, handler: Option<Handler>) -> Client {
    let mut c = ClientConfig::new(ns).expect("config");
    c.serialize_type = st;
    Client::with_handler(c, handler)
}

/// Sends a half message; returns (commit-log offset, half queue offset).
async fn send_half(c: &Client, addr: &str, topic: &str, body: &str) -> (i64, i64) {
    let mut h = Header::request(request::SEND_MESSAGE_V2, 0, c.config().serialize_type);
    let props = encode_properties([
        ("TRAN_MSG", "true"),
        ("PGROUP", GROUP),
        ("UNIQ_KEY", body),
        ("app", "x"),
    ]);
    SendMessageRequestHeader {
        producer_group: GROUP.into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: message::SYSFLAG_TRANSACTION_PREPARED,
        born_timestamp: ramjet_client::client::now_ms(),
        flag: 0,
        properties: Some(String::from_utf8(props).expect("utf8")),
        reconsume_times: None,
        unit_mode: None,
        max_reconsume_times: None,
        batch: None,
        broker_name: None,
    }
    .encode_v2(&mut h.ext_fields);
    let reply = c.invoke(addr, h, body.as_bytes()).await.expect("send half");
    assert_eq!(reply.header.code, response::SUCCESS, "{:?}", reply.header.remark);
    let msg_id = reply.header.ext_fields.get("msgId").expect("msgId");
    let (_, offset) = decode_offset_msg_id(msg_id).expect("offset msg id");
    let queue_offset = reply
        .header
        .ext_fields
        .get("queueOffset")
        .and_then(|v| v.parse().ok())
        .expect("queueOffset");
    (offset, queue_offset)
}

async fn end(
    c: &Client,
    addr: &str,
    commit_log_offset: i64,
    queue_offset: i64,
    outcome: i32,
    from_check: bool,
) {
    let mut h = Header::request(request::END_TRANSACTION, 0, c.config().serialize_type);
    EndTransactionRequestHeader {
        topic: None,
        producer_group: GROUP.into(),
        tran_state_table_offset: queue_offset,
        commit_log_offset,
        commit_or_rollback: outcome,
        from_transaction_check: Some(from_check),
        msg_id: "m".into(),
        transaction_id: None,
    }
    .encode(&mut h.ext_fields);
    c.invoke_oneway(addr, h, &[]).await.expect("end");
}

/// Bodies on queue 0 of `topic`; every delivered message is no half and kept its
/// properties.
async fn read_all(c: &PullConsumer, topic: &str, expect: usize, wait: Duration) -> Vec<String> {
    let q = MessageQueue { topic: topic.into(), broker_name: "broker-a".into(), queue_id: 0 };
    let mut out = Vec::new();
    for m in ramjet_tests::read_queue(c, &q, expect, wait).await {
        assert!(m.property("TRAN_MSG").is_none());
        assert_eq!(m.property("app").as_deref(), Some("x"));
        out.push(String::from_utf8_lossy(&m.body).into_owned());
    }
    out
}

async fn create(ns: &str, addr: &str, topic: &str) {
    Admin::new(client(ns, SerializeType::RocketMq, None))
        .create_topic(addr, topic, 1, 1)
        .await
        .expect("create");
}

// Goal: commit makes the message visible once (a repeated end changes nothing); rollback
// never delivers. Method: half + END in each header encoding, then read the real topic.
#[test]
fn commit_delivers_once_and_rollback_never() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        create(&ns, &addr, "tx").await;
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let c = client(&ns, st, None);
            let (co, cq) = send_half(&c, &addr, "tx", &format!("commit-{st:?}")).await;
            let (ro, rq) = send_half(&c, &addr, "tx", &format!("rollback-{st:?}")).await;
            end(&c, &addr, co, cq, message::SYSFLAG_TRANSACTION_COMMIT, false).await;
            end(&c, &addr, co, cq, message::SYSFLAG_TRANSACTION_COMMIT, false).await;
            end(&c, &addr, ro, rq, message::SYSFLAG_TRANSACTION_ROLLBACK, false).await;
            c.shutdown().await; // One-way ends are queued: flush them before dropping.
        }
        let consumer = PullConsumer::new(client(&ns, SerializeType::RocketMq, None), "cg");
        let got = read_all(&consumer, "tx", 2, Duration::from_secs(10)).await;

        assert_eq!(got, vec!["commit-Json".to_string(), "commit-RocketMq".to_string()]);
    });
}

// Goal: a half message without an end is checked with the producer group, and the answer
// from the check (commit or rollback) is honoured. Method: short transaction timeouts via
// broker.conf; a producer that heartbeats and answers CHECK_TRANSACTION_STATE requests.
#[test]
fn check_back_answers_are_honoured() {
    let dir = store_dir();
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "transactionTimeOut=300\ntransactionCheckInterval=300\n").expect("conf");
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.extra = vec!["-c".into(), conf.to_string_lossy().into_owned()];
    let broker = Daemon::broker(&opts);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        create(&ns, &addr, "txc").await;
        let checks: Rc<RefCell<Vec<(i64, i64, String)>>> = Rc::default();
        let seen = checks.clone();
        let handler: Handler = Rc::new(move |f: &Frame| {
            if f.header.code == request::CHECK_TRANSACTION_STATE {
                let e = &f.header.ext_fields;
                let record =
                    message::decode_record(&f.body, false).expect("check body is a record");
                seen.borrow_mut().push((
                    e.get("commitLogOffset").and_then(|v| v.parse().ok()).unwrap_or(-1),
                    e.get("tranStateTableOffset").and_then(|v| v.parse().ok()).unwrap_or(-1),
                    String::from_utf8_lossy(&record.body).into_owned(),
                ));
            }
            None
        });
        let c = client(&ns, SerializeType::Json, Some(handler));
        let hb = HeartbeatData {
            client_id: "tx-client".into(),
            producer_data_set: vec![ProducerData { group_name: GROUP.into() }],
            ..Default::default()
        };
        let mut h = Header::request(request::HEART_BEAT, 0, SerializeType::Json);
        h.language = ramjet_proto::LanguageCode::JAVA;
        let reply = c.invoke(&addr, h, &body::to_json(&hb)).await.expect("heartbeat");
        assert_eq!(reply.header.code, response::SUCCESS);
        send_half(&c, &addr, "txc", "checked-commit").await;
        send_half(&c, &addr, "txc", "checked-rollback").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut answered = Vec::new();
        while answered.len() < 2 {
            assert!(Instant::now() < deadline, "no check-back arrived");
            glommio::timer::sleep(Duration::from_millis(50)).await;
            let pending: Vec<_> = checks.borrow_mut().drain(..).collect();
            for (offset, queue_offset, body) in pending {
                if answered.contains(&body) {
                    continue;
                }
                let outcome = if body.ends_with("commit") {
                    message::SYSFLAG_TRANSACTION_COMMIT
                } else {
                    message::SYSFLAG_TRANSACTION_ROLLBACK
                };
                end(&c, &addr, offset, queue_offset, outcome, true).await;
                answered.push(body);
            }
        }
        let consumer = PullConsumer::new(client(&ns, SerializeType::RocketMq, None), "cg");
        let got = read_all(&consumer, "txc", 1, Duration::from_secs(10)).await;
        assert_eq!(got, vec!["checked-commit".to_string()]);
    });
}

// Goal: a broker SIGKILLed between a half message and its end loses nothing: after the
// restart, the end commits it, exactly once. Method: SYNC_FLUSH, half, kill -9, restart,
// END commit twice, read.
#[test]
fn half_message_survives_a_broker_kill() {
    let dir = store_dir();
    let mut opts = BrokerOptions::new(dir.path());
    opts.flush_disk_type = "SYNC_FLUSH";
    let mut broker = Daemon::broker(&opts);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    let (offset, queue_offset) = run_glommio(move || async move {
        create(&ns, &addr, "txk").await;
        send_half(&client(&ns, SerializeType::RocketMq, None), &addr, "txk", "survivor").await
    });
    broker.kill();
    let broker = Daemon::broker(&opts);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let c = client(&ns, SerializeType::RocketMq, None);
        end(&c, &addr, offset, queue_offset, message::SYSFLAG_TRANSACTION_COMMIT, false).await;
        end(&c, &addr, offset, queue_offset, message::SYSFLAG_TRANSACTION_COMMIT, false).await;
        let consumer = PullConsumer::new(client(&ns, SerializeType::RocketMq, None), "cg");
        let got = read_all(&consumer, "txk", 1, Duration::from_secs(10)).await;
        assert_eq!(got, vec!["survivor".to_string()]);
    });
}
