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
//! `write` calls as the socket allows: many small replies, one syscall. A body may come in
//! parts (a pull's records, each a slice of the store's tail cache or read buffer, never
//! joined): a part of 64 KiB or more is queued as its own `Bytes` behind what precedes it
//! and written from there, never copied; a smaller one is copied once, into the write
//! buffer (cheaper than a syscall of its own: glommio has no vectored write).
//!
//! Limits: a frame over `frame_size_bytes_max` or a frame that cannot be decoded closes the
//! connection (there is no way to resynchronise a byte stream); more than
//! `inflight_requests_max` requests in progress stops reading from the socket until some
//! finish (TCP back-pressure instead of unbounded memory). Process-wide limits
//! ([`super::limits`]) refuse connections past the per-address and total counts at accept,
//! close a connection silent for the idle timeout or whose responses (or pushes) stay
//! unread for the write timeout (a watchdog task per connection compares read and write
//! counts every half of the shorter timeout; the data path reads no clock), and
//! bound the bytes of incomplete frames all connections hold together.
//!
//! Response memory: every request is dispatched only once a reservation for its worst-case
//! response ([`Service::response_reserve`]) fits both this connection's budget
//! (`serverConnectionResponseBytesMax`: reserved plus queued, unwritten bytes) and the
//! broker-wide one ([`super::budget`], `serverResponseBytesMax`). The reservation becomes the
//! response's real size when the response is queued, and is given back as the bytes are
//! written. A request that does not fit waits, and the connection stops reading: a large
//! read (a pull) waits in a queue of its own so the small requests behind it still run, a
//! small one stops everything behind it. A connection with nothing reserved or queued may
//! always reserve (one oversized response is served alone, never waited for forever); one
//! whose own output fills its budget waits for its writer (and is closed by the write
//! timeout if the peer never reads); the broker-wide budget serves waiters in turn. Server
//! pushes ([`ConnectionHandle::push`]) never wait: one that does not fit is dropped and
//! counted.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
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
/// Default of the per-connection response budget (`serverConnectionResponseBytesMax`).
pub const WRITE_BUFFER_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes reserved for the response to a request whose response is small (everything but
/// reads of stored messages); a larger response is counted at its real size when queued.
pub const RESPONSE_RESERVE_BYTES: usize = 4 * 1024;
const READ_CHUNK_BYTES: usize = 256 * 1024;
/// Body parts at least this large are written from their own buffer instead of being
/// copied into the write buffer (a syscall of their own costs less than copying them).
pub const BODY_BYTES_ZERO_COPY_MIN: usize = 64 * 1024;

/// A response to write: header plus body. The body is `body` followed by `parts`, which
/// are never joined: a part (or body) of [`BODY_BYTES_ZERO_COPY_MIN`] or more is written
/// from its own buffer, a smaller one is copied once, into the write buffer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Response header (its `opaque` must be the request's).
    pub header: Header,
    /// Response body (its first part).
    pub body: Bytes,
    /// Further body parts, sent after `body` (a pull's records, each a slice of the store's
    /// cache or read buffer).
    pub parts: Box<[Bytes]>,
}

impl Response {
    /// A response with no body.
    pub fn new(header: Header) -> Response {
        Response { header, body: Bytes::new(), parts: Box::default() }
    }

    /// Bytes of the whole body (`body` and `parts`).
    pub fn body_len(&self) -> usize {
        self.body.len() + self.parts.iter().map(Bytes::len).sum::<usize>()
    }

    /// The body's parts in order, `body` first.
    pub fn body_parts(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.body).chain(&self.parts)
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
    /// Queues a frame for writing whatever the budgets hold (its bytes are counted in
    /// them); false when the connection is closed. Server pushes use [`Self::push`].
    pub fn send(&self, out: &Outbound) -> bool {
        let mut state = self.state.borrow_mut();
        if state.closed {
            return false;
        }
        let queued = state.queue_or_error(out);
        limits::governor().response_budget().add(queued.unwrap_or(0));
        state.wake();
        queued.is_some()
    }

