//! Master/slave replication (RocketMQ's classic HA), on its own shard.
//!
//! Lives on: the replication shard (`master.rs`, `slave.rs`: one glommio executor, started
//! by `runtime.rs` beside the broker shards) and, for the per-log parts, each log's owner
//! shard ([`ShardReplica`], [`on_shard`]).
//!
//! ```text
//!  master process                                   slave process
//!  ┌──────────────┐ Read{log,P,N,T}  ┌──────────┐  TCP (wire.rs)  ┌──────────┐ Append{log,P,bytes} ┌──────────────┐
//!  │ owner shard  │◀────────────────│ replica- │ ──DATA───────▶  │ replica- │ ───────────────────▶│ owner shard  │
//!  │ LogStore     │──RawSpan (Bytes)▶│ tion     │ ◀──ACK───────── │ tion     │ ◀── durable end ────│ LogStore     │
//!  │ acked/log    │◀──Progress───────│ shard    │                 │ shard    │                     │ (same logs)  │
//!  └──────────────┘                  └──────────┘                 └──────────┘                     └──────────────┘
//! ```
//!
//! - The master's replication shard listens on the HA port. Per slave connection it runs
//!   one pump per log: ask the log's owner for raw bytes from the slave's position (served
//!   from the tail cache without copying when hot, waiting a little at the end), and
//!   write them as DATA frames. ACKs from the slave go to each log's owner as `Progress`.
//! - The slave's replication shard connects to the master (`haMasterAddress`, else the
//!   address the NameServer returns on registration), sends HELLO with where its logs
//!   end, applies the WELCOME (start an empty log at the master's oldest segment, or
//!   truncate a log that ran past the master's), then hands each DATA range to the log's
//!   owner shard, which places it at the same positions (`LogStore::place_replicated`)
//!   and answers once it is durable; the slave ACKs durable positions.
//! - SYNC_MASTER: a send is answered once a slave ACKed its end and the master's own
//!   write of it is done, both awaited together (see [`slave_ack_code`]); a version 3
//!   slave receives pending bytes, so the two writes overlap.
//! - Topic and group changes travel in-band, ahead of the records that need them
//!   (`feed.rs`).
//!
//! Byte-identical logs: a slave's log holds exactly the master's bytes at the same
//! positions, so offsets (PHYSICALOFFSET, offsetMsgId, queue offsets) mean the same on
//! both, and a consumer that moves from one to the other resumes at the same offsets.

pub mod auth;
pub mod epoch;
pub mod feed;
pub mod io;
pub mod master;
pub mod metadata;
pub mod slave;
pub mod wire;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use ramjet_proto::codes::response;
use ramjet_proto::message::RecordView;
use ramjet_storage::{RawSpan, ReplicaPosition};

use crate::config::BrokerRole;
use crate::shard::{Shard, ShardMsg};
use std::task::Poll;

/// Work the replication shard asks of a log's owner shard (inside `ShardMsg::Replica`).
pub enum ReplicaRequest {
    /// Where each owned log stands.
    Positions {
        /// (log, position) per owned log.
        reply: flume::Sender<Vec<(u32, ReplicaPosition)>>,
    },
    /// Master: raw bytes of `log` from `position`.
    Read {
        /// Log.
        log: u32,
        /// First position.
        position: u64,
        /// About this many bytes at most.
        max_bytes: usize,
        /// Wait this long at the end for more.
        wait_ms: u64,
        /// Serve pending (appended, not yet written) bytes too.
        appended: bool,
        /// The span, or why not.
        reply: flume::Sender<Result<RawSpan, String>>,
    },
    /// Slave: place the master's bytes at `position` (in arrival order), answer once
    /// durable with (log, end, byte count).
    Append {
        /// Log.
        log: u32,
        /// First position.
        position: u64,
        /// The bytes.
        bytes: Bytes,
        /// Durable end, or why not.
        reply: flume::Sender<Result<(u32, u64, usize), String>>,
    },
    /// Slave: start the empty `log` at `position`.
    StartAt {
        /// Log.
        log: u32,
        /// Position.
        position: u64,
        /// Done, or why not.
        reply: flume::Sender<Result<(), String>>,
    },
    /// Slave: cut `log` back to `position` (the master's end).
    Truncate {
        /// Log.
        log: u32,
        /// New end.
        position: u64,
        /// Done, or why not.
        reply: flume::Sender<Result<(), String>>,
    },
    /// Slave, to shard 0: apply the master's topic and group changes (in-band metadata),
    /// persisted and installed before the answer.
    Metadata {
        /// The changes, or a whole snapshot.
        update: feed::MetaUpdate,
        /// Done, or why not.
        reply: flume::Sender<Result<(), String>>,
    },
    /// Master: accept local appends on every owned log from now on (the new epoch is
    /// durable) or refuse them.
    SetWritable {
        /// Accept or refuse.
        writable: bool,
        /// Done.
        reply: flume::Sender<()>,
    },
    /// Slave, to shard 0: the master could not be reached or the session broke; forget
    /// its address learnt from registration and re-register soon to learn the current one.
    MasterLost,
    /// Master: slave connection `slave` now holds `log` durably up to `acked` (`None`:
    /// the slave is gone).
    Progress {
        /// Log.
        log: u32,
        /// Connection id on the replication shard.
        slave: u64,
        /// The slave's address, for metrics.
        slave_addr: String,
        /// Acked position, or gone.
        acked: Option<u64>,
    },
}

