//! Transactional messages: half messages, END_TRANSACTION, and the check-back of producers
//! that went silent, as the reference's `TransactionalMessageService`.
//!
//! Lives on: the owner shard of `RMQ_SYS_TRANS_HALF_TOPIC` queue 0, where every half
//! message is stored (send path, `Parking::Half`), so END_TRANSACTION (routed by the half
//! record's commit-log offset) and the check task always run on this one shard.
//!
//! State: the set of half-queue offsets that are finished (committed, rolled back, or
//! re-put for another check). Each finish is also written as an op record to
//! `RMQ_SYS_TRANS_OP_HALF_TOPIC` queue 0 (tag `d`, body = the half's queue offset in
//! decimal, as the reference writes it), which is how the set is rebuilt after a restart:
//! a committed message is never delivered twice by the broker, a rolled-back one never.
//! Order on commit: the real message first, then the op record (a crash between the two
//! leaves the half unfinished; its check-back may commit it again — the reference's
//! behaviour too).

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CheckTransactionStateRequestHeader, CommandHeader, EndTransactionRequestHeader,
};
use ramjet_proto::message::{self, property, StoredMessage};
use ramjet_proto::{Header, SerializeType};
use ramjet_storage::GetStatus;
use tracing::{info, warn};

use crate::clock::now_ms;
use crate::error::BrokerError;
use crate::handler::{error, error_response, field_error, success};
use crate::net::connection::Response;
use crate::schedule::reput_batch;
use crate::shard::api::QueueRead;
use crate::shard::Shard;
use crate::topic::{TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC};

/// The reserved group whose offset records how far the check task has looked.
pub const CHECK_GROUP: &str = "%TRANS_CHECK%";
/// Tag of op records.
const OP_TAG: &str = "d";

/// Finished half messages, by half-queue offset.
///
/// Lives on: the half queue's owner shard.
///
/// Bound: the check task's progress only passes halves that are finished, so every half
/// below it is finished; the set keeps only offsets at or above that floor (one entry per
/// half finished out of order ahead of the check task), not one per half ever finished.
#[derive(Debug, Default)]
pub struct TransactionState {
    done: BTreeSet<i64>,
    /// Every half below this offset is finished (the check task's progress).
    floor: i64,
    /// Halves whose end is in progress.
    ending: BTreeSet<i64>,
    /// Op-queue offset up to which `done` has been rebuilt.
    op_read_offset: i64,
    loaded: bool,
}

impl TransactionState {
    /// Whether the half at `offset` is finished.
    fn is_done(&self, offset: i64) -> bool {
        offset < self.floor || self.done.contains(&offset)
    }

    fn insert_done(&mut self, offset: i64) {
        if offset >= self.floor {
            self.done.insert(offset);
        }
    }

    /// Every half below `progress` is finished: forget their offsets.
    fn raise_floor(&mut self, progress: i64) {
        if progress > self.floor {
            self.floor = progress;
            self.done = self.done.split_off(&progress);
        }
    }