    /// Queues a server-initiated request (a push) when it fits this connection's response
    /// budget and the broker-wide one; otherwise drops it, counts the limit hit and returns
    /// false (as the reference's one-way semaphore refuses). False also when closed.
    pub fn push(&self, out: &Outbound) -> bool {
        let mut state = self.state.borrow_mut();
        if state.closed {
            return false;
        }
        let mut head = BytesMut::new();
        if let Err(e) = encode_frame_head(&out.header, out.body_len(), &mut head) {
            warn!(peer = %state.peer, code = out.header.code, error = %e, "push cannot be encoded");
            return false;
        }
        let size = head.len() + out.body_len();
        let governor = limits::governor();
        let refused = if !state.fits(size) {
            Some(LimitHit::ConnectionResponseBytes)
        } else if !governor.response_budget().try_add(size) {
            Some(LimitHit::ResponseBytes)
        } else {
            None
        };
        if let Some(hit) = refused {
            report_limit(governor, governor.hit(hit), state.peer, "push dropped");
            return false;
        }
        let queued = state.queue_or_error(out).unwrap_or(0);
        adjust_shared(queued, size);
        state.wake();
        queued > 0
    }

    /// Sends a request to the peer and returns its opaque and where its reply will arrive
    /// (the receiver ends without a reply when the connection closes). The caller bounds
    /// its wait and calls [`Self::forget_call`] when it gives up.
    ///
    /// # Errors
    /// [`CallError`]: closed, too many outstanding, or over a response budget.
    pub fn call(
        &self,
        mut header: Header,
        body: Bytes,
    ) -> Result<(i32, flume::Receiver<Frame>), CallError> {
        let opaque = {
            let mut state = self.state.borrow_mut();
            if state.closed {
                return Err(CallError::Closed);
            }
            if state.calls.len() >= CALLS_PER_CONNECTION_MAX {
                return Err(CallError::TooMany);
            }
            state.next_call = state.next_call.wrapping_add(1) & i32::MAX;
            state.next_call
        };
        header.opaque = opaque;
        let (tx, rx) = flume::bounded(1);
        self.state.borrow_mut().calls.insert(opaque, tx);
        if !self.push(&Response { header, body, parts: Box::default() }) {
            let mut state = self.state.borrow_mut();
            state.calls.remove(&opaque);
            return Err(if state.closed { CallError::Closed } else { CallError::Budget });
        }
        Ok((opaque, rx))
    }

    /// Stops waiting for the reply to the request `opaque` (a late reply is dropped).
    pub fn forget_call(&self, opaque: i32) {
        self.state.borrow_mut().calls.remove(&opaque);
    }

    /// A request's task finished: its reservation of `reserve` bytes becomes the real size
    /// of `response` (nothing for a one-way request).
    fn complete(&self, reserve: usize, response: Option<Response>) {
        let mut state = self.state.borrow_mut();
        state.inflight -= 1;
        if state.closed {
            // Everything the connection held was given back when it closed.
            return;
        }
        state.reserved -= reserve;
        let queued = response.and_then(|r| state.queue_or_error(&r)).unwrap_or(0);
        adjust_shared(queued, reserve);
        state.wake();
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
    /// Process-wide id (the connection's place in the broker-wide budget's queue).
    id: u64,
    /// Response bytes reserved by requests in progress.
    reserved: usize,
    /// Requests read but not yet dispatched: waiting for response budget.
    waiting: usize,
    /// `serverConnectionResponseBytesMax`.
    budget_max: usize,
    /// Requests this broker sent to the peer and waits on (relays of
    /// GET_CONSUMER_RUNNING_INFO, CONSUME_MESSAGE_DIRECTLY), by opaque; at most
    /// [`CALLS_PER_CONNECTION_MAX`].
    calls: HashMap<i32, flume::Sender<Frame>>,
    /// The opaque of the next such request.
    next_call: i32,
}

/// Most requests the broker waits on from one client connection at once.
pub const CALLS_PER_CONNECTION_MAX: usize = 16;

/// Why a request to a client could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The connection has ended.
    Closed,
    /// [`CALLS_PER_CONNECTION_MAX`] requests already wait on it.
    TooMany,
    /// The request did not fit the connection's or the broker's response budget.
    Budget,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CallError::Closed => "the client's connection is closed",
            CallError::TooMany => "too many requests outstanding on the client's connection",
            CallError::Budget => "the client's connection has too much unwritten output",
        })
    }
}

/// Moves the broker-wide count from `reserved` bytes to `queued` bytes.
fn adjust_shared(queued: usize, reserved: usize) {
    let budget = limits::governor().response_budget();
    if queued >= reserved {
        budget.add(queued - reserved);
    } else {
        budget.release(reserved - queued);
    }
}

