//! Long-poll waiters: pulls that found nothing, parked until a message arrives on their
//! queue or their hold time ends.
//!
//! Lives on: the owner shard of the queue. An append on that shard calls
//! [`LongPollTable::notify`] for its queue; the waiters re-run their pull.
//!
//! Limits: `WAITERS_PER_QUEUE_MAX` parked pulls per queue, and this shard's part of
//! `pullLongPollingMaxCount` in all ([`crate::table_limits`]); past either a pull is
//! answered at once with PULL_NOT_FOUND (the client simply pulls again).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Parked pulls per queue before new ones are answered immediately.
pub const WAITERS_PER_QUEUE_MAX: usize = 1024;

#[derive(Default)]
struct Slot {
    notified: bool,
    waker: Option<Waker>,
}

/// A parked pull's wake-up signal; dropping it gives its place back.
pub struct Waiter {
    slot: Rc<RefCell<Slot>>,
    /// The table's count of client waiters, when this is one.
    live: Option<Rc<Cell<usize>>>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.set(live.get().saturating_sub(1));
        }
    }
}

impl Future for Waiter {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.slot.borrow_mut();
        if s.notified {
            Poll::Ready(())
        } else {
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// The parked pulls of one queue.
type QueueWaiters = Vec<Rc<RefCell<Slot>>>;

/// Waiters by topic, then queue id (keyed by topic first so that the notify on every
/// append looks up with a `&str`, allocating nothing).
pub struct LongPollTable {
    waiters: HashMap<String, HashMap<i32, QueueWaiters>>,
    /// Waiters not dropped yet, all queues.
    live: Rc<Cell<usize>>,
    waiters_max: usize,
}

impl Default for LongPollTable {
    fn default() -> LongPollTable {
        LongPollTable::new(crate::table_limits::TableLimits::default().long_poll_waiters_max)
    }
}

impl LongPollTable {
    /// An empty table holding at most `waiters_max` parked pulls in all.
    pub fn new(waiters_max: usize) -> LongPollTable {
        LongPollTable { waiters: HashMap::new(), live: Rc::default(), waiters_max }
    }

    /// Parks a client's pull; `None` when the queue, or the table, already has the maximum
    /// number of waiters.
    pub fn park(&mut self, topic: &str, queue_id: i32) -> Option<Waiter> {
        if self.live.get() >= self.waiters_max {
            crate::table_limits::report(crate::table_limits::TableLimit::LongPollWaiters);
            return None;
        }
        let slot = self.slot(topic, queue_id)?;
        self.live.set(self.live.get() + 1);
        Some(Waiter { slot, live: Some(self.live.clone()) })
    }

    /// Parks one of the broker's own readers (the delay service: one per delay level), not
    /// counted against `pullLongPollingMaxCount`, which bounds what clients can park.
    pub fn park_internal(&mut self, topic: &str, queue_id: i32) -> Option<Waiter> {
        self.slot(topic, queue_id).map(|slot| Waiter { slot, live: None })
    }

    fn slot(&mut self, topic: &str, queue_id: i32) -> Option<Rc<RefCell<Slot>>> {
        let list = self.waiters.entry(topic.to_string()).or_default().entry(queue_id).or_default();
        list.retain(|s| Rc::strong_count(s) > 1); // Drop slots whose pull gave up.
        if list.len() >= WAITERS_PER_QUEUE_MAX {
            return None;
        }
        let slot = Rc::new(RefCell::new(Slot::default()));
        list.push(slot.clone());
        Some(slot)
    }

    /// Wakes every pull parked on the queue.
    pub fn notify(&mut self, topic: &str, queue_id: i32) {
        let Some(queues) = self.waiters.get_mut(topic) else {
            return;
        };
        let list = queues.remove(&queue_id);
        if queues.is_empty() {
            self.waiters.remove(topic);
        }
        if let Some(list) = list {
            for slot in list {
                let mut s = slot.borrow_mut();
                s.notified = true;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
    }

    /// Number of parked pulls (metrics).
    pub fn len(&self) -> usize {
        self.waiters.values().flat_map(HashMap::values).map(Vec::len).sum()
    }

    /// True when nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_wakes_only_its_queue() {
        let mut t = LongPollTable::default();
        let a = t.park("t", 0).expect("room");
        let b = t.park("t", 1).expect("room");
        t.notify("t", 0);
        assert!(a.slot.borrow().notified);
        assert!(!b.slot.borrow().notified);
    }

    #[test]
    fn waiters_per_queue_are_bounded() {
        let mut t = LongPollTable::default();
        let held: Vec<Waiter> = (0..WAITERS_PER_QUEUE_MAX).filter_map(|_| t.park("t", 0)).collect();
        assert_eq!(held.len(), WAITERS_PER_QUEUE_MAX);
        assert!(t.park("t", 0).is_none());
        drop(held);
        assert!(t.park("t", 0).is_some());
    }

    #[test]
    fn waiters_of_all_queues_are_bounded() {
        let mut t = LongPollTable::new(3);
        let a = t.park("t", 0).expect("room");
        let _b = t.park("t", 1).expect("room");
        let _c = t.park("u", 0).expect("room");
        assert!(t.park("v", 9).is_none(), "table full");
        drop(a);
        assert!(t.park("v", 9).is_some(), "a dropped waiter gives its place back");
        let _internal = t.park_internal("w", 0).expect("the broker's own readers are not counted");
    }
}
