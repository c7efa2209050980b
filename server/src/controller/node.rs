//! The controller's Raft node, peer transport and request handlers.
//!
//! Lives on: the controller executor. One [`Node`] (a raft-rs `RawNode` over a `MemStorage`
//! mirrored by [`RaftLog`], the state machine, the leader-local heartbeat table, the
//! proposals waiting for their commit) behind one `RefCell` that no code holds across an
//! await. A ticker drives Raft every [`TICK_MS`]; peer messages arrive as one-way frames of
//! code [`RAFT_MESSAGE`] and leave through one connection per peer ([`PeerLink`], a bounded
//! queue: a full queue drops, Raft retransmits).
//!
//! Requests that change the state (1013, 1003 with a new address, 1002, 1001, 1011) are
//! checked against the leader's state, proposed as a [`Command`] and answered when the
//! entry is applied on this member (at most [`PROPOSAL_TIMEOUT_MS`] later). Reads (1012,
//! 1003, 1004, 1006) are answered from the leader's applied state. A member that is not the
//! leader answers those with `CONTROLLER_NOT_LEADER`. 1005 and 904 are served by every
//! member: every member keeps its own heartbeat table, so a new leader already knows who is
//! alive; it still judges no master dead during its first heartbeat timeout.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::AsyncWriteExt;
use glommio::net::{TcpListener, TcpStream};
use protobuf::Message as _;
use raft::prelude::{Entry, EntryType, Message, Snapshot};
use raft::storage::MemStorage;
use raft::{RawNode, StateRole, Storage};
use ramjet_proto::codes::{request, response};
use ramjet_proto::controller as c;
use ramjet_proto::frame::encode_frame;
use ramjet_proto::header::CommandHeader;
use ramjet_proto::text::clip_echo;
use ramjet_proto::{body, Frame, Header, SerializeType};
use tracing::{info, warn};

use super::raft_log::RaftLog;
use super::state::{elect, Applied, Command, ControllerState, Liveness, GROUPS_MAX};
use super::ControllerConfig;
use crate::clock::now_ms;
use crate::net::connection::{accept_loop, ConnectionHandle, Response, Service};

/// Private request code of a Raft message between controller members (one-way; body: the
/// raft-rs `eraftpb.Message`, protobuf). Not a RocketMQ code.
pub const RAFT_MESSAGE: i32 = 1_100_001;
/// Raft tick.
pub const TICK_MS: u64 = 100;
/// Ticks without a leader's heartbeat before a follower campaigns (randomized up to 2x).
pub const ELECTION_TICKS: usize = 10;
/// Ticks between a leader's heartbeats.
pub const HEARTBEAT_TICKS: usize = 2;
/// How long a proposer waits for its entry to apply.
pub const PROPOSAL_TIMEOUT_MS: u64 = 5_000;
/// Most proposals waiting at once (more: `SYSTEM_BUSY`).
pub const PENDING_MAX: usize = 1_024;
/// Messages queued per peer link before new ones are dropped.
pub const PEER_QUEUE_MAX: usize = 1_024;
/// Largest Raft message payload per append (raft-rs `max_size_per_msg`).
pub const RAFT_MSG_BYTES_MAX: u64 = 1 << 20;
/// Applied entries between two compactions of the log (snapshot + rewrite).
pub const COMPACT_EVERY_ENTRIES: u64 = 10_000;
/// Most broker names one GET_SYNC_STATE_DATA may ask for.
pub const SYNC_STATE_NAMES_MAX: usize = GROUPS_MAX;
/// How often the leader looks for dead masters.
pub const SCAN_INTERVAL_MS: u64 = 200;

/// What the controller shows on `/metrics` (shared with the NameServer's executor).
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// 1 when this member is the Raft leader.
    pub leader: bool,
    /// Raft term.
    pub term: u64,
    /// Per group: (broker name, masterEpoch, syncStateSet size).
    pub groups: Vec<(String, i32, usize)>,
}

/// Shared gauges: the controller writes, the metrics page reads.
pub type SharedGauges = std::sync::Arc<std::sync::Mutex<Gauges>>;

