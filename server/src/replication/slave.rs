//! The slave side of replication: connect to the master's HA port, apply its WELCOME,
//! hand every DATA range to the owner shard of its log, ACK durable positions.
//!
//! Lives on: the replication shard of a SLAVE.
//!
//! The master's HA address is `haMasterAddress` when configured, else the last one the
//! NameServer returned on registration (shard 0 forwards it here). A session ends on any
//! error (a gap or mismatch found by the owner shard, a bad frame, silence from the
//! master for the housekeeping interval, a closed socket); the slave then reconnects
//! every [`RECONNECT_INTERVAL`], so a restarted master is followed from the slave's own
//! end, with no gap and no duplicate bytes.
//!
//! With `haAuthSecret` the slave sends a nonce in HELLO, checks the master's CHALLENGE
//! proof before anything else and answers with its own (`auth.rs`); a master that skips
//! the challenge is refused.
//!
//! What may be truncated: a version 3 master streams bytes it has not written yet, so a
//! master restarted after a `kill -9` may end before bytes this slave holds. Those were
//! never acknowledged (a SYNC_MASTER answers only once its own write is done too). The
//! slave tracks how far the master had **written** (`confirmed`: from DATA_WRITTEN and
//! HEARTBEAT frames, every byte of a version 2 master's DATA; saved every second to
//! `{store}/config/haMasterWritten.json`, read at start, the durable end when absent). A
//! WELCOME that truncates below min(durable, confirmed), bytes the master had written and
//! this slave acknowledged, is refused unless `haTruncateAcknowledgedEnable`: the session
//! ends with an ERROR and the slave retries, logging why once. A truncation above it only
//! drops bytes the master never wrote.
//!
//! METADATA frames (in-band topic and group changes, `feed.rs`) are applied and persisted
//! by shard 0 before the next frame is read, so before any later DATA is placed or ACKed.
//!
//! Flow control: at most [`INFLIGHT_BYTES_MAX`] bytes handed to owner shards and not yet
//! durable; past that the reader stops reading (and TCP holds the master back).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use tracing::{info, warn};

use super::auth::{self, HaSecret, Role};
use super::epoch;
use super::feed::Assembly;
use super::io::{connect, split, within, FrameReader, FrameWriter};
use super::wire::{Action, LogState, Message};
use super::{positions, to_owner, ReplicaRequest};
use crate::notify::Notify;
use crate::shard::ShardMsg;

/// Pause between connection attempts.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);
/// Deadline of one connection attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bytes handed to owner shards and not yet durable, at most (below the storage's 64 MiB
/// pending limit, so a replicated range is never refused as busy).
pub const INFLIGHT_BYTES_MAX: u64 = 32 * 1024 * 1024;
/// Interval of ACK frames when nothing new became durable (the master's liveness check).
pub const ACK_INTERVAL: Duration = Duration::from_secs(1);

/// What the slave's replication shard needs.
pub struct SlaveStart {
    /// Every broker shard.
    pub peers: Vec<flume::Sender<ShardMsg>>,
    /// Segment size of the store.
    pub segment_size_bytes: u64,
    /// This broker's address, sent in HELLO.
    pub broker_addr: String,
    /// `haMasterAddress`, when configured.
    pub ha_master_address: Option<String>,
    /// Master HA addresses learnt from registration (shard 0).
    pub ha_addr_rx: flume::Receiver<String>,
    /// `haHousekeepingInterval`.
    pub housekeeping_ms: u64,
    /// `haAuthSecret`: proved to the master, and required of it.
    pub secret: Option<HaSecret>,
    /// `haTruncateAcknowledgedEnable`: the operator allows truncating acknowledged bytes.
    pub truncate_acknowledged: bool,
    /// The store's root (for `config/haMasterWritten.json`).
    pub store_path: PathBuf,
}

/// What this slave knows of its master's log, saved in `config/haMasterWritten.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Trace {
    /// Per log, how far the master had written, as it told this slave.
    written: HashMap<u32, u64>,
    /// The master run (WELCOME origin) this slave last streamed from (0: unknown).
    run: u64,
}

type Confirmed = Rc<RefCell<Trace>>;

/// Interval of saving `confirmed` (when it moved).
pub const CONFIRMED_SAVE_INTERVAL: Duration = Duration::from_secs(1);

fn confirmed_path(start: &SlaveStart) -> PathBuf {
    start.store_path.join("config").join("haMasterWritten.json")
}

fn load_confirmed(start: &SlaveStart) -> Trace {
    let path = confirmed_path(start);
    match std::fs::read(&path) {
        Ok(bytes) => ramjet_proto::body::from_json(&bytes).unwrap_or_else(|e| {
            warn!(path = %path.display(), error = %e, "unreadable; using the durable ends");
            Trace::default()
        }),
        Err(_) => Trace::default(),
    }
}

