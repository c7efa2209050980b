//! ramjet-client: a low-level Rust client for RocketMQ-compatible brokers (ramjet and
//! Apache RocketMQ 4.x/5.x remoting).
//!
//! Layout: protocol logic without I/O, and a thin transport around it.
//!
//! | module | what | I/O |
//! |---|---|---|
//! | [`pending`] | opaque allocation, pending-request table | no |
//! | [`route`] | route table, write/read queues, round robin | no |
//! | [`protocol`] | request building, reply parsing | no |
//! | [`message`] | `Message`, `SendResult`, `PullResult`, unique ids | no |
//! | [`pull_consumer::OffsetTable`] | consumer offset bookkeeping | no |
//! | [`transport`] | glommio connection (reader/writer tasks), pool | yes |
//! | [`client`], [`producer`], [`pull_consumer`], [`admin`] | the calls | yes |
//!
//! Everything is `!Send` and lives on the glommio executor that created it; run one
//! client per executor. A tokio transport is to slot in under [`transport`].
//!
//! ```no_run
//! use ramjet_client::{Client, ClientConfig, Message, Producer};
//!
//! glommio::LocalExecutorBuilder::default().io_memory(1 << 20).spawn(|| async {
//!     let client = Client::new(ClientConfig::new("127.0.0.1:9876").unwrap());
//!     let producer = Producer::new(client, "my-group");
//!     let result = producer.send(Message::new("orders", "hello")).await.unwrap();
//!     println!("{} at offset {}", result.msg_id, result.queue_offset);
//! }).unwrap().join().unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
pub mod push_consumer;
pub mod rebalance;
pub mod route;
pub mod selector;
pub mod transport;

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
pub use ramjet_proto::message::StoredMessage;
pub use ramjet_proto::SerializeType;
pub use selector::{MessageQueueSelector, SelectByHash};
pub use transport::{Connection, ConnectionOptions, ConnectionPool};
