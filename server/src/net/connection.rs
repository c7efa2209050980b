//! One TCP connection: frame decoding, request dispatch, batched response writes.
//!
//! Lives on: the shard (or NameServer executor) that accepted the connection.
//!
//! One task drives the socket in both directions from a single `poll_fn`:
//!
//! ```text
//!             +---------------------------- ConnState (Rc<RefCell<_>>) ----+
//!  socket --> | read_buf --decode_frame--> Service::call (spawned task)    |
//!             |                                  |                         |
//!  socket <-- | write_buf <--encode_frame-- response (any order, by opaque)|
//!             +-------------------------------------------------------------+
//! ```
//!
//! Requests are handled concurrently (each in its own task) so a held long-poll pull does
//! not block the sends behind it; responses carry their request's opaque, so order does
//! not matter to the peer. Small responses land in one write buffer and leave in as few
//! `write` calls as the socket allows: many small replies, one syscall. A body of 64 KiB or
//! more (a pull response) is queued as its own `Bytes` behind its frame head and written
//! from there, never copied into the write buffer.
//!
//! Limits: a frame over `frame_size_bytes_max` or a frame that cannot be decoded closes the
//! connection (there is no way to resynchronise a byte stream); more than
//! `inflight_requests_max` requests in progress stops reading from the socket until some
//! finish (TCP back-pressure instead of unbounded memory). Process-wide limits
//! ([`super::limits`]) refuse connections past the per-address and total counts at accept,
//! close a connection silent for the idle timeout or whose responses stay unread for the
//! write timeout (a watchdog task per connection compares read and write counts every half
//! of the shorter timeout; the data path reads no clock), and
//! bound the bytes of incomplete frames all connections hold together.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use ramjet_proto::codes::response;
use ramjet_proto::frame::{decode_frame, encode_frame, encode_frame_head};
use ramjet_proto::{EncodeError, Frame, Header};
use tracing::{debug, warn};

use super::limits::{self, LimitHit, Permit};

/// Largest frame a connection accepts (the reference's `frameMaxLength`).
pub const FRAME_SIZE_BYTES_MAX: usize = ramjet_proto::frame::FRAME_SIZE_BYTES_MAX;
/// Requests in progress per connection before the reader pauses.
pub const INFLIGHT_REQUESTS_MAX: usize = 4096;
/// Buffered response bytes per connection before the reader pauses.
pub const WRITE_BUFFER_BYTES_MAX: usize = 64 * 1024 * 1024;
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// Bodies at least this large are written from their own buffer instead of being copied
/// into the write buffer (a syscall of their own costs less than copying them).
const BODY_BYTES_ZERO_COPY_MIN: usize = 64 * 1024;

/// A response to write: header plus body (the body is copied once, into the write buffer).
#[derive(Debug, Clone)]
pub struct Response {
    /// Response header (its `opaque` must be the request's).
    pub header: Header,
    /// Response body.
    pub body: Bytes,
}

impl Response {
    /// A response with no body.
    pub fn new(header: Header) -> Response {
        Response { header, body: Bytes::new() }
    }
}

/// Something the connection can write back: a response, or a server-initiated request
/// (NOTIFY_CONSUMER_IDS_CHANGED, CHECK_TRANSACTION_STATE).
pub type Outbound = Response;

/// A handle through which other tasks of the same shard write to this connection.
///
/// Lives on: the connection's shard.
#[derive(Clone)]
pub struct ConnectionHandle {
    state: Rc<RefCell<ConnState>>,
}

impl ConnectionHandle {
    /// Queues a frame for writing; false when the connection is closed.
    pub fn send(&self, out: &Outbound) -> bool {
        let mut state = self.state.borrow_mut();
        if state.closed {
            return false;
        }
        if let Err(e) = state.queue(out) {
            // An encoder limit, reached only by a bug that put unbounded data in a header:
            // answer a short SYSTEM_ERROR instead, and send nothing for a request.
            warn!(peer = %state.peer, code = out.header.code, error = %e, "frame cannot be encoded");
            if !out.header.is_response() {
                return false;
            }
            let reply = Header::response_to(&out.header, response::SYSTEM_ERROR)
                .with_remark(format!("response cannot be encoded: {e}"));
            if state.queue(&Response::new(reply)).is_err() {
                return false;
            }
        }
        if let Some(w) = state.waker.take() {
            w.wake();
        }
        true
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.state.borrow().peer
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }
}

struct ConnState {
    /// Frames not yet written that precede everything in `write_buf`.
    write_queue: VecDeque<Bytes>,
    /// Bytes in `write_queue`.
    queued_bytes: usize,
    write_buf: BytesMut,
    inflight: usize,
    waker: Option<Waker>,
    closed: bool,
    peer: SocketAddr,
    /// Reads that returned bytes; the watchdog compares it between wake-ups (idle timeout).
    reads: u64,
    /// Writes that took bytes (idle and write timeouts).
    writes: u64,
    /// A limit ended the connection: the driver closes it at its next poll.
    kill: Option<LimitHit>,
}

