//! Runs a test body on every runtime this build enables, one after the other.
//!
//! Shared by the unit tests (included with `#[path]` from `src/lib.rs`) and the
//! integration tests (`mod support;`), so both suites run on glommio and on tokio with
//! the same code: `cargo test -p ramjet-client` runs them on glommio,
//! `--no-default-features --features tokio` on tokio, `--features tokio` on both.
#![allow(dead_code)]

use std::future::Future;

/// Runs `body` once on each enabled runtime: glommio first, then tokio.
pub fn on_each_runtime<F, Fut>(body: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    #[cfg(feature = "glommio")]
    on_glommio(body.clone());
    #[cfg(feature = "tokio")]
    on_tokio(body);
}

/// Runs `body` on a fresh glommio executor (small io_memory: RLIMIT_MEMLOCK may be low).
#[cfg(feature = "glommio")]
pub fn on_glommio<F, Fut, T>(body: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .io_memory(1 << 20)
        .spawn(body)
        .expect("glommio executor starts")
        .join()
        .expect("glommio executor ends")
}

/// Runs `body` on a fresh current-thread tokio runtime, inside a `LocalSet` (the client
/// is `!Send`; its tasks are spawned with `spawn_local`).
#[cfg(feature = "tokio")]
pub fn on_tokio<F, Fut, T>(body: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    tokio::task::LocalSet::new().block_on(&runtime, body())
}
