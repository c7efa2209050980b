//! The README's tokio example: a producer sends one message, a push consumer receives it,
//! both on a current-thread tokio runtime. Against a broker:
//! `cargo run --release -p ramjet-client --no-default-features --features tokio
//! --example readme_tokio [NAMESRV]`

use std::time::Duration;

use ramjet_client::{
    Client, ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageListener, Producer,
    PushConsumer, PushConsumerConfig,
};

fn main() {
    let namesrv = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9876".to_string());
    // The client is !Send: run it on one thread, its tasks inside a LocalSet.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let received = tokio::task::LocalSet::new().block_on(&runtime, async move {
        let config = ClientConfig::new(&namesrv).expect("NameServer address");
        let producer = Producer::new(Client::new(config.clone()), "tokio-pg");
        let sent =
            producer.send(Message::new("orders", "hello from tokio").with_tags("TagA")).await;
        let sent = sent.expect("send");
        println!("stored as {} at queue offset {}", sent.msg_id, sent.queue_offset);

        let mut group = PushConsumerConfig::new("tokio-order-readers");
        group.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
        let consumer = PushConsumer::new(config, group);
        consumer.subscribe("orders", "TagA || TagB").expect("subscribe");
        let (arrived, arrivals) = flume::unbounded();
        let listener = MessageListener::concurrently(move |msgs, _ctx| {
            for m in msgs {
                println!("received {:?}", String::from_utf8_lossy(&m.body));
                let _ = arrived.send(());
            }
            ConsumeStatus::Success
        });
        consumer.register_listener(listener).expect("listener");
        consumer.start().await.expect("start");

        // Wait for the first message, at most 30 s, then stop cleanly.
        let first = tokio::time::timeout(Duration::from_secs(30), arrivals.recv_async()).await;
        consumer.shutdown().await;
        matches!(first, Ok(Ok(())))
    });
    if !received {
        eprintln!("no message arrived within 30 s");
        std::process::exit(1);
    }
}
