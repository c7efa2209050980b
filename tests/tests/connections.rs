//! Connection limits with a real broker: per-address connection count, idle timeout, the
//! process-wide budget for partially received frames, and the write timeout for a peer that
//! never reads. Each test also checks that other clients are still served.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ramjet_client::{Connection, ConnectionOptions};
use ramjet_proto::codes::{request, response};
use ramjet_proto::frame::{decode_frame, encode_frame};
use ramjet_proto::{Header, SerializeType};
use ramjet_tests::{run_glommio, store_dir, BrokerOptions, Daemon};

const TIMEOUT: Duration = Duration::from_secs(10);

fn broker_with(conf: &str) -> (tempfile::TempDir, Daemon) {
    let dir = store_dir();
    let conf_path = dir.path().join("broker.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.extra = vec!["-c".into(), conf_path.to_string_lossy().into_owned()];
    let broker = Daemon::broker(&opts);
    (dir, broker)
}

/// One GET_MAX_OFFSET request frame.
fn max_offset_request(opaque: i32) -> Vec<u8> {
    let mut h = Header::request(request::GET_MAX_OFFSET, opaque, SerializeType::Json);
    h.ext_fields.insert("topic", "TBW102");
    h.ext_fields.insert("queueId", "0");
    let mut out = BytesMut::new();
    encode_frame(&h, b"", &mut out).expect("encodes");
    out.to_vec()
}

/// Sends one request on a raw socket: true when answered, false when the broker closed it.
fn answered(s: &mut TcpStream, opaque: i32) -> bool {
    if s.write_all(&max_offset_request(opaque)).is_err() {
        return false;
    }
    let mut read = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(f) = decode_frame(&mut read, usize::MAX).expect("reply decodes") {
            assert_eq!(f.header.code, response::SUCCESS);
            return true;
        }
        match s.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => read.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return false,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Reads until EOF or reset (true), or until `within` passes (false).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut chunk = vec![0u8; 1 << 16];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A fresh client connection still gets answers.
fn still_serves(addr: &str) {
    let addr = addr.to_string();
    run_glommio(move || async move {
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        let reply = conn
            .request(Header::request(9999, 0, SerializeType::RocketMq), b"", TIMEOUT)
            .await
            .expect("broker still serves");
        assert_eq!(reply.header.code, response::REQUEST_CODE_NOT_SUPPORTED);
    });
}

#[test]
fn connections_past_the_per_address_limit_are_closed_at_accept() {
    // Goal: `serverMaxConnectionsPerAddress` bounds the connections of one address; those
    // past it are closed unanswered, and places free up when connections close.
    // Method: limit 8 (the broker's own registration connection to its embedded NameServer
    // may hold one or two); open 16 raw connections and count the answered ones.
    let (_dir, broker) = broker_with("serverMaxConnectionsPerAddress=8\n");
    let mut open = Vec::new();
    let mut refused = 0;
    for i in 0..16 {
        let mut s = TcpStream::connect(&broker.broker_addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        if answered(&mut s, i) {
            open.push(s);
        } else {
            refused += 1;
        }
    }
    assert!(open.len() <= 8, "{} connections admitted past the limit of 8", open.len());
    assert!(open.len() >= 6, "only {} admitted", open.len());
    assert_eq!(open.len() + refused, 16);
    for s in &mut open {
        assert!(answered(s, 99), "an admitted connection keeps being served");
    }
    open.clear();
    // Closed connections give their places back (the broker sees the close asynchronously).
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut s = TcpStream::connect(&broker.broker_addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        if answered(&mut s, 1) {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed after closing connections");
        std::thread::sleep(Duration::from_millis(50));
    }
    still_serves(&broker.broker_addr);
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    // Goal: `serverChannelMaxIdleTimeSeconds` closes a connection that sends nothing, and
    // not one that keeps talking. Method: idle timeout 2 s; one silent raw connection, one
    // that sends a request every 300 ms for 4 s.
    let (_dir, broker) = broker_with("serverChannelMaxIdleTimeSeconds=2\n");
    let mut silent = TcpStream::connect(&broker.broker_addr).unwrap();
    let mut busy = TcpStream::connect(&broker.broker_addr).unwrap();
    busy.set_read_timeout(Some(TIMEOUT)).unwrap();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(4) {
        assert!(answered(&mut busy, i), "an active connection was closed");
        i += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(closed_within(&mut silent, TIMEOUT), "the silent connection stayed open");
    still_serves(&broker.broker_addr);
}

#[test]
fn partial_frames_past_the_shared_budget_close_their_connection() {
    // Goal: bytes held for frames not yet complete are bounded across all connections
    // (`serverPartialFrameBytesMax`): a connection whose partial frame would pass the budget
    // is closed, the others and new clients are served.
    // Method: budget 2 MiB; 4 connections each declare a 15 MiB frame and send 1 MiB of it.
    let (_dir, broker) = broker_with("serverPartialFrameBytesMax=2097152\n");
    let mut conns = Vec::new();
    let junk = vec![b'x'; 1 << 20];
    for _ in 0..4 {
        let mut s = TcpStream::connect(&broker.broker_addr).unwrap();
        s.write_all(&(15u32 << 20).to_be_bytes()).unwrap();
        s.write_all(&8u32.to_be_bytes()).unwrap();
        let _ = s.write_all(&junk);
        conns.push(s);
    }
    let closed =
        conns.iter_mut().map(|s| closed_within(s, Duration::from_secs(2))).filter(|c| *c).count();
    assert!(closed >= 2, "{closed} of 4 connections closed with 4 MiB held against 2 MiB");
    assert!(closed < 4, "every connection was closed, not only those past the budget");
    still_serves(&broker.broker_addr);
}

#[test]
fn a_peer_that_never_reads_its_responses_is_closed_after_the_write_timeout() {
    // Goal: `serverWriteTimeoutSeconds` closes a connection whose responses stay unread.
    // Method: write timeout 2 s; store 256 messages of 64 KiB, then pipeline 64 pulls of 32
    // of them (128 MiB of responses, far more than socket buffers hold) on a raw socket that
    // never reads; after the timeout, reading finds the end of the stream before all of them.
    let (_dir, broker) = broker_with("serverWriteTimeoutSeconds=2\n");
    let addr = broker.broker_addr.clone();
    let namesrv = broker.namesrv_addr.clone();
    let queue = run_glommio(move || async move {
        let client = ramjet_tests::client(&namesrv, SerializeType::Json);
        let producer = ramjet_client::Producer::new(client, "pg");
        // The first send creates the topic; the rest go to the same queue.
        let first = ramjet_client::Message::new("Unread", vec![7u8; 64 << 10]);
        let queue = producer.send(first).await.expect("send").queue;
        for _ in 1..256 {
            let m = ramjet_client::Message::new("Unread", vec![7u8; 64 << 10]);
            producer.send_to_queue(&queue, m).await.expect("send");
        }
        queue
    });
    let mut s = TcpStream::connect(&addr).unwrap();
    let mut frames = BytesMut::new();
    for i in 0..64 {
        let mut h = Header::request(request::PULL_MESSAGE, i, SerializeType::Json);
        for (k, v) in [
            ("consumerGroup", "never-reads".to_string()),
            ("topic", "Unread".to_string()),
            ("queueId", queue.queue_id.to_string()),
            ("queueOffset", "0".to_string()),
            ("maxMsgNums", "32".to_string()),
            ("sysFlag", "0".to_string()),
            ("commitOffset", "0".to_string()),
            ("suspendTimeoutMillis", "0".to_string()),
            ("subVersion", "0".to_string()),
        ] {
            h.ext_fields.insert(k, v);
        }
        encode_frame(&h, b"", &mut frames).expect("encodes");
    }
    s.write_all(&frames).unwrap();
    // Not reading: the broker's responses pile up until the write timeout closes it, which
    // it logs (the first hit of a limit is always logged).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !broker.log_text().contains("serverWriteTimeoutSeconds") {
        assert!(Instant::now() < deadline, "no write-timeout close logged:\n{}", broker.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let start = Instant::now();
    let mut total = 0usize;
    let mut chunk = vec![0u8; 1 << 20];
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read after {total} bytes: {e}"),
        }
        assert!(start.elapsed() < Duration::from_secs(60), "stream never ended");
    }
    assert!(total < 64 * (32 << 16), "all {total} bytes arrived: not closed");
    still_serves(&broker.broker_addr);
}