impl ConnState {
    /// Encodes `out` behind everything already queued.
    fn queue(&mut self, out: &Outbound) -> Result<(), EncodeError> {
        if out.body.len() >= BODY_BYTES_ZERO_COPY_MIN {
            // A large body (a pull response) is written from its own buffer: the head goes
            // into the write buffer, which is queued before the body to keep frame order.
            encode_frame_head(&out.header, out.body.len(), &mut self.write_buf)?;
            let head = self.write_buf.split().freeze();
            self.queued_bytes += head.len() + out.body.len();
            self.write_queue.push_back(head);
            self.write_queue.push_back(out.body.clone());
        } else {
            encode_frame(&out.header, &out.body, &mut self.write_buf)?;
        }
        Ok(())
    }
}

/// What a connection hands each request to.
pub trait Service: 'static {
    /// Handles one request frame; `None` means no response (one-way requests).
    fn call(
        self: Rc<Self>,
        frame: Frame,
        conn: ConnectionHandle,
    ) -> Pin<Box<dyn Future<Output = Option<Response>>>>;

    /// Called once when the connection starts.
    fn opened(self: Rc<Self>, _conn: &ConnectionHandle) {}

    /// Called once when the connection ends.
    fn closed(self: Rc<Self>, _conn: &ConnectionHandle) {}
}

/// Serves one accepted connection until the peer closes it or sends garbage.
///
/// # Cancel safety
/// Dropping the future closes the socket; handler tasks still running drop their
/// responses when they find the connection closed.
pub async fn serve<S: Service>(mut stream: TcpStream, service: Rc<S>) {
    let peer = match stream.peer_addr() {
        Ok(p) => p,
        Err(_) => return,
    };
    let governor = limits::governor();
    let mut permit = match governor.admit(peer.ip()) {
        Ok(permit) => permit,
        Err(hit) => {
            report_limit(governor, hit, peer);
            return; // dropping the stream closes it
        }
    };
    let _ = stream.set_nodelay(true);
    let state = Rc::new(RefCell::new(ConnState {
        write_queue: VecDeque::new(),
        queued_bytes: 0,
        write_buf: BytesMut::with_capacity(64 * 1024),
        inflight: 0,
        waker: None,
        closed: false,
        peer,
        reads: 0,
        writes: 0,
        kill: None,
    }));
    let handle = ConnectionHandle { state: state.clone() };
    service.clone().opened(&handle);
    // Dropped (cancelled) when the connection ends.
    let _watchdog = glommio::spawn_local(watchdog(state.clone(), governor.limits().clone()));
    let mut read_buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut scratch = vec![0u8; READ_CHUNK_BYTES];
    let result = futures_lite::future::poll_fn(|cx| {
        drive(&mut stream, &mut read_buf, &mut scratch, &mut permit, &state, &handle, &service, cx)
    })
    .await;
    if let Err(reason) = result {
        debug!(%peer, %reason, "connection closed");
    }
    state.borrow_mut().closed = true;
    service.closed(&handle);
}

/// Logs a limit reached: the first time and then at powers of two, so an attack cannot flood
/// the log; every hit is counted in [`limits::Governor::hits`].
fn report_limit(governor: &limits::Governor, hit: LimitHit, peer: SocketAddr) {
    let count = governor.hit_count(hit);
    if count.is_power_of_two() {
        warn!(%peer, limit = hit.key(), times = count, "connection limit reached; closing");
    }
}

/// Closes the connection when it has been silent for the idle timeout, or when its
/// waiting output made no progress for the write timeout. The driver only counts reads and
/// writes (no clock on the data path); the watchdog wakes every half of the shorter timeout,
/// notes when each count last moved, and so closes between one and one and a half timeouts.
async fn watchdog(state: Rc<RefCell<ConnState>>, limits: limits::ConnectionLimits) {
    let timeouts = [limits.idle_timeout, limits.write_timeout];
    let Some(period) = timeouts.iter().filter(|t| !t.is_zero()).min().map(|t| *t / 2) else {
        return;
    };
    let (mut seen, mut quiet_since, mut stalled_since) = ((0, 0), Instant::now(), Instant::now());
    loop {
        glommio::timer::sleep(period.max(MIN_WATCHDOG_SLEEP)).await;
        let now = Instant::now();
        let mut st = state.borrow_mut();
        if st.closed {
            return;
        }
        let counts = (st.reads, st.writes);
        if counts != seen || st.inflight > 0 {
            quiet_since = now;
        }
        let waiting = !st.write_buf.is_empty() || st.queued_bytes > 0;
        if counts.1 != seen.1 || !waiting {
            stalled_since = now;
        }
        seen = counts;
        let idle = !limits.idle_timeout.is_zero() && now - quiet_since >= limits.idle_timeout;
        let stalled =
            !limits.write_timeout.is_zero() && now - stalled_since >= limits.write_timeout;
        let hit = match (idle, stalled) {
            (_, true) => LimitHit::WriteTimeout,
            (true, false) => LimitHit::Idle,
            (false, false) => continue,
        };
        st.kill = Some(limits::governor().hit(hit));
        report_limit(limits::governor(), hit, st.peer);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        return;
    }
}

