//! The process queue: the messages pulled from one queue and not yet consumed, and the
//! offset that is safe to commit. Pure state (the caller passes `now`), no I/O.
//!
//! Lives on: the executor of the push consumer that holds the queue.
//!
//! ```text
//!   pulled, in offset order (msgs)                consumed
//!  ┌────┬────┬────┬────┬────┐                ┌────┬────┐
//!  │ 40 │ 41 │ 42 │ 43 │ 44 │   ◀── put ──   │ .. │ 39 │   pull loop appends
//!  └────┴────┴────┴────┴────┘                └────┴────┘
//!     ▲ smallest offset still held = the offset to commit (40)
//! ```
//!
//! Concurrent consumption ([`ProcessQueue::take_ready`], [`ProcessQueue::remove`]):
//! messages are handed out in offset order but may finish in any order; a message stays
//! in `msgs` until it is consumed (or sent back), so the commit offset is the smallest
//! offset still held, or one past the largest pulled when none is (the reference's
//! `ProcessQueue.removeMessage`). A message whose send-back failed stays held and comes
//! back from `take_ready` once its retry time is due.
//!
//! Ordered consumption ([`ProcessQueue::take_in_order`], [`ProcessQueue::commit`],
//! [`ProcessQueue::make_to_consume_again`]): one batch at a time moves from `msgs` to
//! `consuming`; success commits past it, a failure puts it back to be consumed again
//! first.
//!
//! Invariants: `msg_count` is the number of messages in `msgs` plus in `consuming`, and
//! `msg_size_bytes` their body sizes; an offset is in at most one of the two.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use ramjet_proto::message::StoredMessage;

/// What the process queue needs to know about a message.
pub trait QueuedMessage: Clone {
    /// The message's queue offset.
    fn queue_offset(&self) -> i64;
    /// Its size for flow control, bytes.
    fn size_bytes(&self) -> usize;
}

impl QueuedMessage for StoredMessage {
    fn queue_offset(&self) -> i64 {
        self.queue_offset
    }

    fn size_bytes(&self) -> usize {
        self.body.len()
    }
}

/// How long a lock taken with LOCK_BATCH_MQ is trusted without renewal (the reference's
/// `REBALANCE_LOCK_MAX_LIVE_TIME`, 30 s; the broker keeps it 60 s).
pub const LOCK_MAX_LIVE: Duration = Duration::from_secs(30);

/// One queue's pulled, unconsumed messages.
#[derive(Debug)]
pub struct ProcessQueue<M: QueuedMessage = StoredMessage> {
    msgs: BTreeMap<i64, M>,
    /// Concurrent mode: offsets in `msgs` not handed out yet, in order.
    ready: VecDeque<i64>,
    /// Concurrent mode: offsets in `msgs` to hand out again at a time.
    delayed: Vec<(Instant, i64)>,
    /// Ordered mode: offsets taken by `take_in_order` and their sizes.
    consuming: BTreeMap<i64, usize>,
    msg_count: usize,
    msg_size_bytes: usize,
    /// Largest offset ever put.
    max_offset_seen: Option<i64>,
    /// Set when the queue was taken away (rebalance, shutdown, offset reset).
    pub dropped: bool,
    /// Ordered mode: the broker granted this client the queue's lock.
    pub locked: bool,
    /// When the lock was last granted.
    pub last_lock: Option<Instant>,
}

impl<M: QueuedMessage> Default for ProcessQueue<M> {
    fn default() -> Self {
        ProcessQueue {
            msgs: BTreeMap::new(),
            ready: VecDeque::new(),
            delayed: Vec::new(),
            consuming: BTreeMap::new(),
            msg_count: 0,
            msg_size_bytes: 0,
            max_offset_seen: None,
            dropped: false,
            locked: false,
            last_lock: None,
        }
    }
}

impl<M: QueuedMessage> ProcessQueue<M> {
    /// An empty process queue.
    pub fn new() -> ProcessQueue<M> {
        ProcessQueue::default()
    }

    /// Adds pulled messages; offsets already held are ignored. Returns how many were new.
    pub fn put(&mut self, msgs: Vec<M>) -> usize {
        let mut added = 0;
        for m in msgs {
            let offset = m.queue_offset();
            if self.msgs.contains_key(&offset) || self.consuming.contains_key(&offset) {
                continue;
            }
            self.msg_count += 1;
            self.msg_size_bytes += m.size_bytes();
            self.max_offset_seen = Some(self.max_offset_seen.map_or(offset, |o| o.max(offset)));
            self.msgs.insert(offset, m);
            self.ready.push_back(offset);
            added += 1;
        }
        self.check();
        added
    }

    /// The lowest and highest queue offsets held, if any.
    pub fn cached_offsets(&self) -> Option<(i64, i64)> {
        let first = *self.msgs.keys().next()?;
        let last = *self.msgs.keys().next_back()?;
        Some((first, last))
    }

