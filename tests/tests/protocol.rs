//! Protocol-level end-to-end tests against a real broker process: unknown codes, reply
//! encodings, garbage frames, and replay of frames recorded from third-party clients.

use std::io::{Read, Write};
use std::time::Duration;

use bytes::BytesMut;
use ramjet_client::{Connection, ConnectionOptions};
use ramjet_proto::codes::{request, response};
use ramjet_proto::frame::{decode_frame, encode_frame};
use ramjet_proto::{Header, SerializeType};
use ramjet_tests::{recorded_frames, run_glommio, store_dir, BrokerOptions, Daemon};

const TIMEOUT: Duration = Duration::from_secs(10);

// Goal: an unknown request code is answered with REQUEST_CODE_NOT_SUPPORTED in the
// request's own header encoding, and the connection keeps serving.
// Method: one connection, an unknown code in JSON, then in binary, then a real request.
#[test]
fn unknown_codes_are_answered_in_kind_and_the_connection_survives() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let addr = broker.broker_addr.clone();
    run_glommio(move || async move {
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let reply =
                conn.request(Header::request(9999, 0, st), b"", TIMEOUT).await.expect("reply");
            assert_eq!(reply.header.code, response::REQUEST_CODE_NOT_SUPPORTED);
            assert_eq!(reply.header.serialize_type, st);
            assert!(reply.header.is_response());
        }
        let mut h = Header::request(request::GET_MAX_OFFSET, 0, SerializeType::Json);
        h.ext_fields.insert("topic", "TBW102");
        h.ext_fields.insert("queueId", "0");
        let reply = conn.request(h, b"", TIMEOUT).await.expect("reply");
        assert_eq!(reply.header.code, response::SUCCESS);
        assert_eq!(reply.header.ext_fields.get("offset"), Some("0"));
    });
}

// Goal: bytes that cannot be a frame close that connection only; the broker keeps serving
// others. Method: a negative length prefix and an oversized one on raw sockets, then a
// normal request on a new connection.
#[test]
fn garbage_frames_close_only_their_connection() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    for prefix in [[0xFFu8, 0xFF, 0xFF, 0xFF], [0x7F, 0, 0, 0], [0, 0, 0, 1]] {
        let mut s = std::net::TcpStream::connect(&broker.broker_addr).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        s.write_all(&prefix).expect("write");
        s.write_all(b"garbage garbage garbage").expect("write");
        let mut buf = [0u8; 16];
        // The broker closes the socket: read sees EOF (0) or a reset, never a reply.
        match s.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0, "unexpected reply to garbage"),
            Err(e) => {
                assert!(e.kind() == std::io::ErrorKind::ConnectionReset, "unexpected error {e}")
            }
        }
    }
    // A JSON header that is not JSON gets the connection closed too.
    let mut s = std::net::TcpStream::connect(&broker.broker_addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let header = b"{not json";
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header);
    s.write_all(&frame).expect("write");
    let mut buf = [0u8; 16];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    let addr = broker.broker_addr.clone();
    run_glommio(move || async move {
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        let reply = conn
            .request(Header::request(9999, 0, SerializeType::RocketMq), b"", TIMEOUT)
            .await
            .expect("broker still serves");
        assert_eq!(reply.header.code, response::REQUEST_CODE_NOT_SUPPORTED);
    });
}

/// Replays one recorded frame on a raw socket and returns the reply (None for one-way).
fn replay(addr: &str, raw: &[u8]) -> Option<ramjet_proto::Frame> {
    let mut buf = BytesMut::from(raw);
    let mut frame =
        decode_frame(&mut buf, usize::MAX).expect("fixture decodes").expect("whole frame");
    // Pulls: never hold (the recorded ones ask for 15-20 s of long polling).
    if frame.header.code == request::PULL_MESSAGE {
        let flag: i32 =
            frame.header.ext_fields.get("sysFlag").and_then(|v| v.parse().ok()).unwrap_or(0);
        frame.header.ext_fields.insert("sysFlag", (flag & !0x2).to_string());
    }
    let oneway = frame.header.is_oneway();
    let mut out = BytesMut::new();
    encode_frame(&frame.header, &frame.body, &mut out).expect("encodes");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.write_all(&out).expect("write");
    if oneway {
        return None;
    }
    let mut read = BytesMut::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(f) = decode_frame(&mut read, usize::MAX).expect("reply decodes") {
            if !f.header.is_response() {
                // A request from the broker (NOTIFY_CONSUMER_IDS_CHANGED after a heartbeat).
                continue;
            }
            assert_eq!(f.header.opaque, frame.header.opaque, "reply carries the request's opaque");
            assert_eq!(
                f.header.serialize_type, frame.header.serialize_type,
                "reply in the request's encoding"
            );
            assert!(f.header.is_response());
            return Some(f);
        }
        let n = s.read(&mut chunk).expect("reply arrives");
        assert!(n > 0, "connection closed instead of replying");
        read.extend_from_slice(&chunk[..n]);
    }
}

// Goal: every request recorded from three third-party clients gets an answer from ramjet
// (the broker or its NameServer) in the request's encoding, with its opaque, and the
// requests ramjet serves are not refused as unsupported.
// Method: replay each frame on its own connection (sends first, so routes and topics
// exist), NameServer codes to the NameServer.
#[test]
fn recorded_client_frames_are_all_answered() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let mut frames = recorded_frames();
    // Producers first: their sends auto-create the topics the consumers then use.
    frames.sort_by_key(|f| !f.name.starts_with("SEND"));
    let served_by_namesrv = ["GET_ROUTEINFO_BY_TOPIC"];
    let served_by_broker = [
        "SEND_MESSAGE",
        "SEND_MESSAGE_V2",
        "SEND_BATCH_MESSAGE",
        "PULL_MESSAGE",
        "HEART_BEAT",
        "QUERY_CONSUMER_OFFSET",
        "UPDATE_CONSUMER_OFFSET",
        "GET_MAX_OFFSET",
        "GET_MIN_OFFSET",
        "UNREGISTER_CLIENT",
        "GET_CONSUMER_LIST_BY_GROUP",
    ];
    let mut answered = 0;
    for f in &frames {
        let addr = if served_by_namesrv.contains(&f.name.as_str()) {
            &broker.namesrv_addr
        } else {
            &broker.broker_addr
        };
        let Some(reply) = replay(addr, &f.frame) else { continue };
        answered += 1;
        if served_by_broker.contains(&f.name.as_str())
            || served_by_namesrv.contains(&f.name.as_str())
        {
            assert_ne!(
                reply.header.code,
                response::REQUEST_CODE_NOT_SUPPORTED,
                "{} {} refused: {:?}",
                f.file,
                f.name,
                reply.header.remark
            );
        }
        if f.name.starts_with("SEND") {
            assert_eq!(
                reply.header.code,
                response::SUCCESS,
                "{} {}: {:?}",
                f.file,
                f.name,
                reply.header.remark
            );
        }
    }
    assert!(answered > 100, "only {answered} frames answered");
}
