//! Transport tests against an in-process fake peer on loopback, on every enabled runtime.
//!
//! Goal: the connection pipelines requests, matches replies by opaque whatever their
//! order, times out a request nobody answers, fails pending requests when the peer goes
//! away, and answers server-initiated requests, on glommio and on tokio alike.
//! Method: a thread with blocking std sockets plays the broker (so the peer is the same
//! whichever runtime the client runs on); it decodes frames with `proto::frame`, replies
//! as the test scenario says and hands its findings back over a channel the test awaits.
//! Each test body runs once per enabled runtime (`support::runtimes`).

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use ramjet_client::runtime::spawn_local;
use ramjet_client::{ClientError, Connection, ConnectionOptions};
use ramjet_proto::frame::{decode_frame, encode_frame, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::{Frame, Header, SerializeType};
use support::runtimes::on_each_runtime as run;

/// Reads frames from `stream` until it closes, calling `each` with every one.
fn read_frames(stream: &mut TcpStream, mut each: impl FnMut(Frame) -> bool) {
    let mut buf = BytesMut::new();
    let mut scratch = vec![0u8; 4096];
    loop {
        while let Some(frame) = decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX).expect("valid frame") {
            if !each(frame) {
                return;
            }
        }
        let n = stream.read(&mut scratch).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&scratch[..n]);
    }
}

fn reply_to(frame: &Frame) -> Vec<u8> {
    let mut header = Header::response_to(&frame.header, 0);
    header.remark = Some(format!("code {}", frame.header.code));
    let mut out = BytesMut::new();
    encode_frame(&header, &frame.body, &mut out).expect("encodes");
    out.to_vec()
}

/// A fake peer: `scenario` runs on its own thread with the first accepted connection.
/// Returns the address to connect to and a channel that yields the scenario's result.
fn peer<T: Send + 'static>(
    scenario: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (String, flume::Receiver<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (sender, receiver) = flume::bounded(1);
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let _ = sender.send(scenario(stream));
    });
    (addr, receiver)
}

/// Waits (without blocking the executor) for the peer's scenario to end.
async fn finished<T>(peer: flume::Receiver<T>) -> T {
    peer.recv_async().await.expect("the peer thread panicked")
}

#[test]
fn pipelined_requests_complete_by_opaque_even_when_answered_in_reverse() {
    run(|| async {
        const N: usize = 50;
        let (addr, server) = peer(|mut s| {
            let mut got = Vec::new();
            read_frames(&mut s, |f| {
                got.push(f);
                got.len() < N
            });
            // All N requests arrived before any reply went out: they were pipelined.
            assert_eq!(got.len(), N);
            for f in got.iter().rev() {
                s.write_all(&reply_to(f)).expect("write");
            }
            s
        });
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("conn");
        let mut requests = Vec::new();
        for i in 0..N {
            let conn = conn.clone();
            requests.push(spawn_local(async move {
                let h = Header::request(100 + i as i32, 0, SerializeType::RocketMq);
                let body = format!("body-{i}");
                let r = conn.request(h, body.as_bytes(), Duration::from_secs(10)).await;
                (i, body, r)
            }));
        }
        for t in requests {
            let (i, body, r) = t.await;
            let frame = r.expect("reply");
            assert_eq!(&frame.body[..], body.as_bytes());
            assert_eq!(frame.header.remark.as_deref(), Some(&*format!("code {}", 100 + i)));
        }
        assert_eq!(conn.pending_count(), 0);
        drop(finished(server).await);
    });
}

#[test]
fn unanswered_request_times_out_and_leaves_no_pending_entry() {
    run(|| async {
        let (addr, server) = peer(|mut s| read_frames(&mut s, |_| true));
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("conn");
        let h = Header::request(11, 0, SerializeType::Json);
        let r = conn.request(h, b"", Duration::from_millis(50)).await;
        assert!(matches!(r, Err(ClientError::Timeout { code: 11, .. })), "{r:?}");
        assert_eq!(conn.pending_count(), 0);
        conn.close();
        finished(server).await;
    });
}