/// The controller's rows of `/metrics` (Prometheus text): role, term, and per group the
/// master epoch and the in-sync set size (groups are bounded by [`GROUPS_MAX`]).
pub fn render_gauges(gauges: &SharedGauges) -> String {
    let g = match gauges.lock() {
        Ok(g) => g.clone(),
        Err(_) => return String::new(),
    };
    let mut out = String::new();
    out.push_str("# HELP ramjet_controller_leader 1 when this controller member is the Raft leader, else 0 (follower or candidate).\n");
    out.push_str("# TYPE ramjet_controller_leader gauge\n");
    out.push_str(&format!("ramjet_controller_leader {}\n", u8::from(g.leader)));
    out.push_str("# HELP ramjet_controller_term The controller's Raft term.\n");
    out.push_str("# TYPE ramjet_controller_term gauge\n");
    out.push_str(&format!("ramjet_controller_term {}\n", g.term));
    out.push_str("# HELP ramjet_controller_master_epoch Master epoch per broker group.\n");
    out.push_str("# TYPE ramjet_controller_master_epoch gauge\n");
    for (name, epoch, _) in &g.groups {
        out.push_str(&format!(
            "ramjet_controller_master_epoch{{broker=\"{}\"}} {epoch}\n",
            label(name)
        ));
    }
    out.push_str(
        "# HELP ramjet_controller_sync_state_set_size In-sync replicas per broker group.\n",
    );
    out.push_str("# TYPE ramjet_controller_sync_state_set_size gauge\n");
    for (name, _, size) in &g.groups {
        out.push_str(&format!(
            "ramjet_controller_sync_state_set_size{{broker=\"{}\"}} {size}\n",
            label(name)
        ));
    }
    out
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One member's heartbeat facts.
#[derive(Debug, Clone)]
struct Beat {
    last_ms: u64,
    timeout_ms: u64,
    live: Liveness,
}

struct Inner {
    raw: RawNode<CtrlStorage>,
    log: RaftLog,
    state: ControllerState,
    applied: u64,
    last_compact: u64,
    pending: HashMap<u64, flume::Sender<Applied>>,
    next_seq: u64,
    beats: HashMap<(String, i64), Beat>,
    leader_since_ms: Option<u64>,
    failed: bool,
}

/// The controller member.
pub struct Node {
    cfg: ControllerConfig,
    raft_id: u64,
    inner: RefCell<Inner>,
    links: HashMap<u64, PeerLink>,
    gauges: SharedGauges,
}

/// A queue of messages to one peer and the task that sends them.
struct PeerLink {
    tx: flume::Sender<Message>,
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl Node {
    /// Opens the store, replays the log and builds the Raft node.
    ///
    /// # Errors
    /// The store cannot be opened, the peers are misconfigured, or Raft refuses the config.
    pub fn open(cfg: ControllerConfig, gauges: SharedGauges) -> Result<Rc<Node>, String> {
        let (raft_id, _) = cfg.self_member()?;
        let voters: Vec<u64> = (1..=cfg.peers.len() as u64).collect();
        let storage = MemStorage::new_with_conf_state((voters, vec![]));
        let (log, replayed) = RaftLog::open(&cfg.store_path, &storage)
            .map_err(|e| format!("controller store {}: {e}", cfg.store_path.display()))?;
        if replayed.cut_bytes > 0 {
            warn!(bytes = replayed.cut_bytes, "controller log: torn tail cut off");
        }
        let mut state = ControllerState::default();
        let mut applied = 0;
        if let Some(snap) = &replayed.snapshot {
            state = serde_json::from_slice(&snap.data)
                .map_err(|e| format!("controller snapshot does not parse: {e}"))?;
            applied = snap.get_metadata().index;
        }
        let config = raft::Config {
            id: raft_id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            applied,
            max_size_per_msg: RAFT_MSG_BYTES_MAX,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        let storage =
            CtrlStorage { mem: storage, snap: Rc::new(RefCell::new(replayed.snapshot.clone())) };
        let raw = RawNode::new(&config, storage, &logger()).map_err(|e| e.to_string())?;
        info!(
            id = %cfg.self_id,
            raft_id,
            records = replayed.records,
            groups = state.groups.len(),
            "controller store opened"
        );
        let mut links = HashMap::new();
        for (i, (_, addr)) in cfg.peers.iter().enumerate() {
            let id = i as u64 + 1;
            if id != raft_id {
                let (tx, rx) = flume::bounded(PEER_QUEUE_MAX);
                glommio::spawn_local(peer_sender(addr.clone(), rx)).detach();
                links.insert(id, PeerLink { tx });
            }
        }
        Ok(Rc::new(Node {
            cfg,
            raft_id,
            inner: RefCell::new(Inner {
                raw,
                log,
                state,
                applied,
                last_compact: applied,
                pending: HashMap::new(),
                next_seq: 1,
                beats: HashMap::new(),
                leader_since_ms: None,
                failed: false,
            }),
            links,
            gauges,
        }))
    }

    fn is_leader(&self) -> bool {
        self.inner.borrow().raw.raft.state == StateRole::Leader
    }

    fn leader(&self) -> Option<(String, String)> {
        let id = self.inner.borrow().raw.raft.leader_id;
        (id >= 1).then(|| self.cfg.peers.get(id as usize - 1).cloned()).flatten()
    }

    /// Sends messages to their peers (drops when a queue is full).
    fn send(&self, msgs: Vec<Message>) {
        for m in msgs {
            if let Some(link) = self.links.get(&m.to) {
                let _ = link.tx.try_send(m);
            }
        }
    }

    /// Processes Raft's Ready: persists (one write, one fdatasync), sends, applies.
    fn on_ready(&self) {
        let mut notify: Vec<String> = Vec::new();
        {
            let mut guard = self.inner.borrow_mut();
            let inner = &mut *guard;
            if inner.failed || !inner.raw.has_ready() {
                return;
            }
            let mut ready = inner.raw.ready();
            self.send(ready.take_messages());
            let snap = ready.snapshot().clone();
            let persisted = (|| -> std::io::Result<()> {
                if snap.get_metadata().index > 0 {
                    inner.log.push_snapshot(&snap)?;
                }
                inner.log.push_entries(ready.entries())?;
                if let Some(hs) = ready.hs() {
                    inner.log.push_hard_state(hs)?;
                }
                inner.log.sync()
            })();
            if let Err(e) = persisted {
                // Nothing may be acknowledged: stop driving Raft (the member goes silent,
                // the others carry on) and say so.
                warn!(error = %e, "controller log write failed; this member stops");
                inner.failed = true;
                return;
            }
            if snap.get_metadata().index > 0 {
                match serde_json::from_slice::<ControllerState>(&snap.data) {
                    Ok(s) => {
                        inner.state = s;
                        inner.applied = snap.get_metadata().index;
                        inner.last_compact = inner.applied;
                    }
                    Err(e) => warn!(error = %e, "controller snapshot from leader does not parse"),
                }
                if let Err(e) = inner.raw.mut_store().wl().apply_snapshot(snap.clone()) {
                    warn!(error = %e, "controller snapshot not applied");
                }
                *inner.raw.store().snap.borrow_mut() = Some(snap);
            }
            let committed = ready.take_committed_entries();
            self.apply_entries(inner, committed, &mut notify);
            if let Err(e) = inner.raw.mut_store().wl().append(ready.entries()) {
                warn!(error = %e, "controller entries not appended");
            }
            if let Some(hs) = ready.hs() {
                inner.raw.mut_store().wl().set_hardstate(hs.clone());
            }
            self.send(ready.take_persisted_messages());
            let mut light = inner.raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                inner.raw.mut_store().wl().mut_hard_state().set_commit(commit);
            }
            self.send(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply_entries(inner, committed, &mut notify);
            inner.raw.advance_apply();
            self.maybe_compact(inner);
            let leader = inner.raw.raft.state == StateRole::Leader;
            match (leader, inner.leader_since_ms) {
                (true, None) => {
                    inner.leader_since_ms = Some(now_ms());
                    info!(term = inner.raw.raft.term, "controller: this member is the leader");
                }
                (false, Some(_)) => inner.leader_since_ms = None,
                _ => {}
            }
        }
        for broker_name in notify {
            self.notify_role_changed(&broker_name);
        }
        self.update_gauges();
    }

    fn apply_entries(&self, inner: &mut Inner, entries: Vec<Entry>, notify: &mut Vec<String>) {
        for e in entries {
            inner.applied = e.index;
            if e.get_entry_type() != EntryType::EntryNormal || e.data.is_empty() {
                continue;
            }
            let result = match serde_json::from_slice::<Command>(&e.data) {
                Ok(cmd) => {
                    let r = inner.state.apply(&cmd);
                    if r.code == response::SUCCESS
                        && matches!(cmd, Command::ElectMaster { .. })
                        && inner.raw.raft.state == StateRole::Leader
                    {
                        notify.push(cmd.broker_name().to_string());
                    }
                    r
                }
                Err(err) => Applied { code: response::SYSTEM_ERROR, remark: err.to_string() },
            };
            if e.context.len() == 16 {
                let mut node = [0u8; 8];
                let mut seq = [0u8; 8];
                node.copy_from_slice(&e.context[..8]);
                seq.copy_from_slice(&e.context[8..]);
                if u64::from_le_bytes(node) == self.raft_id {
                    if let Some(tx) = inner.pending.remove(&u64::from_le_bytes(seq)) {
                        let _ = tx.try_send(result);
                    }
                }
            }
        }
    }

    /// Every [`COMPACT_EVERY_ENTRIES`] applied entries: snapshot the state, compact the
    /// in-memory log and rewrite the file from the snapshot.
    fn maybe_compact(&self, inner: &mut Inner) {
        if inner.applied < inner.last_compact + COMPACT_EVERY_ENTRIES {
            return;
        }
        let applied = inner.applied;
        let Ok(data) = serde_json::to_vec(&inner.state) else { return };
        let store = inner.raw.store().clone();
        let Ok(term) = store.term(applied) else { return };
        let mut snap = Snapshot { data: data.into(), ..Default::default() };
        snap.mut_metadata().index = applied;
        snap.mut_metadata().term = term;
        snap.mut_metadata().set_conf_state(inner.raw.raft.prs().conf().to_conf_state());
        let last = store.last_index().unwrap_or(applied);
        let after = store
            .entries(applied + 1, last + 1, None, raft::GetEntriesContext::empty(false))
            .unwrap_or_default();
        let hs = store.initial_state().map(|s| s.hard_state).unwrap_or_default();
        if let Err(e) = inner.log.rewrite(&snap, &hs, &after) {
            warn!(error = %e, "controller log compaction failed; the log keeps growing");
            inner.last_compact = applied;
            return;
        }
        let mut core = store.wl();
        let _ = core.compact(applied);
        inner.last_compact = applied;
        drop(core);
        *store.snap.borrow_mut() = Some(snap);
        info!(applied, bytes = inner.log.len(), "controller log compacted");
    }

    fn update_gauges(&self) {
        let inner = self.inner.borrow();
        let g = Gauges {
            leader: inner.raw.raft.state == StateRole::Leader,
            term: inner.raw.raft.term,
            groups: inner
                .state
                .groups
                .iter()
                .map(|(n, g)| (n.clone(), g.master_epoch, g.sync_state_set.len()))
                .collect(),
        };
        if let Ok(mut shared) = self.gauges.lock() {
            *shared = g;
        }
    }

    /// Proposes `cmd` and waits until it applies here (or fails).
    async fn propose(&self, cmd: &Command) -> Applied {
        let rx = {
            let mut inner = self.inner.borrow_mut();
            if inner.raw.raft.state != StateRole::Leader {
                return Applied {
                    code: response::CONTROLLER_NOT_LEADER,
                    remark: c::NOT_LEADER_REMARK.into(),
                };
            }
            if inner.pending.len() >= PENDING_MAX {
                return Applied {
                    code: response::SYSTEM_BUSY,
                    remark: format!("{PENDING_MAX} controller proposals in flight"),
                };
            }
            let data = match serde_json::to_vec(cmd) {
                Ok(d) => d,
                Err(e) => return Applied { code: response::SYSTEM_ERROR, remark: e.to_string() },
            };
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let mut context = self.raft_id.to_le_bytes().to_vec();
            context.extend_from_slice(&seq.to_le_bytes());
            if let Err(e) = inner.raw.propose(context, data) {
                return Applied { code: response::CONTROLLER_NOT_LEADER, remark: e.to_string() };
            }
            let (tx, rx) = flume::bounded(1);
            inner.pending.insert(seq, tx);
            (rx, seq)
        };
        self.on_ready();
        let (rx, seq) = rx;
        let timer = async {
            glommio::timer::sleep(Duration::from_millis(PROPOSAL_TIMEOUT_MS)).await;
            None
        };
        let got = futures_lite::future::or(async { rx.recv_async().await.ok() }, timer).await;
        match got {
            Some(a) => a,
            None => {
                self.inner.borrow_mut().pending.remove(&seq);
                Applied {
                    code: response::CONTROLLER_JRAFT_INTERNAL_ERROR,
                    remark: "the proposal did not commit in time".into(),
                }
            }
        }
    }

    /// Whether `id` of `broker_name` is alive now (its last heartbeat within its timeout).
    fn liveness(&self, inner: &Inner, broker_name: &str, id: i64, now: u64) -> Option<Liveness> {
        inner
            .beats
            .get(&(broker_name.to_string(), id))
            .filter(|b| now.saturating_sub(b.last_ms) <= b.timeout_ms)
            .map(|b| b.live)
    }

    /// Within the first heartbeat timeout of a leadership no master counts as dead.
    fn in_grace(&self, inner: &Inner, now: u64) -> bool {
        inner
            .leader_since_ms
            .is_none_or(|since| now.saturating_sub(since) < self.cfg.heartbeat_timeout_ms)
    }

    /// Decides an election for `broker_name` (leader-local): the command, or why none.
    fn decide(&self, broker_name: &str, designated: Option<i64>) -> Result<Command, Applied> {
        let inner = self.inner.borrow();
        let now = now_ms();
        let Some(g) = inner.state.groups.get(broker_name) else {
            return Err(Applied {
                code: response::CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                remark: "Broker hasn't been registered".into(),
            });
        };
        let alive = |id: i64| self.liveness(&inner, broker_name, id, now);
        let all: BTreeSet<i64> = g.members.keys().copied().collect();
        let new_master = if g.first_time_for_elect() {
            designated.filter(|id| g.members.contains_key(id))
        } else if let Some(id) = designated {
            let allowed = g.sync_state_set.contains(&id) || self.cfg.enable_elect_unclean_master;
            (allowed && alive(id).is_some()).then_some(id)
        } else {
            elect(&g.sync_state_set, g.master, alive).or_else(|| {
                if self.cfg.enable_elect_unclean_master {
                    elect(&all, g.master, alive)
                } else {
                    None
                }
            })
        };
        if new_master.is_some() && new_master == g.master {
            return Err(Applied {
                code: response::CONTROLLER_MASTER_STILL_EXIST,
                remark: format!(
                    "The old master {} is still alive, not need to elect new master for broker {}",
                    g.master.unwrap_or(-1),
                    clip_echo(broker_name)
                ),
            });
        }
        Ok(Command::ElectMaster {
            broker_name: broker_name.to_string(),
            new_master,
            seen_master_epoch: g.master_epoch,
            seen_sync_state_set_epoch: g.sync_state_set_epoch,
        })
    }

    /// The leader's scan: a group whose master is silent gets a new one (or none).
    async fn scan(&self) {
        let work: Vec<String> = {
            let inner = self.inner.borrow();
            let now = now_ms();
            if inner.raw.raft.state != StateRole::Leader || self.in_grace(&inner, now) {
                return;
            }
            inner
                .state
                .groups
                .iter()
                .filter(|(name, g)| match g.master {
                    Some(m) => self.liveness(&inner, name, m, now).is_none(),
                    None => !g.first_time_for_elect(),
                })
                .map(|(name, _)| name.clone())
                .collect()
        };
        for name in work {
            let cmd = match self.decide(&name, None) {
                Ok(cmd) => cmd,
                Err(_) => continue,
            };
            // A group without a master that still finds no candidate: nothing to write.
            let no_master_yet =
                self.inner.borrow().state.groups.get(&name).is_some_and(|g| g.master.is_none());
            if matches!(cmd, Command::ElectMaster { new_master: None, .. }) && no_master_yet {
                continue;
            }
            let r = self.propose(&cmd).await;
            info!(group = %name, code = r.code, remark = %r.remark, "controller: master election");
        }
    }

    /// NOTIFY_BROKER_ROLE_CHANGED (1008) to every member of the group, best effort.
    fn notify_role_changed(&self, broker_name: &str) {
        if !self.cfg.notify_broker_role_changed {
            return;
        }
        let inner = self.inner.borrow();
        let Some(g) = inner.state.groups.get(broker_name) else { return };
        let header = c::NotifyBrokerRoleChangedRequestHeader {
            master_address: g.master_address().map(str::to_string),
            master_epoch: Some(g.master_epoch),
            sync_state_set_epoch: Some(g.sync_state_set_epoch),
            master_broker_id: g.master,
        };
        let body = body::to_json(&c::ElectMasterResponseBody {
            broker_member_group: Some(g.member_group(broker_name)),
            sync_state_set: g.sync_state_set.iter().copied().collect(),
        });
        for m in g.members.values() {
            let mut h =
                Header::request(request::NOTIFY_BROKER_ROLE_CHANGED, 1, SerializeType::Json);
            header.encode(&mut h.ext_fields);
            h.set_oneway();
            let mut out = BytesMut::new();
            if encode_frame(&h, &body, &mut out).is_err() {
                continue;
            }
            let addr = m.address.clone();
            glommio::spawn_local(async move {
                let send = async {
                    let mut s = TcpStream::connect(addr.as_str()).await.ok()?;
                    s.write_all(&out).await.ok()?;
                    s.flush().await.ok()
                };
                let timer = async {
                    glommio::timer::sleep(Duration::from_millis(1_000)).await;
                    None
                };
                let _ = futures_lite::future::or(send, timer).await;
            })
            .detach();
        }
    }
}

/// The Raft storage: raft-rs's `MemStorage` (mirrored on disk by [`RaftLog`]) plus the
/// last snapshot with its data (the state machine's JSON), which `MemStorage` does not keep
/// and a follower behind the compacted log needs.
#[derive(Clone)]
pub struct CtrlStorage {
    mem: MemStorage,
    snap: Rc<RefCell<Option<Snapshot>>>,
}

impl std::ops::Deref for CtrlStorage {
    type Target = MemStorage;
    fn deref(&self) -> &MemStorage {
        &self.mem
    }
}

impl Storage for CtrlStorage {
    fn initial_state(&self) -> raft::Result<raft::RaftState> {
        self.mem.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: raft::GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        match self.snap.borrow().as_ref() {
            Some(s) if s.get_metadata().index >= request_index => Ok(s.clone()),
            Some(_) => Err(raft::Error::Store(raft::StorageError::SnapshotTemporarilyUnavailable)),
            None => self.mem.snapshot(request_index, to),
        }
    }
}

/// Sends queued messages to one peer over one connection, reconnecting after failures.
async fn peer_sender(addr: String, rx: flume::Receiver<Message>) {
    let mut conn: Option<TcpStream> = None;
    let mut opaque = 0i32;
    while let Ok(msg) = rx.recv_async().await {
        let Ok(payload) = msg.write_to_bytes() else { continue };
        opaque = opaque.wrapping_add(1);
        let mut h = Header::request(RAFT_MESSAGE, opaque, SerializeType::Json);
        h.set_oneway();
        let mut out = BytesMut::new();
        if encode_frame(&h, &payload, &mut out).is_err() {
            continue;
        }
        if conn.is_none() {
            let connect = async { TcpStream::connect(addr.as_str()).await.ok() };
            let timer = async {
                glommio::timer::sleep(Duration::from_millis(500)).await;
                None
            };
            conn = futures_lite::future::or(connect, timer).await;
            if let Some(s) = &conn {
                let _ = s.set_nodelay(true);
            } else {
                // Peer down: drop what is queued (Raft resends) and retry on the next one.
                while rx.try_recv().is_ok() {}
                glommio::timer::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        if let Some(s) = conn.as_mut() {
            if s.write_all(&out).await.is_err() {
                conn = None;
            }
        }
    }
}

/// The controller's request handler (brokers, admins, peers).
pub struct ControllerService {
    node: Rc<Node>,
}

fn reply(h: &Header, code: i32, remark: &str) -> Response {
    let mut r = Header::response_to(h, code);
    if !remark.is_empty() {
        r = r.with_remark(remark.to_string());
    }
    Response::new(r)
}

fn not_leader(h: &Header) -> Response {
    reply(h, response::CONTROLLER_NOT_LEADER, c::NOT_LEADER_REMARK)
}

fn with_header<H: CommandHeader>(h: &Header, code: i32, remark: &str, header: &H) -> Response {
    let mut r = reply(h, code, remark);
    header.encode(&mut r.header.ext_fields);
    r
}

impl ControllerService {
    async fn handle(self: Rc<Self>, frame: Frame) -> Option<Response> {
        let h = &frame.header;
        let node = &self.node;
        if h.code == RAFT_MESSAGE {
            if let Ok(m) = Message::parse_from_bytes(&frame.body) {
                let known = m.from >= 1 && m.from as usize <= node.cfg.peers.len();
                if known && m.to == node.raft_id {
                    let stepped = node.inner.borrow_mut().raw.step(m);
                    if let Err(e) = stepped {
                        warn!(error = %e, "controller: raft message refused");
                    }
                    node.on_ready();
                }
            }
            return None;
        }
        let result = match h.code {
            request::CONTROLLER_GET_METADATA_INFO => Ok(self.metadata(h)),
            request::BROKER_HEARTBEAT => self.heartbeat(h).await,
            request::CONTROLLER_GET_NEXT_BROKER_ID => self.next_broker_id(h),
            request::CONTROLLER_APPLY_BROKER_ID => self.apply_broker_id(h).await,
            request::CONTROLLER_REGISTER_BROKER => self.register(h).await,
            request::CONTROLLER_ELECT_MASTER => self.elect_master(h).await,
            request::CONTROLLER_ALTER_SYNC_STATE_SET => self.alter(h, &frame.body).await,
            request::CONTROLLER_GET_REPLICA_INFO => self.replica_info(h),
            request::CONTROLLER_GET_SYNC_STATE_DATA => Ok(self.sync_state_data(h, &frame.body)),
            request::CLEAN_BROKER_DATA => self.clean(h).await,
            code => Ok(reply(
                h,
                response::REQUEST_CODE_NOT_SUPPORTED,
                &format!(" request type {code} not supported"),
            )),
        };
        let resp = result.unwrap_or_else(|e| reply(h, response::SYSTEM_ERROR, &e.to_string()));
        (!h.is_oneway()).then_some(resp)
    }

    fn metadata(&self, h: &Header) -> Response {
        let node = &self.node;
        let leader = node.leader();
        let header = c::GetMetaDataResponseHeader {
            group: Some(node.cfg.group.clone()),
            controller_leader_id: leader.as_ref().map(|l| l.0.clone()),
            controller_leader_address: leader.map(|l| l.1),
            is_leader: node.is_leader(),
            peers: Some(node.cfg.peers_text.clone()),
        };
        with_header(h, response::SUCCESS, "", &header)
    }

    async fn heartbeat(&self, h: &Header) -> Result<Response, ramjet_proto::FieldError> {
        let req = c::BrokerHeartbeatRequestHeader::decode(&h.ext_fields)?;
        let Some(id) = req.broker_id else {
            return Ok(reply(
                h,
                response::CONTROLLER_INVALID_REQUEST,
                "Heart beat with empty brokerId",
            ));
        };
        let node = &self.node;
        let first_election = {
            let mut inner = node.inner.borrow_mut();
            let member = inner
                .state
                .groups
                .get(&req.broker_name)
                .filter(|g| g.members.contains_key(&id))
                .map(|g| g.first_time_for_elect());
            // Only members are remembered, so the table is bounded by the groups' bounds.
            if let Some(first) = member {
                inner.beats.insert(
                    (req.broker_name.clone(), id),
                    Beat {
                        last_ms: now_ms(),
                        timeout_ms: req
                            .heartbeat_timeout_mills
                            .and_then(|t| u64::try_from(t).ok())
                            .filter(|t| *t > 0)
                            .unwrap_or(node.cfg.heartbeat_timeout_ms),
                        live: Liveness {
                            epoch: req.epoch.unwrap_or(0),
                            max_offset: req.max_offset.unwrap_or(0),
                            election_priority: req.election_priority.unwrap_or(0),
                        },
                    },
                );
                first && inner.raw.raft.state == StateRole::Leader
            } else {
                false
            }
        };
        if first_election {
            // The first member heard of a group that never had a master becomes it.
            if let Ok(cmd) = node.decide(&req.broker_name, Some(id)) {
                let r = node.propose(&cmd).await;
                info!(group = %req.broker_name, id, code = r.code, "controller: first master");
            }
        }
        Ok(reply(h, response::SUCCESS, "Heart beat success"))
    }

    fn next_broker_id(&self, h: &Header) -> Result<Response, ramjet_proto::FieldError> {
        let req = c::GetNextBrokerIdRequestHeader::decode(&h.ext_fields)?;
        if !self.node.is_leader() {
            return Ok(not_leader(h));
        }
        let next = self
            .node
            .inner
            .borrow()
            .state
            .groups
            .get(&req.broker_name)
            .map_or(c::FIRST_BROKER_CONTROLLER_ID, |g| g.next_broker_id());
        let header = c::GetNextBrokerIdResponseHeader {
            cluster_name: Some(req.cluster_name),
            broker_name: Some(req.broker_name),
            next_broker_id: Some(next),
        };
        Ok(with_header(h, response::SUCCESS, "", &header))
    }

    async fn apply_broker_id(&self, h: &Header) -> Result<Response, ramjet_proto::FieldError> {
        let req = c::ApplyBrokerIdRequestHeader::decode(&h.ext_fields)?;
        if !self.node.is_leader() {
            return Ok(not_leader(h));
        }
        let cmd = Command::ApplyBrokerId {
            cluster: req.cluster_name.clone(),
            broker_name: req.broker_name.clone(),
            broker_id: req.applied_broker_id,
            check_code: req.register_check_code,
        };
        let checked = self.node.inner.borrow().state.check(&cmd);
        let r =
            if checked.code == response::SUCCESS { self.node.propose(&cmd).await } else { checked };
        let header = c::ApplyBrokerIdResponseHeader {
            cluster_name: Some(req.cluster_name),
            broker_name: Some(req.broker_name),
        };
        Ok(with_header(h, r.code, &r.remark, &header))
    }

    async fn register(&self, h: &Header) -> Result<Response, ramjet_proto::FieldError> {
        let req = c::RegisterBrokerToControllerRequestHeader::decode(&h.ext_fields)?;
        let node = &self.node;
        if !node.is_leader() {
            return Ok(not_leader(h));
        }
        let address_changed = {
            let inner = node.inner.borrow();
            let Some(g) = inner.state.groups.get(&req.broker_name) else {
                return Ok(reply(
                    h,
                    response::CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                    &format!(
                        "Broker-set: {} hasn't been registered in controller",
                        clip_echo(&req.broker_name)
                    ),
                ));
            };
            let Some(m) = g.members.get(&req.broker_id) else {
                return Ok(reply(
                    h,
                    response::CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                    &format!(
                        "BrokerId: {} hasn't been registered in broker-set: {}",
                        req.broker_id,
                        clip_echo(&req.broker_name)
                    ),
                ));
            };
            m.address != req.broker_address
        };
        if address_changed {
            let cmd = Command::UpdateAddress {
                broker_name: req.broker_name.clone(),
                broker_id: req.broker_id,
                address: req.broker_address.clone(),
            };
            let r = node.propose(&cmd).await;
            if r.code != response::SUCCESS {
                return Ok(reply(h, r.code, &r.remark));
            }
        }
        let inner = node.inner.borrow();
        let now = now_ms();
        let Some(g) = inner.state.groups.get(&req.broker_name) else {
            return Ok(reply(
                h,
                response::CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                "Broker hasn't been registered",
            ));
        };
        let master_alive = g.master.is_some_and(|m| {
            node.in_grace(&inner, now) || node.liveness(&inner, &req.broker_name, m, now).is_some()
        });
        let mut header = c::RegisterBrokerToControllerResponseHeader {
            cluster_name: Some(req.cluster_name),
            broker_name: Some(req.broker_name.clone()),
            ..Default::default()
        };
        if master_alive {
            header.master_broker_id = g.master;
            header.master_address = g.master_address().map(str::to_string);
            header.master_epoch = Some(g.master_epoch);
            header.sync_state_set_epoch = Some(g.sync_state_set_epoch);
        }
        let mut r = with_header(h, response::SUCCESS, "", &header);
        r.body = Bytes::from(body::to_json(&g.sync_state_body()));
        Ok(r)
    }

    fn elect_response(&self, h: &Header, broker_name: &str, code: i32, remark: &str) -> Response {
        let inner = self.node.inner.borrow();
        let Some(g) = inner.state.groups.get(broker_name) else {
            return reply(h, code, remark);
        };
        let header = c::ElectMasterResponseHeader {
            master_broker_id: g.master,
            master_address: g.master_address().map(str::to_string),
            master_epoch: Some(g.master_epoch),
            sync_state_set_epoch: Some(g.sync_state_set_epoch),
        };
        let mut r = with_header(h, code, remark, &header);
        r.body = Bytes::from(body::to_json(&c::ElectMasterResponseBody {
            broker_member_group: (code == response::SUCCESS).then(|| g.member_group(broker_name)),
            sync_state_set: g.sync_state_set.iter().copied().collect(),
        }));
        r
    }

    async fn elect_master(&self, h: &Header) -> Result<Response, ramjet_proto::FieldError> {
        let req = c::ElectMasterRequestHeader::decode(&h.ext_fields)?;
        let node = &self.node;
        if !node.is_leader() {
            return Ok(not_leader(h));
        }
        let designated = (req.broker_id != -1).then_some(req.broker_id);
        let first = node
            .inner
            .borrow()
            .state
            .groups
            .get(&req.broker_name)
            .is_some_and(|g| g.first_time_for_elect());
        let cmd = match node
            .decide(&req.broker_name, if req.designate_elect || first { designated } else { None })
        {
            Ok(cmd) => cmd,
            Err(a) => return Ok(self.elect_response(h, &req.broker_name, a.code, &a.remark)),
        };
        if matches!(cmd, Command::ElectMaster { new_master: None, .. }) && designated.is_some() {
            return Ok(reply(
                h,
                response::CONTROLLER_ELECT_MASTER_FAILED,
                "Failed to elect a new master",
            ));
        }
        let r = node.propose(&cmd).await;
        Ok(self.elect_response(h, &req.broker_name, r.code, &r.remark))
    }

    async fn alter(
        &self,
        h: &Header,
        body_bytes: &[u8],
    ) -> Result<Response, ramjet_proto::FieldError> {
        let req = c::AlterSyncStateSetRequestHeader::decode(&h.ext_fields)?;
        let node = &self.node;
        if !node.is_leader() {
            return Ok(not_leader(h));
        }
        let set: c::SyncStateSet = match body::from_json(body_bytes) {
            Ok(s) => s,
            Err(e) => return Ok(reply(h, response::CONTROLLER_INVALID_REQUEST, &e.to_string())),
        };
        if set.sync_state_set.len() > super::state::MEMBERS_PER_GROUP_MAX {
            return Ok(reply(
                h,
                response::CONTROLLER_INVALID_REPLICAS,
                "syncStateSet larger than a group",
            ));
        }
        let new_set: BTreeSet<i64> = set.sync_state_set.iter().copied().collect();
        {
            let inner = node.inner.borrow();
            let now = now_ms();
            if let Some(dead) = new_set
                .iter()
                .find(|id| node.liveness(&inner, &req.broker_name, **id, now).is_none())
            {
                let known = inner
                    .state
                    .groups
                    .get(&req.broker_name)
                    .is_some_and(|g| g.members.contains_key(dead));
                if known {
                    return Ok(reply(
                        h,
                        response::CONTROLLER_BROKER_NOT_ALIVE,
                        &format!("Rejecting alter syncStateSet request because the replicas {{{dead}}} don't alive"),
                    ));
                }
            }
        }
        let cmd = Command::AlterSyncStateSet {
            broker_name: req.broker_name.clone(),
            master_broker_id: req.master_broker_id,
            master_epoch: req.master_epoch,
            sync_state_set_epoch: set.sync_state_set_epoch,
            new_set,
        };
        let checked = node.inner.borrow().state.check(&cmd);
        let r = if checked.code == response::SUCCESS { node.propose(&cmd).await } else { checked };
        let inner = node.inner.borrow();
        let epoch = inner.state.groups.get(&req.broker_name).map_or(0, |g| g.sync_state_set_epoch);
        let mut resp = with_header(
            h,
            r.code,
            &r.remark,
            &c::AlterSyncStateSetResponseHeader { new_sync_state_set_epoch: epoch },
        );
        if r.code == response::SUCCESS {
            if let Some(g) = inner.state.groups.get(&req.broker_name) {
                resp.body = Bytes::from(body::to_json(&g.sync_state_body()));
            }
        }
        Ok(resp)
    }

    fn replica_info(&self, h: &Header) -> Result<Response, ramjet_proto::FieldError> {
        let req = c::GetReplicaInfoRequestHeader::decode(&h.ext_fields)?;
        if !self.node.is_leader() {
            return Ok(not_leader(h));
        }
        let inner = self.node.inner.borrow();
        let Some(g) = inner.state.groups.get(&req.broker_name) else {
            return Ok(reply(
                h,
                response::CONTROLLER_BROKER_METADATA_NOT_EXIST,
                "Broker metadata is not existed",
            ));
        };
        let header = c::GetReplicaInfoResponseHeader {
            master_broker_id: g.master,
            master_address: g.master_address().map(str::to_string),
            master_epoch: Some(g.master_epoch),
        };
        let mut r = with_header(h, response::SUCCESS, "", &header);
        r.body = Bytes::from(body::to_json(&g.sync_state_body()));
        Ok(r)
    }

    fn sync_state_data(&self, h: &Header, body_bytes: &[u8]) -> Response {
        if !self.node.is_leader() {
            return not_leader(h);
        }
        let names: Vec<String> = body::from_json(body_bytes).unwrap_or_default();
        if names.len() > SYNC_STATE_NAMES_MAX {
            return reply(h, response::CONTROLLER_INVALID_REQUEST, "too many broker names");
        }
        let inner = self.node.inner.borrow();
        let now = now_ms();
        let mut out = c::BrokerReplicasInfo::default();
        for name in names {
            let Some(g) = inner.state.groups.get(&name) else { continue };
            let ident = |id: i64, addr: &str| c::ReplicaIdentity {
                broker_name: name.clone(),
                broker_id: id,
                broker_address: addr.to_string(),
                alive: self.node.liveness(&inner, &name, id, now).is_some(),
            };
            let mut info = c::ReplicasInfo {
                master_broker_id: g.master,
                master_address: g.master_address().map(str::to_string),
                master_epoch: Some(g.master_epoch),
                sync_state_set_epoch: Some(g.sync_state_set_epoch),
                ..Default::default()
            };
            for (id, m) in &g.members {
                if g.sync_state_set.contains(id) {
                    info.in_sync_replicas.push(ident(*id, &m.address));
                } else {
                    info.not_in_sync_replicas.push(ident(*id, &m.address));
                }
            }
            out.replicas_info_table.insert(name.clone(), info);
        }
        let mut r = reply(h, response::SUCCESS, "");
        r.body = Bytes::from(body::to_json(&out));
        r
    }

    async fn clean(&self, h: &Header) -> Result<Response, ramjet_proto::FieldError> {
        let req = c::CleanControllerBrokerDataRequestHeader::decode(&h.ext_fields)?;
        let node = &self.node;
        if !node.is_leader() {
            return Ok(not_leader(h));
        }
        let ids: Option<BTreeSet<i64>> = match req.broker_controller_ids_to_clean.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let parsed: Result<BTreeSet<i64>, _> = text
                    .split(';')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().parse())
                    .collect();
                match parsed {
                    Ok(ids) => Some(ids),
                    Err(_) => {
                        return Ok(reply(
                            h,
                            response::CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
                            "brokerControllerIdsToClean is not a ;-list of ids",
                        ))
                    }
                }
            }
        };
        if !req.is_clean_living_broker {
            let inner = node.inner.borrow();
            let now = now_ms();
            let targets: Vec<i64> = match (&ids, inner.state.groups.get(&req.broker_name)) {
                (Some(ids), _) => ids.iter().copied().collect(),
                (None, Some(g)) => g.members.keys().copied().collect(),
                (None, None) => Vec::new(),
            };
            if let Some(id) = targets
                .iter()
                .find(|id| node.liveness(&inner, &req.broker_name, **id, now).is_some())
            {
                return Ok(reply(
                    h,
                    response::CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
                    &format!("broker {id} is still alive: set isCleanLivingBroker to clean it"),
                ));
            }
        }
        let cmd = Command::CleanBrokerData { broker_name: req.broker_name, ids };
        let r = node.propose(&cmd).await;
        Ok(reply(h, r.code, &r.remark))
    }
}

impl Service for ControllerService {
    fn call(
        self: Rc<Self>,
        frame: Frame,
        _conn: ConnectionHandle,
    ) -> Pin<Box<dyn Future<Output = Option<Response>>>> {
        Box::pin(self.handle(frame))
    }
}

/// Runs the controller on the current (controller) executor until `stop` resolves.
pub async fn run_controller(
    listener: TcpListener,
    cfg: ControllerConfig,
    gauges: SharedGauges,
    stop: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> Result<(), String> {
    let node = Node::open(cfg, gauges)?;
    node.update_gauges();
    ready();
    let service = Rc::new(ControllerService { node: node.clone() });
    let ticker = {
        let node = node.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_millis(TICK_MS)).await;
                node.inner.borrow_mut().raw.tick();
                node.on_ready();
            }
        })
    };
    let scanner = {
        let node = node.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_millis(SCAN_INTERVAL_MS)).await;
                node.scan().await;
            }
        })
    };
    futures_lite::future::or(accept_loop(&listener, service, "controller"), stop).await;
    drop(ticker);
    drop(scanner);
    Ok(())
}