fn confirm(confirmed: &Confirmed, log: u32, written: u64) {
    let mut trace = confirmed.borrow_mut();
    let slot = trace.written.entry(log).or_insert(written);
    *slot = (*slot).max(written);
}

/// Follows the master until the executor stops.
pub async fn run(start: SlaveStart) {
    let confirmed: Confirmed = Rc::new(RefCell::new(load_confirmed(&start)));
    glommio::spawn_local(save_confirmed(confirmed_path(&start), confirmed.clone())).detach();
    let mut master = start.ha_master_address.clone();
    let mut announced: Option<String> = None;
    let mut last_error: Option<String> = None;
    loop {
        if start.ha_master_address.is_none() {
            // The newest address the NameServer returned wins.
            if let Some(addr) = start.ha_addr_rx.try_iter().last() {
                master = Some(addr);
            }
        }
        let Some(addr) = master.clone() else {
            if let Some(Ok(addr)) = within(RECONNECT_INTERVAL, start.ha_addr_rx.recv_async()).await
            {
                master = Some(addr);
            }
            continue;
        };
        if announced.as_deref() != Some(addr.as_str()) {
            info!(master = %addr, "following the master");
            announced = Some(addr.clone());
        }
        let outcome = session(&start, &addr, &confirmed).await;
        // What the master had written, as of the session's end: the next handshake (this
        // process's or, after a restart, the next one's) decides by it.
        let now = confirmed.borrow().clone();
        save(&confirmed_path(&start), &now).await;
        // Shard 0 forgets the learnt address (and that metadata arrives in-band).
        if let Some(shard0) = start.peers.first() {
            let _ = shard0.send_async(ShardMsg::Replica(ReplicaRequest::MasterLost)).await;
        }
        if start.ha_master_address.is_none() {
            // The master may have moved (a restart on another address): forget it and
            // ask the NameServer again (shard 0 re-registers at once, then every 2 s).
            master = None;
        }
        if let Err(reason) = outcome {
            // One line per distinct failure, not one per retry.
            if last_error.as_deref() != Some(reason.as_str()) {
                warn!(master = %addr, %reason, "replication from the master stopped; retrying");
                last_error = Some(reason);
            }
        }
        glommio::timer::sleep(RECONNECT_INTERVAL).await;
    }
}