    /// Offsets held (finished halves at or above the floor).
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// True when no offset is held.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}

/// Records read from a transaction queue per step.
const READ_BATCH_MAX: u32 = 256;

/// Reads a queue on its owner shard from `offset`: its records and the offset to read
/// next (`offset` again when nothing was found there).
async fn read_queue(
    shard: &Shard,
    topic: &str,
    queue_id: i32,
    offset: i64,
) -> Result<(Vec<StoredMessage>, i64), BrokerError> {
    let read = QueueRead {
        topic: topic.to_string(),
        queue_id,
        offset,
        max_count: READ_BATCH_MAX,
        max_bytes: crate::handler::pull_message::PULL_BYTES_MAX,
    };
    let found = shard.read_routed(read).await?;
    if found.status != GetStatus::Found {
        return Ok((Vec::new(), offset));
    }
    let mut records = Vec::with_capacity(found.messages.len());
    for r in &found.messages {
        records.push(
            message::decode_record(r, false).map_err(|e| BrokerError::System(e.to_string()))?,
        );
    }
    Ok((records, found.next_offset))
}

/// Rebuilds the finished set from op records not read yet.
async fn load_ops(shard: &Rc<Shard>) -> Result<(), BrokerError> {
    let log = shard.log_for(TRANS_HALF_TOPIC, 0);
    let progress = shard.offsets.borrow().get(log, CHECK_GROUP, TRANS_HALF_TOPIC, 0);
    shard.transactions.borrow_mut().raise_floor(progress.unwrap_or(0));
    loop {
        let from = shard.transactions.borrow().op_read_offset;
        let (records, next) = read_queue(shard, TRANS_OP_HALF_TOPIC, 0, from).await?;
        let mut state = shard.transactions.borrow_mut();
        for r in &records {
            if let Some(offset) =
                std::str::from_utf8(&r.body).ok().and_then(|b| b.trim().parse::<i64>().ok())
            {
                state.insert_done(offset);
            }
        }
        state.op_read_offset = next.max(from);
        if records.is_empty() {
            state.loaded = true;
            return Ok(());
        }
    }
}

async fn ensure_loaded(shard: &Rc<Shard>) -> Result<(), BrokerError> {
    if shard.transactions.borrow().loaded {
        return Ok(());
    }
    let _permit = shard
        .transaction_lock
        .acquire_permit(1)
        .await
        .map_err(|e| BrokerError::System(e.to_string()))?;
    if shard.transactions.borrow().loaded {
        return Ok(());
    }
    load_ops(shard).await
}

/// Marks a half finished: op record first to the op queue, then in memory.
async fn finish(shard: &Rc<Shard>, half: &StoredMessage) -> Result<(), BrokerError> {
    let body = Bytes::from(half.queue_offset.to_string());
    let props = message::encode_properties([(property::TAGS, OP_TAG)]);
    let mut op = half.clone();
    op.body = body;
    op.sys_flag &= !message::SYSFLAG_TRANSACTION_MASK;
    let mut batch = reput_batch(shard, &op, TRANS_OP_HALF_TOPIC, 0, &props);
    batch.tags_codes = vec![message::tags_code(OP_TAG)];
    shard.append_routed(batch).await?;
    shard.transactions.borrow_mut().insert_done(half.queue_offset);
    Ok(())
}

async fn read_half(shard: &Shard, offset: i64) -> Option<StoredMessage> {
    let (log, _) = ramjet_storage::split_log_offset(offset)?;
    let store = shard.logs.get(&log)?.clone();
    let record = store.read_record(offset).await.ok()??;
    message::decode_record(&record, false).ok()
}

/// END_TRANSACTION: commit (8) stores the message on its real queue, rollback (12) drops
/// it; both finish the half. Unknown (0) does nothing.
pub async fn end_transaction(shard: &Rc<Shard>, h: &Header) -> Response {
    let resp = end_transaction_inner(shard, h).await;
    if resp.header.code != response::SUCCESS {
        // Ends are usually one-way: without this line a refused end would be invisible.
        warn!(code = resp.header.code, remark = ?resp.header.remark, "END_TRANSACTION refused");
    }
    resp
}

async fn end_transaction_inner(shard: &Rc<Shard>, h: &Header) -> Response {
    let req = match EndTransactionRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let commit = match req.commit_or_rollback {
        c if c == message::SYSFLAG_TRANSACTION_COMMIT => true,
        c if c == message::SYSFLAG_TRANSACTION_ROLLBACK => false,
        _ => return Response::new(success(h)),
    };
    if let Err(e) = ensure_loaded(shard).await {
        return error_response(h, &e);
    }
    let Some(half) = read_half(shard, req.commit_log_offset).await else {
        return error(h, response::SYSTEM_ERROR, "Find prepared transaction message failed");
    };
    if half.property(property::PRODUCER_GROUP).as_deref() != Some(req.producer_group.as_str()) {
        return error(h, response::SYSTEM_ERROR, "The producer group wrong");
    }
    if half.queue_offset != req.tran_state_table_offset
        || half.physical_offset != req.commit_log_offset
    {
        return error(h, response::SYSTEM_ERROR, "The transaction state table offset wrong");
    }
    {
        // Finished, or being finished by a concurrent end: never deliver twice.
        let mut state = shard.transactions.borrow_mut();
        if state.is_done(half.queue_offset) || !state.ending.insert(half.queue_offset) {
            return Response::new(success(h));
        }
    }
    let outcome = end_half(shard, &half, commit).await;
    shard.transactions.borrow_mut().ending.remove(&half.queue_offset);
    match outcome {
        Ok(()) => Response::new(success(h)),
        Err(e) => error_response(h, &e),
    }
}

async fn end_half(
    shard: &Rc<Shard>,
    half: &StoredMessage,
    commit: bool,
) -> Result<(), BrokerError> {
    if commit {
        commit_half(shard, half).await?;
    }
    finish(shard, half).await
}

async fn commit_half(shard: &Rc<Shard>, half: &StoredMessage) -> Result<(), BrokerError> {
    let topic = half
        .property(property::REAL_TOPIC)
        .ok_or_else(|| BrokerError::System("half message without REAL_TOPIC".into()))?;
    let queue_id: i32 =
        half.property(property::REAL_QUEUE_ID).and_then(|q| q.parse().ok()).unwrap_or(0);
    let props = message::remove_properties(
        &half.properties,
        &[property::TRANSACTION_PREPARED, property::REAL_TOPIC, property::REAL_QUEUE_ID],
    );
    let mut m = half.clone();
    m.sys_flag =
        (m.sys_flag & !message::SYSFLAG_TRANSACTION_MASK) | message::SYSFLAG_TRANSACTION_COMMIT;
    m.prepared_transaction_offset = half.physical_offset;
    shard.append_routed(reput_batch(shard, &m, &topic, queue_id, &props)).await.map(|_| ())
}

/// The check task: finds half messages older than the transaction timeout with no end,
/// re-puts each (one more check counted) and asks a live producer of its group for the
/// outcome with CHECK_TRANSACTION_STATE; after `transactionCheckMax` checks it is dropped.
pub async fn check_loop(shard: Rc<Shard>) {
    let interval = Duration::from_millis(shard.config.transaction_check_interval_ms);
    loop {
        glommio::timer::sleep(interval).await;
        if let Err(e) = check_once(&shard).await {
            warn!(error = %e, "transaction check round failed");
        }
    }
}

async fn check_once(shard: &Rc<Shard>) -> Result<(), BrokerError> {
    ensure_loaded(shard).await?;
    let log = shard.log_for(TRANS_HALF_TOPIC, 0);
    let start = shard.offsets.borrow().get(log, CHECK_GROUP, TRANS_HALF_TOPIC, 0).unwrap_or(0);
    let (halves, _) = read_queue(shard, TRANS_HALF_TOPIC, 0, start).await?;
    let mut progress = start;
    let now = now_ms() as i64;
    for half in halves {
        let done = {
            let state = shard.transactions.borrow();
            state.is_done(half.queue_offset) || state.ending.contains(&half.queue_offset)
        };
        if done {
            if half.queue_offset == progress {
                progress += 1;
            }
            continue;
        }
        let immunity_ms = half
            .property(property::CHECK_IMMUNITY_TIME_IN_SECONDS)
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(shard.config.transaction_timeout_ms as i64, |s| s * 1000);
        if now - half.store_timestamp < immunity_ms {
            break; // Later halves are younger still.
        }
        let checks: i32 = half
            .property(property::TRANSACTION_CHECK_TIMES)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if checks >= shard.config.transaction_check_max {
            info!(offset = half.queue_offset, checks, "half message dropped after its last check");
            finish(shard, &half).await?;
        } else {
            recheck(shard, &half, checks + 1).await?;
        }
        if half.queue_offset == progress {
            progress += 1;
        }
    }
    shard.offsets.borrow_mut().set(log, CHECK_GROUP, TRANS_HALF_TOPIC, 0, progress);
    shard.transactions.borrow_mut().raise_floor(progress);
    Ok(())
}

/// Re-puts `half` with its check count and asks its producer group.
async fn recheck(shard: &Rc<Shard>, half: &StoredMessage, checks: i32) -> Result<(), BrokerError> {
    let props = message::set_property(
        &half.properties,
        property::TRANSACTION_CHECK_TIMES,
        &checks.to_string(),
    );
    let result = shard.append_routed(reput_batch(shard, half, TRANS_HALF_TOPIC, 0, &props)).await?;
    finish(shard, half).await?;
    let Some(group) = half.property(property::PRODUCER_GROUP) else { return Ok(()) };
    let new_offset = result.first_log_offset;
    let Some(record) = read_half(shard, new_offset).await else { return Ok(()) };
    let real_topic = record.property(property::REAL_TOPIC).unwrap_or_default();
    let mut header = Header::request(request::CHECK_TRANSACTION_STATE, 0, SerializeType::Json);
    header.set_oneway();
    CheckTransactionStateRequestHeader {
        topic: Some(real_topic.clone()),
        tran_state_table_offset: record.queue_offset,
        commit_log_offset: new_offset,
        msg_id: record.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX),
        transaction_id: record.property(property::TRANSACTION_ID),
        offset_msg_id: Some(message::offset_msg_id(&shard.store_host, new_offset)),
    }
    .encode(&mut header.ext_fields);
    let body = restored_record(shard, &record, &real_topic);
    shard.push_to_producer(&group, header, body);
    Ok(())
}

/// The half record as the producer's checker expects it: its real topic and queue.
fn restored_record(shard: &Shard, half: &StoredMessage, real_topic: &str) -> Bytes {
    let queue_id: i32 =
        half.property(property::REAL_QUEUE_ID).and_then(|q| q.parse().ok()).unwrap_or(0);
    let batch = reput_batch(shard, half, real_topic, queue_id, &half.properties);
    let mut records: BytesMut = batch.records;
    message::patch_record(
        &mut records,
        half.queue_offset,
        half.physical_offset,
        half.store_timestamp,
    );
    records.freeze()
}
