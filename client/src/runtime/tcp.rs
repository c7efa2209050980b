//! [`TcpStream`]: a connected socket of the current runtime, as the connection's reader
//! and writer tasks use it (poll a read, poll a write, shut down).
//!
//! Lives on: the thread of the executor that connected it.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Runtime;

/// A TCP connection with `TCP_NODELAY` set, on glommio or tokio.
pub(crate) enum TcpStream {
    #[cfg(feature = "glommio")]
    Glommio(glommio::net::TcpStream),
    #[cfg(feature = "tokio")]
    Tokio(tokio::net::TcpStream),
}

impl TcpStream {
    /// Connects to `addr`, giving up after `timeout`, and sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// The connect error, `TimedOut`, or the error of setting the option.
    ///
    /// # Cancel safety
    /// Cancel safe: a socket being connected is closed.
    pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        match Runtime::current() {
            #[cfg(feature = "glommio")]
            Runtime::Glommio => {
                let stream = glommio::net::TcpStream::connect_timeout(addr, timeout)
                    .await
                    .map_err(io::Error::from)?;
                stream.set_nodelay(true).map_err(io::Error::from)?;
                Ok(TcpStream::Glommio(stream))
            }
            #[cfg(feature = "tokio")]
            Runtime::Tokio => {
                let connect = tokio::net::TcpStream::connect(addr);
                let stream = tokio::time::timeout(timeout, connect).await.map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect timed out after {timeout:?}"),
                    )
                })??;
                stream.set_nodelay(true)?;
                Ok(TcpStream::Tokio(stream))
            }
        }
    }

    /// Reads what is available into `buf`; `Ok(0)` is the end of the stream.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            #[cfg(feature = "glommio")]
            TcpStream::Glommio(s) => {
                futures_lite::io::AsyncRead::poll_read(std::pin::Pin::new(s), cx, buf)
            }
            #[cfg(feature = "tokio")]
            TcpStream::Tokio(s) => {
                let mut read_buf = tokio::io::ReadBuf::new(buf);
                match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(s), cx, &mut read_buf) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(read_buf.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    /// Writes a prefix of `buf`; returns how many bytes the socket took.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            #[cfg(feature = "glommio")]
            TcpStream::Glommio(s) => {
                futures_lite::io::AsyncWrite::poll_write(std::pin::Pin::new(s), cx, buf)
            }
            #[cfg(feature = "tokio")]
            TcpStream::Tokio(s) => {
                tokio::io::AsyncWrite::poll_write(std::pin::Pin::new(s), cx, buf)
            }
        }
    }

    /// Shuts the socket down in both directions (so a pending read sees end-of-stream),
    /// without waiting: callable from `Drop`. Errors (a socket already shut) are ignored.
    pub(crate) fn shutdown(&self) {
        match self {
            #[cfg(feature = "glommio")]
            TcpStream::Glommio(s) => shutdown_glommio(s),
            #[cfg(feature = "tokio")]
            TcpStream::Tokio(s) => {
                let _ = socket2::SockRef::from(s).shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// Glommio exposes shutdown as an async call whose future is ready at once (a plain
/// `shutdown(2)`); polling it once with a no-op waker lets it run from `Drop`.
#[cfg(feature = "glommio")]
fn shutdown_glommio(stream: &glommio::net::TcpStream) {
    use std::future::Future;

    struct NoopWake;
    impl std::task::Wake for NoopWake {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    let mut shutdown = std::pin::pin!(stream.shutdown(std::net::Shutdown::Both));
    let _ = shutdown.as_mut().poll(&mut cx);
}