#[test]
fn peer_close_fails_every_pending_request() {
    run(|| async {
        let (addr, server) = peer(|mut s| {
            let mut seen = 0;
            read_frames(&mut s, |_| {
                seen += 1;
                seen < 3
            });
            // Dropping the stream closes the connection with three requests pending.
        });
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("conn");
        let mut requests = Vec::new();
        for _ in 0..3 {
            let conn = conn.clone();
            requests.push(spawn_local(async move {
                let h = Header::request(10, 0, SerializeType::RocketMq);
                conn.request(h, b"x", Duration::from_secs(30)).await
            }));
        }
        finished(server).await;
        for t in requests {
            let r = t.await;
            assert!(matches!(r, Err(ClientError::ConnectionClosed { .. })), "{r:?}");
        }
        assert!(conn.is_closed());
        let again =
            conn.request(Header::request(10, 0, SerializeType::Json), b"", Duration::from_secs(1));
        assert!(matches!(again.await, Err(ClientError::ConnectionClosed { .. })));
    });
}

#[test]
fn server_request_goes_to_the_handler_and_its_reply_goes_back() {
    run(|| async {
        let (addr, server) = peer(|mut s| {
            let mut req = Header::request(39, 77, SerializeType::Json);
            req.ext_fields.insert("k", "v");
            let mut out = BytesMut::new();
            encode_frame(&req, b"", &mut out).expect("encodes");
            // A request with a code the handler refuses gets REQUEST_CODE_NOT_SUPPORTED.
            let other = Header::request(40, 78, SerializeType::Json);
            encode_frame(&other, b"", &mut out).expect("encodes");
            s.write_all(&out).expect("write");
            let mut replies = Vec::new();
            read_frames(&mut s, |f| {
                replies.push(f);
                replies.len() < 2
            });
            replies
        });
        let handler: ramjet_client::transport::ServerRequestHandler = Rc::new(|f: &Frame| {
            (f.header.code == 39).then(|| Frame {
                header: Header::response_to(&f.header, 0).with_remark("handled"),
                body: bytes::Bytes::from_static(b"ok"),
            })
        });
        let options = ConnectionOptions { handler: Some(handler), ..Default::default() };
        let conn = Connection::connect(&addr, options).await.expect("conn");
        let replies = finished(server).await;
        assert_eq!(replies.len(), 2);
        let by_opaque = |o| replies.iter().find(|f| f.header.opaque == o).expect("reply");
        assert!(by_opaque(77).header.is_response());
        assert_eq!(by_opaque(77).header.code, 0);
        assert_eq!(&by_opaque(77).body[..], b"ok");
        assert_eq!(
            by_opaque(78).header.code,
            ramjet_proto::codes::response::REQUEST_CODE_NOT_SUPPORTED
        );
        drop(conn);
    });
}

#[test]
fn oneway_frames_reach_the_peer_after_flush_even_if_the_connection_is_dropped_next() {
    run(|| async {
        const N: usize = 100;
        let (addr, server) = peer(|mut s| {
            let mut got = Vec::new();
            read_frames(&mut s, |f| {
                got.push(f);
                true
            });
            got
        });
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("conn");
        for i in 0..N {
            let h = Header::request(15, 0, SerializeType::RocketMq);
            conn.oneway(h, format!("{i}").as_bytes()).expect("queued");
        }
        conn.flush().await.expect("flushed");
        drop(conn);
        let got = finished(server).await;
        assert_eq!(got.len(), N);
        assert!(got.iter().all(|f| f.header.is_oneway()));
        let opaques: std::collections::HashSet<i32> = got.iter().map(|f| f.header.opaque).collect();
        assert_eq!(opaques.len(), N, "every frame has its own opaque");
    });
}
