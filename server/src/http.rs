//! A tiny HTTP/1.1 responder for `GET /metrics` (and `GET /` with a pointer to it).
//!
//! Lives on: shard 0 of the broker, or the NameServer executor. One request per
//! connection (`Connection: close`), which is all a Prometheus scrape needs. Each
//! connection is its own task with its own deadlines, so a slow or silent scraper holds
//! only its own slot:
//!
//! | limit | key (broker.conf, namesrv.conf) | default | when reached |
//! |---|---|---|---|
//! | connections served at once | `metricsMaxConnections` | 64 | new connection closed at accept |
//! | request head size | — | 8 KiB | connection closed |
//! | time to send the request head | — | 10 s | connection closed |
//! | time to read the whole response | `metricsWriteTimeoutSeconds` | 30 s | connection closed |
//!
//! Every one counts a limit hit (`ramjet_limit_hits_total`); the unnamed ones under
//! `metricsRequestHead`.
//!
//! ```text
//!  GET /metrics HTTP/1.1\r\n ... \r\n\r\n  ──▶  200, Content-Type: text/plain; version=0.0.4
//!  anything else                            ──▶  404 / 405
//! ```

use std::cell::Cell;
use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use tracing::{debug, warn};

use crate::metrics::MetricsLimits;

/// Largest request head read.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Time a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit-hit key of a connection closed for `metricsMaxConnections`.
pub const MAX_CONNECTIONS_KEY: &str = "metricsMaxConnections";
/// Limit-hit key of a response not read within `metricsWriteTimeoutSeconds`.
pub const WRITE_TIMEOUT_KEY: &str = "metricsWriteTimeoutSeconds";
/// Limit-hit key of a request head too large or too slow.
pub const REQUEST_HEAD_KEY: &str = "metricsRequestHead";

/// Produces the page body and its content type.
pub type Render = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = (String, &'static str)>>>>;

static LIMITS: OnceLock<MetricsLimits> = OnceLock::new();

/// Sets the process's listener limits (the first call wins; before it, the defaults), and
/// puts their limit-hit counters on the page at 0.
pub fn install(limits: &MetricsLimits) {
    let _ = LIMITS.set(limits.clone());
    for key in [MAX_CONNECTIONS_KEY, WRITE_TIMEOUT_KEY, REQUEST_HEAD_KEY] {
        crate::net::limits::declare(key);
    }
}

fn limits() -> &'static MetricsLimits {
    LIMITS.get_or_init(MetricsLimits::default)
}

/// Binds the metrics listener (blocking; before the executors start).
///
/// # Errors
/// The port is taken or the address is not local.
pub fn bind(ip: IpAddr, port: u16) -> Result<StdListener, String> {
    StdListener::bind(SocketAddr::new(ip, port))
        .map_err(|e| format!("cannot listen on metrics port {ip}:{port}: {e}"))
}

/// Connections being served; dropping it gives the place back.
struct Slot(Rc<Cell<usize>>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Serves `listener` forever.
///
/// # Cancel safety
/// Dropping the future stops accepting; connections being served finish on their own.
pub async fn serve(listener: StdListener, render: Render) {
    let listener = crate::net::listener::adopt(listener);
    let open = Rc::new(Cell::new(0usize));
    let limits = limits();
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.get() >= limits.max_connections {
            crate::net::limits::count_hit(MAX_CONNECTIONS_KEY);
            debug!(
                max = limits.max_connections,
                "metrics connection refused: metricsMaxConnections"
            );
            drop(stream);
            continue;
        }
        open.set(open.get() + 1);
        let slot = Slot(open.clone());
        let render = render.clone();
        let write_timeout = limits.write_timeout;
        glommio::spawn_local(async move {
            if let Err(e) = answer(stream, render, write_timeout).await {
                debug!(error = %e, "metrics connection ended");
            }
            drop(slot);
        })
        .detach();
    }
}

