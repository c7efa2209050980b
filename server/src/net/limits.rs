//! Process-wide connection limits: how many connections, from one address and in all, how
//! long a connection may stay silent, how long a peer may leave its responses unread, and
//! how many bytes of not-yet-complete frames all connections together may hold.
//!
//! Lives on: every executor that serves remoting connections (shards, the NameServer). The
//! counters are atomics shared by all of them: they change once per connection (accept,
//! close) or once per read of a partial frame, never per request, so the data path does not
//! pay for them.
//!
//! | limit | config key (broker.conf, namesrv.conf) | default | when reached |
//! |---|---|---|---|
//! | connections in all | `serverMaxConnections` | 65,536 | new connection closed at accept |
//! | connections from one IP | `serverMaxConnectionsPerAddress` | 4,096 | new connection closed at accept |
//! | silent connection | `serverChannelMaxIdleTimeSeconds` (the reference's) | 120 s | closed |
//! | responses left unread | `serverWriteTimeoutSeconds` | 60 s | closed |
//! | bytes of partial frames past each connection's first 64 KiB, all connections | `serverPartialFrameBytesMax` | 512 MiB | the connection that would pass it is closed |
//! | response bytes reserved and queued, one connection | `serverConnectionResponseBytesMax` | 64 MiB | the connection stops dispatching and reading; pushes to it are dropped |
//! | response bytes reserved and queued, all connections | `serverResponseBytesMax` | a quarter of RAM, at least 256 MiB | connections wait in turn; pushes are dropped |

pub use crate::metrics::limit_hits::{count_hit, declare};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::budget::ResponseBudget;

/// The limits, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once, all addresses.
    pub connections_max: usize,
    /// Connections open at once from one IP address.
    pub connections_per_address_max: usize,
    /// A connection with no byte read or written for this long is closed (the reference's
    /// `serverChannelMaxIdleTimeSeconds`; zero disables).
    pub idle_timeout: Duration,
    /// A connection whose pending responses make no progress for this long is closed (the
    /// peer stopped reading; zero disables).
    pub write_timeout: Duration,
    /// Bytes of incomplete frames all connections may hold together.
    pub partial_frame_bytes_max: usize,
    /// Response bytes one connection may hold: reserved by its requests in progress plus
    /// queued and not yet written.
    pub connection_response_bytes_max: usize,
    /// Response bytes all connections may hold together (as above).
    pub response_bytes_max: usize,
}

/// Default of `serverResponseBytesMax`: a quarter of physical memory, at least 256 MiB
/// (1 GiB when the memory size cannot be read).
pub fn default_response_bytes_max() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<usize>().ok()
    });
    match total_kib {
        Some(kib) => (kib.saturating_mul(1024) / 4).max(256 << 20),
        None => 1 << 30,
    }
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            connections_max: 65_536,
            connections_per_address_max: 4096,
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(60),
            partial_frame_bytes_max: 512 << 20,
            connection_response_bytes_max: 64 << 20,
            response_bytes_max: default_response_bytes_max(),
        }
    }
}

/// Why a connection was refused or closed by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// `serverMaxConnections`.
    Connections,
    /// `serverMaxConnectionsPerAddress`.
    PerAddress,
    /// `serverChannelMaxIdleTimeSeconds`.
    Idle,
    /// `serverWriteTimeoutSeconds`.
    WriteTimeout,
    /// `serverPartialFrameBytesMax`.
    PartialFrames,
    /// `serverConnectionResponseBytesMax`: a request waits, or a push is dropped.
    ConnectionResponseBytes,
    /// `serverResponseBytesMax`: a request waits, or a push is dropped.
    ResponseBytes,
}

