//! A broker shard: one pinned glommio executor that owns whole commit logs and everything
//! keyed by the queues mapped to them.
//!
//! ```text
//!   shard 0                       shard 1                 ...
//!   +-------------------------+   +-------------------+
//!   | logs {0, 2, ...}        |   | logs {1, 3, ...}  |
//!   | consumer offsets, polls |   | offsets, polls    |
//!   | TopicManager (owner)    |   | topic snapshot    |
//!   | registration with NS    |   |                   |
//!   +-----------+-------------+   +---------+---------+
//!               |  bounded flume channels (ShardMsg) |
//!               +-------------------------------------+
//! ```
//!
//! Ownership: `(topic, queue_id)` → log by `ramjet_storage::log_for`, log → shard by
//! `log % shard_count` ([`shard_for`]). A request for a queue this shard does not own is
//! forwarded whole (header + body `Bytes`, no copy) to the owner, which runs the same
//! handler and sends the response back.

pub mod api;
pub mod inbox;
pub mod topics;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use ramjet_proto::Frame;
use ramjet_storage::LogStore;

use crate::config::BrokerConfig;
use crate::consumer_offset::ConsumerOffsets;
use crate::error::BrokerError;
use crate::long_poll::LongPollTable;
use crate::net::connection::Response;
use crate::topic::{TopicManager, TopicTable};

/// Depth of each shard's inbound channel; a full channel makes the sender wait.
pub const SHARD_CHANNEL_DEPTH: usize = 4096;

/// Messages between shards. Everything in them is `Send`: frames are owned headers and
/// `Bytes` bodies, topic tables travel as `Arc` snapshots that nobody mutates.
pub enum ShardMsg {
    /// Run this request here (the owner) and send its response back.
    Request {
        /// The request as received.
        frame: Frame,
        /// The client's address (the born host of messages).
        peer: SocketAddr,
        /// The shard holding the client's connection.
        origin: usize,
        /// Where the response goes.
        reply: flume::Sender<Option<Response>>,
    },
    /// A new topic table from shard 0; ack once installed.
    Topics {
        /// The snapshot.
        table: Arc<TopicTable>,
        /// Acknowledgement.
        ack: flume::Sender<()>,
    },
    /// New consumer subscriptions from shard 0.
    Subscriptions {
        /// The snapshot.
        table: Arc<crate::handler::client::SubscriptionTable>,
    },
    /// A client connection to another shard closed: forget its clients (to shard 0).
    ConnectionClosed {
        /// The client's address.
        peer: SocketAddr,
    },
    /// Append these records here (the owner of their queue) and reply with the result.
    Append {
        /// The records.
        batch: ramjet_storage::AppendBatch,
        /// Where the result goes.
        reply: flume::Sender<Result<ramjet_storage::AppendResult, BrokerError>>,
    },
    /// A request from a client of this process (not a connection): served as if a
    /// connection of this shard had received it (`RunningBroker::dispatch`, used by the
    /// in-process fuzz tests).
    Dispatch {
        /// The request.
        frame: Frame,
        /// The client's address it is served for.
        peer: SocketAddr,
        /// Where the response goes (`None`: a one-way request).
        reply: flume::Sender<Option<Response>>,
    },
    /// Read a queue here (the owner) and reply with what the store found.
    ReadQueue {
        /// What to read.
        read: api::QueueRead,
        /// Where the result goes.
        reply: flume::Sender<Result<ramjet_storage::GetResult, BrokerError>>,
    },
    /// Create or update a topic (to shard 0, the topic table's owner); reply once every
    /// shard has the new table.
    CreateTopic {
        /// The topic's configuration, already checked.
        config: ramjet_proto::body::TopicConfig,
        /// Where the result goes.
        reply: flume::Sender<Result<(), BrokerError>>,
    },
    /// Write a server-initiated request (NOTIFY_CONSUMER_IDS_CHANGED, ...) to the client
    /// connection from `peer` held by this shard.
    Push {
        /// The client's address.
        peer: SocketAddr,
        /// The request to write.
        header: ramjet_proto::Header,
        /// Its body.
        body: bytes::Bytes,
    },
    /// Send a request to the client connection from `peer` held by this shard and reply
    /// with its answer (a relayed GET_CONSUMER_RUNNING_INFO / CONSUME_MESSAGE_DIRECTLY).
    CallClient {
        /// The client's address.
        peer: SocketAddr,
        /// The request to send (its opaque is set by the connection).
        header: ramjet_proto::Header,
        /// Its body.
        body: bytes::Bytes,
        /// The client's reply, or why there is none.
        reply:
            flume::Sender<Result<ramjet_proto::Frame, crate::handler::consumer_relay::RelayError>>,
    },
    /// Send a request to one live producer of `group` (to shard 0).
    PushToProducer {
        /// Producer group.
        group: String,
        /// The request.
        header: ramjet_proto::Header,
        /// Its body.
        body: bytes::Bytes,
    },
    /// An operator query (metrics, statistics, offset resets) for this shard's queues.
    Ops {
        /// The query.
        query: crate::shard_ops::OpsQuery,
        /// Where the answer goes.
        reply: flume::Sender<crate::shard_ops::OpsReply>,
    },
    /// Replication work on this shard's logs (`replication/mod.rs`).
    Replica(crate::replication::ReplicaRequest),
    /// Install consumer offsets copied from the master (a slave's metadata sync):
    /// (topic, group, queue id, offset) of queues this shard owns.
    InstallOffsets {
        /// The offsets.
        offsets: Vec<(String, String, i32, i64)>,
    },
    /// Stop serving, close the logs cleanly, then ack.
    Shutdown {
        /// Acknowledgement.
        done: flume::Sender<()>,
    },
}

