//! The runtime boundary: the only code in the client that names an async runtime.
//!
//! Lives on: the thread of the executor that calls it (everything here is `!Send`).
//!
//! Everything else in the client reaches a runtime only through these three things:
//!
//! | item | what |
//! |---|---|
//! | [`spawn_local`] → [`Task`] | run a `!Send` future on the current thread; dropping the [`Task`] cancels it |
//! | [`sleep`] | wait a duration |
//! | `TcpStream` (crate-private) | connect with a timeout, poll reads and writes, shut down |
//!
//! Two runtimes are supported, each behind a cargo feature:
//!
//! - `glommio` (default): call the client from inside a glommio executor.
//! - `tokio`: call it from inside a current-thread tokio runtime, within a
//!   `tokio::task::LocalSet` (the client is `!Send`, so its tasks are spawned with
//!   `spawn_local`). The runtime needs its time and I/O drivers (`enable_all`).
//!
//! Both features may be enabled at once. The runtime is then the one the call runs on:
//! inside a tokio runtime context (`tokio::runtime::Handle::try_current()` succeeds) the
//! tokio side is used, anywhere else the glommio side. A client object keeps working on
//! the runtime it was first used on; moving one between runtimes is not supported (it is
//! `!Send`, so it cannot leave its thread anyway). With neither feature the crate does
//! not compile.

#[cfg(not(any(feature = "glommio", feature = "tokio")))]
compile_error!("ramjet-client needs a runtime: enable the `glommio` or the `tokio` feature");

mod task;
mod tcp;

use std::future::Future;
use std::time::Duration;

pub use task::Task;
pub(crate) use tcp::TcpStream;

/// The runtimes this build can drive the client on. Its variants depend on the enabled
/// features, so matches outside this crate need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Runtime {
    /// glommio: the calling thread runs a glommio executor.
    #[cfg(feature = "glommio")]
    Glommio,
    /// tokio: the calling thread is inside a tokio runtime and a `LocalSet`.
    #[cfg(feature = "tokio")]
    Tokio,
}

impl Runtime {
    /// The runtime the current thread is running (see the module docs for how it is
    /// chosen when both features are enabled).
    pub fn current() -> Runtime {
        #[cfg(all(feature = "tokio", feature = "glommio"))]
        {
            if tokio::runtime::Handle::try_current().is_ok() {
                Runtime::Tokio
            } else {
                Runtime::Glommio
            }
        }
        #[cfg(all(feature = "tokio", not(feature = "glommio")))]
        {
            Runtime::Tokio
        }
        #[cfg(all(feature = "glommio", not(feature = "tokio")))]
        {
            Runtime::Glommio
        }
    }
}

/// Runs `future` as a task on the current thread's executor and returns its handle.
///
/// # Panics
/// When the thread runs no executor of an enabled runtime: outside a glommio executor,
/// or (tokio) outside a `LocalSet`.
pub fn spawn_local<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match Runtime::current() {
        #[cfg(feature = "glommio")]
        Runtime::Glommio => Task::glommio(glommio::spawn_local(future)),
        #[cfg(feature = "tokio")]
        Runtime::Tokio => Task::tokio(tokio::task::spawn_local(future)),
    }
}

/// Waits `duration` on the current runtime's timer.
///
/// # Cancel safety
/// Cancel safe: it only waits.
pub async fn sleep(duration: Duration) {
    match Runtime::current() {
        #[cfg(feature = "glommio")]
        Runtime::Glommio => {
            glommio::timer::sleep(duration).await;
        }
        #[cfg(feature = "tokio")]
        Runtime::Tokio => tokio::time::sleep(duration).await,
    }
}

#[cfg(test)]
mod tests;