impl LimitHit {
    /// The config key of the limit.
    pub fn key(self) -> &'static str {
        match self {
            LimitHit::Connections => "serverMaxConnections",
            LimitHit::PerAddress => "serverMaxConnectionsPerAddress",
            LimitHit::Idle => "serverChannelMaxIdleTimeSeconds",
            LimitHit::WriteTimeout => "serverWriteTimeoutSeconds",
            LimitHit::PartialFrames => "serverPartialFrameBytesMax",
            LimitHit::ConnectionResponseBytes => "serverConnectionResponseBytesMax",
            LimitHit::ResponseBytes => "serverResponseBytesMax",
        }
    }

    const ALL: [LimitHit; 7] = [
        LimitHit::Connections,
        LimitHit::PerAddress,
        LimitHit::Idle,
        LimitHit::WriteTimeout,
        LimitHit::PartialFrames,
        LimitHit::ConnectionResponseBytes,
        LimitHit::ResponseBytes,
    ];
}

/// The shared counters of one process.
#[derive(Debug)]
pub struct Governor {
    limits: ConnectionLimits,
    open: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    partial_bytes: AtomicUsize,
    hits: [AtomicU64; 7],
    response: ResponseBudget,
    next_connection_id: AtomicU64,
}

static GOVERNOR: OnceLock<Governor> = OnceLock::new();

/// Bytes of a partial frame each connection holds without counting them against
/// `serverPartialFrameBytesMax` (the connection limit bounds those).
pub const PARTIAL_BYTES_UNCOUNTED: usize = 64 * 1024;

/// Sets the process's limits; the first call wins (later ones, and the defaults taken by a
/// connection served before any call, are ignored). Returns false when limits were set
/// already.
pub fn install(limits: ConnectionLimits) -> bool {
    GOVERNOR.set(Governor::new(limits)).is_ok()
}

/// The process's governor (defaults when [`install`] was not called).
pub fn governor() -> &'static Governor {
    GOVERNOR.get_or_init(|| Governor::new(ConnectionLimits::default()))
}

impl Governor {
    /// A governor with no connection yet.
    pub fn new(limits: ConnectionLimits) -> Governor {
        Governor {
            open: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            partial_bytes: AtomicUsize::new(0),
            hits: Default::default(),
            response: ResponseBudget::new(limits.response_bytes_max),
            next_connection_id: AtomicU64::new(0),
            limits,
        }
    }

    /// The broker-wide response budget (`serverResponseBytesMax`).
    pub fn response_budget(&self) -> &ResponseBudget {
        &self.response
    }

    /// The limits in force.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Admits a new connection from `ip`, or says which limit refuses it.
    ///
    /// # Errors
    /// The limit that is reached.
    pub fn admit(&self, ip: IpAddr) -> Result<Permit<'_>, LimitHit> {
        let mut table = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if self.open.load(Ordering::Relaxed) >= self.limits.connections_max {
            return Err(self.hit(LimitHit::Connections));
        }
        let count = table.entry(ip).or_insert(0);
        if *count >= self.limits.connections_per_address_max {
            if *count == 0 {
                table.remove(&ip);
            }
            return Err(self.hit(LimitHit::PerAddress));
        }
        *count += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        Ok(Permit { governor: self, ip, partial_bytes: 0, id })
    }

    /// How often `which` was reached.
    pub fn hit_count(&self, which: LimitHit) -> u64 {
        self.hits[which as usize].load(Ordering::Relaxed)
    }

    /// Counts a limit reached (for metrics and logs) and returns it.
    pub fn hit(&self, which: LimitHit) -> LimitHit {
        self.hits[which as usize].fetch_add(1, Ordering::Relaxed);
        which
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Bytes of partial frames held now.
    pub fn partial_frame_bytes(&self) -> usize {
        self.partial_bytes.load(Ordering::Relaxed)
    }

    /// How often each limit was reached: `(config key, count)`.
    pub fn hits(&self) -> Vec<(&'static str, u64)> {
        LimitHit::ALL
            .iter()
            .map(|&h| (h.key(), self.hits[h as usize].load(Ordering::Relaxed)))
            .collect()
    }
}

/// One admitted connection; dropping it gives its place (and its partial-frame bytes) back.
#[derive(Debug)]
pub struct Permit<'a> {
    governor: &'a Governor,
    ip: IpAddr,
    partial_bytes: usize,
    id: u64,
}