/// What one log's owner knows about the slaves of that log.
#[derive(Default)]
struct LogSlaves {
    /// Connection id → (slave address, acked position).
    acked: HashMap<u64, (String, u64)>,
    /// SYNC_MASTER sends waiting for a position: woken only once a slave holds it (or the
    /// slaves change), so one ACK does not wake every waiting send. Entries of sends that
    /// timed out stay until the position is reached or the slaves change.
    waiters: Vec<(u64, std::task::Waker)>,
}

impl LogSlaves {
    fn best(&self) -> Option<u64> {
        self.acked.values().map(|(_, p)| *p).max()
    }
}

/// The replication state of one shard: per owned log, what the slaves hold (masters),
/// and on shard 0 of a slave the master's addresses.
///
/// Lives on: every shard (`Shard::replica`).
pub struct ShardReplica {
    role: BrokerRole,
    logs: RefCell<HashMap<u32, LogSlaves>>,
    /// Slave, shard 0: the master's broker (remoting) address, from `haMasterAddress`
    /// or registration.
    pub master_addr: RefCell<Option<String>>,
    /// Slave, shard 0: sends master HA address updates to the replication shard.
    pub ha_addr_tx: Option<flume::Sender<String>>,
    /// Messages placed by replication since start (slave), for tests and metrics.
    pub records_replicated: Cell<u64>,
    /// Slave, shard 0: topics and groups arrive in-band from the current master (its
    /// 3 s metadata sync then leaves them alone).
    pub metadata_in_band: Cell<bool>,
    /// Master, shard 0: where topic and group changes are published for the sessions.
    pub feed: Option<std::sync::Arc<feed::MetaFeed>>,
}

impl ShardReplica {
    /// State for a shard of a broker with `role`.
    pub fn new(
        role: BrokerRole,
        ha_addr_tx: Option<flume::Sender<String>>,
        feed: Option<std::sync::Arc<feed::MetaFeed>>,
    ) -> ShardReplica {
        ShardReplica {
            role,
            logs: RefCell::new(HashMap::new()),
            master_addr: RefCell::new(None),
            ha_addr_tx,
            records_replicated: Cell::new(0),
            metadata_in_band: Cell::new(false),
            feed,
        }
    }

    /// The broker's role.
    pub fn role(&self) -> BrokerRole {
        self.role
    }

    /// Per slave address: bytes of this shard's logs the slave does not hold yet.
    pub fn lag_bytes(&self, shard: &Shard) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for (log, slaves) in self.logs.borrow().iter() {
            let Some(store) = shard.logs.get(log) else { continue };
            let end = store.replica_position().end;
            for (addr, acked) in slaves.acked.values() {
                let lag = end.saturating_sub(*acked);
                match out.iter_mut().find(|(a, _)| a == addr) {
                    Some((_, total)) => *total += lag,
                    None => out.push((addr.clone(), lag)),
                }
            }
        }
        out
    }
}

