//! The client on tokio against a real broker: a tokio producer's messages reach a tokio
//! push consumer.
//!
//! Goal: the runtime boundary (`ramjet_client::runtime`) carries the whole client on
//! tokio: admin calls, synchronous and asynchronous sends (`SendHandle`), the push
//! consumer's heartbeat, rebalance, pull and consume tasks, and a clean shutdown.
//! Method: a real `ramjet-broker` process (embedded NameServer); a current-thread tokio
//! runtime inside a `LocalSet` creates a topic, sends 40 messages (half awaited one by
//! one, half started with `send_async` and awaited later), and a push consumer in a fresh
//! group consuming from the first offset must see exactly the bodies sent. Waits poll a
//! condition under a deadline; nothing asserts a timing.
//!
//! This suite builds the client with both runtime features (this crate enables `tokio` on
//! top of the default `glommio`), so it also shows the runtime is picked per call: the
//! other suites here drive the same build of the client on glommio.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ramjet_client::runtime::Runtime;
use ramjet_client::{
    Admin, Client, ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageListener,
    Producer, PushConsumer, PushConsumerConfig,
};
use ramjet_tests::{store_dir, BrokerOptions, Daemon};

/// The longest any condition here is waited for.
const DEADLINE: Duration = Duration::from_secs(90);

/// Runs `body` on a fresh current-thread tokio runtime within a `LocalSet`.
fn run_tokio<Fut: std::future::Future<Output = ()>>(body: Fut) {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&runtime, body);
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after [`DEADLINE`].
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn tokio_producer_messages_reach_a_tokio_push_consumer() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_tokio(async move {
        assert_eq!(Runtime::current(), Runtime::Tokio, "a tokio context selects tokio");
        const TOPIC: &str = "tokio-topic";
        const COUNT: usize = 40;
        let config = ClientConfig::new(&ns).expect("config");
        let client = Client::new(config.clone());
        Admin::new(client.clone()).create_topic(&addr, TOPIC, 4, 4).await.expect("create");
        let deadline = Instant::now() + DEADLINE;
        loop {
            client.invalidate_route(TOPIC);
            if client.topic_route(TOPIC).await.is_ok_and(|r| r.write_queues.len() == 4) {
                break;
            }
            assert!(Instant::now() < deadline, "route of {TOPIC} never appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let producer = Producer::new(client, "tokio-pg");
        let mut sent = BTreeSet::new();
        for i in 0..COUNT / 2 {
            let body = format!("sync-{i}");
            producer.send(Message::new(TOPIC, body.clone())).await.expect("send");
            sent.insert(body);
        }
        let handles: Vec<_> = (0..COUNT / 2)
            .map(|i| {
                let body = format!("async-{i}");
                sent.insert(body.clone());
                producer.send_async(Message::new(TOPIC, body))
            })
            .collect();
        for h in handles {
            h.await.expect("async send");
        }
        assert_eq!(sent.len(), COUNT);

        let mut group = PushConsumerConfig::new("tokio-group");
        group.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
        group.rebalance_interval = Duration::from_secs(1);
        group.suspend_timeout = Duration::from_secs(2);
        let consumer = PushConsumer::new(config, group);
        consumer.subscribe(TOPIC, "*").expect("subscribe");
        let received: Rc<RefCell<Vec<String>>> = Rc::default();
        let log = received.clone();
        let listener = MessageListener::concurrently(move |msgs, _ctx| {
            for m in msgs {
                log.borrow_mut().push(String::from_utf8_lossy(&m.body).into_owned());
            }
            ConsumeStatus::Success
        });
        consumer.register_listener(listener).expect("listener");
        consumer.start().await.expect("start");
        wait_until("every message is consumed", || {
            sent.is_subset(&received.borrow().iter().cloned().collect::<BTreeSet<_>>())
        })
        .await;
        consumer.shutdown().await;
        let got: BTreeSet<String> = received.borrow().iter().cloned().collect();
        assert_eq!(got, sent, "exactly the sent bodies arrive");
    });
}
