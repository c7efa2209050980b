//! ramjet-client: a Rust client for RocketMQ-compatible brokers (ramjet and Apache
//! RocketMQ 4.x/5.x remoting): producers, pull and push consumers, admin calls.
//!
//! Layout: protocol logic without I/O, and a thin transport around it.
//!
//! | module | what | I/O |
//! |---|---|---|
//! | [`pending`] | opaque allocation, pending-request table | no |
//! | [`route`] | route table, write/read queues, round robin | no |
//! | [`protocol`] | request building, reply parsing | no |
//! | [`message`] | `Message`, `SendResult`, `PullResult`, unique ids | no |
//! | [`fault`] | latency-based broker avoidance for sends (`MQFaultStrategy`) | no |
//! | [`send_retry`] | whether a failed send is retried, and on which broker not | no |
//! | [`selector`] | queue selectors for ordered sends | no |
//! | [`transaction`] | half messages, END_TRANSACTION, check answers (`TransactionProducer`) | no (requests) / yes (producer) |
//! | [`rebalance`] | queue allocation in a consumer group (`AllocateMessageQueueAveragely`) | no |
//! | [`process_queue`] | pulled, unconsumed messages of a queue; the offset safe to commit | no |
//! | [`pull_consumer::OffsetTable`] | consumer offset bookkeeping | no |
//! | [`pull_step`] | pull loop decisions: pause (flow control), what a pull result means | no |
//! | [`offset_store`] | broadcasting offsets file format | file |
//! | [`transport`] | connection (reader/writer tasks), pool | yes (through [`runtime`]) |
//! | [`runtime`] | spawning, timers, TCP: the only code that names glommio or tokio | yes |
//! | [`client`], [`producer`], [`pull_consumer`], [`push_consumer`], [`admin`] | the calls | yes |
//!
//! Everything is `!Send` and lives on the executor that created it; run one client per
//! executor.
//!
//! # Runtimes
//!
//! The client runs on glommio (cargo feature `glommio`, the default) or on tokio
//! (feature `tokio`). On tokio, drive it from a current-thread runtime with
//! `enable_all()`, inside a [`tokio::task::LocalSet`](https://docs.rs/tokio/latest/tokio/task/struct.LocalSet.html)
//! (`ramjet-client = { default-features = false, features = ["tokio"] }`; see
//! `examples/readme_tokio.rs`). Both features may be enabled together: each call then
//! uses the runtime it runs on (a tokio runtime context, else glommio). The choice and
//! the boundary are described in [`runtime`].
//!
//! # Access control
//!
//! Against a broker with `aclEnable=true`, set [`ClientConfig::credentials`]: every
//! request (to brokers and NameServers, one-way included) is then signed as RocketMQ's
//! `AclClientRPCHook` signs it, with [`ramjet_proto::acl::sign_request`].
//!
//! # Sending
//!
//! ```no_run
//! # #[cfg(feature = "glommio")] fn main() {
//! use ramjet_client::{Client, ClientConfig, Message, Producer, SelectByHash};
//!
//! glommio::LocalExecutorBuilder::default().io_memory(1 << 20).spawn(|| async {
//!     let client = Client::new(ClientConfig::new("127.0.0.1:9876").unwrap());
//!     let producer = Producer::new(client, "my-group");
//!
//!     // Wait for the broker's answer (retried on another broker on failure).
//!     let result = producer.send(Message::new("orders", "hello")).await.unwrap();
//!     println!("{} at offset {}", result.msg_id, result.queue_offset);
//!
//!     // Many sends in flight at once: start them, await the handles later.
//!     let handles: Vec<_> = (0..100)
//!         .map(|i| producer.send_async(Message::new("orders", format!("m{i}")).with_tags("TagA")))
//!         .collect();
//!     for h in handles {
//!         h.await.unwrap();
//!     }
//!
//!     // Same order id, same queue: consumed in send order by an ordered consumer.
//!     for step in ["created", "paid", "shipped"] {
//!         let msg = Message::new("orders", step).with_keys("order-17");
//!         producer.send_with_selector(msg, &SelectByHash::new("order-17")).await.unwrap();
//!     }
//!
//!     // No answer wanted.
//!     producer.send_oneway(Message::new("orders", "fire and forget")).await.unwrap();
//! }).unwrap().join().unwrap();
//! # }
//! # #[cfg(not(feature = "glommio"))] fn main() {}
//! ```
//!
//! # Consuming
//!
//! ```no_run
//! # #[cfg(feature = "glommio")] fn main() {
//! use ramjet_client::{
//!     ClientConfig, ConsumeFromWhere, ConsumeStatus, MessageListener, PushConsumer,
//!     PushConsumerConfig,
//! };
//!
//! glommio::LocalExecutorBuilder::default().io_memory(1 << 20).spawn(|| async {
//!     let mut config = PushConsumerConfig::new("my-consumer-group");
//!     config.consume_from_where = ConsumeFromWhere::ConsumeFromFirstOffset;
//!     let consumer = PushConsumer::new(ClientConfig::new("127.0.0.1:9876").unwrap(), config);
//!     consumer.subscribe("orders", "TagA || TagB").unwrap();
//!     consumer
//!         .register_listener(MessageListener::concurrently(|msgs, ctx| {
//!             for m in msgs {
//!                 println!("{:?} offset {}: {:?}", ctx.queue(), m.queue_offset, m.body);
//!             }
//!             // ReconsumeLater sends the batch back for redelivery (up to 16 times).
//!             ConsumeStatus::Success
//!         }))
//!         .unwrap();
//!     consumer.start().await.unwrap();
//!     glommio::timer::sleep(std::time::Duration::from_secs(60)).await;
//!     // Commits offsets, releases queues and unregisters from the brokers.
//!     consumer.shutdown().await;
//! }).unwrap().join().unwrap();
//! # }
//! # #[cfg(not(feature = "glommio"))] fn main() {}
//! ```
//!
//! An ordered consumer registers [`MessageListener::orderly`] instead: each queue's
//! messages then arrive one batch at a time, in queue order, and in clustering mode a
//! queue is consumed only while the broker's lock on it is held.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod admin;
pub mod client;
pub mod config;
pub mod error;
pub mod fault;
pub mod message;
pub mod offset_store;
pub mod pending;
pub mod process_queue;
pub mod producer;
pub mod protocol;
pub mod pull_consumer;
pub mod pull_step;
pub mod push_consumer;
pub mod rebalance;
pub mod route;
pub mod runtime;
pub mod selector;
pub mod send_retry;
pub mod shards;
pub mod transaction;
pub mod transport;

/// The integration tests' runtime helper, shared so unit tests run on every runtime too.
#[cfg(test)]
#[path = "../tests/support/runtimes.rs"]
mod test_runtimes;

pub use admin::Admin;
pub use client::Client;
pub use config::ClientConfig;
pub use error::ClientError;
pub use message::{Message, MessageQueue, PullResult, PullStatus, SendResult, SendStatus};
pub use producer::{Producer, SendHandle};
pub use protocol::Subscription;
pub use pull_consumer::{OffsetTable, PullConsumer};
pub use push_consumer::{
    ConsumeContext, ConsumeFromWhere, ConsumeOrderlyStatus, ConsumeStatus, MessageListener,
    MessageModel, PushConsumer, PushConsumerConfig,
};
pub use ramjet_proto::acl::Credentials;
pub use ramjet_proto::message::StoredMessage;
pub use ramjet_proto::SerializeType;
pub use selector::{MessageQueueSelector, SelectByHash};
pub use transaction::{LocalTransactionState, TransactionProducer, TransactionSendResult};
pub use transport::{Connection, ConnectionOptions, ConnectionPool};