/// SYNC_MASTER: the response code for a send whose records end at `end` in `log`, once
/// a slave holds them **and** the master's own log is durable to `end` under its flush
/// mode (SUCCESS; the two are awaited together: the slave receives pending bytes while
/// the master's write is in flight), when no slave is connected or in sync
/// (SLAVE_NOT_AVAILABLE, at once), when the master's write fails (FLUSH_DISK_TIMEOUT), or
/// when they do not both confirm within `syncFlushTimeout` (FLUSH_SLAVE_TIMEOUT). The
/// records are stored in every case. Other roles: SUCCESS at once.
///
/// Waiting for the master's own write keeps what a SYNC_MASTER acknowledged on both
/// sides across a `kill -9` of the master: bytes a slave holds beyond a restarted
/// master's end were never acknowledged, and the slave may cut them (`slave.rs`).
///
/// # Cancel safety
/// Cancel safe: it only waits.
pub async fn slave_ack_code(shard: &Shard, log: u32, end: u64) -> i32 {
    if shard.replica.role != BrokerRole::SyncMaster {
        return response::SUCCESS;
    }
    let gap_max = shard.config.ha_max_gap_not_in_sync_bytes;
    let best = |replica: &ShardReplica| replica.logs.borrow().get(&log).and_then(LogSlaves::best);
    match best(&shard.replica) {
        None => return response::SLAVE_NOT_AVAILABLE,
        Some(acked) if end.saturating_sub(acked) > gap_max => return response::SLAVE_NOT_AVAILABLE,
        Some(_) => {}
    }
    let timeout = Duration::from_millis(shard.config.sync_flush_timeout_ms);
    let own = async {
        match shard.logs.get(&log) {
            Some(store) => match store.wait_replicated(end).await {
                Ok(()) => response::SUCCESS,
                Err(_) => response::FLUSH_DISK_TIMEOUT,
            },
            None => response::SUCCESS,
        }
    };
    let slave = futures_lite::future::poll_fn(|cx| {
        let mut logs = shard.replica.logs.borrow_mut();
        let Some(slaves) = logs.get_mut(&log) else {
            return Poll::Ready(response::SLAVE_NOT_AVAILABLE);
        };
        match slaves.best() {
            Some(acked) if acked >= end => Poll::Ready(response::SUCCESS),
            None => Poll::Ready(response::SLAVE_NOT_AVAILABLE),
            Some(_) => {
                slaves.waiters.push((end, cx.waker().clone()));
                Poll::Pending
            }
        }
    });
    let both = async {
        let (own, slave) = futures_lite::future::zip(own, slave).await;
        if own != response::SUCCESS {
            own
        } else {
            slave
        }
    };
    let timer = async {
        glommio::timer::sleep(timeout).await;
        response::FLUSH_SLAVE_TIMEOUT
    };
    futures_lite::future::or(both, timer).await
}

/// The broker id a pull response suggests (`suggestWhichBrokerId`), the reference's
/// rule: with `slaveReadEnable` on a master, a consumer whose last message is further
/// behind the log's end than `accessMessageInMemoryMaxRatio` percent of physical memory
/// is sent to a slave (`whichBrokerWhenConsumeSlowly`, 1); otherwise the master (0).
pub fn suggest_broker_id(
    shard: &Shard,
    store: &ramjet_storage::LogStore,
    messages: &[Bytes],
) -> i64 {
    if !shard.config.slave_read_enable || shard.replica.role == BrokerRole::Slave {
        return 0;
    }
    let last = messages.last().and_then(|m| RecordView::new(m).ok());
    let Some((_, position)) =
        last.map(|view| view.physical_offset()).and_then(ramjet_storage::split_log_offset)
    else {
        return 0;
    };
    let behind = store.replica_position().end.saturating_sub(position);
    let memory =
        physical_memory_bytes() / 100 * u64::from(shard.config.access_message_in_memory_max_ratio);
    if behind > memory {
        1
    } else {
        0
    }
}

/// Physical memory of the host, bytes.
pub fn physical_memory_bytes() -> u64 {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page) =
        unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    (pages.max(0) as u64).saturating_mul(page.max(0) as u64)
}

/// Runs a [`ReplicaRequest`] on the owner shard. Appends are placed here, in arrival
/// order (the inbox calls this without yielding); waits run in spawned tasks.
pub fn on_shard(shard: &Rc<Shard>, request: ReplicaRequest) {
    match request {
        ReplicaRequest::Positions { reply } => {
            let mut out: Vec<(u32, ReplicaPosition)> =
                shard.logs.iter().map(|(&log, store)| (log, store.replica_position())).collect();
            out.sort_by_key(|(log, _)| *log);
            let _ = reply.send(out);
        }
        ReplicaRequest::Read { log, position, max_bytes, wait_ms, appended, reply } => {
            let Some(store) = shard.logs.get(&log).cloned() else {
                let _ = reply.send(Err(format!("log {log} is not owned by shard {}", shard.id)));
                return;
            };
            glommio::spawn_local(async move {
                let wait = Duration::from_millis(wait_ms);
                let span = if appended {
                    store.read_raw_appended(position, max_bytes, wait).await
                } else {
                    store.read_raw(position, max_bytes, wait).await
                };
                let _ = reply.send(span.map_err(|e| e.to_string()));
            })
            .detach();
        }
        ReplicaRequest::Append { log, position, bytes, reply } => {
            append(shard, log, position, bytes, reply);
        }
        ReplicaRequest::StartAt { log, position, reply } => {
            let result = match shard.logs.get(&log) {
                Some(store) => store.start_replica_at(position).map_err(|e| e.to_string()),
                None => Err(format!("log {log} is not owned by shard {}", shard.id)),
            };
            let _ = reply.send(result);
        }
        ReplicaRequest::Truncate { log, position, reply } => {
            let Some(store) = shard.logs.get(&log).cloned() else {
                let _ = reply.send(Err(format!("log {log} is not owned by shard {}", shard.id)));
                return;
            };
            glommio::spawn_local(async move {
                let result = store.truncate_replica(position).await;
                let _ = reply.send(result.map(|_| ()).map_err(|e| e.to_string()));
            })
            .detach();
        }
        ReplicaRequest::Metadata { update, reply } => {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let _ = reply.send(feed::apply(&shard, update).await);
            })
            .detach();
        }
        ReplicaRequest::SetWritable { writable, reply } => {
            for store in shard.logs.values() {
                store.set_writable(writable);
            }
            let _ = reply.send(());
        }
        ReplicaRequest::MasterLost => {
            shard.replica.metadata_in_band.set(false);
            if shard.config.ha_master_address.is_none()
                && shard.replica.master_addr.borrow_mut().take().is_some()
            {
                if let Some(zero) = shard.zero.as_ref() {
                    zero.register_kick.notify();
                }
            }
        }
        ReplicaRequest::Progress { log, slave, slave_addr, acked } => {
            let mut logs = shard.replica.logs.borrow_mut();
            let slaves = logs.entry(log).or_default();
            match acked {
                Some(position) => {
                    let entry = slaves.acked.entry(slave).or_insert_with(|| (slave_addr, 0));
                    entry.1 = entry.1.max(position);
                }
                None => {
                    slaves.acked.remove(&slave);
                }
            }
            // Wake the sends a slave now holds; every send when the slaves changed.
            let best = if acked.is_some() { slaves.best() } else { None };
            let waiters = std::mem::take(&mut slaves.waiters);
            let (ready, waiting): (Vec<_>, Vec<_>) =
                waiters.into_iter().partition(|(end, _)| !matches!(best, Some(b) if *end > b));
            slaves.waiters = waiting;
            drop(logs);
            for (_, waker) in ready {
                waker.wake();
            }
        }
    }
}

