//! The master side of replication: the HA listener and one session per slave.
//!
//! Lives on: the replication shard of a master (ASYNC_MASTER or SYNC_MASTER).
//!
//! A session:
//! 1. Read HELLO (within the housekeeping interval). With `haAuthSecret`, exchange
//!    CHALLENGE and AUTH (`auth.rs`): a slave that does not prove the secret gets an ERROR
//!    and not one byte of log. Refuse (ERROR, close) a slave whose log count or segment
//!    size differs: positions would not line up.
//! 2. Ask every shard where its logs stand and [`decide`] per log where streaming starts;
//!    write WELCOME. The slave's durable positions count as acknowledged.
//! 3. One pump per log: ask the owner shard for raw bytes from the position (1 MiB at a
//!    time, waiting up to 500 ms at the end), queue them as a DATA frame; a bounded queue
//!    (and TCP) hold the pumps back when the slave is slow. A writer task drains the
//!    queue, writing large payloads as the owner's `Bytes` without copying; it sends a
//!    HEARTBEAT with the written positions after a second without frames. To a version 3
//!    slave the pumps read pending bytes too (appended, the master's write still in
//!    flight) and send them as DATA_WRITTEN (with how far the master had written), and
//!    the writer sends METADATA before any DATA frame once the topic or group tables
//!    moved (`feed.rs`; a snapshot first).
//! 4. Read ACKs; hand each log's new position to its owner (`Progress`), where SYNC_MASTER
//!    sends wait. An ACK is clamped to what the writer has sent on that log: a slave
//!    cannot release SYNC_MASTER sends for bytes it never received. No frame from the slave for `haHousekeepingInterval`, a read error or a
//!    pump error ends the session; every log's owner then forgets the slave.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use glommio::net::TcpStream;
use ramjet_storage::ReplicaPosition;
use tracing::{info, warn};

use super::auth::{self, HaSecret, Role};
use super::epoch::{self, EpochEntry};
use super::feed::{MetaFeed, Sent};
use super::io::{split, within, FrameReader, FrameWriter};
use super::wire::{self, Action, LogState, Message, Origin};
use super::{positions, to_owner, ReplicaRequest};
use crate::shard::ShardMsg;

/// Bytes one DATA frame carries at most (beyond one whole chunk of the tail cache).
pub const DATA_FRAME_BYTES: usize = 1024 * 1024;
/// How long a pump's read waits at the end of a log for more.
pub const READ_WAIT_MS: u64 = 500;
/// Frames queued for the writer per session; pumps wait when it is full.
pub const QUEUED_FRAMES_MAX: usize = 16;
/// Interval of HEARTBEAT frames.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// What the master's replication shard needs.
pub struct MasterStart {
    /// The HA listener, bound before the executors start.
    pub listener: StdListener,
    /// Every broker shard.
    pub peers: Vec<flume::Sender<ShardMsg>>,
    /// Segment size of the store.
    pub segment_size_bytes: u64,
    /// `haHousekeepingInterval`: a silent slave is dropped after this long.
    pub housekeeping_ms: u64,
    /// `haAuthSecret`: slaves must prove it (`None`: anyone may replicate).
    pub secret: Option<HaSecret>,
    /// Topic and group changes, published by shard 0.
    pub feed: std::sync::Arc<MetaFeed>,
    /// Stream bytes still being written (SYNC_MASTER: a send waits for its write and the
    /// slave's ACK together). An ASYNC_MASTER streams written bytes only, in larger spans:
    /// nobody waits for the slave, and per-message frames cost both sides CPU.
    pub stream_pending: bool,
    /// The store's root (for `epochFileCheckpoint`).
    pub store_path: std::path::PathBuf,
    /// Told once the new epoch is durable and the logs accept writes (or why not).
    pub ready: std::sync::mpsc::Sender<Result<usize, String>>,
}

