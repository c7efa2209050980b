//! The push consumer's tasks: the periodic ones (heartbeat, rebalance, offset commit,
//! lock renewal) and, per assigned queue, a pull loop and a consume loop.
//!
//! Lives on: the push consumer's executor.
//!
//! The periodic tasks end at their next wait once the consumer's stop latch is set, so
//! shutdown waits for them. Pull loops are cancelled (a pull holds nothing that is not
//! in the process queue or the offset table). Consume loops end when their process
//! queue is dropped, after the batch in progress.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ramjet_proto::message::{property, StoredMessage};

use super::inner::{doze, nap, Inner};
use super::{ConsumeContext, ConsumeOrderlyStatus, ConsumeStatus, MessageListener};
use crate::message::MessageQueue;
use crate::process_queue::{ProcessQueue, LOCK_MAX_LIVE};
use crate::protocol::{self, PullArgs};
use crate::pull_step::{pull_pause, pull_step, PullStep, QueueLoad};
use crate::runtime;
use crate::transport::completion::Signal;

// ---------------------------------------------------------------------------------------
// Periodic tasks.

pub(super) async fn heartbeat_loop(inner: Rc<Inner>) {
    loop {
        nap(&inner, None, inner.config.heartbeat_interval).await;
        if inner.stop.is_set() {
            return;
        }
        inner.heartbeat_all().await;
    }
}

pub(super) async fn rebalance_loop(inner: Rc<Inner>) {
    loop {
        // The first pass runs at once: start() raises the signal.
        nap(&inner, Some(&inner.rebalance_wake), inner.config.rebalance_interval).await;
        if inner.stop.is_set() {
            return;
        }
        inner.rebalance().await;
    }
}

pub(super) async fn persist_loop(inner: Rc<Inner>) {
    loop {
        nap(&inner, None, inner.config.persist_offset_interval).await;
        if inner.stop.is_set() {
            return;
        }
        inner.persist_all(true).await;
    }
}

pub(super) async fn lock_loop(inner: Rc<Inner>) {
    loop {
        nap(&inner, None, inner.config.lock_interval).await;
        if inner.stop.is_set() {
            return;
        }
        inner.lock_all().await;
    }
}

// ---------------------------------------------------------------------------------------
// Pull.

/// The load flow control looks at ([`pull_pause`]).
fn queue_load(pq: &ProcessQueue) -> QueueLoad {
    QueueLoad {
        msg_count: pq.msg_count(),
        msg_size_bytes: pq.msg_size_bytes(),
        max_span: pq.max_span(),
        locked: pq.locked,
    }
}

