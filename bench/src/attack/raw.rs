//! Blocking sockets for `ramjet-bench attack`: a remoting connection that sends
//! hand-built frames and waits for their answers (or never reads them), HTTP scrapes of
//! `/metrics`, and the broker's memory from `/proc/<pid>/status`.
//!
//! Every read has a timeout and every wait a deadline, so an attack against a broker that
//! stops answering ends with an error instead of hanging.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ramjet_proto::frame::{decode_frame, encode_frame, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::{Frame, Header};

/// How long one request may wait for its answer, or one scrape for its page.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connect or a blocked write may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// One read's wait, so deadlines are checked between reads.
const READ_POLL: Duration = Duration::from_millis(500);

/// Connects to `addr` with [`IO_TIMEOUT`] for the connect and for writes.
///
/// # Errors
/// An address that does not parse, or the connect failing.
pub fn connect(addr: &str) -> Result<TcpStream, String> {
    let sock: SocketAddr = addr.parse().map_err(|e| format!("address {addr}: {e}"))?;
    let stream = TcpStream::connect_timeout(&sock, IO_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| format!("socket: {e}"))?;
    stream.set_read_timeout(Some(READ_POLL)).map_err(|e| format!("socket: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// One remoting connection driven by hand.
pub struct RawConn {
    stream: TcpStream,
    read: BytesMut,
    next_opaque: i32,
}

impl RawConn {
    /// Connects to the broker at `addr`.
    ///
    /// # Errors
    /// As [`connect`].
    pub fn connect(addr: &str) -> Result<RawConn, String> {
        Ok(RawConn { stream: connect(addr)?, read: BytesMut::new(), next_opaque: 1 })
    }

    /// Sends `header` (with a fresh opaque) and `body`, and waits for the answer,
    /// skipping server pushes.
    ///
    /// # Errors
    /// The frame does not encode, the connection fails or closes, or no answer comes
    /// within [`REPLY_TIMEOUT`]: a short word (`closed`, `timeout`, ...) then details.
    pub fn request(&mut self, mut header: Header, body: &[u8]) -> Result<Frame, String> {
        let opaque = self.next_opaque;
        self.next_opaque = self.next_opaque.wrapping_add(1);
        header.opaque = opaque;
        let mut out = BytesMut::new();
        encode_frame(&header, body, &mut out).map_err(|e| format!("encode: {e}"))?;
        self.stream.write_all(&out).map_err(|e| format!("closed: write: {e}"))?;
        self.reply(opaque)
    }

    fn reply(&mut self, opaque: i32) -> Result<Frame, String> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            while let Some(f) = decode_frame(&mut self.read, FRAME_SIZE_BYTES_MAX)
                .map_err(|e| format!("bad_frame: {e}"))?
            {
                if f.header.is_response() && f.header.opaque == opaque {
                    return Ok(f);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("timeout: no answer within {REPLY_TIMEOUT:?}"));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("closed: by the broker".into()),
                Ok(n) => self.read.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(format!("closed: read: {e}")),
            }
        }
    }

    /// Writes `frames` (header and body each, fresh opaques) without reading anything.
    ///
    /// # Errors
    /// A frame that does not encode, or the write failing or blocking past [`IO_TIMEOUT`].
    pub fn write_frames(&mut self, frames: Vec<(Header, Vec<u8>)>) -> Result<(), String> {
        let mut out = BytesMut::new();
        for (mut header, body) in frames {
            header.opaque = self.next_opaque;
            self.next_opaque = self.next_opaque.wrapping_add(1);
            encode_frame(&header, &body, &mut out).map_err(|e| format!("encode: {e}"))?;
        }
        self.stream.write_all(&out).map_err(|e| format!("write: {e}"))
    }

    /// The socket, for an attack that stops reading it.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted)
}

/// The tally key of a request's outcome: the response code, or the failure's first word.
pub fn outcome_key(result: &Result<Frame, String>) -> String {
    match result {
        Ok(f) => f.header.code.to_string(),
        Err(e) => e.split(':').next().unwrap_or("error").to_string(),
    }
}

/// Counts of outcomes by key.
pub type Tally = BTreeMap<String, u64>;

/// Adds `other` into `into`.
pub fn merge(into: &mut Tally, other: Tally) {
    for (k, v) in other {
        *into.entry(k).or_default() += v;
    }
}

/// True when the peer has closed `stream` (end of stream or reset); false while it is
/// open, whether or not bytes wait in it. Does not consume anything.
pub fn closed_by_peer(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut probe = [0u8; 1];
    let closed = match stream.peek(&mut probe) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !is_timeout(&e),
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
///
/// # Errors
/// The process is gone or the field is missing.
pub fn proc_status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{path}: no {field}"))
}

/// One `GET /metrics` answered in full.
#[derive(Debug)]
pub struct Scrape {
    /// The HTTP status code.
    pub status: u16,
    /// The page.
    pub body: String,
    /// From connect to the last byte.
    pub took: Duration,
}

/// Scrapes `http://addr/metrics`, reading the whole page (by Content-Length, or to the
/// end of the stream) within [`REPLY_TIMEOUT`].
///
/// # Errors
/// Connect, write or read failures; a response that is not HTTP; the timeout.
pub fn scrape(addr: &str) -> Result<Scrape, String> {
    let started = Instant::now();
    let mut s = connect(addr)?;
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let deadline = started + REPLY_TIMEOUT;
    let mut raw = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        if let Some((status, head_len, length)) = parse_head(&raw)? {
            if length.is_some_and(|l| raw.len() >= head_len + l) {
                let body = raw.get(head_len..head_len + length.unwrap_or(0)).unwrap_or_default();
                let body = String::from_utf8_lossy(body).into_owned();
                return Ok(Scrape { status, body, took: started.elapsed() });
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("no complete page within {REPLY_TIMEOUT:?}"));
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                let (status, head_len, _) = parse_head(&raw)?.ok_or("closed before a head")?;
                let body = String::from_utf8_lossy(raw.get(head_len..).unwrap_or_default());
                return Ok(Scrape { status, body: body.into_owned(), took: started.elapsed() });
            }
            Ok(n) => raw.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// The status, head length and Content-Length of a complete response head in `raw`.
fn parse_head(raw: &[u8]) -> Result<Option<(u16, usize, Option<usize>)>, String> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:.80}", head))?;
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    });
    Ok(Some((status, end + 4, length)))
}

/// `ramjet_limit_hits_total` of a `/metrics` page, by limit key.
pub fn limit_hits(page: &str) -> BTreeMap<String, u64> {
    page.lines()
        .filter_map(|l| l.strip_prefix("ramjet_limit_hits_total{limit=\""))
        .filter_map(|rest| {
            let (key, value) = rest.split_once("\"}")?;
            Some((key.to_string(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_hits_are_read_from_the_page() {
        let page = "# HELP x\nramjet_limit_hits_total{limit=\"a\"} 3\n\
                    ramjet_limit_hits_total{limit=\"b\"} 0\nramjet_other 1\n";
        let hits = limit_hits(page);
        assert_eq!(hits.get("a"), Some(&3));
        assert_eq!(hits.get("b"), Some(&0));
        assert_eq!(hits.len(), 2);
    }

    #[test]
    fn heads_give_status_and_length() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_head(raw).unwrap(), Some((200, 38, Some(5))));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        assert!(parse_head(b"junk\r\n\r\n").is_err());
    }

    #[test]
    fn outcomes_are_keyed_by_code_or_failure() {
        let failed: Result<Frame, String> = Err("closed: by the broker".into());
        assert_eq!(outcome_key(&failed), "closed");
    }
}
