//! `ramjet_client::TransactionProducer` against a real broker: commit delivers once,
//! rollback never, an undecided transaction is settled by the check listener, and a
//! check after the producer restarts is answered by the new producer of the group.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ramjet_client::{
    Admin, ClientConfig, LocalTransactionState, Message, MessageQueue, PullConsumer,
    TransactionProducer,
};
use ramjet_proto::SerializeType;
use ramjet_tests::{client, run_glommio, store_dir, BrokerOptions, Daemon};

const GROUP: &str = "tx-client-producers";

fn config(ns: &str) -> ClientConfig {
    ClientConfig::new(ns).expect("config")
}

/// Bodies on queue 0 of `topic`, read until at least `expect` arrived and a long poll
/// finds nothing more, or until `wait` passes.
async fn read_all(ns: &str, topic: &str, expect: usize, wait: Duration) -> Vec<String> {
    let c = PullConsumer::new(client(ns, SerializeType::RocketMq), "cg");
    let q = MessageQueue { topic: topic.into(), broker_name: "broker-a".into(), queue_id: 0 };
    let mut out = Vec::new();
    for m in ramjet_tests::read_queue(&c, &q, expect, wait).await {
        assert!(m.property("TRAN_MSG").is_none(), "a delivered message is no half");
        out.push(String::from_utf8_lossy(&m.body).into_owned());
    }
    out
}

async fn create(ns: &str, addr: &str, topic: &str) {
    Admin::new(client(ns, SerializeType::RocketMq))
        .create_topic(addr, topic, 1, 1)
        .await
        .expect("create");
}

/// A broker that checks undecided transactions after 300 ms, every 300 ms.
fn checking_broker(dir: &Path) -> Daemon {
    let conf = dir.join("broker.conf");
    std::fs::write(&conf, "transactionTimeOut=300\ntransactionCheckInterval=300\n").expect("conf");
    let mut opts = BrokerOptions::new(&dir.join("store"));
    opts.extra = vec!["-c".into(), conf.to_string_lossy().into_owned()];
    Daemon::broker(&opts)
}

/// Records the bodies it is asked about and answers by the body's suffix.
fn answering_listener(
    seen: Rc<RefCell<Vec<String>>>,
) -> impl Fn(&ramjet_client::StoredMessage) -> LocalTransactionState {
    move |m| {
        let body = String::from_utf8_lossy(&m.body).into_owned();
        let state = if body.ends_with("commit") {
            LocalTransactionState::Commit
        } else if body.ends_with("rollback") {
            LocalTransactionState::Rollback
        } else {
            LocalTransactionState::Unknown
        };
        seen.borrow_mut().push(body);
        state
    }
}

// Goal: a committed transaction delivers its message exactly once, a rolled-back one
// never. Method: send_in_transaction with Commit and Rollback, then a plain marker on the
// same producer; read the topic until commit and marker arrived and nothing more comes.
#[test]
fn commit_delivers_once_and_rollback_never() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        create(&ns, &addr, "txc1").await;
        let tp = TransactionProducer::start(config(&ns), GROUP, |_| LocalTransactionState::Unknown)
            .await
            .expect("start");
        let ran = Rc::new(RefCell::new(Vec::new()));
        for (body, state) in
            [("yes", LocalTransactionState::Commit), ("no", LocalTransactionState::Rollback)]
        {
            let r = ran.clone();
            let res = tp
                .send_in_transaction(Message::new("txc1", body), move |m| {
                    assert_eq!(m.property("TRAN_MSG"), Some("true"));
                    assert_eq!(m.property("PGROUP"), Some(GROUP));
                    r.borrow_mut().push(String::from_utf8_lossy(&m.body).into_owned());
                    state
                })
                .await
                .expect("send in transaction");
            assert_eq!(res.state, state);
        }
        assert_eq!(*ran.borrow(), vec!["yes".to_string(), "no".to_string()]);
        tp.producer().send(Message::new("txc1", "marker")).await.expect("marker");
        tp.shutdown().await;

        let mut got = read_all(&ns, "txc1", 2, Duration::from_secs(20)).await;
        got.sort();
        assert_eq!(got, vec!["marker".to_string(), "yes".to_string()]);
    });
}

// Goal: a transaction left Unknown is settled by the check listener: its commit answer
// delivers the message, its rollback answer drops it. Method: short broker check
// timeouts; send_in_transaction returning Unknown; wait (bounded) for delivery.
#[test]
fn check_listener_settles_unknown_transactions() {
    let dir = store_dir();
    let broker = checking_broker(dir.path());
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        create(&ns, &addr, "txc2").await;
        let seen = Rc::new(RefCell::new(Vec::new()));
        let tp = TransactionProducer::start(config(&ns), GROUP, answering_listener(seen.clone()))
            .await
            .expect("start");
        for body in ["later-commit", "later-rollback"] {
            let res = tp
                .send_in_transaction(Message::new("txc2", body), |_| LocalTransactionState::Unknown)
                .await
                .expect("send in transaction");
            assert_eq!(res.state, LocalTransactionState::Unknown);
        }
        // Both halves are checked; the rollback answer must have been sent too before
        // the topic is judged, so wait (bounded) for both checks first.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(seen.borrow().iter().any(|b| b == "later-commit")
            && seen.borrow().iter().any(|b| b == "later-rollback"))
        {
            assert!(Instant::now() < deadline, "checks never arrived: {:?}", seen.borrow());
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        let got = read_all(&ns, "txc2", 1, Duration::from_secs(20)).await;
        assert_eq!(got, vec!["later-commit".to_string()]);
        tp.shutdown().await;
    });
}

// Goal: a check that comes after the producer restarted is answered by the new producer
// of the same group, and its commit delivers the message once. Method: the first
// producer sends a half left Unknown and shuts down; a second one of the group starts
// with a listener answering commit; wait (bounded) for delivery.
#[test]
fn check_after_producer_restart_is_answered_by_the_new_producer() {
    let dir = store_dir();
    let broker = checking_broker(dir.path());
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        create(&ns, &addr, "txc3").await;
        let first =
            TransactionProducer::start(config(&ns), GROUP, |_| LocalTransactionState::Unknown)
                .await
                .expect("start first");
        first
            .send_in_transaction(Message::new("txc3", "survives-restart-commit"), |_| {
                LocalTransactionState::Unknown
            })
            .await
            .expect("half");
        first.shutdown().await;

        let seen = Rc::new(RefCell::new(Vec::new()));
        let second =
            TransactionProducer::start(config(&ns), GROUP, answering_listener(seen.clone()))
                .await
                .expect("start second");
        let got = read_all(&ns, "txc3", 1, Duration::from_secs(30)).await;
        assert_eq!(got, vec!["survives-restart-commit".to_string()]);
        assert!(seen.borrow().iter().any(|b| b == "survives-restart-commit"));
        second.shutdown().await;
    });
}