struct Master {
    peers: Vec<flume::Sender<ShardMsg>>,
    segment_size_bytes: u64,
    housekeeping: Duration,
    secret: Option<HaSecret>,
    feed: std::sync::Arc<MetaFeed>,
    /// This run of the master (random at start), told to version 3 slaves.
    run_id: u64,
    stream_pending: bool,
    /// Per log, the epoch table of this term (its last entry begins it).
    epochs: Vec<Vec<EpochEntry>>,
}

/// Begins this master's term: one more than the highest epoch the store holds, starting
/// at every log's end, saved durably; only then do the logs accept writes (they open
/// refusing them), so no record of the term is acknowledged before its entry is on disk.
///
/// # Errors
/// The epoch file cannot be read or written, or a shard is gone.
async fn begin_term(
    peers: &[flume::Sender<ShardMsg>],
    store: &std::path::Path,
    run: u64,
) -> Result<Vec<Vec<EpochEntry>>, String> {
    let mut file = epoch::load(store)?;
    let ends: Vec<u64> = positions(peers).await?.iter().map(|p| p.end).collect();
    let number = file.last_epoch() + 1;
    file.begin_all(number, run, &ends);
    epoch::save(store, &file).await?;
    super::set_writable(peers, true).await?;
    info!(epoch = number, run, "master term begins");
    file.logs.truncate(ends.len());
    Ok(file.logs)
}

/// Accepts slaves until the executor stops.
pub async fn run(start: MasterStart) {
    let listener = crate::net::listener::adopt(start.listener);
    let run_id = run_id();
    let epochs = match begin_term(&start.peers, &start.store_path, run_id).await {
        Ok(epochs) => {
            let _ = start.ready.send(Ok(usize::MAX - 1));
            epochs
        }
        Err(reason) => {
            let _ = start.ready.send(Err(format!("cannot begin the master's epoch: {reason}")));
            return;
        }
    };
    let master = Rc::new(Master {
        peers: start.peers,
        segment_size_bytes: start.segment_size_bytes,
        housekeeping: Duration::from_millis(start.housekeeping_ms),
        secret: start.secret,
        feed: start.feed,
        run_id,
        stream_pending: start.stream_pending,
        epochs,
    });
    let mut next_id = 0u64;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                // Small DATA frames (SYNC_MASTER's single messages) must not wait for
                // Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                next_id += 1;
                let (master, id) = (master.clone(), next_id);
                glommio::spawn_local(async move {
                    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                    if let Err(reason) = session(&master, stream, id).await {
                        warn!(slave = %peer, %reason, "replication session ended");
                    }
                })
                .detach();
            }
            Err(e) => {
                warn!(error = %e, "HA accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A random run id (never 0, which means unknown to a slave).
fn run_id() -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let random = auth::nonce()
        .map_or(clock, |n| u64::from_be_bytes([n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]]));
    random.max(1)
}

/// Where each log streams from, given where the master's and the slave's logs stand.
///
/// | slave log | decision |
/// |---|---|
/// | empty, master starts at 0 | stream from 0 |
/// | empty, master's oldest segment at S > 0 | start the slave's log at S |
/// | ends past the master's end E | truncate the slave's log to E (an async master lost its tail) |
/// | ends before the master's oldest segment | refused: the bytes in between are gone |
/// | otherwise, ends at P | stream from P |
pub fn decide(master: &[ReplicaPosition], slave: &[LogState]) -> Vec<Action> {
    master
        .iter()
        .zip(slave)
        .map(|(m, s)| {
            if s.start == 0 && s.end == 0 {
                if m.start == 0 {
                    Action::Stream(0)
                } else {
                    Action::StartAt(m.start)
                }
            } else if s.end > m.end {
                Action::TruncateTo(m.end)
            } else if s.end < m.start {
                Action::Refused
            } else {
                Action::Stream(s.end)
            }
        })
        .collect()
}