/// Shortest watchdog period.
const MIN_WATCHDOG_SLEEP: std::time::Duration = std::time::Duration::from_millis(10);

#[allow(clippy::too_many_arguments)]
fn drive<S: Service>(
    stream: &mut TcpStream,
    read_buf: &mut BytesMut,
    scratch: &mut [u8],
    permit: &mut Permit<'_>,
    state: &Rc<RefCell<ConnState>>,
    handle: &ConnectionHandle,
    service: &Rc<S>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), String>> {
    loop {
        let mut progressed = false;
        // Write everything buffered.
        {
            let mut st = state.borrow_mut();
            if let Some(hit) = st.kill {
                return Poll::Ready(Err(format!("limit {} reached", hit.key())));
            }
            while let Some(front) = st.write_queue.front_mut() {
                match Pin::new(&mut *stream).poll_write(cx, front) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err("write returned 0".into())),
                    Poll::Ready(Ok(n)) => {
                        front.advance(n);
                        if front.is_empty() {
                            st.write_queue.pop_front();
                        }
                        st.queued_bytes -= n;
                        st.writes += 1;
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                    Poll::Pending => break,
                }
            }
            while st.write_queue.is_empty() && !st.write_buf.is_empty() {
                match Pin::new(&mut *stream).poll_write(cx, &st.write_buf) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err("write returned 0".into())),
                    Poll::Ready(Ok(n)) => {
                        st.write_buf.advance(n);
                        st.writes += 1;
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                    Poll::Pending => break,
                }
            }
            if st.write_buf.is_empty() && st.write_buf.capacity() > 4 * READ_CHUNK_BYTES {
                st.write_buf = BytesMut::with_capacity(64 * 1024);
            }
            st.waker = Some(cx.waker().clone());
            let paused = st.inflight >= INFLIGHT_REQUESTS_MAX
                || st.write_buf.len() + st.queued_bytes >= WRITE_BUFFER_BYTES_MAX;
            if paused {
                return Poll::Pending;
            }
        }
        // Read and dispatch. The scratch buffer is initialised once per connection; each
        // read costs one copy into `read_buf`, which frames are then split from.
        match Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
            Poll::Ready(Ok(n)) => {
                read_buf.extend_from_slice(&scratch[..n]);
                progressed = true;
                state.borrow_mut().reads += 1;
                dispatch_frames(read_buf, state, handle, service)?;
                // What is left is the start of a frame not yet complete.
                if let Err(hit) = permit.hold_partial(read_buf.len()) {
                    report_limit(limits::governor(), hit, handle.peer());
                    return Poll::Ready(Err(format!("limit {} reached", hit.key())));
                }
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
            Poll::Pending => {}
        }
        if !progressed {
            return Poll::Pending;
        }
    }
}

fn dispatch_frames<S: Service>(
    read_buf: &mut BytesMut,
    state: &Rc<RefCell<ConnState>>,
    handle: &ConnectionHandle,
    service: &Rc<S>,
) -> Result<(), String> {
    loop {
        let frame = match decode_frame(read_buf, FRAME_SIZE_BYTES_MAX) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(e) => {
                warn!(peer = %handle.peer(), error = %e, "undecodable frame; closing");
                return Err(e.to_string());
            }
        };
        if frame.header.is_response() {
            // Replies to server-initiated requests (e.g. CHECK_TRANSACTION_STATE) are
            // one-way in practice; nothing waits for them.
            continue;
        }
        crate::panic::request_fault_point();
        state.borrow_mut().inflight += 1;
        let fut = service.clone().call(frame, handle.clone());
        let state = state.clone();
        let handle = handle.clone();
        glommio::spawn_local(async move {
            let response = fut.await;
            state.borrow_mut().inflight -= 1;
            match response {
                Some(r) => {
                    handle.send(&r);
                }
                None => {
                    if let Some(w) = state.borrow_mut().waker.take() {
                        w.wake();
                    }
                }
            }
        })
        .detach();
    }
}
