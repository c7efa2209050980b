//! Small helpers shared by the broker and the NameServer.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch (store timestamps, expiry).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Writes `data` to `path` atomically and durably: temp file, fsync, rename, fsync of the
/// directory. Runs on glommio's blocking pool so a shard never stalls on it.
///
/// # Errors
/// Any I/O error of the steps above.
pub async fn write_file_durably(path: PathBuf, data: Vec<u8>) -> std::io::Result<()> {
    glommio::executor().spawn_blocking(move || write_file_durably_sync(&path, &data)).await
}

/// The blocking body of [`write_file_durably`], also used before executors start.
///
/// # Errors
/// Any I/O error of the steps.
pub fn write_file_durably_sync(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

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

    /// Resolves at the next `notify` after this call.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping it only forgets a waker.
    pub async fn wait(&self) {
        let start = self.inner.borrow().generation;
        futures_lite::future::poll_fn(|cx| {
            let mut s = self.inner.borrow_mut();
            if s.generation != start {
                std::task::Poll::Ready(())
            } else {
                s.wakers.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}

/// A broker-made message id for messages that arrive without `UNIQ_KEY`, in the client
/// layout of the reference's `MessageClientIDSetter`: ip 4, pid 2, a per-shard salt 4, time 4, counter 2 → 32 hex.
pub fn uniq_id(ip: std::net::IpAddr, salt: u32, now_ms: u64, counter: u16) -> String {
    let mut raw = [0u8; 16];
    if let std::net::IpAddr::V4(v4) = ip {
        raw[..4].copy_from_slice(&v4.octets());
    }
    raw[4..6].copy_from_slice(&(std::process::id() as u16).to_be_bytes());
    raw[6..10].copy_from_slice(&salt.to_be_bytes());
    raw[10..14].copy_from_slice(&(now_ms as u32).to_be_bytes());
    raw[14..16].copy_from_slice(&counter.to_be_bytes());
    raw.iter().map(|b| format!("{b:02X}")).collect()
}