    /// Messages held (pulled and not consumed, including those being consumed).
    pub fn msg_count(&self) -> usize {
        self.msg_count
    }

    /// Body bytes held.
    pub fn msg_size_bytes(&self) -> usize {
        self.msg_size_bytes
    }

    /// The offset span held: largest minus smallest (the reference's `getMaxSpan`).
    pub fn max_span(&self) -> i64 {
        match (self.msgs.keys().next(), self.msgs.keys().next_back()) {
            (Some(first), Some(last)) => last - first,
            _ => 0,
        }
    }

    /// Concurrent mode: true when `take_ready` would return something at `now`.
    pub fn has_ready(&self, now: Instant) -> bool {
        !self.ready.is_empty() || self.delayed.iter().any(|(due, _)| *due <= now)
    }

    /// Concurrent mode: the earliest time a delayed message becomes ready.
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.iter().map(|(due, _)| *due).min()
    }

    /// Concurrent mode: up to `max` messages to consume (copies; they stay held until
    /// `remove`): delayed ones that are due first, then new ones in offset order.
    pub fn take_ready(&mut self, max: usize, now: Instant) -> Vec<M> {
        let mut out = Vec::new();
        let mut due: Vec<i64> = Vec::new();
        self.delayed.retain(|(at, offset)| {
            if *at <= now && due.len() < max {
                due.push(*offset);
                false
            } else {
                true
            }
        });
        due.sort_unstable();
        for offset in due {
            if let Some(m) = self.msgs.get(&offset) {
                out.push(m.clone());
            }
        }
        while out.len() < max {
            let Some(offset) = self.ready.pop_front() else { break };
            if let Some(m) = self.msgs.get(&offset) {
                out.push(m.clone());
            }
        }
        out
    }

    /// Concurrent mode: `msgs` (updated copies, e.g. with their reconsume count raised)
    /// are to be consumed again at `due`; they stay held meanwhile.
    pub fn retry_later(&mut self, msgs: Vec<M>, due: Instant) {
        for m in msgs {
            let offset = m.queue_offset();
            if let Some(slot) = self.msgs.get_mut(&offset) {
                *slot = m;
                self.delayed.push((due, offset));
            }
        }
    }

    /// Concurrent mode: the messages at `offsets` are done. Returns the offset to
    /// commit: the smallest still held, or one past the largest pulled when none is;
    /// `None` when nothing was held.
    pub fn remove(&mut self, offsets: &[i64]) -> Option<i64> {
        if self.msgs.is_empty() {
            return None;
        }
        let after_last = self.max_offset_seen.map_or(0, |o| o + 1);
        for offset in offsets {
            if let Some(m) = self.msgs.remove(offset) {
                self.msg_count -= 1;
                self.msg_size_bytes -= m.size_bytes();
            }
        }
        self.ready.retain(|o| self.msgs.contains_key(o));
        self.delayed.retain(|(_, o)| self.msgs.contains_key(o));
        self.check();
        Some(self.msgs.keys().next().copied().unwrap_or(after_last))
    }

    /// Ordered mode: moves the first `max` held messages to `consuming` and returns them.
    /// Empty when nothing is held.
    pub fn take_in_order(&mut self, max: usize) -> Vec<M> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some((offset, m)) = self.msgs.pop_first() else { break };
            self.consuming.insert(offset, m.size_bytes());
            out.push(m);
        }
        self.ready.retain(|o| self.msgs.contains_key(o));
        self.check();
        out
    }

    /// Ordered mode: the messages being consumed are done. Returns the offset to commit
    /// (one past the last of them); `None` when none were being consumed.
    pub fn commit(&mut self) -> Option<i64> {
        let last = self.consuming.keys().next_back().copied()?;
        for (_, size) in std::mem::take(&mut self.consuming) {
            self.msg_count -= 1;
            self.msg_size_bytes -= size;
        }
        self.check();
        Some(last + 1)
    }

    /// Ordered mode: `msgs` (taken by `take_in_order`, possibly updated) go back to be
    /// consumed again before anything after them.
    pub fn make_to_consume_again(&mut self, msgs: Vec<M>) {
        for m in msgs {
            let offset = m.queue_offset();
            if self.consuming.remove(&offset).is_some() {
                self.msgs.insert(offset, m);
            }
        }
        self.check();
    }

    /// Ordered mode: true while the lock is held and was renewed within `max_live`.
    pub fn is_lock_valid(&self, now: Instant, max_live: Duration) -> bool {
        self.locked && self.last_lock.is_some_and(|t| now.saturating_duration_since(t) < max_live)
    }

    /// Records the broker's answer to a lock request made at `now`.
    pub fn set_locked(&mut self, locked: bool, now: Instant) {
        self.locked = locked;
        if locked {
            self.last_lock = Some(now);
        }
    }

    /// Forgets every held message (the queue was dropped or its offset reset).
    pub fn clear(&mut self) {
        self.msgs.clear();
        self.ready.clear();
        self.delayed.clear();
        self.consuming.clear();
        self.msg_count = 0;
        self.msg_size_bytes = 0;
    }

    fn check(&self) {
        assert_eq!(
            self.msg_count,
            self.msgs.len() + self.consuming.len(),
            "msg_count counts held and consuming messages"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct M {
        offset: i64,
        size: usize,
        tries: u32,
    }

    impl QueuedMessage for M {
        fn queue_offset(&self) -> i64 {
            self.offset
        }
        fn size_bytes(&self) -> usize {
            self.size
        }
    }

    fn msgs(range: std::ops::Range<i64>) -> Vec<M> {
        range.map(|offset| M { offset, size: 10, tries: 0 }).collect()
    }

    fn offsets(ms: &[M]) -> Vec<i64> {
        ms.iter().map(|m| m.offset).collect()
    }

    #[test]
    fn concurrent_commit_offset_is_the_smallest_unfinished() {
        let mut pq = ProcessQueue::new();
        assert_eq!(pq.put(msgs(40..45)), 5);
        assert_eq!(pq.put(msgs(43..46)), 1, "offsets already held are ignored");
        assert_eq!((pq.msg_count(), pq.msg_size_bytes(), pq.max_span()), (6, 60, 5));
        let now = Instant::now();
        let a = pq.take_ready(2, now);
        let b = pq.take_ready(10, now);
        assert_eq!(offsets(&a), [40, 41]);
        assert_eq!(offsets(&b), [42, 43, 44, 45]);
        assert!(!pq.has_ready(now));
        // The second batch finishes first: 40 is still out, so 40 is the commit offset.
        assert_eq!(pq.remove(&offsets(&b)), Some(40));
        assert_eq!(pq.remove(&offsets(&a)), Some(46), "all done: one past the last pulled");
        assert_eq!(pq.msg_count(), 0);
        assert_eq!(pq.remove(&[46]), None, "nothing held");
    }

    #[test]
    fn a_message_retried_later_holds_the_offset_and_comes_back_when_due() {
        let mut pq = ProcessQueue::new();
        pq.put(msgs(0..3));
        let t0 = Instant::now();
        let batch = pq.take_ready(3, t0);
        let mut failed = batch[1].clone();
        failed.tries += 1;
        let due = t0 + Duration::from_secs(5);
        pq.retry_later(vec![failed], due);
        assert_eq!(pq.remove(&[0, 2]), Some(1));
        assert!(!pq.has_ready(t0));
        assert_eq!(pq.next_due(), Some(due));
        assert!(pq.take_ready(5, t0).is_empty());
        let again = pq.take_ready(5, due);
        assert_eq!(again, [M { offset: 1, size: 10, tries: 1 }]);
        assert_eq!(pq.next_due(), None);
        assert_eq!(pq.remove(&[1]), Some(3));
    }

    #[test]
    fn ordered_batches_commit_past_themselves_or_come_back_first() {
        let mut pq = ProcessQueue::new();
        pq.put(msgs(10..15));
        let first = pq.take_in_order(2);
        assert_eq!(offsets(&first), [10, 11]);
        assert_eq!(pq.msg_count(), 5, "consuming messages still count");
        assert_eq!(pq.commit(), Some(12));
        assert_eq!(pq.msg_count(), 3);
        let second = pq.take_in_order(2);
        assert_eq!(offsets(&second), [12, 13]);
        let retried: Vec<M> = second.into_iter().map(|m| M { tries: m.tries + 1, ..m }).collect();
        pq.make_to_consume_again(retried);
        assert_eq!(pq.commit(), None, "nothing is being consumed");
        let again = pq.take_in_order(10);
        assert_eq!(offsets(&again), [12, 13, 14]);
        assert_eq!(again[0].tries, 1);
        assert_eq!(pq.commit(), Some(15));
        assert!(pq.take_in_order(1).is_empty());
        assert_eq!(pq.msg_count(), 0);
    }

    #[test]
    fn locks_expire_without_renewal() {
        let mut pq: ProcessQueue<M> = ProcessQueue::new();
        let t0 = Instant::now();
        assert!(!pq.is_lock_valid(t0, LOCK_MAX_LIVE));
        pq.set_locked(true, t0);
        assert!(pq.is_lock_valid(t0 + Duration::from_secs(29), LOCK_MAX_LIVE));
        assert!(!pq.is_lock_valid(t0 + LOCK_MAX_LIVE, LOCK_MAX_LIVE));
        pq.set_locked(false, t0);
        assert!(!pq.is_lock_valid(t0, LOCK_MAX_LIVE));
    }

    #[test]
    fn clear_forgets_everything() {
        let mut pq = ProcessQueue::new();
        pq.put(msgs(0..4));
        let _ = pq.take_in_order(1);
        pq.clear();
        assert_eq!((pq.msg_count(), pq.msg_size_bytes()), (0, 0));
        assert!(!pq.has_ready(Instant::now()));
    }
}