impl Permit<'_> {
    /// This connection's process-wide id (its place in the response budget's queue).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Records that this connection now holds `bytes` of an incomplete frame. The first
    /// [`PARTIAL_BYTES_UNCOUNTED`] of each connection are not counted, so the common case
    /// (a read that ends inside a small request) never touches the counter other shards share.
    ///
    /// # Errors
    /// [`LimitHit::PartialFrames`] when the growth would pass the process-wide budget (the
    /// connection should be closed; its previous holding stays counted until drop).
    pub fn hold_partial(&mut self, bytes: usize) -> Result<(), LimitHit> {
        let bytes = bytes.saturating_sub(PARTIAL_BYTES_UNCOUNTED);
        if bytes == self.partial_bytes {
            return Ok(());
        }
        let g = self.governor;
        if bytes > self.partial_bytes {
            let grow = bytes - self.partial_bytes;
            let before = g.partial_bytes.fetch_add(grow, Ordering::Relaxed);
            if before + grow > g.limits.partial_frame_bytes_max {
                g.partial_bytes.fetch_sub(grow, Ordering::Relaxed);
                return Err(g.hit(LimitHit::PartialFrames));
            }
        } else {
            g.partial_bytes.fetch_sub(self.partial_bytes - bytes, Ordering::Relaxed);
        }
        self.partial_bytes = bytes;
        Ok(())
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let g = self.governor;
        g.response.leave(self.id);
        g.partial_bytes.fetch_sub(self.partial_bytes, Ordering::Relaxed);
        g.open.fetch_sub(1, Ordering::Relaxed);
        let mut table = g.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = table.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                table.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn per_address_and_total_limits_admit_and_release() {
        let g = Governor::new(ConnectionLimits {
            connections_max: 3,
            connections_per_address_max: 2,
            ..ConnectionLimits::default()
        });
        let a1 = g.admit(ip(1)).unwrap();
        let _a2 = g.admit(ip(1)).unwrap();
        assert_eq!(g.admit(ip(1)).unwrap_err(), LimitHit::PerAddress);
        let _b1 = g.admit(ip(2)).unwrap();
        assert_eq!(g.admit(ip(3)).unwrap_err(), LimitHit::Connections);
        drop(a1);
        assert_eq!(g.open_connections(), 2);
        let _c1 = g.admit(ip(3)).unwrap();
        assert_eq!(g.hits()[0], ("serverMaxConnections", 1));
        assert_eq!(g.hits()[1], ("serverMaxConnectionsPerAddress", 1));
    }

    #[test]
    fn the_address_table_holds_only_open_addresses() {
        let g = Governor::new(ConnectionLimits::default());
        for i in 0..100 {
            drop(g.admit(ip(i)).unwrap());
        }
        assert!(g.per_address.lock().unwrap().is_empty());
        assert_eq!(g.open_connections(), 0);
    }

    #[test]
    fn partial_frame_budget_is_shared_and_given_back() {
        let g = Governor::new(ConnectionLimits {
            partial_frame_bytes_max: 1000,
            ..ConnectionLimits::default()
        });
        let mut a = g.admit(ip(1)).unwrap();
        let mut b = g.admit(ip(2)).unwrap();
        let free = PARTIAL_BYTES_UNCOUNTED;
        a.hold_partial(free).unwrap();
        assert_eq!(g.partial_frame_bytes(), 0, "the first 64 KiB are not counted");
        a.hold_partial(free + 600).unwrap();
        assert_eq!(b.hold_partial(free + 500).unwrap_err(), LimitHit::PartialFrames);
        b.hold_partial(free + 400).unwrap();
        assert_eq!(g.partial_frame_bytes(), 1000);
        a.hold_partial(free + 100).unwrap();
        assert_eq!(g.partial_frame_bytes(), 500);
        drop(b);
        assert_eq!(g.partial_frame_bytes(), 100);
        drop(a);
        assert_eq!(g.partial_frame_bytes(), 0);
    }
}
