//! One remoting connection: pipelined requests keyed by opaque.
//!
//! Lives on: the executor that created it (`!Send`, `Rc` + `RefCell` inside).
//!
//! ```text
//!  request() ──encode──▶ write_buf ──(Signal)──▶ writer task ──write_all──▶ socket
//!      │                                                                     │
//!      └─▶ PendingTable[opaque] = Completion ◀──complete── reader task ◀─────┘
//!                                                  (decode_frame, by opaque)
//! ```
//!
//! Writes are batched: every request appends its frame to one buffer and raises the
//! writer's signal; the writer swaps the whole buffer out once per wake-up, so frames
//! queued by many tasks between two wake-ups leave in one `send`.
//!
//! Failure: any read or write error, a frame that cannot be decoded, or `close` marks the
//! connection closed and completes every pending request with `ConnectionClosed`.
//! A closed connection stays closed; the pool replaces it on next use.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use ramjet_proto::codes::response;
use ramjet_proto::frame::{decode_frame, encode_frame, peek_frame_length, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::{Frame, Header};

use crate::error::ClientError;
use crate::pending::PendingTable;
use crate::runtime::{self, Task, TcpStream};
use crate::transport::completion::{Completion, Signal};

/// Called with each request the peer initiates (NOTIFY_CONSUMER_IDS_CHANGED,
/// CHECK_TRANSACTION_STATE, ...). A returned frame is sent back as the reply (its opaque
/// and response flag are set by the connection). With no handler, or when it returns
/// `None` for a request that expects a reply, the peer gets REQUEST_CODE_NOT_SUPPORTED.
pub type ServerRequestHandler = Rc<dyn Fn(&Frame) -> Option<Frame>>;

/// Bytes read from the socket per `recv` when no larger frame is waiting.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Settings of one connection.
#[derive(Clone)]
pub struct ConnectionOptions {
    /// Requests in flight before `request` refuses more.
    pub in_flight_max: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Handler of server-initiated requests; `None` ignores them.
    pub handler: Option<ServerRequestHandler>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            in_flight_max: crate::config::IN_FLIGHT_PER_CONNECTION_MAX_DEFAULT,
            connect_timeout: crate::config::REQUEST_TIMEOUT_DEFAULT,
            handler: None,
        }
    }
}

impl std::fmt::Debug for ConnectionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionOptions")
            .field("in_flight_max", &self.in_flight_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("handler", &self.handler.is_some())
            .finish()
    }
}

/// State shared by the connection handle and its reader and writer tasks.
struct Shared {
    addr: String,
    stream: RefCell<TcpStream>,
    pending: RefCell<PendingTable<Rc<Completion>>>,
    write_buf: RefCell<BytesMut>,
    write_signal: Signal,
    /// Bytes handed to `write_buf` since the start, and bytes the socket accepted:
    /// `flush` waits for the second to reach the first.
    enqueued_bytes: Cell<u64>,
    written_bytes: Cell<u64>,
    flush_waiters: RefCell<Vec<Waker>>,
    /// `Some(reason)` once closed.
    closed: RefCell<Option<String>>,
    handler: Option<ServerRequestHandler>,
}