/// The master's side of the handshake: CHALLENGE with its proof, then the slave's AUTH
/// must verify.
async fn authenticate(
    master: &Master,
    secret: &HaSecret,
    hello: &Message,
    slave_nonce: Option<[u8; super::wire::NONCE_BYTES]>,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<(), String> {
    let slave_nonce =
        slave_nonce.ok_or("this master requires haAuthSecret (HELLO without nonce)")?;
    let nonce = auth::nonce()?;
    let proof = auth::proof(secret, Role::Master, &slave_nonce, &nonce, hello);
    writer.stage(&Message::Challenge { nonce, proof });
    writer.flush().await?;
    let reply = within(master.housekeeping, reader.next()).await.ok_or("no AUTH in time")??;
    match reply {
        Message::Auth { proof }
            if auth::verify(secret, Role::Slave, &slave_nonce, &nonce, hello, &proof) =>
        {
            Ok(())
        }
        Message::Auth { .. } => Err("wrong haAuthSecret".into()),
        Message::Error { reason } => Err(format!("slave: {reason}")),
        _ => Err("expected AUTH".into()),
    }
}

/// Outgoing frames of a session.
enum Out {
    Data { log: u32, position: u64, written: u64, pieces: Vec<Bytes> },
    Control(Message),
}

async fn session(master: &Rc<Master>, stream: TcpStream, id: u64) -> Result<(), String> {
    let (read_half, write_half) = split(stream);
    let mut reader = FrameReader::new(read_half);
    let mut writer = FrameWriter::new(write_half);
    let hello = within(master.housekeeping, reader.next()).await.ok_or("no HELLO in time")??;
    let Message::Hello { version, segment_size_bytes, ref logs, nonce, ref broker_addr } = hello
    else {
        return Err("first frame is not HELLO".into());
    };
    if let Some(secret) = &master.secret {
        if let Err(reason) =
            authenticate(master, secret, &hello, nonce, &mut reader, &mut writer).await
        {
            writer.stage(&Message::Error { reason: reason.clone() });
            let _ = writer.flush().await;
            return Err(format!("slave {broker_addr} not authenticated: {reason}"));
        }
    }
    let (logs, broker_addr) = (logs.clone(), broker_addr.clone());
    let ours = positions(&master.peers).await?;
    let refusal = if logs.len() != ours.len() {
        Some(format!("slave store has {} commit logs, the master {}", logs.len(), ours.len()))
    } else if segment_size_bytes != master.segment_size_bytes {
        Some(format!(
            "slave segment size {segment_size_bytes}, the master's {}",
            master.segment_size_bytes
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        writer.stage(&Message::Error { reason: reason.clone() });
        writer.flush().await?;
        return Err(reason);
    }
    let actions = decide(&ours, &logs);
    for (log, action) in actions.iter().enumerate() {
        match action {
            Action::Refused => warn!(
                slave = %broker_addr, log, slave_end = logs[log].end, master_start = ours[log].start,
                "slave log ends before the master's oldest segment; not replicated"
            ),
            Action::TruncateTo(p) => warn!(
                slave = %broker_addr, log, slave_end = logs[log].end, master_end = p,
                "slave log runs past the master's; the slave truncates"
            ),
            _ => {}
        }
    }
    // Version 3 slaves get pending bytes, the master's written positions and metadata,
    // and which run of the master this is (so they can cut bytes an earlier run streamed).
    let modern = version >= 3;
    // Version 4: the master's epoch tables, by which the slave cuts what this master's
    // history never had.
    let origin = modern.then(|| Origin {
        run: master.run_id,
        opened: ours.iter().map(|p| p.opened).collect(),
        epochs: (version >= 4).then(|| master.epochs.clone()),
    });
    writer.stage(&Message::Welcome { segment_size_bytes, actions: actions.clone(), origin });
    writer.flush().await?;
    info!(slave = %broker_addr, "slave connected");
    let peer = Peer { id, broker_addr: &broker_addr, modern };
    let result = stream_to_slave(master, &peer, &logs, &actions, reader, writer).await;
    for log in 0..actions.len() as u32 {
        let progress = ReplicaRequest::Progress {
            log,
            slave: id,
            slave_addr: broker_addr.clone(),
            acked: None,
        };
        let _ = to_owner(&master.peers, log, progress).await;
    }
    info!(slave = %broker_addr, "slave disconnected");
    result
}

/// Who a session streams to.
struct Peer<'a> {
    /// Connection id.
    id: u64,
    /// The slave's broker address.
    broker_addr: &'a str,
    /// A version 3 slave: pending bytes, written positions, metadata.
    modern: bool,
}

async fn stream_to_slave(
    master: &Rc<Master>,
    peer: &Peer<'_>,
    logs: &[LogState],
    actions: &[Action],
    mut reader: FrameReader,
    writer: FrameWriter,
) -> Result<(), String> {
    let Peer { id, broker_addr, modern } = *peer;
    let (tx, rx) = flume::bounded::<Out>(QUEUED_FRAMES_MAX);
    let mut tasks = Vec::new();
    // Per log, the end of what this session has sent (or the slave already held): the
    // most an ACK may claim.
    let sent: Rc<RefCell<HashMap<u32, u64>>> = Rc::default();
    for (log, action) in actions.iter().enumerate() {
        let (begin, acked) = match *action {
            Action::Stream(p) => (p, logs[log].durable.min(p)),
            Action::StartAt(p) | Action::TruncateTo(p) => (p, p),
            Action::Refused => continue,
        };
        let log = log as u32;
        sent.borrow_mut().insert(log, begin);
        let progress = ReplicaRequest::Progress {
            log,
            slave: id,
            slave_addr: broker_addr.to_string(),
            acked: Some(acked),
        };
        to_owner(&master.peers, log, progress).await?;
        tasks.push(glommio::spawn_local(pump(
            master.clone(),
            log,
            begin,
            modern && master.stream_pending,
            tx.clone(),
        )));
    }
    drop(tx);
    let writing = write_frames(master.clone(), rx, writer, sent.clone(), modern);
    let reading = async {
        let mut last: HashMap<u32, u64> = HashMap::new();
        loop {
            let frame = within(master.housekeeping, reader.next())
                .await
                .ok_or("no frame from the slave within the housekeeping interval")??;
            match frame {
                Message::Ack { positions } => {
                    for (log, position) in positions {
                        // Logs not streamed have no entry: their ACKs are ignored.
                        let Some(&limit) = sent.borrow().get(&log) else { continue };
                        let position = position.min(limit);
                        if last.get(&log) == Some(&position) {
                            continue;
                        }
                        last.insert(log, position);
                        let progress = ReplicaRequest::Progress {
                            log,
                            slave: id,
                            slave_addr: broker_addr.to_string(),
                            acked: Some(position),
                        };
                        to_owner(&master.peers, log, progress).await?;
                    }
                }
                Message::Error { reason } => return Err(format!("slave: {reason}")),
                other => return Err(format!("unexpected frame from the slave: {other:?}")),
            }
        }
    };
    let result = futures_lite::future::or(reading, writing).await;
    drop(tasks);
    result
}

/// Streams one log from `position` into the session's queue (`appended`: pending bytes
/// too, not only written ones).
async fn pump(
    master: Rc<Master>,
    log: u32,
    mut position: u64,
    appended: bool,
    out: flume::Sender<Out>,
) {
    loop {
        let (tx, rx) = flume::bounded(1);
        let read = ReplicaRequest::Read {
            log,
            position,
            max_bytes: DATA_FRAME_BYTES,
            wait_ms: READ_WAIT_MS,
            appended,
            reply: tx,
        };
        if to_owner(&master.peers, log, read).await.is_err() {
            return;
        }
        let span = match rx.recv_async().await {
            Ok(Ok(span)) => span,
            Ok(Err(reason)) => {
                warn!(log, position, %reason, "replication read failed; closing the session");
                let reason = format!("master cannot read log {log} at {position}: {reason}");
                let _ = out.send_async(Out::Control(Message::Error { reason })).await;
                return;
            }
            Err(_) => return,
        };
        if span.is_empty() {
            continue;
        }
        position = span.end;
        let frame =
            Out::Data { log, position: span.position, written: span.written, pieces: span.pieces };
        if out.send_async(frame).await.is_err() {
            return;
        }
    }
}

/// Writes queued frames, and a HEARTBEAT whenever a second passes without one. `modern`
/// (a version 3 slave): DATA_WRITTEN frames, each preceded by METADATA when the topic or
/// group tables moved since the last one (a snapshot before the first); an idle session
/// sends such METADATA with its heartbeat.
async fn write_frames(
    master: Rc<Master>,
    rx: flume::Receiver<Out>,
    mut writer: FrameWriter,
    sent: Rc<RefCell<HashMap<u32, u64>>>,
    modern: bool,
) -> Result<(), String> {
    let mut meta = Sent::default();
    if modern {
        for json in meta.frames(&master.feed) {
            writer.stage(&Message::Metadata { json });
            writer.flush().await?;
        }
    }
    loop {
        let next = within(HEARTBEAT_INTERVAL, rx.recv_async()).await;
        let frame = match next {
            None => {
                // Topic and group changes reach an idle slave too, within a heartbeat.
                if modern {
                    for json in meta.frames(&master.feed) {
                        writer.stage(&Message::Metadata { json });
                    }
                }
                let written = positions(&master.peers).await?.iter().map(|p| p.written).collect();
                writer.stage(&Message::Heartbeat { written });
                writer.flush().await?;
                continue;
            }
            Some(Err(_)) => return Err("every pump stopped".into()),
            Some(Ok(frame)) => frame,
        };
        let mut frame = Some(frame);
        while let Some(f) = frame.take() {
            match f {
                Out::Data { log, position, written, pieces } => {
                    // Counted before the write, so an ACK read while it completes is not
                    // clamped below it (a failed write ends the session anyway).
                    let end = position + pieces.iter().map(|p| p.len() as u64).sum::<u64>();
                    sent.borrow_mut().entry(log).and_modify(|e| *e = (*e).max(end)).or_insert(end);
                    if modern {
                        // Topic changes published before these records were appended go
                        // first (feed.rs).
                        for json in meta.frames(&master.feed) {
                            writer.stage(&Message::Metadata { json });
                        }
                        let prefix = wire::data_written_prefix(log, position, written);
                        writer.data(wire::kind::DATA_WRITTEN, &prefix, &pieces).await?;
                    } else {
                        let prefix = wire::data_prefix(log, position);
                        writer.data(wire::kind::DATA, &prefix, &pieces).await?;
                    }
                }
                Out::Control(message) => {
                    let error = matches!(message, Message::Error { .. });
                    writer.stage(&message);
                    if error {
                        writer.flush().await?;
                        return Err("a pump failed".into());
                    }
                }
            }
            frame = rx.try_recv().ok();
        }
        writer.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: u64, end: u64) -> ReplicaPosition {
        ReplicaPosition { start, end, durable: end, written: end, opened: 0 }
    }

    fn slave(start: u64, end: u64) -> LogState {
        LogState { start, end, durable: end }
    }

    #[test]
    fn every_row_of_the_decision_table() {
        let master =
            [at(0, 100), at(1 << 20, 3 << 20), at(0, 100), at(1 << 20, 3 << 20), at(0, 100)];
        let slaves = [slave(0, 0), slave(0, 0), slave(0, 150), slave(0, 500), slave(0, 60)];
        assert_eq!(
            decide(&master, &slaves),
            vec![
                Action::Stream(0),
                Action::StartAt(1 << 20),
                Action::TruncateTo(100),
                Action::Refused,
                Action::Stream(60),
            ]
        );
    }
}
