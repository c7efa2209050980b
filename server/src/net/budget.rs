//! The broker-wide budget for response bytes: bytes reserved by requests in progress plus
//! bytes of responses and pushes queued but not yet written, over every connection of the
//! process (`serverResponseBytesMax`).
//!
//! Lives on: every executor that serves remoting connections; one per process (inside
//! [`super::limits::Governor`]), shared by all of them through atomics.
//!
//! A connection reserves its request's worst-case response here before dispatching it.
//! When the reservation does not fit, the connection joins a FIFO queue of waiters and is
//! woken (from whichever executor releases bytes) when it reaches the head and bytes are
//! given back, so a connection that keeps asking cannot starve one that waits: while anyone
//! waits, only the head may reserve. A reservation always fits an empty budget, so a single
//! response larger than the budget is still served (alone) instead of waiting forever.
//! Pushes ([`ResponseBudget::try_add`]) never wait: the caller drops them when they do not fit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::Waker;

/// Bytes held by all connections' responses, and the connections waiting for room.
#[derive(Debug)]
pub struct ResponseBudget {
    max: usize,
    used: AtomicUsize,
    /// Length of `queue`, read without the lock on the fast paths.
    waiting: AtomicUsize,
    /// Connections waiting for room, by connection id, oldest first.
    queue: Mutex<VecDeque<(u64, Waker)>>,
}

impl ResponseBudget {
    /// An empty budget of `max` bytes.
    pub fn new(max: usize) -> ResponseBudget {
        ResponseBudget {
            max,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Connections waiting for room now.
    pub fn waiters(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Takes `bytes` when they fit (or the budget is empty).
    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                (cur == 0 || cur.saturating_add(bytes) <= self.max).then(|| cur + bytes)
            })
            .is_ok()
    }

    /// Reserves `bytes` for connection `conn`, in turn: true when taken; false when the
    /// connection must wait, in which case `waker` is woken when it should try again.
    pub fn reserve(&self, conn: u64, bytes: usize, waker: &Waker) -> bool {
        if self.waiting.load(Ordering::SeqCst) == 0 && self.take(bytes) {
            return true;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let position = queue.iter().position(|(id, _)| *id == conn);
        let at_head = position.map_or(queue.is_empty(), |p| p == 0);
        if at_head && self.take(bytes) {
            if position.is_some() {
                queue.pop_front();
            }
            self.after_head_left(&queue);
            return true;
        }
        match position.and_then(|p| queue.get_mut(p)) {
            Some(entry) => {
                if !entry.1.will_wake(waker) {
                    entry.1 = waker.clone();
                }
            }
            None => queue.push_back((conn, waker.clone())),
        }
        self.waiting.store(queue.len(), Ordering::SeqCst);
        // A release between the failed take and the store above saw no waiter, so it woke
        // nobody: look once more now that the queue is visible.
        if queue.front().is_some_and(|(id, _)| *id == conn) && self.take(bytes) {
            queue.pop_front();
            self.after_head_left(&queue);
            return true;
        }
        false
    }

    /// The head left the queue: publish the length and let the next one try.
    fn after_head_left(&self, queue: &VecDeque<(u64, Waker)>) {
        self.waiting.store(queue.len(), Ordering::SeqCst);
        if let Some((_, next)) = queue.front() {
            next.wake_by_ref();
        }
    }

    /// Counts `bytes` whether or not they fit (a response larger than its reservation).
    pub fn add(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_add(bytes, Ordering::SeqCst);
        }
    }

    /// Counts `bytes` when they fit, without waiting or queueing (a server push).
    pub fn try_add(&self, bytes: usize) -> bool {
        self.take(bytes)
    }

    /// Gives `bytes` back and wakes the head waiter.
    pub fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        // Saturating: an accounting slip must not wrap the counter and stop every connection.
        let _ = self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
            Some(cur.saturating_sub(bytes))
        });
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, head)) = queue.front() {
                head.wake_by_ref();
            }
        }
    }

    /// Connection `conn` no longer waits (it closed, or its own budget is what stops it).
    pub fn leave(&self, conn: u64) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(position) = queue.iter().position(|(id, _)| *id == conn) else { return };
        queue.remove(position);
        if position == 0 {
            self.after_head_left(&queue);
        } else {
            self.waiting.store(queue.len(), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn reservations_fit_the_budget_and_an_empty_budget_takes_any() {
        let b = ResponseBudget::new(100);
        let (_, w) = waker();
        assert!(b.reserve(1, 1000, &w), "an empty budget takes one oversized reservation");
        assert!(!b.reserve(2, 1, &w));
        b.release(1000);
        assert!(b.reserve(2, 60, &w));
        assert!(b.reserve(2, 40, &w));
        assert_eq!(b.used(), 100);
        assert!(!b.try_add(1), "a push that does not fit is refused");
        b.release(100);
        assert!(b.try_add(1));
        assert_eq!(b.used(), 1);
    }

    #[test]
    fn waiters_are_served_in_order_and_woken_on_release() {
        let b = ResponseBudget::new(100);
        let (_, w0) = waker();
        assert!(b.reserve(0, 90, &w0));
        let (c1, w1) = waker();
        let (c2, w2) = waker();
        assert!(!b.reserve(1, 50, &w1));
        assert!(!b.reserve(2, 5, &w2), "a small request does not overtake a waiting one");
        assert_eq!(b.waiters(), 2);
        b.release(40);
        assert_eq!(c1.0.load(Ordering::SeqCst), 1, "the head is woken");
        assert_eq!(c2.0.load(Ordering::SeqCst), 0);
        assert!(!b.reserve(2, 5, &w2), "still not its turn");
        assert!(b.reserve(1, 50, &w1));
        assert_eq!(c2.0.load(Ordering::SeqCst), 1, "the next head is woken");
        assert!(!b.reserve(2, 5, &w2), "the budget is full");
        b.release(10);
        assert_eq!(c2.0.load(Ordering::SeqCst), 2);
        assert!(b.reserve(2, 5, &w2));
        assert_eq!(b.waiters(), 0);
        assert_eq!(b.used(), 95);
    }

    #[test]
    fn a_waiter_that_leaves_passes_its_turn() {
        let b = ResponseBudget::new(10);
        let (_, w0) = waker();
        assert!(b.reserve(0, 10, &w0));
        let (_, w1) = waker();
        let (c2, w2) = waker();
        assert!(!b.reserve(1, 5, &w1));
        assert!(!b.reserve(2, 5, &w2));
        b.leave(1);
        assert_eq!(c2.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.waiters(), 1);
        b.release(10);
        assert!(b.reserve(2, 5, &w2));
        b.release(3);
        b.release(1000);
        assert_eq!(b.used(), 0, "releases saturate at zero");
    }
}