impl ConnState {
    /// Response bytes queued and not yet written.
    fn output_bytes(&self) -> usize {
        self.write_buf.len() + self.queued_bytes
    }

    /// True when `bytes` more fit this connection's response budget (always when it holds
    /// nothing, so one response larger than the budget is still served). Large reads may
    /// fill only seven eighths of it, so long-polling pulls parked with their reservations
    /// never stop the small requests (sends, heartbeats) of the same connection.
    fn fits(&self, bytes: usize) -> bool {
        let held = self.reserved + self.output_bytes();
        let max = if bytes > RESPONSE_RESERVE_BYTES {
            self.budget_max - self.budget_max / 8
        } else {
            self.budget_max
        };
        held == 0 || held.saturating_add(bytes) <= max
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Queues `out`, or a short SYSTEM_ERROR in place of a response the encoder refuses (an
    /// encoder limit, reached only by a bug that put unbounded data in a header; nothing is
    /// sent for a request). The bytes queued, or `None` when nothing was.
    fn queue_or_error(&mut self, out: &Outbound) -> Option<usize> {
        let before = self.output_bytes();
        if let Err(e) = self.queue(out) {
            warn!(peer = %self.peer, code = out.header.code, error = %e, "frame cannot be encoded");
            if !out.header.is_response() {
                return None;
            }
            let reply = Header::response_to(&out.header, response::SYSTEM_ERROR)
                .with_remark(format!("response cannot be encoded: {e}"));
            self.queue(&Response::new(reply)).ok()?;
        }
        Some(self.output_bytes().saturating_sub(before))
    }

    /// The connection ended: gives back everything it holds in the broker-wide budget and
    /// frees its queued output (handler tasks still running keep the state alive).
    /// Idempotent.
    fn close(&mut self) {
        self.closed = true;
        self.calls.clear();
        let held = self.reserved + self.output_bytes();
        self.reserved = 0;
        self.write_queue.clear();
        self.queued_bytes = 0;
        self.write_buf = BytesMut::new();
        let budget = limits::governor().response_budget();
        budget.release(held);
        budget.leave(self.id);
    }

    /// Encodes `out` behind everything already queued.
    fn queue(&mut self, out: &Outbound) -> Result<(), EncodeError> {
        if out.parts.is_empty() && out.body.len() < BODY_BYTES_ZERO_COPY_MIN {
            return encode_frame(&out.header, &out.body, &mut self.write_buf);
        }
        encode_frame_head(&out.header, out.body_len(), &mut self.write_buf)?;
        for part in out.body_parts() {
            if part.len() >= BODY_BYTES_ZERO_COPY_MIN {
                // A large part (a big record of a pull) is written from its own buffer: what
                // the write buffer holds is queued before it, to keep the byte order.
                let before = self.write_buf.split().freeze();
                if !before.is_empty() {
                    self.queued_bytes += before.len();
                    self.write_queue.push_back(before);
                }
                self.queued_bytes += part.len();
                self.write_queue.push_back(part.clone());
            } else {
                self.write_buf.extend_from_slice(part);
            }
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

    /// Bytes to reserve, before dispatching `header`'s request, for its worst-case response.
    /// More than [`RESPONSE_RESERVE_BYTES`] marks a large read (a pull), which may wait
    /// without holding up the requests behind it.
    fn response_reserve(&self, _header: &Header) -> usize {
        RESPONSE_RESERVE_BYTES
    }

    /// Called once when the connection starts.
    fn opened(self: Rc<Self>, _conn: &ConnectionHandle) {}

    /// Called once when the connection ends.
    fn closed(self: Rc<Self>, _conn: &ConnectionHandle) {}
}

/// Accepts connections on `listener` for ever, serving each with [`serve`] on its own task;
/// an accept error (descriptor exhaustion, an aborted handshake) is logged under `what` and
/// retried after 10 ms. The NameServer and the controller listen with it.
pub async fn accept_loop<S: Service + 'static>(
    listener: &glommio::net::TcpListener,
    service: Rc<S>,
    what: &str,
) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(serve(stream, service.clone())).detach();
            }
            Err(e) => {
                warn!(error = %e, "{what} accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves one accepted connection until the peer closes it or sends garbage.
///
/// # Cancel safety
/// Dropping the future closes the socket and gives back the connection's response budget;
/// handler tasks still running drop their responses when they find the connection closed.
pub async fn serve<S: Service>(mut stream: TcpStream, service: Rc<S>) {
    let peer = match stream.peer_addr() {
        Ok(p) => p,
        Err(_) => return,
    };
    let governor = limits::governor();
    let mut permit = match governor.admit(peer.ip()) {
        Ok(permit) => permit,
        Err(hit) => {
            report_limit(governor, hit, peer, "closing");
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
        id: permit.id(),
        reserved: 0,
        waiting: 0,
        budget_max: governor.limits().connection_response_bytes_max,
        calls: HashMap::new(),
        next_call: 0,
    }));
    let _release = CloseOnDrop(state.clone());
    let handle = ConnectionHandle { state: state.clone() };
    service.clone().opened(&handle);
    // Dropped (cancelled) when the connection ends.
    let _watchdog = glommio::spawn_local(watchdog(state.clone(), governor.limits().clone()));
    let mut read_buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut scratch = vec![0u8; READ_CHUNK_BYTES];
    let mut waiting = Waiting::default();
    let result = futures_lite::future::poll_fn(|cx| {
        let mut io = Io { stream: &mut stream, read_buf: &mut read_buf, scratch: &mut scratch };
        drive(&mut io, &mut waiting, &mut permit, &state, &handle, &service, cx)
    })
    .await;
    if let Err(reason) = result {
        debug!(%peer, %reason, "connection closed");
    }
    state.borrow_mut().close();
    service.closed(&handle);
}

/// Closes the connection's state when `serve` ends or is dropped.
struct CloseOnDrop(Rc<RefCell<ConnState>>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.try_borrow_mut() {
            state.close();
        }
    }
}

/// Logs a limit reached, and what was done about it: the first time and then at powers of
/// two, so an attack cannot flood the log; every hit is counted in [`limits::Governor::hits`].
fn report_limit(governor: &limits::Governor, hit: LimitHit, peer: SocketAddr, action: &str) {
    let count = governor.hit_count(hit);
    if count.is_power_of_two() {
        warn!(%peer, limit = hit.key(), times = count, "connection limit reached; {action}");
    }
}

/// Closes the connection when it has been silent for the idle timeout, or when its
/// waiting output (responses or pushes) made no progress for the write timeout. The driver
/// only counts reads and writes (no clock on the data path); the watchdog wakes every half
/// of the shorter timeout, notes when each count last moved, and so closes between one and
/// one and a half timeouts.
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
        if counts != seen || st.inflight > 0 || st.waiting > 0 {
            quiet_since = now;
        }
        let waiting = st.output_bytes() > 0;
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
        report_limit(limits::governor(), hit, st.peer, "closing");
        st.wake();
        return;
    }
}

