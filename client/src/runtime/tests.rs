//! Goal: [`Task`] behaves the same on every runtime: its output comes back when awaited,
//! dropping it cancels the task (tokio's own handle would detach), and `detach` lets it
//! run to its end. Method: tasks that wait on a latch the test sets after dropping or
//! detaching them; a cancelled task's future is dropped (its witness `Rc` goes away)
//! without having run. Waits poll a condition under a deadline.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::test_runtimes::on_each_runtime;
use crate::transport::completion::Latch;

/// Yields until `cond` holds; panics after 10 s.
async fn yield_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        futures_lite::future::yield_now().await;
    }
}

/// A task that waits for `latch`, then sets `ran`; it owns a clone of `witness`.
fn waiter(latch: &Rc<Latch>, ran: &Rc<Cell<bool>>, witness: &Rc<()>) -> Task<u32> {
    let (latch, ran, witness) = (latch.clone(), ran.clone(), witness.clone());
    spawn_local(async move {
        latch.wait().await;
        ran.set(true);
        drop(witness);
        7
    })
}

#[test]
fn awaited_task_returns_its_output() {
    on_each_runtime(|| async {
        let (latch, ran, witness) = (Rc::new(Latch::default()), Rc::default(), Rc::new(()));
        let task = waiter(&latch, &ran, &witness);
        latch.set();
        assert_eq!(task.await, 7);
        assert!(ran.get());
    });
}

#[test]
fn dropped_task_is_cancelled_without_running() {
    on_each_runtime(|| async {
        let (latch, ran, witness) = (Rc::new(Latch::default()), Rc::default(), Rc::new(()));
        let task = waiter(&latch, &ran, &witness);
        futures_lite::future::yield_now().await; // Let it start and park on the latch.
        drop(task);
        latch.set(); // Would wake it, were it still alive.
        yield_until("the cancelled future is dropped", || Rc::strong_count(&witness) == 1).await;
        assert!(!ran.get(), "a dropped task must not run on");
    });
}

#[test]
fn detached_task_runs_to_its_end() {
    on_each_runtime(|| async {
        let (latch, ran, witness) = (Rc::new(Latch::default()), Rc::default(), Rc::new(()));
        waiter(&latch, &ran, &witness).detach();
        latch.set();
        yield_until("the detached task ran", || ran.get()).await;
    });
}