/// The shard that owns `log`.
///
/// # Panics
/// When `shard_count` is 0 (a programmer error).
pub fn shard_of_log(log: u32, shard_count: usize) -> usize {
    assert!(shard_count >= 1, "shard count must be at least 1");
    log as usize % shard_count
}

/// The shard that owns `(topic, queue_id)`: the one pure ownership function.
pub fn shard_for(topic: &str, queue_id: i32, log_count: u32, shard_count: usize) -> usize {
    shard_of_log(ramjet_storage::log_for(topic, queue_id, log_count), shard_count)
}

/// One shard's state.
///
/// Lives on: its own executor; never leaves it (`Rc`, `RefCell`).
pub struct Shard {
    /// This shard's index.
    pub id: usize,
    /// Number of shards.
    pub shard_count: usize,
    /// Number of commit logs of the store (fixed at creation).
    pub log_count: u32,
    /// Immutable configuration.
    pub config: Arc<BrokerConfig>,
    /// The logs this shard owns.
    pub logs: HashMap<u32, Rc<LogStore>>,
    /// Senders to every shard (including this one, unused).
    pub peers: Vec<flume::Sender<ShardMsg>>,
    /// Latest topic snapshot.
    pub topics: RefCell<Arc<TopicTable>>,
    /// What only shard 0 holds (cluster-wide state); `None` on every other shard.
    pub zero: Option<Shard0State>,
    /// Consumer offsets of owned queues.
    pub offsets: RefCell<ConsumerOffsets>,
    /// Parked pulls of owned queues.
    pub long_poll: RefCell<LongPollTable>,
    /// `broker_ip:listen_port`, the STOREHOST of every message.
    pub store_host: SocketAddr,
    /// Round-robin cursor for sends that leave the queue to the broker.
    pub send_cursor: Cell<usize>,
    /// Counter for broker-made ids: opaques of pushed requests, message-id counters.
    pub sequence: Cell<u32>,
    /// Serialises writes of configuration files owned by this shard.
    pub persist_lock: glommio::sync::Semaphore,
    /// This shard's metrics (counted here, gathered by a scrape).
    pub metrics: crate::metrics::ShardMetrics,
    /// Settings UPDATE_BROKER_CONFIG may change while running (snapshot from shard 0).
    pub settings: RefCell<Arc<crate::live_settings::LiveSettings>>,
    /// Finished half messages (owner of the half queue only).
    pub transactions: RefCell<crate::transaction::TransactionState>,
    /// Serialises the rebuild of `transactions`.
    pub transaction_lock: glommio::sync::Semaphore,
    /// Client connections accepted by this shard, by peer address.
    pub connections: RefCell<HashMap<SocketAddr, crate::net::connection::ConnectionHandle>>,
    /// Consumer subscriptions by group, published by shard 0 from heartbeats.
    pub subscriptions: RefCell<Arc<crate::handler::client::SubscriptionTable>>,
    /// Compiled SQL92 selectors of pulls that carry their own (bounded).
    pub sql_filters: RefCell<crate::handler::sql_filter::FilterCache>,
    /// Replication state: slaves' positions of owned logs, the master's address.
    pub replica: crate::replication::ShardReplica,
    /// Access control (`aclEnable`): the configuration in force and denial counts;
    /// `None` when ACL is off.
    pub acl: Option<crate::acl::gate::AclGate>,
}