/// Shortest watchdog period.
const MIN_WATCHDOG_SLEEP: std::time::Duration = std::time::Duration::from_millis(10);

/// The socket and the read buffers of one connection.
struct Io<'a> {
    stream: &'a mut TcpStream,
    read_buf: &'a mut BytesMut,
    scratch: &'a mut [u8],
}

/// Requests read but waiting for response budget, each with its reservation.
#[derive(Default)]
struct Waiting {
    /// A small request that did not fit: nothing behind it is decoded until it runs.
    held: Option<(Frame, usize)>,
    /// Large reads (pulls) that did not fit, in arrival order; the requests behind them
    /// still run.
    large: VecDeque<(Frame, usize)>,
}

fn drive<S: Service>(
    io: &mut Io<'_>,
    waiting: &mut Waiting,
    permit: &mut Permit<'_>,
    state: &Rc<RefCell<ConnState>>,
    handle: &ConnectionHandle,
    service: &Rc<S>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), String>> {
    let budget = limits::governor().response_budget();
    loop {
        let mut progressed = false;
        // Write everything buffered.
        {
            let mut st = state.borrow_mut();
            if let Some(hit) = st.kill {
                return Poll::Ready(Err(format!("limit {} reached", hit.key())));
            }
            while let Some(front) = st.write_queue.front_mut() {
                match Pin::new(&mut *io.stream).poll_write(cx, front) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err("write returned 0".into())),
                    Poll::Ready(Ok(n)) => {
                        front.advance(n);
                        if front.is_empty() {
                            st.write_queue.pop_front();
                        }
                        st.queued_bytes -= n;
                        st.writes += 1;
                        budget.release(n);
                        progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.to_string())),
                    Poll::Pending => break,
                }
            }
            while st.write_queue.is_empty() && !st.write_buf.is_empty() {
                match Pin::new(&mut *io.stream).poll_write(cx, &st.write_buf) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err("write returned 0".into())),
                    Poll::Ready(Ok(n)) => {
                        st.write_buf.advance(n);
                        st.writes += 1;
                        budget.release(n);
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
        }
        // Dispatch what waits for budget and what is already read, as budget allows.
        progressed |= dispatch_ready(io.read_buf, waiting, state, handle, service, cx)?;
        {
            let st = state.borrow();
            let paused = st.inflight + st.waiting >= INFLIGHT_REQUESTS_MAX
                || waiting.held.is_some()
                || st.output_bytes() >= st.budget_max;
            if paused {
                return Poll::Pending;
            }
        }
        // Read and dispatch. The scratch buffer is initialised once per connection; each
        // read costs one copy into `read_buf`, which frames are then split from.
        match Pin::new(&mut *io.stream).poll_read(cx, &mut io.scratch[..]) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
            Poll::Ready(Ok(n)) => {
                io.read_buf.extend_from_slice(&io.scratch[..n]);
                progressed = true;
                state.borrow_mut().reads += 1;
                dispatch_ready(io.read_buf, waiting, state, handle, service, cx)?;
                // What is left is the start of a frame not yet complete (or, while a
                // request waits for budget, frames not yet decoded).
                if let Err(hit) = permit.hold_partial(io.read_buf.len()) {
                    report_limit(limits::governor(), hit, handle.peer(), "closing");
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

/// Reserves `reserve` bytes for a request's response in this connection's budget and the
/// broker-wide one, or says which budget makes it wait (the driver is woken when it may
/// try again: by its own writes and finished requests, or by the broker-wide queue).
fn try_reserve(
    state: &Rc<RefCell<ConnState>>,
    reserve: usize,
    cx: &Context<'_>,
) -> Result<(), LimitHit> {
    let mut st = state.borrow_mut();
    let budget = limits::governor().response_budget();
    if !st.fits(reserve) {
        // Its own output and requests stop it: wait for them, not in the broker-wide queue
        // (where it would hold up connections that could go).
        budget.leave(st.id);
        return Err(LimitHit::ConnectionResponseBytes);
    }
    if !budget.reserve(st.id, reserve, cx.waker()) {
        return Err(LimitHit::ResponseBytes);
    }
    st.reserved += reserve;
    Ok(())
}

/// Dispatches the requests waiting for budget, then the frames already read, while their
/// reservations fit; true when any was dispatched.
fn dispatch_ready<S: Service>(
    read_buf: &mut BytesMut,
    waiting: &mut Waiting,
    state: &Rc<RefCell<ConnState>>,
    handle: &ConnectionHandle,
    service: &Rc<S>,
    cx: &Context<'_>,
) -> Result<bool, String> {
    let mut any = false;
    if let Some((frame, reserve)) = waiting.held.take() {
        if try_reserve(state, reserve, cx).is_err() {
            waiting.held = Some((frame, reserve));
        } else {
            state.borrow_mut().waiting -= 1;
            dispatch(frame, reserve, state, handle, service);
            any = true;
        }
    }
    while let Some(&(_, reserve)) = waiting.large.front() {
        if try_reserve(state, reserve, cx).is_err() {
            break;
        }
        if let Some((frame, reserve)) = waiting.large.pop_front() {
            state.borrow_mut().waiting -= 1;
            dispatch(frame, reserve, state, handle, service);
            any = true;
        }
    }
    while waiting.held.is_none() {
        let frame = match decode_frame(read_buf, FRAME_SIZE_BYTES_MAX) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                warn!(peer = %handle.peer(), error = %e, "undecodable frame; closing");
                return Err(e.to_string());
            }
        };
        if frame.header.is_response() {
            // The reply to a relayed request goes to its waiter; replies nothing waits for
            // (CHECK_TRANSACTION_STATE is one-way in practice, a late relay) are dropped.
            let waiter = state.borrow_mut().calls.remove(&frame.header.opaque);
            if let Some(tx) = waiter {
                let _ = tx.try_send(frame);
            }
            continue;
        }
        let reserve = service.response_reserve(&frame.header);
        let large = reserve > RESPONSE_RESERVE_BYTES;
        let refused = if large && !waiting.large.is_empty() {
            None // behind an earlier large read that waits: keep their order
        } else {
            match try_reserve(state, reserve, cx) {
                Ok(()) => {
                    dispatch(frame, reserve, state, handle, service);
                    any = true;
                    continue;
                }
                Err(hit) => Some(hit),
            }
        };
        let governor = limits::governor();
        if let Some(hit) = refused {
            report_limit(governor, governor.hit(hit), handle.peer(), "request waits");
        }
        state.borrow_mut().waiting += 1;
        if large {
            waiting.large.push_back((frame, reserve));
            if state.borrow().inflight + state.borrow().waiting >= INFLIGHT_REQUESTS_MAX {
                break;
            }
        } else {
            waiting.held = Some((frame, reserve));
        }
    }
    Ok(any)
}