/// `work`, or a `TimedOut` error after `limit` (counted as a hit of `key`).
async fn deadline<T>(
    limit: Duration,
    key: &'static str,
    work: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    futures_lite::future::or(work, async {
        glommio::timer::sleep(limit).await;
        crate::net::limits::count_hit(key);
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, key))
    })
    .await
}

async fn answer(
    mut stream: TcpStream,
    render: Render,
    write_timeout: Duration,
) -> std::io::Result<()> {
    let head = deadline(REQUEST_TIMEOUT, REQUEST_HEAD_KEY, read_head(&mut stream)).await?;
    crate::panic::fault_point("metrics-request");
    let (status, content_type, body) = match parse_head(&head) {
        Target::Metrics => {
            let (body, ct) = render().await;
            ("200 OK", ct, body)
        }
        Target::Index => ("200 OK", "text/plain", "ramjet: metrics at /metrics\n".to_string()),
        Target::NotFound => ("404 Not Found", "text/plain", "not found\n".to_string()),
        Target::MethodNotAllowed => {
            ("405 Method Not Allowed", "text/plain", "only GET\n".to_string())
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    deadline(write_timeout, WRITE_TIMEOUT_KEY, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.flush().await
    })
    .await?;
    let _ = stream.close().await;
    Ok(())
}

/// Reads up to the blank line that ends the request head.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if head_complete(&buf) {
            break;
        }
        if buf.len() > REQUEST_HEAD_BYTES_MAX {
            crate::net::limits::count_hit(REQUEST_HEAD_KEY);
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "head too large"));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// What a request head asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `GET /metrics` (any query string).
    Metrics,
    /// `GET /`.
    Index,
    /// `GET` of any other path.
    NotFound,
    /// Any other method, or no request line.
    MethodNotAllowed,
}

/// Parses a request head (the text up to the blank line): method and path of its first
/// line; everything else is ignored. Pure, for the property tests.
pub fn parse_head(head: &str) -> Target {
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Target::Metrics,
        ("GET", "/") => Target::Index,
        ("GET", _) => Target::NotFound,
        _ => Target::MethodNotAllowed,
    }
}

/// True when `buf` holds a whole request head (a blank line, CRLF or bare LF).
pub fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a fresh glommio executor sized for the 8 MiB RLIMIT_MEMLOCK.
    fn on_executor<T: Send + 'static, F: Future<Output = T> + 'static>(
        f: impl FnOnce() -> F + Send + 'static,
    ) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(crate::runtime::IO_MEMORY_BYTES)
            .spawn(move || async move { f().await })
            .expect("executor")
            .join()
            .expect("join")
    }

    #[test]
    fn a_scraper_that_never_reads_is_cut_off_at_the_write_timeout() {
        // A 32 MiB page cannot fit the loopback socket buffers, so the write blocks until
        // the deadline; the connection's task then ends with TimedOut and counts the hit.
        let before = crate::metrics::limit_hits::hit_count(WRITE_TIMEOUT_KEY);
        let listener = StdListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (result, took) = on_executor(move || async move {
            let listener = crate::net::listener::adopt(listener);
            let client = glommio::spawn_local(async move {
                let mut s = TcpStream::connect(addr).await.expect("connect");
                s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.expect("write");
                // Never reads; holds the connection until the server gives up.
                glommio::timer::sleep(Duration::from_secs(10)).await;
                drop(s);
            })
            .detach();
            let stream = listener.accept().await.expect("accept");
            let render: Render =
                Rc::new(|| Box::pin(async { ("x".repeat(32 << 20), "text/plain") }));
            let started = std::time::Instant::now();
            let result = answer(stream, render, Duration::from_millis(500)).await;
            drop(client);
            (result.map_err(|e| e.kind()), started.elapsed())
        });
        assert_eq!(result, Err(std::io::ErrorKind::TimedOut));
        assert!(took < Duration::from_secs(5), "cut off after {took:?}");
        assert!(crate::metrics::limit_hits::hit_count(WRITE_TIMEOUT_KEY) > before);
    }
}