/// Pulls `queue` from `offset` with long polling, feeding `pq` and waking the consume
/// loop, until the queue is dropped (or the task cancelled).
pub(super) async fn pull_loop(
    inner: Rc<Inner>,
    queue: MessageQueue,
    expression: String,
    pq: Rc<RefCell<ProcessQueue>>,
    wake: Rc<Signal>,
    mut offset: i64,
) {
    let orderly = inner.is_orderly();
    loop {
        let pause = {
            let p = pq.borrow();
            if p.dropped || inner.stop.is_set() {
                return;
            }
            pull_pause(&inner.config, &queue_load(&p), orderly, inner.is_clustering())
        };
        // Pull loops sleep deaf to the stop latch (shutdown cancels them), so the latch
        // only ever holds the wakers of the few periodic tasks.
        if let Some(d) = pause {
            runtime::sleep(d).await;
            continue;
        }
        let commit_offset = if inner.is_clustering() {
            inner.offsets.borrow().get(&queue).filter(|o| *o > 0)
        } else {
            None
        };
        let args = PullArgs {
            consumer_group: &inner.config.group,
            queue: &queue,
            offset,
            max_nums: inner.config.pull_batch_size,
            suspend_timeout_ms: Some(inner.config.suspend_timeout.as_millis() as i64),
            subscription: Some(&expression),
            commit_offset,
            sub_version: inner.sub_version,
        };
        let result = match inner.puller.pull_with(&args).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(?queue, offset, error = %e, "pull failed");
                runtime::sleep(inner.config.pull_retry_delay).await;
                continue;
            }
        };
        if pq.borrow().dropped {
            return;
        }
        let held_count = pq.borrow().msg_count();
        let step =
            pull_step(result.status, result.messages.len(), result.next_begin_offset, held_count);
        match step {
            PullStep::Deliver { next_offset } => {
                offset = next_offset;
                pq.borrow_mut().put(result.messages);
                wake.notify();
            }
            PullStep::Skip { next_offset, commit } => {
                offset = next_offset;
                if let Some(commit) = commit {
                    inner.offsets.borrow_mut().advance(&queue, commit);
                }
            }
            PullStep::Restart { reset_offset } => {
                tracing::warn!(
                    ?queue,
                    offset,
                    next = reset_offset,
                    "offset illegal; restarting the queue there"
                );
                {
                    let mut p = pq.borrow_mut();
                    p.dropped = true;
                    p.clear();
                }
                inner.offsets.borrow_mut().reset(&queue, reset_offset);
                wake.notify();
                inner.rebalance_wake.notify();
                return;
            }
        }
        if !inner.config.pull_interval.is_zero() {
            runtime::sleep(inner.config.pull_interval).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Consume.

/// Consumes `queue`'s process queue with the registered listener until it is dropped.
pub(super) async fn consume_loop(
    inner: Rc<Inner>,
    queue: MessageQueue,
    pq: Rc<RefCell<ProcessQueue>>,
    wake: Rc<Signal>,
) {
    let Some(listener) = inner.listener.borrow().clone() else { return };
    match listener {
        MessageListener::Concurrently(f) => consume_concurrently(inner, queue, pq, wake, f).await,
        MessageListener::Orderly(f) => consume_orderly(inner, queue, pq, wake, f).await,
    }
}

/// Redeliveries from `%RETRY%<group>` carry their original topic again.
fn reset_retry_topic(group: &str, msgs: &mut [StoredMessage]) {
    let retry = protocol::retry_topic(group);
    for m in msgs {
        if m.topic.as_ref() == retry.as_bytes() {
            if let Some(original) = m.property(property::RETRY_TOPIC) {
                m.topic = Bytes::from(original);
            }
        }
    }
}

async fn consume_concurrently(
    inner: Rc<Inner>,
    queue: MessageQueue,
    pq: Rc<RefCell<ProcessQueue>>,
    wake: Rc<Signal>,
    listener: Rc<super::ConcurrentlyFn>,
) {
    let batch_size = inner.config.consume_batch_max_size.max(1);
    loop {
        let (mut batch, next_due) = {
            let mut p = pq.borrow_mut();
            if p.dropped {
                return;
            }
            (p.take_ready(batch_size, Instant::now()), p.next_due())
        };
        if batch.is_empty() {
            let wait = next_due.map_or(Duration::from_secs(3600), |due| {
                due.saturating_duration_since(Instant::now())
            });
            doze(&wake, wait).await;
            continue;
        }
        reset_retry_topic(&inner.config.group, &mut batch);
        let ctx = ConsumeContext::new(queue.clone());
        let status =
            catch_unwind(AssertUnwindSafe(|| listener(&batch, &ctx))).unwrap_or_else(|_| {
                tracing::warn!(?queue, "listener panicked; the batch will be consumed again");
                ConsumeStatus::ReconsumeLater
            });
        let mut done: Vec<i64> = Vec::new();
        let mut failed: Vec<StoredMessage> = Vec::new();
        match status {
            ConsumeStatus::Success => done.extend(batch.iter().map(|m| m.queue_offset)),
            ConsumeStatus::ReconsumeLater if !inner.is_clustering() => {
                // Broadcasting drops failures, as the reference does.
                tracing::warn!(?queue, count = batch.len(), "broadcast consume failed; dropped");
                done.extend(batch.iter().map(|m| m.queue_offset));
            }
            ConsumeStatus::ReconsumeLater => {
                let level = ctx.delay_level_when_next_consume();
                for m in batch {
                    match inner.send_back(&m, &queue, level).await {
                        Ok(()) => done.push(m.queue_offset),
                        Err(e) => {
                            tracing::debug!(?queue, offset = m.queue_offset, error = %e,
                                "send-back failed; consuming again locally later");
                            let mut m = m;
                            m.reconsume_times += 1;
                            failed.push(m);
                        }
                    }
                }
            }
        }
        let mut p = pq.borrow_mut();
        if !failed.is_empty() {
            p.retry_later(failed, Instant::now() + inner.config.local_retry_delay);
        }
        let commit = p.remove(&done);
        // A dropped queue belongs to someone else now: its offset is not ours to move.
        if let Some(offset) = commit.filter(|_| !p.dropped) {
            inner.offsets.borrow_mut().advance(&queue, offset);
        }
    }
}

async fn consume_orderly(
    inner: Rc<Inner>,
    queue: MessageQueue,
    pq: Rc<RefCell<ProcessQueue>>,
    wake: Rc<Signal>,
    listener: Rc<super::OrderlyFn>,
) {
    let batch_size = inner.config.consume_batch_max_size.max(1);
    let clustering = inner.is_clustering();
    loop {
        let lock_valid = {
            let p = pq.borrow();
            if p.dropped {
                return;
            }
            !clustering || p.is_lock_valid(Instant::now(), LOCK_MAX_LIVE)
        };
        if !lock_valid {
            if !inner.lock_queues(std::slice::from_ref(&queue)).await {
                doze(&wake, inner.config.pull_retry_delay).await;
            }
            continue;
        }
        let mut batch = pq.borrow_mut().take_in_order(batch_size);
        if batch.is_empty() {
            doze(&wake, Duration::from_secs(3600)).await;
            continue;
        }
        reset_retry_topic(&inner.config.group, &mut batch);
        let ctx = ConsumeContext::new(queue.clone());
        let status =
            catch_unwind(AssertUnwindSafe(|| listener(&batch, &ctx))).unwrap_or_else(|_| {
                tracing::warn!(?queue, "ordered listener panicked; suspending the queue");
                ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
            });
        let suspend = match status {
            ConsumeOrderlyStatus::Success => false,
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => {
                give_up_or_retry(&inner, &queue, &mut batch).await
            }
        };
        if suspend {
            pq.borrow_mut().make_to_consume_again(batch);
            let d = ctx.suspend.get().unwrap_or(inner.config.suspend_current_queue_time);
            doze(&wake, d).await;
            continue;
        }
        let mut p = pq.borrow_mut();
        let commit = p.commit();
        if let Some(offset) = commit.filter(|_| !p.dropped) {
            inner.offsets.borrow_mut().advance(&queue, offset);
        }
    }
}

/// After an ordered batch failed: messages that reached `max_reconsume_times` go to the
/// dead-letter topic; the others count one more try. Returns true when the batch is to
/// be consumed again (some message still has tries left, or its send-back failed).
async fn give_up_or_retry(
    inner: &Inner,
    queue: &MessageQueue,
    batch: &mut [StoredMessage],
) -> bool {
    let max = inner.max_reconsume_times();
    let mut suspend = false;
    for m in batch.iter_mut() {
        if m.reconsume_times >= max {
            match inner.send_back(m, queue, -1).await {
                Ok(()) => continue,
                Err(e) => tracing::debug!(?queue, offset = m.queue_offset, error = %e,
                    "dead-letter send-back failed; suspending"),
            }
        }
        suspend = true;
        m.reconsume_times += 1;
    }
    suspend
}
