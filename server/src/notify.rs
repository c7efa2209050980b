//! [`Notify`]: a single-executor wake-up (the registration kick, the slave's master
//! address change).

/// A one-shot, single-executor wake-up: `notify` wakes every current `wait`er.
///
/// Lives on: one executor (`Rc`, not `Send`).
#[derive(Clone, Default)]
pub struct Notify {
    inner: std::rc::Rc<std::cell::RefCell<NotifyState>>,
}

#[derive(Default)]
struct NotifyState {
    generation: u64,
    wakers: Vec<std::task::Waker>,
}

impl Notify {
    /// A new notifier.
    pub fn new() -> Notify {
        Notify::default()
    }

    /// Wakes every task waiting now.
    pub fn notify(&self) {
        let mut s = self.inner.borrow_mut();
        s.generation += 1;
        for w in s.wakers.drain(..) {
            w.wake();
        }
    }

    /// Resolves at the next `notify` after this call (the call, not the first poll: a
    /// future made before some work sees the notifications during that work).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping it only forgets a waker.
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + '_ {
        let start = self.inner.borrow().generation;
        futures_lite::future::poll_fn(move |cx| {
            let mut s = self.inner.borrow_mut();
            if s.generation != start {
                std::task::Poll::Ready(())
            } else {
                s.wakers.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
    }
}