/// The state only shard 0 holds: the cluster-wide tables every other shard asks it about.
///
/// Lives on: shard 0 ([`Shard::zero`]).
pub struct Shard0State {
    /// The topic table's owner.
    pub topic_manager: RefCell<TopicManager>,
    /// Client registry: heartbeats by client id.
    pub clients: RefCell<crate::client_registry::ClientRegistry>,
    /// Subscription groups.
    pub subscription_groups: RefCell<crate::subscription_group::SubscriptionGroups>,
    /// Order locks of queues.
    pub locks: RefCell<crate::lock_manager::LockManager>,
    /// Wakes the NameServer registration task after a topic change.
    pub register_kick: crate::notify::Notify,
    /// The embedded NameServer's ACL denials (it runs on its own executor), appended to
    /// the broker's `/metrics`; `None` without ACL or without an embedded NameServer.
    pub namesrv_acl_denials: Option<crate::acl::namesrv::SharedDenials>,
}

impl Shard {
    /// Shard 0's state.
    ///
    /// # Errors
    /// On any other shard (a request routed to the wrong shard).
    pub fn zero(&self) -> Result<&Shard0State, BrokerError> {
        self.zero.as_ref().ok_or_else(|| {
            BrokerError::System(format!("shard 0's state asked of shard {}", self.id))
        })
    }

    /// The next value of this shard's id counter.
    pub fn next_sequence(&self) -> u32 {
        let n = self.sequence.get();
        self.sequence.set(n.wrapping_add(1));
        n
    }

    /// The log of `(topic, queue_id)`.
    pub fn log_for(&self, topic: &str, queue_id: i32) -> u32 {
        ramjet_storage::log_for(topic, queue_id, self.log_count)
    }

    /// The owner shard of `(topic, queue_id)`.
    pub fn shard_for(&self, topic: &str, queue_id: i32) -> usize {
        shard_for(topic, queue_id, self.log_count, self.shard_count)
    }

    /// The owned log store for `(topic, queue_id)`, if this shard owns it.
    pub fn store_for(&self, topic: &str, queue_id: i32) -> Option<&Rc<LogStore>> {
        self.logs.get(&self.log_for(topic, queue_id))
    }

    /// The current topic snapshot.
    pub fn topic_table(&self) -> Arc<TopicTable> {
        self.topics.borrow().clone()
    }

    /// Writes a server-initiated request to the client at `peer` on shard `holder`.
    pub fn push(&self, holder: usize, peer: SocketAddr, header: ramjet_proto::Header) {
        self.push_with_body(holder, peer, header, bytes::Bytes::new());
    }

    /// Sends a server-initiated request to one live producer of `group` (shard 0 knows
    /// them from heartbeats; other shards ask it).
    pub fn push_to_producer(&self, group: &str, header: ramjet_proto::Header, body: bytes::Bytes) {
        if self.id != 0 {
            let msg = ShardMsg::PushToProducer { group: group.to_string(), header, body };
            let _ = self.peers[0].try_send(msg);
            return;
        }
        let Some(zero) = self.zero.as_ref() else { return };
        let channel = zero.clients.borrow().producer_channel(group);
        match channel.and_then(|c| c.addr.parse::<SocketAddr>().ok().map(|a| (c.shard, a))) {
            Some((holder, peer)) => self.push_with_body(holder, peer, header, body),
            None => tracing::warn!(%group, "no live producer to check a transaction with"),
        }
    }

    /// As [`Shard::push`], with a body.
    pub fn push_with_body(
        &self,
        holder: usize,
        peer: SocketAddr,
        mut header: ramjet_proto::Header,
        body: bytes::Bytes,
    ) {
        header.opaque = (self.next_sequence() & 0x7FFF_FFFF) as i32;
        if holder == self.id {
            if let Some(conn) = self.connections.borrow().get(&peer) {
                // Dropped (and counted) when the client's response budget is full.
                conn.push(&crate::net::connection::Response {
                    header,
                    body,
                    parts: Box::default(),
                });
            }
        } else if let Some(p) = self.peers.get(holder) {
            // A full channel drops the notification; clients also rebalance periodically.
            let _ = p.try_send(ShardMsg::Push { peer, header, body });
        }
    }

    /// Forwards `frame` to shard `target` and waits for its response.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the reply; the owner still executes the request.
    pub async fn forward(&self, target: usize, frame: Frame, peer: SocketAddr) -> Option<Response> {
        let (tx, rx) = flume::bounded(1);
        self.metrics.forwarded.set(self.metrics.forwarded.get() + 1);
        let msg = ShardMsg::Request { frame, peer, origin: self.id, reply: tx };
        if self.peers[target].send_async(msg).await.is_err() {
            return None;
        }
        rx.recv_async().await.ok().flatten()
    }
}