fn append(
    shard: &Rc<Shard>,
    log: u32,
    position: u64,
    bytes: Bytes,
    reply: flume::Sender<Result<(u32, u64, usize), String>>,
) {
    let Some(store) = shard.logs.get(&log).cloned() else {
        let _ = reply.send(Err(format!("log {log} is not owned by shard {}", shard.id)));
        return;
    };
    let len = bytes.len();
    let placed = match store.place_replicated(position, bytes) {
        Ok(p) => p,
        Err(e) => {
            let _ = reply.send(Err(e.to_string()));
            return;
        }
    };
    shard.replica.records_replicated.set(shard.replica.records_replicated.get() + placed.records);
    {
        let mut polls = shard.long_poll.borrow_mut();
        for (topic, queue_id) in &placed.queues {
            polls.notify(topic, *queue_id);
        }
    }
    glommio::spawn_local(async move {
        let result = store.wait_replicated(placed.end).await;
        let _ = reply.send(result.map(|()| (log, placed.end, len)).map_err(|e| e.to_string()));
    })
    .detach();
}

/// Sends `request` to the owner shard of `log`.
///
/// # Errors
/// The shard is gone.
pub async fn to_owner(
    peers: &[flume::Sender<ShardMsg>],
    log: u32,
    request: ReplicaRequest,
) -> Result<(), String> {
    let owner = crate::shard::shard_of_log(log, peers.len());
    peers[owner].send_async(ShardMsg::Replica(request)).await.map_err(|_| "shard gone".to_string())
}

/// Sets every log of every shard writable or not ([`ReplicaRequest::SetWritable`]).
///
/// # Errors
/// A shard is gone.
pub async fn set_writable(peers: &[flume::Sender<ShardMsg>], writable: bool) -> Result<(), String> {
    for peer in peers {
        let (tx, rx) = flume::bounded(1);
        let msg = ShardMsg::Replica(ReplicaRequest::SetWritable { writable, reply: tx });
        peer.send_async(msg).await.map_err(|_| "shard gone".to_string())?;
        rx.recv_async().await.map_err(|_| "shard gone".to_string())?;
    }
    Ok(())
}

/// Where every log of the broker stands, asked of each shard.
///
/// # Errors
/// A shard is gone.
pub async fn positions(peers: &[flume::Sender<ShardMsg>]) -> Result<Vec<ReplicaPosition>, String> {
    let mut all = Vec::new();
    for peer in peers {
        let (tx, rx) = flume::bounded(1);
        let msg = ShardMsg::Replica(ReplicaRequest::Positions { reply: tx });
        peer.send_async(msg).await.map_err(|_| "shard gone".to_string())?;
        all.extend(rx.recv_async().await.map_err(|_| "shard gone".to_string())?);
    }
    all.sort_by_key(|(log, _)| *log);
    for (index, (log, _)) in all.iter().enumerate() {
        if *log as usize != index {
            return Err(format!("log {index} has no owner"));
        }
    }
    Ok(all.into_iter().map(|(_, p)| p).collect())
}