async fn session(start: &SlaveStart, addr: &str, confirmed: &Confirmed) -> Result<(), String> {
    let stream = connect(addr, CONNECT_TIMEOUT).await?;
    let (read_half, write_half) = split(stream);
    let mut reader = FrameReader::new(read_half);
    let mut writer = FrameWriter::new(write_half);
    let ours = positions(&start.peers).await?;
    let logs: Vec<LogState> =
        ours.iter().map(|p| LogState { start: p.start, end: p.end, durable: p.durable }).collect();
    let slave_nonce = auth::nonce()?;
    let hello = Message::Hello {
        version: super::wire::VERSION,
        segment_size_bytes: start.segment_size_bytes,
        logs: logs.clone(),
        nonce: Some(slave_nonce),
        broker_addr: start.broker_addr.clone(),
    };
    writer.stage(&hello);
    writer.flush().await?;
    let housekeeping = Duration::from_millis(start.housekeeping_ms);
    let mut first = within(housekeeping, reader.next()).await.ok_or("no WELCOME in time")??;
    match (&first, &start.secret) {
        (Message::Challenge { nonce, proof }, Some(secret)) => {
            if !auth::verify(secret, Role::Master, &slave_nonce, nonce, &hello, proof) {
                return refuse(&mut writer, "the master does not prove haAuthSecret").await;
            }
            let proof = auth::proof(secret, Role::Slave, &slave_nonce, nonce, &hello);
            writer.stage(&Message::Auth { proof });
            writer.flush().await?;
            first = within(housekeeping, reader.next()).await.ok_or("no WELCOME in time")??;
        }
        (Message::Challenge { .. }, None) => {
            return refuse(&mut writer, "the master requires haAuthSecret; this slave has none")
                .await;
        }
        (Message::Welcome { .. }, Some(_)) => {
            return refuse(&mut writer, "the master did not authenticate (haAuthSecret)").await;
        }
        _ => {}
    }
    let (offered, origin) = match first {
        Message::Welcome { actions, origin, .. } if actions.len() == logs.len() => {
            (actions, origin)
        }
        Message::Error { reason } => return Err(format!("master refused: {reason}")),
        other => return Err(format!("expected WELCOME, got {other:?}")),
    };
    // A version 4 master sends its epoch tables: bytes of this slave past the last term
    // both hold (`epoch::consistent_point`) were written by a term the master never had,
    // even where this slave's log is no longer than the master's; they are cut, then the
    // handshake starts again from there. An older master names only its run: bytes that
    // another run streamed past where this run's log began (its end at open) are cut.
    let epochs = origin.as_ref().and_then(|o| o.epochs.as_ref());
    let held = epoch::load(&start.store_path)?;
    let mut cuts = 0usize;
    let actions: Vec<Action> = offered
        .iter()
        .enumerate()
        .map(|(log, action)| {
            if let Some(tables) = epochs {
                let theirs = tables.get(log).map_or(&[][..], Vec::as_slice);
                let (current, master_end) = match *action {
                    // The master's end is at least the slave's.
                    Action::Stream(p) => (p, u64::MAX),
                    Action::TruncateTo(p) => (p, p),
                    Action::StartAt(_) | Action::Refused => return *action,
                };
                let point =
                    epoch::consistent_point(theirs, master_end, held.log(log), logs[log].end);
                if point < current {
                    warn!(
                        log,
                        ours = logs[log].end,
                        cut_to = point,
                        "this log holds bytes of a term its master never had (epochs differ); cutting"
                    );
                    cuts += 1;
                    return Action::TruncateTo(point);
                }
                return *action;
            }
            let known = confirmed.borrow().run;
            let opened = origin.as_ref().and_then(|o| o.opened.get(log).copied());
            match (action, opened) {
                (Action::Stream(_), Some(opened))
                    if known != 0
                        && origin.as_ref().is_some_and(|o| o.run != known)
                        && logs[log].end > opened =>
                {
                    cuts += 1;
                    Action::TruncateTo(opened)
                }
                _ => *action,
            }
        })
        .collect();
    if !start.truncate_acknowledged {
        for (log, action) in actions.iter().enumerate() {
            if let Action::TruncateTo(p) = *action {
                // Bytes the master had written and this slave holds durably were
                // acknowledged; bytes past what the master had written never were.
                let durable = logs[log].durable;
                let confirmed = confirmed.borrow().written.get(&(log as u32)).copied();
                let kept = durable.min(confirmed.unwrap_or(durable));
                if p < kept {
                    let reason = format!(
                        "log {log}: the master ends at {p}, before {} bytes the master had \
                         written and this slave holds durably and has acknowledged; not \
                         truncating without haTruncateAcknowledgedEnable=true",
                        kept - p
                    );
                    return refuse(&mut writer, &reason).await;
                }
            }
        }
    }
    for (log, action) in actions.iter().enumerate() {
        apply_action(start, log as u32, logs[log], *action).await?;
        if let Action::StartAt(p) | Action::TruncateTo(p) = *action {
            confirmed.borrow_mut().written.insert(log as u32, p);
        }
    }
    if let Some(tables) = epochs {
        // The master's history is this slave's from now on: durable before the first
        // byte of the session is placed.
        let mut adopted = held.clone();
        adopted.logs.resize(actions.len(), Vec::new());
        for (log, action) in actions.iter().enumerate() {
            if *action != Action::Refused {
                adopted.logs[log] = tables.get(log).cloned().unwrap_or_default();
            }
        }
        if cuts == 0 && adopted != held {
            epoch::save(&start.store_path, &adopted).await?;
        }
    }
    if cuts > 0 {
        return Err(format!(
            "cut {cuts} log(s) back to where this run of the master began (bytes an earlier \
             run streamed); handshaking again"
        ));
    }
    if let Some(origin) = &origin {
        confirmed.borrow_mut().run = origin.run;
    }
    info!(master = %addr, "replicating from the master");
    let inflight = Rc::new(Cell::new(0u64));
    let drained = Notify::new();
    let (acks_tx, acks_rx) = flume::unbounded();
    let acking = ack_loop(acks_rx, writer, inflight.clone(), drained.clone());
    let mut assembly = Assembly::default();
    let snapshot_items_max = 2
        * (crate::table_limits::limits().topics_max
            + crate::table_limits::limits().subscription_groups_max)
        + 1024;
    let reading = async {
        loop {
            let frame = within(housekeeping, reader.next())
                .await
                .ok_or("no frame from the master within the housekeeping interval")??;
            let (log, position, bytes) = match frame {
                Message::Data { log, position, bytes } => {
                    // A version 2 master streams only bytes it has written.
                    confirm(confirmed, log, position + bytes.len() as u64);
                    (log, position, bytes)
                }
                Message::DataWritten { log, position, written, bytes } => {
                    confirm(confirmed, log, written.min(position + bytes.len() as u64));
                    (log, position, bytes)
                }
                Message::Heartbeat { written } => {
                    for (log, w) in written.into_iter().enumerate() {
                        confirm(confirmed, log as u32, w);
                    }
                    continue;
                }
                Message::Metadata { json } => {
                    // Applied and persisted before the next frame is read (feed.rs).
                    if let Some(update) = assembly.take(&json, snapshot_items_max)? {
                        let (tx, rx) = flume::bounded(1);
                        let shard0 = start.peers.first().ok_or("no shard 0")?;
                        let msg = ShardMsg::Replica(ReplicaRequest::Metadata { update, reply: tx });
                        shard0.send_async(msg).await.map_err(|_| "shard 0 gone".to_string())?;
                        rx.recv_async().await.map_err(|_| "shard 0 gone".to_string())??;
                    }
                    continue;
                }
                Message::Error { reason } => return Err(format!("master: {reason}")),
                other => return Err(format!("unexpected frame from the master: {other:?}")),
            };
            let len = bytes.len() as u64;
            while inflight.get() > 0 && inflight.get() + len > INFLIGHT_BYTES_MAX {
                drained.wait().await;
            }
            inflight.set(inflight.get() + len);
            let append = ReplicaRequest::Append { log, position, bytes, reply: acks_tx.clone() };
            to_owner(&start.peers, log, append).await?;
        }
    };
    futures_lite::future::or(reading, acking).await
}

