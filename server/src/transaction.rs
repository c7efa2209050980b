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

use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CheckTransactionStateRequestHeader, CommandHeader, EndTransactionRequestHeader,
};
use ramjet_proto::message::{self, property, StoredMessage};
use ramjet_proto::{Header, SerializeType};
use ramjet_storage::{GetResult, GetStatus};
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
/// Property of an op record: the commit-log offset of the half it finishes (its body is
/// the half's queue offset, as the reference writes it).
pub const OP_HALF_LOG_OFFSET: &str = "HALF_LOG_OFFSET";
/// Most halves remembered as skipped by the check task (still committable by their
/// producer though below the check progress); the oldest is forgotten first.
const SKIPPED_MAX: usize = 1024;
/// The answer to an END_TRANSACTION that names no half message (the reference's remark
/// when its lookup by commit-log offset fails).
const NO_HALF: &str = "Find prepared transaction message failed";

/// Finished half messages, by commit-log offset.
///
/// Lives on: the half queue's owner shard.
///
/// Every half stored below `floor` is finished (the check task moved its progress past
/// it) except those in `skipped`; `done` holds the finished halves at or above `floor`, so
/// the set stays as small as the halves in flight.
#[derive(Debug, Default)]
pub struct TransactionState {
    done: BTreeSet<i64>,
    /// Halves whose end is in progress.
    ending: BTreeSet<i64>,
    /// Commit-log offset below which every half is finished (but `skipped`).
    floor: i64,
    /// Halves below `floor` the check task could not re-put: not finished, so their
    /// producer may still end them (bounded by `SKIPPED_MAX`, not kept over a restart).
    skipped: VecDeque<i64>,
    /// Op-queue offset up to which `done` has been rebuilt.
    op_read_offset: i64,
    loaded: bool,
}

impl TransactionState {
    /// Whether the half stored at `log_offset` is finished.
    fn is_finished(&self, log_offset: i64) -> bool {
        (log_offset < self.floor && !self.skipped.contains(&log_offset))
            || self.done.contains(&log_offset)
    }

    fn mark_done(&mut self, log_offset: i64) {
        self.skipped.retain(|&o| o != log_offset);
        if log_offset >= self.floor {
            self.done.insert(log_offset);
        }
    }

    fn mark_skipped(&mut self, log_offset: i64) {
        if self.skipped.len() >= SKIPPED_MAX {
            self.skipped.pop_front();
        }
        self.skipped.push_back(log_offset);
    }

    /// Moves the floor up to `floor`, forgetting the finished halves below it.
    fn raise_floor(&mut self, floor: i64) {
        if floor > self.floor {
            self.floor = floor;
            self.done = self.done.split_off(&floor);
        }
    }
}

/// Records read from a transaction queue per step.
const READ_BATCH_MAX: u32 = 256;

/// Reads up to `max_count` records of a queue on its owner shard from `offset`.
async fn read_raw(
    shard: &Shard,
    topic: &str,
    queue_id: i32,
    offset: i64,
    max_count: u32,
) -> Result<GetResult, BrokerError> {
    let read = QueueRead {
        topic: topic.to_string(),
        queue_id,
        offset,
        max_count,
        max_bytes: crate::handler::pull_message::PULL_BYTES_MAX,
    };
    shard.read_routed(read).await
}