/// Runs one request whose reservation of `reserve` bytes is taken.
fn dispatch<S: Service>(
    frame: Frame,
    reserve: usize,
    state: &Rc<RefCell<ConnState>>,
    handle: &ConnectionHandle,
    service: &Rc<S>,
) {
    crate::panic::request_fault_point();
    state.borrow_mut().inflight += 1;
    let fut = service.clone().call(frame, handle.clone());
    let handle = handle.clone();
    glommio::spawn_local(async move {
        let response = fut.await;
        handle.complete(reserve, response);
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use ramjet_proto::SerializeType;

    use super::*;

    fn state() -> ConnState {
        ConnState {
            write_queue: VecDeque::new(),
            queued_bytes: 0,
            write_buf: BytesMut::new(),
            inflight: 0,
            waker: None,
            closed: false,
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            reads: 0,
            writes: 0,
            kill: None,
            id: 0,
            reserved: 0,
            waiting: 0,
            budget_max: 64 << 20,
            calls: HashMap::new(),
            next_call: 0,
        }
    }

    /// The bytes the connection would write, in order.
    fn pending(st: &ConnState) -> Vec<u8> {
        let mut out: Vec<u8> = st.write_queue.iter().flat_map(|b| b.iter().copied()).collect();
        out.extend_from_slice(&st.write_buf);
        out
    }

    fn reply(opaque: i32) -> Header {
        let request = Header::request(11, opaque, SerializeType::Json);
        Header::response_to(&request, response::SUCCESS)
    }

    #[test]
    fn body_parts_go_out_as_one_body_and_large_parts_are_not_copied() {
        let small = Bytes::from(vec![1u8; 100]);
        let large = Bytes::from(vec![2u8; BODY_BYTES_ZERO_COPY_MIN]);
        let last = Bytes::from(vec![3u8; 10]);
        let first = Response::new(reply(1));
        let pull = Response {
            header: reply(2),
            body: Bytes::new(),
            parts: Box::new([small.clone(), large.clone(), last.clone()]),
        };
        let mut st = state();
        st.queue(&first).unwrap();
        st.queue(&pull).unwrap();
        let mut want = BytesMut::new();
        encode_frame(&first.header, b"", &mut want).unwrap();
        encode_frame(&pull.header, &[&small[..], &large[..], &last[..]].concat(), &mut want)
            .unwrap();
        assert_eq!(pending(&st), want.to_vec());
        assert_eq!(st.output_bytes(), want.len());
        assert_eq!(pull.body_len(), 100 + BODY_BYTES_ZERO_COPY_MIN + 10);
        assert!(
            st.write_queue.iter().any(|b| b.as_ptr() == large.as_ptr()),
            "the large part is written from its own buffer"
        );
    }

    #[test]
    fn large_reads_leave_an_eighth_of_the_budget_to_small_requests() {
        let mut st = state();
        assert!(st.fits(1 << 30), "a connection holding nothing takes any reservation");
        st.reserved = 56 << 20;
        assert!(!st.fits(RESPONSE_RESERVE_BYTES + 1), "a large read past 7/8 waits");
        assert!(st.fits(RESPONSE_RESERVE_BYTES), "a small request still fits");
        st.reserved = (64 << 20) - RESPONSE_RESERVE_BYTES + 1;
        assert!(!st.fits(RESPONSE_RESERVE_BYTES));
    }
}
