//! Single-shard wake-ups between appenders and the writer task (no locks, no atomics).
//!
//! Lives on: the owner shard of a log.
//!
//! - [`Signal`]: appenders raise it when they add pending bytes; the writer task waits on
//!   it when it has nothing to write.
//! - [`PositionWatch`]: the writer publishes the flushed (or written) position; a sync-mode
//!   append waits until it reaches the end of its records, or until the log fails.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::error::StoreError;

/// A raised-or-not flag with one waiter.
#[derive(Default)]
pub(crate) struct Signal {
    raised: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    /// Raises the flag and wakes the waiter, if any.
    pub(crate) fn raise(&self) {
        self.raised.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Resolves once the flag is raised, and lowers it.
    pub(crate) fn wait(&self) -> SignalWait<'_> {
        SignalWait { signal: self }
    }
}

pub(crate) struct SignalWait<'a> {
    signal: &'a Signal,
}

impl Future for SignalWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.raised.replace(false) {
            return Poll::Ready(());
        }
        *self.signal.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A monotonic position and the tasks waiting for it to pass a target.
#[derive(Default)]
pub(crate) struct PositionWatch {
    position: Cell<u64>,
    failure: RefCell<Option<StoreError>>,
    wakers: RefCell<Vec<Waker>>,
}

impl PositionWatch {
    pub(crate) fn new(position: u64) -> Self {
        PositionWatch { position: Cell::new(position), ..Default::default() }
    }

    pub(crate) fn position(&self) -> u64 {
        self.position.get()
    }

    /// Moves the position forward and wakes every waiter to re-check.
    pub(crate) fn advance(&self, position: u64) {
        assert!(position >= self.position.get(), "watched positions only move forward");
        self.position.set(position);
        self.wake_all();
    }

    /// Moves the position back (a replica log cut to its master's end, `replica.rs`);
    /// waiters re-check.
    pub(crate) fn reset(&self, position: u64) {
        self.position.set(position);
        self.wake_all();
    }

    /// Fails every current and future waiter with `error`.
    pub(crate) fn fail(&self, error: StoreError) {
        *self.failure.borrow_mut() = Some(error);
        self.wake_all();
    }

    fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }

    /// Resolves when the position is at least `target`, or with the failure.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future only drops interest.
    pub(crate) fn wait_for(&self, target: u64) -> PositionWait<'_> {
        PositionWait { watch: self, target }
    }
}

pub(crate) struct PositionWait<'a> {
    watch: &'a PositionWatch,
    target: u64,
}

impl Future for PositionWait<'_> {
    type Output = Result<(), StoreError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.watch.position.get() >= self.target {
            return Poll::Ready(Ok(()));
        }
        if let Some(error) = self.watch.failure.borrow().as_ref() {
            return Poll::Ready(Err(error.clone()));
        }
        self.watch.wakers.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}
