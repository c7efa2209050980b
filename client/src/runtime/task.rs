//! [`Task`]: a spawned future's handle, the same type whichever runtime runs it.
//!
//! Lives on: the thread that spawned it.
//!
//! Both runtimes get glommio's semantics: dropping the handle cancels the task (tokio's
//! `JoinHandle` would detach it, so the tokio side aborts on drop), and
//! [`Task::detach`] lets it run to its end unobserved.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A task started by [`crate::runtime::spawn_local`]; await it for the future's output.
#[must_use = "dropping a Task cancels it; use detach() to let it run"]
pub struct Task<T> {
    inner: Inner<T>,
}

/// Each handle is `None` once detached (the `Task` then only waits to be dropped).
enum Inner<T> {
    #[cfg(feature = "glommio")]
    Glommio(Option<glommio::Task<T>>),
    #[cfg(feature = "tokio")]
    Tokio(Option<tokio::task::JoinHandle<T>>),
}

impl<T> Task<T> {
    #[cfg(feature = "glommio")]
    pub(super) fn glommio(task: glommio::Task<T>) -> Task<T> {
        Task { inner: Inner::Glommio(Some(task)) }
    }

    #[cfg(feature = "tokio")]
    pub(super) fn tokio(handle: tokio::task::JoinHandle<T>) -> Task<T> {
        Task { inner: Inner::Tokio(Some(handle)) }
    }

    /// Lets the task run to its end in the background; its output is dropped.
    pub fn detach(mut self) {
        match &mut self.inner {
            #[cfg(feature = "glommio")]
            Inner::Glommio(task) => {
                if let Some(task) = task.take() {
                    drop(task.detach());
                }
            }
            #[cfg(feature = "tokio")]
            Inner::Tokio(handle) => drop(handle.take()),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        #[cfg(feature = "tokio")]
        if let Inner::Tokio(Some(handle)) = &self.inner {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runtime = match &self.inner {
            #[cfg(feature = "glommio")]
            Inner::Glommio(_) => "glommio",
            #[cfg(feature = "tokio")]
            Inner::Tokio(_) => "tokio",
        };
        f.debug_struct("Task").field("runtime", &runtime).finish()
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    /// # Panics
    /// Resumes the task's panic, if it panicked (as glommio does). A task tokio cancelled
    /// because its runtime is shutting down never completes: the awaiting future is on the
    /// same runtime and is dropped with it.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match &mut self.get_mut().inner {
            #[cfg(feature = "glommio")]
            Inner::Glommio(task) => match task.as_mut() {
                Some(task) => Pin::new(task).poll(cx),
                None => unreachable!("a detached Task cannot be awaited: detach consumes it"),
            },
            #[cfg(feature = "tokio")]
            Inner::Tokio(handle) => {
                let Some(handle) = handle.as_mut() else {
                    unreachable!("a detached Task cannot be awaited: detach consumes it");
                };
                match Pin::new(handle).poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(output)) => Poll::Ready(output),
                    Poll::Ready(Err(e)) if e.is_panic() => {
                        std::panic::resume_unwind(e.into_panic())
                    }
                    Poll::Ready(Err(_)) => Poll::Pending,
                }
            }
        }
    }
}