/// A client connection to a broker or NameServer.
///
/// Dropping it cancels its reader and writer tasks, closes the socket and fails every
/// pending request.
pub struct Connection {
    shared: Rc<Shared>,
    tasks: RefCell<Vec<Task<()>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("pending", &self.shared.pending.borrow().len())
            .field("closed", &self.shared.closed.borrow())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`) and starts the reader and writer tasks on the
    /// current executor ([`crate::runtime`]).
    ///
    /// # Errors
    /// `Connect` when the address does not resolve or the connection is refused or
    /// times out.
    pub async fn connect(
        addr: &str,
        options: ConnectionOptions,
    ) -> Result<Rc<Connection>, ClientError> {
        let connect_error =
            |message: String| ClientError::Connect { addr: addr.to_string(), message };
        let socket_addr: SocketAddr = addr
            .to_socket_addrs()
            .map_err(|e| connect_error(e.to_string()))?
            .next()
            .ok_or_else(|| connect_error("address resolves to nothing".into()))?;
        let stream = TcpStream::connect(socket_addr, options.connect_timeout)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let shared = Rc::new(Shared {
            addr: addr.to_string(),
            stream: RefCell::new(stream),
            pending: RefCell::new(PendingTable::new(options.in_flight_max)),
            write_buf: RefCell::new(BytesMut::with_capacity(READ_CHUNK_BYTES)),
            write_signal: Signal::default(),
            enqueued_bytes: Cell::new(0),
            written_bytes: Cell::new(0),
            flush_waiters: RefCell::new(Vec::new()),
            closed: RefCell::new(None),
            handler: options.handler,
        });
        let reader = runtime::spawn_local(read_loop(shared.clone()));
        let writer = runtime::spawn_local(write_loop(shared.clone()));
        Ok(Rc::new(Connection { shared, tasks: RefCell::new(vec![reader, writer]) }))
    }

    /// The peer address as given to `connect`.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// True once the connection failed or was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.borrow().is_some()
    }

    /// Requests waiting for replies now.
    pub fn pending_count(&self) -> usize {
        self.shared.pending.borrow().len()
    }

    /// Sends a request and waits for its reply. The connection sets `header.opaque` and
    /// clears the one-way flag; the reply comes back whatever its response code (callers
    /// map non-success codes).
    ///
    /// # Errors
    /// `ConnectionClosed`, `TooManyInFlight`, `InvalidArgument` when the frame cannot be
    /// encoded (a header over 16 MiB), or `Timeout` after `timeout`.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future removes the request from the pending table; a
    /// reply arriving later is discarded. The frame may already have been sent.
    pub async fn request(
        &self,
        mut header: Header,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Frame, ClientError> {
        self.check_open()?;
        let completion = Rc::new(Completion::new());
        let registered = self.shared.pending.borrow_mut().register(completion.clone());
        let Ok(opaque) = registered else {
            let in_flight_max = self.shared.pending.borrow().in_flight_max();
            return Err(ClientError::TooManyInFlight { in_flight_max });
        };
        let _guard = PendingGuard { shared: &self.shared, opaque };
        header.opaque = opaque;
        header.flag &= !ramjet_proto::command::FLAG_ONEWAY;
        let code = header.code;
        self.shared.enqueue(&header, body)?;
        let timed_out = async {
            runtime::sleep(timeout).await;
            Err(ClientError::Timeout { code, opaque, timeout })
        };
        futures_lite::future::or(completion.wait(), timed_out).await
    }

    /// Queues a one-way request (no reply expected) and returns at once; the writer task
    /// sends it with the next batch.
    ///
    /// # Errors
    /// `ConnectionClosed`, or `InvalidArgument` when the frame cannot be encoded.
    pub fn oneway(&self, mut header: Header, body: &[u8]) -> Result<(), ClientError> {
        self.check_open()?;
        header.opaque = self.shared.pending.borrow_mut().allocate_opaque();
        header.set_oneway();
        self.shared.enqueue(&header, body)
    }

    /// Waits until every frame queued so far (requests and one-way requests) has been
    /// handed to the socket. Call it before dropping a connection whose last one-way
    /// requests must leave.
    ///
    /// # Errors
    /// `ConnectionClosed` when the connection fails first.
    ///
    /// # Cancel safety
    /// Cancel safe: it only waits.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let target = self.shared.enqueued_bytes.get();
        poll_fn(|cx| {
            if self.shared.written_bytes.get() >= target {
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = self.check_open() {
                return Poll::Ready(Err(e));
            }
            self.shared.flush_waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Closes the connection: pending requests fail with `ConnectionClosed`; frames not
    /// yet written are dropped (see [`Connection::flush`]).
    pub fn close(&self) {
        self.shared.fail("closed by the client".into());
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match &*self.shared.closed.borrow() {
            None => Ok(()),
            Some(reason) => Err(ClientError::ConnectionClosed {
                addr: self.shared.addr.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.fail("connection dropped".into());
        // Dropping the tasks cancels them; the socket closes with the last `Shared`.
        self.tasks.borrow_mut().clear();
    }
}

/// Removes a request's pending entry when its `request` future ends for any reason
/// (reply, timeout, cancellation).
struct PendingGuard<'a> {
    shared: &'a Rc<Shared>,
    opaque: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending.borrow_mut().complete(self.opaque);
    }
}

impl Shared {
    /// Queues one frame for the writer task.
    ///
    /// # Errors
    /// `InvalidArgument` when the frame cannot be encoded (a header field too large).
    fn enqueue(&self, header: &Header, body: &[u8]) -> Result<(), ClientError> {
        let mut buf = self.write_buf.borrow_mut();
        let before = buf.len();
        encode_frame(header, body, &mut buf).map_err(|e| ClientError::InvalidArgument {
            reason: format!("request code {} cannot be encoded: {e}", header.code),
        })?;
        let added = (buf.len() - before) as u64;
        drop(buf);
        self.enqueued_bytes.set(self.enqueued_bytes.get() + added);
        self.write_signal.notify();
        Ok(())
    }

    fn wake_flush_waiters(&self) {
        let waiters = std::mem::take(&mut *self.flush_waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Marks the connection closed (first reason wins) and fails every pending request.
    fn fail(&self, reason: String) {
        {
            let mut closed = self.closed.borrow_mut();
            if closed.is_some() {
                return;
            }
            tracing::debug!(addr = %self.addr, %reason, "connection closed");
            *closed = Some(reason.clone());
        }
        self.stream.borrow().shutdown();
        let drained = self.pending.borrow_mut().drain();
        for completion in drained {
            completion.complete(Err(ClientError::ConnectionClosed {
                addr: self.addr.clone(),
                reason: reason.clone(),
            }));
        }
        self.write_signal.notify();
        self.wake_flush_waiters();
    }

    fn dispatch(&self, frame: Frame) {
        if frame.header.is_response() {
            let completion = self.pending.borrow_mut().complete(frame.header.opaque);
            match completion {
                Some(c) => c.complete(Ok(frame)),
                None => tracing::trace!(opaque = frame.header.opaque, "reply nobody waits for"),
            }
            return;
        }
        let reply = self.handler.as_ref().and_then(|h| h(&frame));
        if frame.header.is_oneway() {
            return;
        }
        let (mut header, body) = match reply {
            Some(reply) => (reply.header, reply.body),
            None => {
                let remark = format!("request code {} not supported", frame.header.code);
                let header =
                    Header::response_to(&frame.header, response::REQUEST_CODE_NOT_SUPPORTED)
                        .with_remark(remark);
                (header, bytes::Bytes::new())
            }
        };
        header.opaque = frame.header.opaque;
        header.flag |= ramjet_proto::command::FLAG_RESPONSE;
        if let Err(e) = self.enqueue(&header, &body) {
            tracing::warn!(error = %e, "reply to a server request dropped");
        }
    }
}

async fn read_loop(shared: Rc<Shared>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut scratch = vec![0u8; READ_CHUNK_BYTES];
    let reason = loop {
        loop {
            match decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX) {
                Ok(Some(frame)) => shared.dispatch(frame),
                Ok(None) => break,
                Err(e) => {
                    shared.fail(format!("undecodable frame: {e}"));
                    return;
                }
            }
        }
        if shared.closed.borrow().is_some() {
            return;
        }
        // A large frame in progress is read straight to its end in one go.
        let needed = match peek_frame_length(&buf, FRAME_SIZE_BYTES_MAX) {
            Ok(Some(length)) => (4 + length).saturating_sub(buf.len()),
            _ => 0,
        };
        if needed > scratch.len() {
            scratch.resize(needed, 0);
        }
        let read = poll_fn(|cx| {
            let mut stream = shared.stream.borrow_mut();
            stream.poll_read(cx, &mut scratch)
        })
        .await;
        match read {
            Ok(0) => break "peer closed the connection".to_string(),
            Ok(n) => buf.extend_from_slice(&scratch[..n]),
            Err(e) => break format!("read failed: {e}"),
        }
        if scratch.len() > READ_CHUNK_BYTES && needed <= READ_CHUNK_BYTES {
            scratch.truncate(READ_CHUNK_BYTES);
            scratch.shrink_to_fit();
        }
    };
    shared.fail(reason);
}

async fn write_loop(shared: Rc<Shared>) {
    let mut out = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        shared.write_signal.wait().await;
        if shared.closed.borrow().is_some() {
            return;
        }
        std::mem::swap(&mut *shared.write_buf.borrow_mut(), &mut out);
        while out.has_remaining() {
            let written = poll_fn(|cx| {
                let mut stream = shared.stream.borrow_mut();
                stream.poll_write(cx, &out)
            })
            .await;
            match written {
                Ok(0) => {
                    shared.fail("write returned 0".into());
                    return;
                }
                Ok(n) => {
                    out.advance(n);
                    shared.written_bytes.set(shared.written_bytes.get() + n as u64);
                }
                Err(e) => {
                    shared.fail(format!("write failed: {e}"));
                    return;
                }
            }
        }
        out.clear();
        shared.wake_flush_waiters();
    }
}