/// The records of a read with their queue offsets (consecutive from `offset`: the read
/// has no filter); a record that does not decode is `None`, for the caller to skip.
fn records_of(found: &GetResult, offset: i64) -> Vec<(i64, Option<StoredMessage>)> {
    if found.status != GetStatus::Found {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(found.messages.len());
    for (i, r) in found.messages.iter().enumerate() {
        out.push((offset + i as i64, message::decode_record(r, false).ok()));
    }
    out
}

/// The half stored at queue offset `queue_offset` of the half queue, found through its
/// consume queue (so only a record the broker stored as a half can be named).
async fn half_at(shard: &Shard, queue_offset: i64) -> Result<Option<StoredMessage>, BrokerError> {
    if queue_offset < 0 {
        return Ok(None);
    }
    let found = read_raw(shard, TRANS_HALF_TOPIC, 0, queue_offset, 1).await?;
    Ok(records_of(&found, queue_offset).into_iter().next().and_then(|(_, m)| m))
}

/// Rebuilds the finished set from op records not read yet. An op record written before
/// op records carried [`OP_HALF_LOG_OFFSET`] names its half by queue offset only: that
/// half is looked up (when not already below the floor).
async fn load_ops(shard: &Rc<Shard>, progress: i64) -> Result<(), BrokerError> {
    loop {
        let from = shard.transactions.borrow().op_read_offset;
        let found = read_raw(shard, TRANS_OP_HALF_TOPIC, 0, from, READ_BATCH_MAX).await?;
        let records = records_of(&found, from);
        for (op_offset, op) in &records {
            let Some(op) = op else {
                warn!(op_offset, "undecodable transaction op record skipped");
                continue;
            };
            let log_offset = match op.property(OP_HALF_LOG_OFFSET).and_then(|v| v.parse().ok()) {
                Some(o) => Some(o),
                None => {
                    let queue_offset = std::str::from_utf8(&op.body)
                        .ok()
                        .and_then(|b| b.trim().parse::<i64>().ok())
                        .filter(|&q| q >= progress);
                    match queue_offset {
                        Some(q) => half_at(shard, q).await?.map(|h| h.physical_offset),
                        None => None,
                    }
                }
            };
            if let Some(o) = log_offset {
                shard.transactions.borrow_mut().mark_done(o);
            }
        }
        let mut state = shard.transactions.borrow_mut();
        state.op_read_offset = if records.is_empty() { from } else { found.next_offset.max(from) };
        if records.is_empty() {
            state.loaded = true;
            return Ok(());
        }
    }
}

/// The floor after a restart: just past the last half below the saved check progress.
async fn floor_of_progress(shard: &Shard, progress: i64) -> Result<i64, BrokerError> {
    if progress <= 0 {
        return Ok(0);
    }
    Ok(half_at(shard, progress - 1).await?.map_or(0, |h| h.physical_offset + 1))
}

fn check_progress(shard: &Shard) -> i64 {
    let log = shard.log_for(TRANS_HALF_TOPIC, 0);
    shard.offsets.borrow().get(log, CHECK_GROUP, TRANS_HALF_TOPIC, 0).unwrap_or(0)
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
    let progress = check_progress(shard);
    let floor = floor_of_progress(shard, progress).await?;
    shard.transactions.borrow_mut().raise_floor(floor);
    load_ops(shard, progress).await
}

/// Marks a half finished: op record first to the op queue, then in memory.
async fn finish(shard: &Rc<Shard>, half: &StoredMessage) -> Result<(), BrokerError> {
    let body = Bytes::from(half.queue_offset.to_string());
    let log_offset = half.physical_offset.to_string();
    let props = message::encode_properties([
        (property::TAGS, OP_TAG),
        (OP_HALF_LOG_OFFSET, log_offset.as_str()),
    ]);
    let mut op = half.clone();
    op.body = body;
    op.sys_flag &= !message::SYSFLAG_TRANSACTION_MASK;
    let mut batch = reput_batch(shard, &op, TRANS_OP_HALF_TOPIC, 0, &props)?;
    batch.tags_codes = vec![message::tags_code(OP_TAG)];
    shard.append_routed(batch).await?;
    shard.transactions.borrow_mut().mark_done(half.physical_offset);
    Ok(())
}

async fn read_half(shard: &Shard, offset: i64) -> Option<StoredMessage> {
    let (log, _) = ramjet_storage::split_log_offset(offset)?;
    let store = shard.logs.get(&log)?.clone();
    let record = store.read_record(offset).await.ok()??;
    message::decode_record(&record, false).ok()
}

/// Whether a real half is stored at `log_offset` (one its own half-queue entry points
/// at): an end naming it with another `tranStateTableOffset` gets the reference's remark.
async fn named_with_wrong_table_offset(shard: &Shard, log_offset: i64) -> bool {
    let Some(record) = read_half(shard, log_offset).await else { return false };
    if !is_half(&record) {
        return false;
    }
    matches!(half_at(shard, record.queue_offset).await, Ok(Some(m)) if m.physical_offset == log_offset)
}

/// Whether `m` is a half message as the broker stores one: on the half queue, with the
/// prepared property.
fn is_half(m: &StoredMessage) -> bool {
    &m.topic[..] == TRANS_HALF_TOPIC.as_bytes()
        && m.queue_id == 0
        && m.property(property::TRANSACTION_PREPARED)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// END_TRANSACTION: commit (8) stores the message on its real queue, rollback (12) drops
/// it; both finish the half. Unknown (0) does nothing.
///
/// Acts only on a half message: the record at `tranStateTableOffset` of the half queue
/// (found through its consume queue) must be stored at `commitLogOffset`, carry the
/// prepared property and `producerGroup`'s name (else SYSTEM_ERROR, the reference's
/// remarks). A half already finished (by an end, a re-check or its last check) answers
/// SUCCESS and changes nothing.
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
    let half_log = shard.log_for(TRANS_HALF_TOPIC, 0);
    if ramjet_storage::split_log_offset(req.commit_log_offset).map(|(log, _)| log) != Some(half_log)
        || !shard.logs.contains_key(&half_log)
    {
        // Not in the half queue's log: no half message can be there.
        return error(h, response::SYSTEM_ERROR, NO_HALF);
    }
    if let Err(e) = ensure_loaded(shard).await {
        return error_response(h, &e);
    }
    let half = match half_at(shard, req.tran_state_table_offset).await {
        Ok(Some(m)) if m.physical_offset == req.commit_log_offset && is_half(&m) => m,
        Ok(_) => {
            let remark = if named_with_wrong_table_offset(shard, req.commit_log_offset).await {
                "The transaction state table offset wrong"
            } else {
                NO_HALF
            };
            return error(h, response::SYSTEM_ERROR, remark);
        }
        Err(e) => return error_response(h, &e),
    };
    if half.property(property::PRODUCER_GROUP).as_deref() != Some(req.producer_group.as_str()) {
        return error(h, response::SYSTEM_ERROR, "The producer group wrong");
    }
    let log_offset = half.physical_offset;
    {
        // Finished, or being finished by a concurrent end: never deliver twice.
        let mut state = shard.transactions.borrow_mut();
        if state.is_finished(log_offset) || !state.ending.insert(log_offset) {
            return Response::new(success(h));
        }
    }
    let outcome = end_half(shard, &half, commit).await;
    shard.transactions.borrow_mut().ending.remove(&log_offset);
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

/// The half's own real queue, checked: the topic exists and may be sent to, the queue id
/// is within its queues.
fn real_queue(shard: &Shard, half: &StoredMessage) -> Result<(String, i32), BrokerError> {
    let topic = half
        .property(property::REAL_TOPIC)
        .ok_or_else(|| BrokerError::System("half message without REAL_TOPIC".into()))?;
    crate::reserved::check_send_topic(&topic)?;
    let queue_id: i32 = half
        .property(property::REAL_QUEUE_ID)
        .and_then(|q| q.parse().ok())
        .ok_or_else(|| BrokerError::System("half message without REAL_QID".into()))?;
    let table = shard.topic_table();
    let config = table.get(&topic).ok_or_else(|| BrokerError::TopicNotExist(topic.clone()))?;
    if queue_id < 0 || (queue_id >= config.write_queue_nums && queue_id >= config.read_queue_nums) {
        return Err(BrokerError::System(format!(
            "request queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.writeQueueNums:[{}]",
            config.write_queue_nums
        )));
    }
    Ok((topic, queue_id))
}

async fn commit_half(shard: &Rc<Shard>, half: &StoredMessage) -> Result<(), BrokerError> {
    let (topic, queue_id) = real_queue(shard, half)?;
    let props = message::remove_properties(
        &half.properties,
        &[property::TRANSACTION_PREPARED, property::REAL_TOPIC, property::REAL_QUEUE_ID],
    );
    let mut m = half.clone();
    m.sys_flag =
        (m.sys_flag & !message::SYSFLAG_TRANSACTION_MASK) | message::SYSFLAG_TRANSACTION_COMMIT;
    m.prepared_transaction_offset = half.physical_offset;
    let batch = reput_batch(shard, &m, &topic, queue_id, &props)?;
    shard.append_routed(batch).await.map(|_| ())
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

/// What the check task did with one half.
enum Checked {
    /// Finished (now or before), re-put for another check, or skipped: progress may move
    /// past it.
    Passed,
    /// Being ended right now: looked at again next round.
    Ending,
    /// Not due yet; neither are the halves after it.
    Young,
}

/// One round of the check task. A record that does not decode is skipped, a half that
/// cannot be re-put is skipped (asked about once, still committable), and progress up to
/// the first half not passed is saved whatever happens after it.
async fn check_once(shard: &Rc<Shard>) -> Result<(), BrokerError> {
    ensure_loaded(shard).await?;
    let log = shard.log_for(TRANS_HALF_TOPIC, 0);
    let start = check_progress(shard);
    let found = read_raw(shard, TRANS_HALF_TOPIC, 0, start, READ_BATCH_MAX).await?;
    let mut progress = start;
    if matches!(found.status, GetStatus::OffsetTooSmall) {
        // The oldest halves' files are gone: so are those halves.
        progress = found.min_offset.max(start);
    }
    let mut floor = None;
    let mut failure = None;
    let now = now_ms() as i64;
    for (queue_offset, half) in records_of(&found, start) {
        let checked = match &half {
            None => {
                warn!(queue_offset, "undecodable half record skipped by the transaction check");
                Ok(Checked::Passed)
            }
            Some(half) => check_half(shard, half, now).await,
        };
        match checked {
            Ok(Checked::Passed) => {
                if queue_offset == progress {
                    progress += 1;
                    if let Some(h) = &half {
                        floor = Some(h.physical_offset + 1);
                    }
                }
            }
            Ok(Checked::Ending) => {}
            Ok(Checked::Young) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if progress != start {
        shard.offsets.borrow_mut().set(log, CHECK_GROUP, TRANS_HALF_TOPIC, 0, progress);
    }
    if let Some(f) = floor {
        shard.transactions.borrow_mut().raise_floor(f);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Checks one half: finished ones pass; due ones are re-put for one more check (or
/// dropped after their last); one that cannot be re-put is skipped. An error is one the
/// next round may not meet (an append refused by a busy store, a shard gone).
async fn check_half(
    shard: &Rc<Shard>,
    half: &StoredMessage,
    now: i64,
) -> Result<Checked, BrokerError> {
    {
        let state = shard.transactions.borrow();
        if state.is_finished(half.physical_offset) {
            return Ok(Checked::Passed);
        }
        if state.ending.contains(&half.physical_offset) {
            return Ok(Checked::Ending);
        }
    }
    let immunity_ms = half
        .property(property::CHECK_IMMUNITY_TIME_IN_SECONDS)
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(shard.config.transaction_timeout_ms as i64, |s| s.saturating_mul(1000));
    if now - half.store_timestamp < immunity_ms {
        return Ok(Checked::Young); // Later halves are younger still.
    }
    let checks: i32 =
        half.property(property::TRANSACTION_CHECK_TIMES).and_then(|c| c.parse().ok()).unwrap_or(0);
    if checks >= shard.config.transaction_check_max {
        info!(offset = half.physical_offset, checks, "half message dropped after its last check");
        finish(shard, half).await?;
        return Ok(Checked::Passed);
    }
    match recheck(shard, half, checks.saturating_add(1)).await {
        Err(BrokerError::IllegalMessage(why)) => {
            // Re-putting it can never succeed: ask its producer about it as it is, once,
            // and leave it committable; it is no longer checked.
            warn!(offset = half.physical_offset, %why, "half message that cannot be re-put skipped by the transaction check");
            shard.transactions.borrow_mut().mark_skipped(half.physical_offset);
            ask_producer(shard, half);
            Ok(Checked::Passed)
        }
        other => other.map(|()| Checked::Passed),
    }
}

/// Re-puts `half` with its check count and asks its producer group.
async fn recheck(shard: &Rc<Shard>, half: &StoredMessage, checks: i32) -> Result<(), BrokerError> {
    let props = message::set_property(
        &half.properties,
        property::TRANSACTION_CHECK_TIMES,
        &checks.to_string(),
    );
    let batch = reput_batch(shard, half, TRANS_HALF_TOPIC, 0, &props)?;
    let result = shard.append_routed(batch).await?;
    finish(shard, half).await?;
    if let Some(record) = read_half(shard, result.first_log_offset).await {
        ask_producer(shard, &record);
    }
    Ok(())
}

/// Sends CHECK_TRANSACTION_STATE about `half` (as stored) to a live producer of its group.
fn ask_producer(shard: &Shard, half: &StoredMessage) {
    let Some(group) = half.property(property::PRODUCER_GROUP) else { return };
    let real_topic = half.property(property::REAL_TOPIC).unwrap_or_default();
    let mut header = Header::request(request::CHECK_TRANSACTION_STATE, 0, SerializeType::Json);
    header.set_oneway();
    CheckTransactionStateRequestHeader {
        topic: Some(real_topic.clone()),
        tran_state_table_offset: half.queue_offset,
        commit_log_offset: half.physical_offset,
        msg_id: half.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX),
        transaction_id: half.property(property::TRANSACTION_ID),
        offset_msg_id: Some(message::offset_msg_id(&shard.store_host, half.physical_offset)),
    }
    .encode(&mut header.ext_fields);
    let Some(body) = restored_record(shard, half, &real_topic) else {
        warn!(
            offset = half.physical_offset,
            "half message that cannot be restored not asked about"
        );
        return;
    };
    shard.push_to_producer(&group, header, body);
}

/// The half record as the producer's checker expects it: its real topic and queue.
fn restored_record(shard: &Shard, half: &StoredMessage, real_topic: &str) -> Option<Bytes> {
    let queue_id: i32 =
        half.property(property::REAL_QUEUE_ID).and_then(|q| q.parse().ok()).unwrap_or(0);
    let batch = reput_batch(shard, half, real_topic, queue_id, &half.properties).ok()?;
    let mut records: BytesMut = batch.records;
    message::patch_record(
        &mut records,
        half.queue_offset,
        half.physical_offset,
        half.store_timestamp,
    );
    Some(records.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finished_set_keeps_only_halves_at_or_above_the_floor() {
        let mut s = TransactionState::default();
        for o in [100, 200, 300] {
            s.mark_done(o);
        }
        assert!(s.is_finished(200) && !s.is_finished(250));
        s.raise_floor(250);
        assert_eq!(s.done.iter().copied().collect::<Vec<_>>(), vec![300]);
        // Below the floor every half is finished; a lower floor changes nothing.
        assert!(s.is_finished(100) && s.is_finished(249) && !s.is_finished(250));
        s.raise_floor(10);
        assert_eq!(s.floor, 250);
        s.mark_done(120);
        assert_eq!(s.done.len(), 1, "an end below the floor adds nothing");
    }

    #[test]
    fn a_skipped_half_stays_committable_until_finished_and_the_skip_list_is_bounded() {
        let mut s = TransactionState::default();
        s.mark_skipped(40);
        s.raise_floor(100);
        assert!(!s.is_finished(40) && s.is_finished(41));
        s.mark_done(40);
        assert!(s.is_finished(40) && s.skipped.is_empty());
        for o in 0..(SKIPPED_MAX as i64 + 5) {
            s.mark_skipped(o);
        }
        assert_eq!(s.skipped.len(), SKIPPED_MAX);
        assert_eq!(s.skipped.front(), Some(&5));
    }
}
