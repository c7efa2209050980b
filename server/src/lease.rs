//! Lease fencing of a master in controller mode (issue 15): a master acknowledges writes
//! only while its last controller heartbeat that the controller answered is recent.
//!
//! Lives on: every shard reads it (one relaxed atomic load per send); shard 0's heartbeat
//! loop (`controller_client.rs`) renews it.
//!
//! Timing argument. The lease counts from when the heartbeat was **sent**, not answered:
//! the controller received it later, so its own timer for this broker (expiring
//! `controllerHeartBeatTimeoutMills` after the last heartbeat it received) runs out no
//! earlier than `sent + controllerHeartBeatTimeoutMills`. This broker stops acknowledging
//! at `sent + controllerLeaseMills`, with `controllerLeaseMills` below the timeout (at
//! most half of it by default; a larger value is refused at start). So by the time the
//! controller may elect another master, this one has stopped acknowledging, whatever the
//! network delays, provided the two clocks run at about the same rate (monotonic clocks;
//! the margin is the timeout minus the lease). The check runs on every send, before the
//! append and again before the answer: a master frozen by SIGSTOP past its lease refuses
//! its first send after SIGCONT, without waiting for a background task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The lease of this process (set once at start in controller mode).
struct Lease {
    base: Instant,
    /// Milliseconds after `base` until which writes are acknowledged.
    until_ms: AtomicU64,
    lease_ms: u64,
}

static LEASE: OnceLock<Lease> = OnceLock::new();

/// Turns fencing on with a lease of `lease_ms` (controller mode). Writes are refused
/// until the first heartbeat is answered.
pub fn enable(lease_ms: u64) {
    let _ = LEASE.set(Lease { base: Instant::now(), until_ms: AtomicU64::new(0), lease_ms });
}

/// A point in time for [`renew`]: now, in the lease's clock (0 when fencing is off).
pub fn now_ms() -> u64 {
    LEASE.get().map_or(0, |l| l.base.elapsed().as_millis() as u64)
}

/// The controller answered a heartbeat sent at `sent_ms` ([`now_ms`]).
pub fn renew(sent_ms: u64) {
    if let Some(l) = LEASE.get() {
        l.until_ms.fetch_max(sent_ms.saturating_add(l.lease_ms), Ordering::Relaxed);
    }
}

/// Whether writes may be acknowledged: always without controller mode; in it, while the
/// lease holds.
pub fn writes_allowed() -> bool {
    match LEASE.get() {
        None => true,
        Some(l) => (l.base.elapsed().as_millis() as u64) < l.until_ms.load(Ordering::Relaxed),
    }
}

/// The remark of a send refused by the lease.
pub const FENCED_REMARK: &str = "service not available now: this master has not heard from \
     the controller within its lease (controllerLeaseMills); it may no longer be the master";
