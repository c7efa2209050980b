//! The README's example: a producer sends one message, a push consumer receives it.
//! `cargo run --release -p ramjet-client --example readme [NAMESRV]` against a broker.

use std::time::Duration;

use ramjet_client::{
    Client, ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageListener, Producer,
    PushConsumer, PushConsumerConfig,
};

fn main() {
    let namesrv = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9876".to_string());
    let executor = glommio::LocalExecutorBuilder::default().io_memory(1 << 20);
    let received = executor
        .spawn(move || async move {
            let config = ClientConfig::new(&namesrv).expect("NameServer address");
            let producer = Producer::new(Client::new(config.clone()), "pg");
            let sent = producer.send(Message::new("orders", "hello").with_tags("TagA")).await;
            let sent = sent.expect("send");
            println!("stored as {} at queue offset {}", sent.msg_id, sent.queue_offset);

            let mut group = PushConsumerConfig::new("order-readers");
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
            let timeout = async {
                glommio::timer::sleep(Duration::from_secs(30)).await;
                Err(flume::RecvError::Disconnected)
            };
            let first = futures_lite::future::or(arrivals.recv_async(), timeout).await;
            consumer.shutdown().await;
            first.is_ok()
        })
        .expect("executor")
        .join()
        .expect("join");
    if !received {
        eprintln!("no message arrived within 30 s");
        std::process::exit(1);
    }
}
