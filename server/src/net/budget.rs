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
//!
//! **Per-executor credit.** The global counter `used` counts bytes held by responses *plus*
//! credit parked in per-executor slots (one cache line each). An executor takes credit from
//! the global counter in chunks ([`ResponseBudget::chunk`]: 1/64 of the budget, at most 64
//! KiB) and serves its reservations and releases from its own slot, so the common request
//! costs read-modify-writes on a line no other core writes, not three on one line shared
//! by every shard. The bound is unchanged: bytes held by responses <= `used` <= max (but
//! for one oversized reservation taken alone). A slot keeps at most two chunks (more goes
//! back to `used`). Credit is never what makes anyone wait: a reservation that does not fit
//! `used` first reclaims every slot's credit and tries again, and while anyone waits
//! releases go to `used` directly (a release racing with a waiter's arrival hands its slot
//! back: both sides use SeqCst on `waiting` and the slots, so one of them sees the other).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::Waker;

/// Per-executor credit slots; threads beyond this share slots (still correct: every slot
/// operation is an atomic read-modify-write).
const SLOTS: usize = 16;

/// Largest chunk of credit an executor takes from the global counter at once.
const CHUNK_MAX: usize = 64 * 1024;

/// One atomic on its own cache line (two lines: adjacent-line prefetch).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicUsize);

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's credit slot, assigned on first use.
    static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn slot_index() -> usize {
    SLOT.with(|s| match s.get() {
        Some(i) => i,
        None => {
            let i = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
            s.set(Some(i));
            i
        }
    })
}

/// Bytes held by all connections' responses, and the connections waiting for room.
#[derive(Debug)]
pub struct ResponseBudget {
    max: usize,
    chunk: usize,
    /// Bytes held by responses plus credit parked in `slots`.
    used: Padded,
    /// Length of `queue`, read without the lock on the fast paths.
    waiting: Padded,
    /// Credit taken from `used` and not yet spent, per executor.
    slots: [Padded; SLOTS],
    /// Connections waiting for room, by connection id, oldest first.
    queue: Mutex<VecDeque<(u64, Waker)>>,
}

