//! A panic ends the process.
//!
//! A panic on any thread (a shard, the embedded or standalone NameServer, the replication
//! shard, the metrics listener on shard 0) would otherwise end only that executor's task
//! or thread, leaving a live process with a dead shard whose SO_REUSEPORT listener still
//! takes connections. [`install`] replaces the panic hook with one that writes one line
//! naming the thread and the source location, then exits with [`EXIT_CODE_PANIC`] before
//! any unwinding, so a supervisor restarts the process and recovery runs.
//!
//! [`fault_point`] lets debug builds trigger a panic at a named site (environment variable
//! `RAMJET_TEST_PANIC=<site>`) so real-process tests can check this; release builds
//! compile it to nothing.

use std::any::Any;
use std::panic::Location;

/// Exit status after a panic (`EX_SOFTWARE` of sysexits.h: an internal software error).
pub const EXIT_CODE_PANIC: i32 = 70;

/// Environment variable naming the [`fault_point`] that panics (debug builds only).
pub const TEST_PANIC_ENV: &str = "RAMJET_TEST_PANIC";

/// Installs the process-ending panic hook; call it first thing in `main`.
///
/// The line reads `{process}: panic on thread {thread} at {file}:{line}:{column}: {message};
/// exiting with status 70`, on stderr (unbuffered, so it is written before the exit).
pub fn install(process: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        eprintln!("{}", describe(process, thread.name(), info.location(), info.payload()));
        std::process::exit(EXIT_CODE_PANIC);
    }));
}

/// The hook's log line.
fn describe(
    process: &str,
    thread: Option<&str>,
    location: Option<&Location<'_>>,
    payload: &(dyn Any + Send),
) -> String {
    let thread = thread.unwrap_or("<unnamed>");
    let location = location
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_else(|| "an unknown location".into());
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!(
        "{process}: panic on thread {thread} at {location}: {message}; exiting with status \
         {EXIT_CODE_PANIC}"
    )
}

/// Panics when `RAMJET_TEST_PANIC` equals `site` and this is a debug build; a no-op in
/// release builds. Sites: `shard-request` and `namesrv-request` (see
/// [`request_fault_point`]), `metrics-request` (a metrics HTTP request head read).
#[track_caller]
pub fn fault_point(site: &str) {
    if armed() == Some(site) {
        #[allow(clippy::panic)] // The one intended panic: armed only by a debug-build test.
        {
            panic!("test fault {site} ({TEST_PANIC_ENV})");
        }
    }
}

/// The fault point of a request frame reaching dispatch: site `namesrv-request` on a
/// NameServer executor (thread `namesrv-*`), `shard-request` on a broker shard
/// (thread `shard-*`), `other-request` elsewhere.
#[track_caller]
pub fn request_fault_point() {
    if armed().is_some() {
        let thread = std::thread::current();
        let site = match thread.name() {
            Some(n) if n.starts_with("namesrv") => "namesrv-request",
            Some(n) if n.starts_with("shard") => "shard-request",
            _ => "other-request",
        };
        fault_point(site);
    }
}

/// The armed site: `RAMJET_TEST_PANIC`, read once; always `None` in release builds.
fn armed() -> Option<&'static str> {
    #[cfg(debug_assertions)]
    {
        use std::sync::OnceLock;
        static ARMED: OnceLock<Option<String>> = OnceLock::new();
        ARMED.get_or_init(|| std::env::var(TEST_PANIC_ENV).ok()).as_deref()
    }
    #[cfg(not(debug_assertions))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_thread_location_and_message() {
        let here = Location::caller();
        let line = describe("ramjet-broker", Some("shard-1-2"), Some(here), &"boom");
        assert!(line.starts_with("ramjet-broker: panic on thread shard-1-2 at "), "{line}");
        assert!(line.contains(&format!("{}:{}", here.file(), here.line())), "{line}");
        assert!(line.contains(": boom; exiting with status 70"), "{line}");
        let owned: String = "owned".into();
        let line = describe("ramjet-namesrv", None, None, &owned);
        assert!(line.contains("<unnamed> at an unknown location: owned"), "{line}");
    }

    #[test]
    fn an_unarmed_fault_point_does_nothing() {
        // The test process never sets RAMJET_TEST_PANIC.
        assert_eq!(std::env::var(TEST_PANIC_ENV).ok(), None);
        fault_point("shard-request");
        request_fault_point();
    }
}
