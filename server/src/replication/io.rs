//! Socket plumbing shared by both ends of a replication connection: a stream split into
//! a reading and a writing half (one task each), frame reading, frame writing without
//! copying large DATA payloads, and bounded waits.
//!
//! Lives on: the replication shard. `Rc` + `RefCell`, no locks: both halves run on the
//! same executor and each poll borrows the stream only for the call.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;

use super::wire::{self, Message};

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// DATA payloads below this are copied into one buffer with their header (one write);
/// larger ones are written as header, then each piece, without copying.
const COALESCE_BYTES_MAX: usize = 64 * 1024;

/// One half of a shared stream.
#[derive(Clone)]
pub struct Half(Rc<RefCell<TcpStream>>);

/// Splits `stream` into a reading and a writing half.
pub fn split(stream: TcpStream) -> (Half, Half) {
    let shared = Rc::new(RefCell::new(stream));
    (Half(shared.clone()), Half(shared))
}

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}

/// Reads frames from a half.
pub struct FrameReader {
    half: Half,
    buf: BytesMut,
    scratch: Vec<u8>,
}

impl FrameReader {
    /// A reader over `half`.
    pub fn new(half: Half) -> FrameReader {
        FrameReader {
            half,
            buf: BytesMut::with_capacity(READ_CHUNK_BYTES),
            scratch: vec![0; READ_CHUNK_BYTES],
        }
    }

    /// The next frame.
    ///
    /// # Errors
    /// A closed or failed socket, or a frame that does not decode.
    ///
    /// # Cancel safety
    /// Not cancel safe at the socket level: drop the reader with the connection.
    pub async fn next(&mut self) -> Result<Message, String> {
        loop {
            if let Some(message) = wire::decode(&mut self.buf).map_err(|e| e.to_string())? {
                return Ok(message);
            }
            let n = self.half.read(&mut self.scratch).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&self.scratch[..n]);
        }
    }
}

/// Writes frames to a half, coalescing small ones.
pub struct FrameWriter {
    half: Half,
    staged: BytesMut,
}

impl FrameWriter {
    /// A writer over `half`.
    pub fn new(half: Half) -> FrameWriter {
        FrameWriter { half, staged: BytesMut::with_capacity(COALESCE_BYTES_MAX * 2) }
    }

    /// Stages or writes a control frame.
    pub fn stage(&mut self, message: &Message) {
        self.staged.extend_from_slice(&wire::encode(message));
    }

    /// Stages a small DATA (or DATA_WRITTEN) frame, or writes a large one (after what is
    /// staged) without copying its pieces. `prefix` is the body before the log bytes
    /// (`wire::data_prefix` or `wire::data_written_prefix`).
    ///
    /// # Errors
    /// The socket failed.
    pub async fn data(&mut self, kind: u8, prefix: &[u8], pieces: &[Bytes]) -> Result<(), String> {
        let mut refs: Vec<&[u8]> = Vec::with_capacity(pieces.len() + 1);
        refs.push(prefix);
        refs.extend(pieces.iter().map(|p| &p[..]));
        let head = wire::header(kind, &refs);
        let len: usize = pieces.iter().map(Bytes::len).sum();
        if len < COALESCE_BYTES_MAX {
            self.staged.extend_from_slice(&head);
            for piece in refs {
                self.staged.extend_from_slice(piece);
            }
            return Ok(());
        }
        self.flush().await?;
        self.write(&head).await?;
        for piece in refs {
            self.write(piece).await?;
        }
        Ok(())
    }

    /// Writes what is staged.
    ///
    /// # Errors
    /// The socket failed.
    pub async fn flush(&mut self) -> Result<(), String> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let staged = self.staged.split();
        self.write(&staged).await?;
        if self.staged.capacity() > COALESCE_BYTES_MAX * 16 {
            self.staged = BytesMut::with_capacity(COALESCE_BYTES_MAX * 2);
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.half.write_all(bytes).await.map_err(|e| e.to_string())
    }
}

/// `future`, or `None` after `timeout`.
pub async fn within<T>(timeout: Duration, future: impl Future<Output = T>) -> Option<T> {
    let future = async { Some(future.await) };
    let timer = async {
        glommio::timer::sleep(timeout).await;
        None
    };
    futures_lite::future::or(future, timer).await
}

/// Connects with a deadline.
///
/// # Errors
/// Refused, unreachable, or the deadline passed.
pub async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let stream = within(timeout, TcpStream::connect(addr))
        .await
        .ok_or_else(|| format!("connect to {addr} timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
