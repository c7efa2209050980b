//! A tiny HTTP/1.1 responder for `GET /metrics` (and `GET /` with a pointer to it).
//!
//! Lives on: shard 0 of the broker, or the NameServer executor. One request per
//! connection (`Connection: close`), which is all a Prometheus scrape needs. Limits: a
//! request head over `REQUEST_HEAD_BYTES_MAX` or slower than `REQUEST_TIMEOUT` is dropped;
//! at most `CONNECTIONS_MAX` connections are served at once (more wait in the backlog).
//!
//! ```text
//!  GET /metrics HTTP/1.1\r\n ... \r\n\r\n  ──▶  200, Content-Type: text/plain; version=0.0.4
//!  anything else                            ──▶  404 / 405
//! ```

use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use tracing::{debug, warn};

/// Largest request head read.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Time a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const CONNECTIONS_MAX: usize = 16;

/// Produces the page body and its content type.
pub type Render = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = (String, &'static str)>>>>;

/// Binds the metrics listener (blocking; before the executors start).
///
/// # Errors
/// The port is taken or the address is not local.
pub fn bind(ip: IpAddr, port: u16) -> Result<StdListener, String> {
    StdListener::bind(SocketAddr::new(ip, port))
        .map_err(|e| format!("cannot listen on metrics port {ip}:{port}: {e}"))
}

/// Serves `listener` forever.
///
/// # Cancel safety
/// Dropping the future stops accepting; connections being served finish on their own.
pub async fn serve(listener: StdListener, render: Render) {
    let listener = crate::net::listener::adopt(listener);
    let slots = Rc::new(glommio::sync::Semaphore::new(CONNECTIONS_MAX as u64));
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().acquire_static_permit(1).await else { return };
        let render = render.clone();
        glommio::spawn_local(async move {
            if let Err(e) = answer(stream, render).await {
                debug!(error = %e, "metrics connection ended");
            }
            drop(permit);
        })
        .detach();
    }
}

async fn answer(mut stream: TcpStream, render: Render) -> std::io::Result<()> {
    let head = futures_lite::future::or(read_head(&mut stream), async {
        glommio::timer::sleep(REQUEST_TIMEOUT).await;
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "request head timed out"))
    })
    .await?;
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
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await?;
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
