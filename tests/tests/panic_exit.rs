//! A panic ends the process: a fault that only debug builds can trigger
//! (`RAMJET_TEST_PANIC=<site>`) panics a shard, the embedded NameServer, the standalone
//! NameServer or the metrics listener; the process must exit at once with status 70 and
//! one line naming the thread and the source location, never live on with a dead executor.

use std::io::Write;
use std::time::Duration;

use ramjet_proto::codes::request;
use ramjet_proto::frame::encode_frame;
use ramjet_proto::{Header, SerializeType};
use ramjet_tests::{store_dir, Exiting};

/// Exit status of a panicked process (`ramjet_server::panic::EXIT_CODE_PANIC`).
const EXIT_CODE_PANIC: i32 = 70;
/// How long a panicked process may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends one request frame on a new connection and leaves it open.
fn send_request(addr: &str, code: i32) -> std::net::TcpStream {
    let mut h = Header::request(code, 1, SerializeType::RocketMq);
    h.ext_fields.insert("topic", "TBW102");
    h.ext_fields.insert("queueId", "0");
    let mut out = bytes::BytesMut::new();
    encode_frame(&h, b"", &mut out).expect("encodes");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(&out).expect("write");
    s
}

/// Waits for the exit and checks its status and its one line.
fn assert_panic_exit(p: &mut Exiting, process: &str, thread_prefix: &str, site: &str) {
    let status = p.wait_exit(EXIT_TIMEOUT);
    let Some(status) = status else {
        panic!("{process} still runs after the {site} fault:\n{}", p.log_text());
    };
    assert_eq!(status.code(), Some(EXIT_CODE_PANIC), "{status:?}\n{}", p.log_text());
    let head = format!("{process}: panic on thread {thread_prefix}");
    assert!(p.wait_for_log(&format!("test fault {site}"), EXIT_TIMEOUT), "{}", p.log_text());
    let log = p.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(" panic on thread ")).collect();
    assert_eq!(lines.len(), 1, "one panic line:\n{log}");
    let line = lines[0];
    assert!(line.starts_with(&head), "{line}");
    assert!(line.contains(" at server/src/"), "names the source location: {line}");
    assert!(line.ends_with("exiting with status 70"), "{line}");
}

fn broker_args(store: &str) -> Vec<String> {
    [
        "--store-path",
        store,
        "--broker-ip",
        "127.0.0.1",
        "--listen-port",
        "0",
        "--namesrv-port",
        "0",
        "--shards",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

// Goal: a panic on a shard takes the whole broker down (not only that executor).
// Method: the fault fires when a request frame reaches a shard's dispatch; send one.
#[test]
fn a_shard_panic_ends_the_broker() {
    let dir = store_dir();
    let args = broker_args(&dir.path().to_string_lossy());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Exiting::start("ramjet-broker", &args, &[("RAMJET_TEST_PANIC", "shard-request")]);
    let addr = p.ready_word("broker");
    let _conn = send_request(&addr, request::GET_MAX_OFFSET);
    assert_panic_exit(&mut p, "ramjet-broker", "shard-", "shard-request");
}

// Goal: a panic on the embedded NameServer's executor takes the broker down.
// Method: the fault fires on the first request the embedded NameServer handles, which is
// the broker's own registration at start.
#[test]
fn an_embedded_namesrv_panic_ends_the_broker() {
    let dir = store_dir();
    let args = broker_args(&dir.path().to_string_lossy());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Exiting::start("ramjet-broker", &args, &[("RAMJET_TEST_PANIC", "namesrv-request")]);
    assert_panic_exit(&mut p, "ramjet-broker", "namesrv", "namesrv-request");
}

// Goal: a panic in the standalone NameServer ends it.
#[test]
fn a_standalone_namesrv_panic_ends_it() {
    let mut p = Exiting::start(
        "ramjet-namesrv",
        &["--listen-port", "0", "--bind-ip", "127.0.0.1"],
        &[("RAMJET_TEST_PANIC", "namesrv-request")],
    );
    let addr = p.ready_word("namesrv");
    let _conn = send_request(&addr, request::GET_BROKER_CLUSTER_INFO);
    assert_panic_exit(&mut p, "ramjet-namesrv", "namesrv", "namesrv-request");
}

// Goal: a panic in the metrics listener (a task on shard 0) ends the broker.
#[test]
fn a_metrics_listener_panic_ends_the_broker() {
    let dir = store_dir();
    let mut args = broker_args(&dir.path().to_string_lossy());
    args.extend(["--metrics-port".to_string(), "0".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Exiting::start("ramjet-broker", &args, &[("RAMJET_TEST_PANIC", "metrics-request")]);
    let addr = p.ready_word("metrics");
    let mut s = std::net::TcpStream::connect(&addr).expect("connect metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    assert_panic_exit(&mut p, "ramjet-broker", "shard-", "metrics-request");
}

// Goal: without the fault armed the same request is answered and nothing exits (the
// fault point is what fails above, not the request).
#[test]
fn unarmed_the_same_request_is_answered() {
    let dir = store_dir();
    let args = broker_args(&dir.path().to_string_lossy());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Exiting::start("ramjet-broker", &args, &[]);
    let addr = p.ready_word("broker");
    let mut conn = send_request(&addr, request::GET_MAX_OFFSET);
    conn.set_read_timeout(Some(EXIT_TIMEOUT)).expect("timeout");
    let mut prefix = [0u8; 4];
    std::io::Read::read_exact(&mut conn, &mut prefix).expect("a reply");
    assert!(p.wait_exit(Duration::from_millis(200)).is_none(), "{}", p.log_text());
}
