//! Runtime-agnostic single-threaded wake-ups: a one-shot reply slot and a level signal.
//!
//! Lives on: the executor that owns the connection. Both are `!Send` (`RefCell` inside)
//! and need no locks or atomics: the reader task and the waiting request run on the
//! same thread.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

use ramjet_proto::Frame;

use crate::error::ClientError;

/// Where a connection's reader task drops the reply (or failure) of one request.
#[derive(Debug, Default)]
pub struct Completion {
    result: RefCell<Option<Result<Frame, ClientError>>>,
    waker: RefCell<Option<Waker>>,
}

impl Completion {
    /// An empty slot.
    pub fn new() -> Completion {
        Completion::default()
    }

    /// Stores the outcome and wakes the waiter. A second call replaces nothing: the first
    /// outcome wins.
    pub fn complete(&self, result: Result<Frame, ClientError>) {
        {
            let mut slot = self.result.borrow_mut();
            if slot.is_some() {
                return;
            }
            *slot = Some(result);
        }
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves with the outcome once `complete` has been called.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future leaves any stored outcome in the slot.
    pub async fn wait(&self) -> Result<Frame, ClientError> {
        poll_fn(|cx| {
            if let Some(result) = self.result.borrow_mut().take() {
                return Poll::Ready(result);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// A level-triggered wake-up for one waiting task (the writer): `notify` sets the flag,
/// `wait` returns once it is set and clears it.
#[derive(Debug, Default)]
pub struct Signal {
    raised: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    /// Raises the signal and wakes the waiter, if any.
    pub fn notify(&self) {
        self.raised.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits until the signal is raised, then lowers it.
    ///
    /// # Cancel safety
    /// Cancel safe: a raise that the dropped future did not consume stays raised.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.raised.replace(false) {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// A one-time flag many tasks can wait for (a shutdown request): once `set`, every
/// `wait` returns at once.
#[derive(Debug, Default)]
pub struct Latch {
    set: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl Latch {
    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.set.set(true);
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }

    /// True once set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Waits until the flag is set.
    ///
    /// # Cancel safety
    /// Cancel safe. A task that stops waiting leaves its waker behind until the flag is
    /// set; a task registers at most one, so the list is bounded by the waiting tasks.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.get() {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::runtime;
    use crate::test_runtimes::on_each_runtime as run;

    #[test]
    fn latch_releases_every_waiter_and_stays_set() {
        run(|| async {
            let latch = Rc::new(Latch::default());
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let latch = latch.clone();
                    runtime::spawn_local(async move { latch.wait().await })
                })
                .collect();
            futures_lite::future::yield_now().await;
            assert!(!latch.is_set());
            latch.set();
            for w in waiters {
                w.await;
            }
            latch.wait().await; // Already set: returns at once.
            assert!(latch.is_set());
        });
    }

    #[test]
    fn signal_is_level_triggered() {
        run(|| async {
            let signal = Signal::default();
            signal.notify();
            signal.wait().await; // Raised before the wait: returns at once.
            let timed_out = futures_lite::future::or(
                async {
                    signal.wait().await;
                    false
                },
                async {
                    runtime::sleep(std::time::Duration::from_millis(20)).await;
                    true
                },
            )
            .await;
            assert!(timed_out, "the first wait lowered the signal");
        });
    }
}