impl ResponseBudget {
    /// An empty budget of `max` bytes.
    pub fn new(max: usize) -> ResponseBudget {
        ResponseBudget {
            max,
            chunk: (max / 64).min(CHUNK_MAX),
            used: Padded::default(),
            waiting: Padded::default(),
            slots: Default::default(),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    /// The credit an executor takes from the global counter at once.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Bytes held now by responses (credit parked in slots not counted; exact when no
    /// operation runs concurrently).
    pub fn used(&self) -> usize {
        let parked: usize = self.slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
        self.used.0.load(Ordering::Relaxed).saturating_sub(parked)
    }

    /// Connections waiting for room now.
    pub fn waiters(&self) -> usize {
        self.waiting.0.load(Ordering::Relaxed)
    }

    fn slot(&self) -> &AtomicUsize {
        &self.slots[slot_index()].0
    }

    /// Takes `bytes` from this executor's credit when it has enough.
    fn take_local(&self, bytes: usize) -> bool {
        self.slot()
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(bytes))
            .is_ok()
    }

    /// Takes `bytes` from the global counter when they fit (or the budget is empty). The
    /// counter alone carries the bound, so Relaxed suffices: the read-modify-writes of one
    /// atomic are totally ordered.
    fn take(&self, bytes: usize) -> bool {
        self.used
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur == 0 || cur.saturating_add(bytes) <= self.max).then(|| cur + bytes)
            })
            .is_ok()
    }

    /// Takes `bytes` plus a chunk of credit for this executor when both fit, else `bytes`.
    fn take_refill(&self, bytes: usize) -> bool {
        let with_chunk = bytes.saturating_add(self.chunk);
        let refilled = self
            .used
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur.saturating_add(with_chunk) <= self.max).then(|| cur + with_chunk)
            })
            .is_ok();
        if refilled {
            self.park(self.chunk);
            return true;
        }
        self.take(bytes)
    }

    /// Gives `bytes` back to the global counter (saturating: an accounting slip must not
    /// wrap the counter and stop every connection).
    fn give_back(&self, bytes: usize) {
        if bytes > 0 {
            let _ = self.used.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                Some(cur.saturating_sub(bytes))
            });
        }
    }

    /// Parks `bytes` (already counted in `used`) as this executor's credit, keeping at most
    /// two chunks there; hands the slot back when someone waits.
    fn park(&self, bytes: usize) {
        let slot = self.slot();
        slot.fetch_add(bytes, Ordering::SeqCst);
        if self.waiting.0.load(Ordering::SeqCst) > 0 {
            // A waiter arrived: its reclaim may have run before the add above.
            self.give_back(slot.swap(0, Ordering::SeqCst));
            self.wake_head();
            return;
        }
        let keep = self.chunk;
        if let Ok(prev) = slot
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| (c > 2 * keep).then_some(keep))
        {
            self.give_back(prev - keep);
        }
    }

    /// Returns every executor's parked credit to the global counter.
    fn reclaim(&self) {
        let freed: usize = self.slots.iter().map(|s| s.0.swap(0, Ordering::SeqCst)).sum();
        self.give_back(freed);
    }

    fn wake_head(&self) {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, head)) = queue.front() {
            head.wake_by_ref();
        }
    }

    /// Reserves `bytes` for connection `conn`, in turn: true when taken; false when the
    /// connection must wait, in which case `waker` is woken when it should try again.
    pub fn reserve(&self, conn: u64, bytes: usize, waker: &Waker) -> bool {
        if self.waiting.0.load(Ordering::SeqCst) == 0
            && (self.take_local(bytes) || self.take_refill(bytes))
        {
            return true;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let position = queue.iter().position(|(id, _)| *id == conn);
        let at_head = position.map_or(queue.is_empty(), |p| p == 0);
        if at_head && (self.take(bytes) || (self.reclaim_then(bytes))) {
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
        self.waiting.0.store(queue.len(), Ordering::SeqCst);
        // A release between the failed take and the store above saw no waiter, so it woke
        // nobody (and may have parked its bytes as credit): look once more now that the
        // queue is visible.
        if queue.front().is_some_and(|(id, _)| *id == conn) && self.reclaim_then(bytes) {
            queue.pop_front();
            self.after_head_left(&queue);
            return true;
        }
        false
    }

    /// Reclaims every slot's credit, then takes `bytes` when they fit.
    fn reclaim_then(&self, bytes: usize) -> bool {
        self.reclaim();
        self.take(bytes)
    }

    /// The head left the queue: publish the length and let the next one try.
    fn after_head_left(&self, queue: &VecDeque<(u64, Waker)>) {
        self.waiting.0.store(queue.len(), Ordering::SeqCst);
        if let Some((_, next)) = queue.front() {
            next.wake_by_ref();
        }
    }

    /// Counts `bytes` whether or not they fit (a response larger than its reservation).
    pub fn add(&self, bytes: usize) {
        if bytes > 0 && !self.take_local(bytes) {
            self.used.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Counts `bytes` when they fit, without waiting or queueing (a server push).
    pub fn try_add(&self, bytes: usize) -> bool {
        self.take_local(bytes) || self.take(bytes)
    }

    /// Gives `bytes` back and wakes the head waiter.
    pub fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        if self.waiting.0.load(Ordering::SeqCst) == 0 {
            self.park(bytes);
            return;
        }
        self.give_back(bytes);
        self.wake_head();
    }

    /// Connection `conn` no longer waits (it closed, or its own budget is what stops it).
    pub fn leave(&self, conn: u64) {
        if self.waiting.0.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(position) = queue.iter().position(|(id, _)| *id == conn) else { return };
        queue.remove(position);
        if position == 0 {
            self.after_head_left(&queue);
        } else {
            self.waiting.0.store(queue.len(), Ordering::SeqCst);
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
    fn credit_serves_an_executor_locally_and_is_reclaimed_for_others() {
        let max = 4 << 20;
        let b = Arc::new(ResponseBudget::new(max));
        assert_eq!(b.chunk(), 64 * 1024);
        let other = b.clone();
        std::thread::spawn(move || {
            let (_, w) = waker();
            assert!(other.reserve(1, 1000, &w));
            assert!(other.reserve(1, 1000, &w), "served from the executor's credit");
            other.release(2000);
            assert_eq!(other.used(), 0, "parked credit is not counted as held");
        })
        .join()
        .expect("thread");
        let (_, w) = waker();
        assert!(b.reserve(2, max - 10, &w), "another executor's idle credit never blocks");
        assert_eq!(b.used(), max - 10);
        assert!(!b.try_add(11));
        b.release(max - 10);
        assert_eq!(b.used(), 0);
        assert!(b.reserve(3, max, &w), "the whole budget, after a reclaim");
        b.release(max);
        for _ in 0..100 {
            b.release(1 << 20);
        }
        assert_eq!(b.used(), 0, "a slot keeps at most two chunks, releases saturate");
        assert!(b.used.0.load(Ordering::Relaxed) <= 2 * b.chunk());
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
