//! Running a load: executors, the stop condition, and the progress loop.
//!
//! The main thread spawns `threads` glommio executors (unpinned, so the bench shares
//! cores with a broker on the same host), each running one closure; it prints progress
//! every second until every executor has finished, then the summary.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use ramjet_client::ClientError;

use crate::stats::{self, SharedTotals};

/// glommio's registered-buffer memory per executor. Small, because RLIMIT_MEMLOCK is
/// often 8 MiB and the bench does no registered-buffer I/O.
pub const IO_MEMORY_BYTES: usize = 1 << 20;

/// When to stop: a deadline, a message count, or both (the first reached wins).
#[derive(Debug)]
pub struct Control {
    start: Instant,
    deadline: Option<Instant>,
    limit: Option<u64>,
    claimed: AtomicU64,
    done: AtomicU64,
    stop: AtomicBool,
    stopped_at: Mutex<Option<Instant>>,
}

impl Control {
    /// A control for a run starting now.
    pub fn new(duration: Option<Duration>, limit: Option<u64>) -> Control {
        let start = Instant::now();
        Control {
            start,
            deadline: duration.map(|d| start + d),
            limit,
            claimed: AtomicU64::new(0),
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stopped_at: Mutex::new(None),
        }
    }

    /// When the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// True once the run should stop.
    pub fn stopped(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return true;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.request_stop();
            return true;
        }
        false
    }

    /// Stops the run (first call records the time).
    pub fn request_stop(&self) {
        if !self.stop.swap(true, Ordering::Relaxed) {
            if let Ok(mut at) = self.stopped_at.lock() {
                *at = Some(Instant::now());
            }
        }
    }

    /// Claims up to `wanted` messages to send; 0 means stop.
    pub fn claim(&self, wanted: u64) -> u64 {
        if self.stopped() {
            return 0;
        }
        let Some(limit) = self.limit else { return wanted };
        let before = self.claimed.fetch_add(wanted, Ordering::Relaxed);
        if before >= limit {
            self.request_stop();
            return 0;
        }
        wanted.min(limit - before)
    }

    /// Counts `n` messages received (consume); stops once the limit is reached.
    pub fn received(&self, n: u64) {
        let total = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if self.limit.is_some_and(|l| total >= l) {
            self.request_stop();
        }
    }

    /// When the stop was requested, if it was.
    pub fn stopped_at(&self) -> Option<Instant> {
        self.stopped_at.lock().ok().and_then(|at| *at)
    }
}

/// How to measure elapsed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elapsed {
    /// Until the last executor finished (produce, storage: in-flight work completes).
    UntilFinished,
    /// Until the stop was requested (consume: pullers then idle in long polls).
    UntilStop,
}

/// Runs `body(executor_index)` on `threads` executors, printing progress each second;
/// returns the elapsed time.
///
/// # Errors
/// An executor that cannot be created.
pub fn run_executors<F, Fut>(
    threads: usize,
    control: &Arc<Control>,
    totals: &SharedTotals,
    elapsed: Elapsed,
    body: F,
) -> Result<Duration, String>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let running = Arc::new(AtomicUsize::new(threads));
    let mut handles = Vec::new();
    for index in 0..threads {
        let body = body.clone();
        let running = running.clone();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("bench-{index}"))
            .io_memory(IO_MEMORY_BYTES)
            .spawn(move || async move {
                body(index).await;
                running.fetch_sub(1, Ordering::Relaxed);
            })
            .map_err(|e| format!("cannot start executor {index}: {e}"))?;
        handles.push(handle);
    }
    let mut last_print = Instant::now();
    while running.load(Ordering::Relaxed) > 0 {
        std::thread::sleep(Duration::from_millis(20));
        // The deadline is checked here too, so a run whose workers all wait still ends.
        control.stopped();
        if last_print.elapsed() >= Duration::from_secs(1) {
            let interval = last_print.elapsed();
            last_print = Instant::now();
            stats::print_progress(totals, interval, control.start().elapsed());
        }
    }
    let finished = Instant::now();
    for h in handles {
        if let Err(e) = h.join() {
            eprintln!("executor failed: {e}");
        }
    }
    let end = match elapsed {
        Elapsed::UntilFinished => finished,
        Elapsed::UntilStop => control.stopped_at().map_or(finished, |s| s.min(finished)),
    };
    Ok(end.duration_since(control.start()))
}

/// Flushes `recorder` into the shared totals every 100 ms, so progress lines stay
/// current while workers are idle (waiting in long polls). Dropping the task stops it.
pub fn periodic_flush(
    recorder: std::rc::Rc<std::cell::RefCell<crate::stats::Recorder>>,
) -> glommio::Task<()> {
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            recorder.borrow_mut().flush();
        }
    })
}

/// Runs one future on a fresh executor on this thread (setup steps).
///
/// # Errors
/// The executor cannot be created.
pub fn run_once<T, Fut>(fut: Fut) -> Result<T, String>
where
    Fut: std::future::Future<Output = T>,
{
    let ex = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(IO_MEMORY_BYTES)
        .make()
        .map_err(|e| format!("cannot start executor: {e}"))?;
    Ok(ex.run(fut))
}

/// The errors-by-code key of a failed request: the broker's response code, or the
/// kind of transport failure.
pub fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Broker { code, .. } => code.to_string(),
        ClientError::Timeout { .. } => "timeout".into(),
        ClientError::Connect { .. } => "connect".into(),
        ClientError::ConnectionClosed { .. } => "connection_closed".into(),
        ClientError::TooManyInFlight { .. } => "too_many_in_flight".into(),
        ClientError::BadResponse { .. } => "bad_response".into(),
        ClientError::NoRoute { .. } => "no_route".into(),
        ClientError::NoBrokerAddr { .. } => "no_broker_addr".into(),
        ClientError::InvalidArgument { .. } => "invalid_argument".into(),
        ClientError::Io { .. } => "io".into(),
    }
}

/// True for failures after which a worker should pause briefly rather than spin
/// (nothing reached the broker).
pub fn is_transport_failure(e: &ClientError) -> bool {
    !matches!(e, ClientError::Broker { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_stop_at_the_message_limit() {
        let c = Control::new(None, Some(25));
        assert_eq!(c.claim(10), 10);
        assert_eq!(c.claim(10), 10);
        assert_eq!(c.claim(10), 5, "the last claim is cut to the limit");
        assert_eq!(c.claim(10), 0);
        assert!(c.stopped());
        assert!(c.stopped_at().is_some());
    }

    #[test]
    fn received_stops_at_the_limit() {
        let c = Control::new(None, Some(5));
        c.received(3);
        assert!(!c.stopped());
        c.received(3);
        assert!(c.stopped());
    }

    #[test]
    fn zero_duration_stops_at_once() {
        let c = Control::new(Some(Duration::ZERO), None);
        assert!(c.stopped());
        assert_eq!(c.claim(1), 0);
    }
}