/// Writes `confirmed` to `path` durably; whether it worked (a failure is logged).
async fn save(path: &std::path::Path, confirmed: &Trace) -> bool {
    let bytes = ramjet_proto::body::to_json(confirmed);
    match crate::durable_file::write_file_durably(path.to_path_buf(), bytes).await {
        Ok(()) => true,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot save the master's written ends");
            false
        }
    }
}

/// Saves `confirmed` every [`CONFIRMED_SAVE_INTERVAL`] when it moved (a failure is
/// retried at the next tick). Never ends.
async fn save_confirmed(path: PathBuf, confirmed: Confirmed) {
    let mut saved: Option<Trace> = None;
    loop {
        glommio::timer::sleep(CONFIRMED_SAVE_INTERVAL).await;
        let now = confirmed.borrow().clone();
        if saved.as_ref() != Some(&now) && save(&path, &now).await {
            saved = Some(now);
        }
    }
}

/// Tells the master why this slave ends the session, and ends it.
async fn refuse(writer: &mut FrameWriter, reason: &str) -> Result<(), String> {
    writer.stage(&Message::Error { reason: reason.to_string() });
    let _ = writer.flush().await;
    Err(reason.to_string())
}

/// Prepares one log as the master's WELCOME says.
async fn apply_action(
    start: &SlaveStart,
    log: u32,
    ours: LogState,
    action: Action,
) -> Result<(), String> {
    match action {
        Action::Stream(p) if p == ours.end => Ok(()),
        Action::Stream(p) => {
            Err(format!("master streams log {log} from {p}, ours ends at {}", ours.end))
        }
        Action::StartAt(p) => {
            info!(log, position = p, "empty log starts at the master's oldest segment");
            let (tx, rx) = flume::bounded(1);
            to_owner(&start.peers, log, ReplicaRequest::StartAt { log, position: p, reply: tx })
                .await?;
            rx.recv_async().await.map_err(|_| "shard gone".to_string())?
        }
        Action::TruncateTo(p) => {
            warn!(
                log,
                ours = ours.end,
                master = p,
                "slave log runs past the master's end (the master lost its tail); truncating"
            );
            let (tx, rx) = flume::bounded(1);
            to_owner(&start.peers, log, ReplicaRequest::Truncate { log, position: p, reply: tx })
                .await?;
            rx.recv_async().await.map_err(|_| "shard gone".to_string())?
        }
        Action::Refused => {
            warn!(log, end = ours.end, "master does not replicate this log (see its log)");
            Ok(())
        }
    }
}

/// Collects durable positions from the owner shards and ACKs them: at once when some
/// arrive, and every [`ACK_INTERVAL`] anyway.
async fn ack_loop(
    acks: flume::Receiver<Result<(u32, u64, usize), String>>,
    mut writer: FrameWriter,
    inflight: Rc<Cell<u64>>,
    drained: Notify,
) -> Result<(), String> {
    let mut durable: HashMap<u32, u64> = HashMap::new();
    loop {
        let first = within(ACK_INTERVAL, acks.recv_async()).await;
        let mut replies = Vec::new();
        if let Some(reply) = first {
            replies.push(reply.map_err(|_| "ack channel closed".to_string())?);
            replies.extend(acks.try_iter());
        }
        for reply in replies {
            let (log, end, len) = reply.map_err(|reason| format!("cannot apply: {reason}"))?;
            let slot = durable.entry(log).or_insert(end);
            *slot = (*slot).max(end);
            inflight.set(inflight.get().saturating_sub(len as u64));
        }
        drained.notify();
        let positions = durable.iter().map(|(&log, &end)| (log, end)).collect();
        writer.stage(&Message::Ack { positions });
        writer.flush().await?;
    }
}
