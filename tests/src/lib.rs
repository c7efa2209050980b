//! Helpers for end-to-end tests: start, stop and kill real `ramjet-broker` and
//! `ramjet-namesrv` processes on loopback, on ephemeral ports, with temporary stores.
//!
//! Binaries are found next to the test executable's profile directory (`target/<profile>`),
//! or in `RAMJET_BIN_DIR`. `scripts/test.sh` builds them before running the tests.
//! Every process is stopped when its handle drops, so a failing test leaves nothing behind.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a daemon may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean stop may take before the process is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding the ramjet binaries.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("RAMJET_BIN_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/<test-binary> → target/<profile>
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target profile dir").to_path_buf()
}

/// Path of a ramjet binary; panics with a hint when it has not been built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} not found: run `cargo build --workspace --bins` first", p.display());
    p
}

/// A directory on a real filesystem (O_DIRECT does not work on tmpfs), removed on drop.
pub fn store_dir() -> tempfile::TempDir {
    let base = std::env::var("RAMJET_TEST_TMP").unwrap_or_else(|_| {
        let target = bin_dir().parent().map(|p| p.join("test-tmp")).expect("target dir");
        target.to_string_lossy().into_owned()
    });
    std::fs::create_dir_all(&base).expect("test tmp dir");
    tempfile::Builder::new().prefix("ramjet-").tempdir_in(base).expect("tempdir")
}

/// Options of a broker process.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Store root.
    pub store_path: PathBuf,
    /// Shards.
    pub shards: usize,
    /// `SYNC_FLUSH` or `ASYNC_FLUSH`.
    pub flush_disk_type: &'static str,
    /// External NameServers; `None` runs the embedded one on an ephemeral port.
    pub namesrv_addr: Option<String>,
    /// Commit-log segment size.
    pub segment_size: Option<u64>,
    /// Broker name.
    pub broker_name: Option<String>,
    /// Extra flags.
    pub extra: Vec<String>,
    /// `RUST_LOG` for this broker (`None`: the test's, else `warn`).
    pub rust_log: Option<String>,
}

impl BrokerOptions {
    /// Defaults for a test: 2 shards, async flush, embedded NameServer.
    pub fn new(store_path: &Path) -> BrokerOptions {
        BrokerOptions {
            store_path: store_path.to_path_buf(),
            shards: 2,
            flush_disk_type: "ASYNC_FLUSH",
            namesrv_addr: None,
            segment_size: None,
            broker_name: None,
            extra: Vec::new(),
            rust_log: None,
        }
    }
}

/// A running daemon.
pub struct Daemon {
    child: Option<Child>,
    /// What it printed on stderr so far.
    pub log: Arc<Mutex<String>>,
    /// The `broker ip:port` of its ready line (brokers only).
    pub broker_addr: String,
    /// The NameServer address of its ready line.
    pub namesrv_addr: String,
    /// The `grpc ip:port` of its ready line (brokers only).
    pub grpc_addr: String,
}

impl Daemon {
    /// Starts `cmd` (a daemon of ours: its stderr is captured) and waits for its ready line.
    pub fn start(cmd: Command, name: &str) -> Daemon {
        Daemon::spawn(cmd, name)
    }

    fn spawn(mut cmd: Command, name: &str) -> Daemon {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let set_here = cmd.get_envs().any(|(k, _)| k == "RUST_LOG");
        if std::env::var("RUST_LOG").is_err() && !set_here {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" ready: ") {
                    let _ = tx.send(line.clone());
                }
                let mut l = log2.lock().expect("log");
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut d = Daemon {
            child: Some(child),
            log,
            broker_addr: String::new(),
            namesrv_addr: String::new(),
            grpc_addr: String::new(),
        };
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => {
                let words: Vec<&str> = line.split_whitespace().collect();
                for w in words.windows(2) {
                    match w[0] {
                        "broker" => d.broker_addr = w[1].to_string(),
                        "namesrv" => d.namesrv_addr = w[1].to_string(),
                        "grpc" => d.grpc_addr = w[1].to_string(),
                        _ => {}
                    }
                }
            }
            Err(_) => {
                let log = d.log.lock().expect("log").clone();
                d.kill();
                panic!("{name} did not become ready:\n{log}");
            }
        }
        d
    }

    /// Starts a broker and waits for its ready line.
    pub fn broker(opts: &BrokerOptions) -> Daemon {
        let mut cmd = Command::new(bin("ramjet-broker"));
        cmd.arg("--store-path").arg(&opts.store_path);
        cmd.args(["--broker-ip", "127.0.0.1", "--listen-port", "0", "--namesrv-port", "0"]);
        cmd.args(["--grpc-port", "0"]);
        cmd.args(["--shards", &opts.shards.to_string(), "--flush-disk-type", opts.flush_disk_type]);
        if let Some(n) = &opts.namesrv_addr {
            cmd.args(["-n", n]);
        }
        if let Some(s) = opts.segment_size {
            cmd.args(["--segment-size", &s.to_string()]);
        }
        if let Some(b) = &opts.broker_name {
            cmd.args(["--broker-name", b]);
        }
        cmd.args(&opts.extra);
        if let Some(level) = &opts.rust_log {
            cmd.env("RUST_LOG", level);
        }
        Daemon::spawn(cmd, "ramjet-broker")
    }

    /// Starts a standalone NameServer on an ephemeral loopback port.
    pub fn namesrv() -> Daemon {
        let mut cmd = Command::new(bin("ramjet-namesrv"));
        cmd.args(["--listen-port", "0", "--bind-ip", "127.0.0.1"]);
        Daemon::spawn(cmd, "ramjet-namesrv")
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then wait for a clean exit (SIGKILL after [`STOP_TIMEOUT`]).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The captured stderr.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Waits (bounded by `timeout`) until the log holds `needle`; false when it never did.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_for_line(&self.log, needle, timeout)
    }
}

/// Waits (bounded by `timeout`) until `log` holds `needle`; false when it never did.
fn wait_for_line(log: &Mutex<String>, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if log.lock().expect("log").contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `f` on a fresh glommio executor (small io_memory: RLIMIT_MEMLOCK is 8 MiB here).
pub fn run_glommio<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(f)
        .expect("executor")
        .join()
        .expect("join")
}

/// One frame recorded from a third-party client (`proto/tests/client-frames`).
#[derive(Debug, Clone)]
pub struct RecordedFrame {
    /// File it came from.
    pub file: String,
    /// Request code name.
    pub name: String,
    /// The frame, starting with its length prefix.
    pub frame: Vec<u8>,
}

/// The recorded frames. Panics when the fixture directory is missing: never skipped.
pub fn recorded_frames() -> Vec<RecordedFrame> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/tests/client-frames");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixture dir {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    for path in files {
        let text = std::fs::read_to_string(&path).expect("fixture");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture json");
            out.push(RecordedFrame {
                file: path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                name: v["name"].as_str().unwrap_or_default().to_string(),
                frame: base64_decode(v["frame_base64"].as_str().expect("frame_base64")),
            });
        }
    }
    out
}

/// Standard base64 with padding, as the fixture files store frames.
pub fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).expect("fixture base64")
}

// ---------------------------------------------------------------------------------------
// Admin tool and metrics helpers (tests/tests/admin.rs).

/// What one `ramjet-admin` run produced.
#[derive(Debug, Clone)]
pub struct AdminRun {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl AdminRun {
    /// Standard output parsed as JSON; panics with both streams when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Panics unless the run succeeded; returns self.
    pub fn ok(self) -> AdminRun {
        assert_eq!(self.code, Some(0), "ramjet-admin failed:\n{}\n{}", self.stdout, self.stderr);
        self
    }
}

/// Runs `ramjet-admin` with `args` and waits for it.
pub fn admin(args: &[&str]) -> AdminRun {
    let out = Command::new(bin("ramjet-admin"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run ramjet-admin");
    AdminRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `metrics <addr>` of a broker's ready line (started with `--metrics-port`).
pub fn metrics_addr(daemon: &Daemon) -> String {
    // The log file is written by a reader thread: the ready line the start waited for may
    // not be in it yet.
    assert!(daemon.wait_for_log(" ready: ", READY_TIMEOUT), "never ready:\n{}", daemon.log_text());
    let log = daemon.log_text();
    let line = log.lines().find(|l| l.contains(" ready: ")).expect("ready line");
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "metrics")
        .map(|w| w[1].to_string())
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
}

/// `GET path` over HTTP/1.1; returns (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect metrics");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n").expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP head");
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    (status, body.to_string())
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_total`, `_bucket`, ... suffixes as written).
    pub name: String,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses Prometheus text exposition format 0.0.4: `# HELP`/`# TYPE` lines are checked for
/// shape, every other line must be `name{labels} value`. Panics on anything else, so a
/// malformed page fails the test that scrapes it.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.first() {
                Some(&"HELP") => assert!(words.len() >= 2, "bad HELP line {line:?}"),
                Some(&"TYPE") => assert!(
                    words.len() == 3
                        && ["counter", "gauge", "histogram", "summary", "untyped"]
                            .contains(&words[2]),
                    "bad TYPE line {line:?}"
                ),
                _ => {}
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, parse_labels(rest.strip_suffix('}').expect("closing brace"))),
            None => (series, Default::default()),
        };
        assert!(
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        out.push(Sample { name: name.to_string(), labels, value });
    }
    out
}

fn parse_labels(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut labels = std::collections::BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad labels {text:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated label value in {text:?}"));
        labels.insert(key.trim_start_matches(',').to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// Sum of the samples named `name` whose labels include every pair of `want`.
pub fn metric_sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

impl Daemon {
    /// Starts a standalone NameServer on an ephemeral loopback port with extra flags.
    pub fn namesrv_with(extra: &[&str]) -> Daemon {
        let mut cmd = Command::new(bin("ramjet-namesrv"));
        cmd.args(["--listen-port", "0", "--bind-ip", "127.0.0.1"]);
        cmd.args(extra);
        Daemon::spawn(cmd, "ramjet-namesrv")
    }
}

// ---------------------------------------------------------------------------------------
// Replication helpers (tests/tests/replication.rs).

/// The `ha <addr>` of a master's ready line (the HA listener).
pub fn ha_addr(daemon: &Daemon) -> String {
    // The reader thread reports the ready line before it appends it to the log.
    let deadline = Instant::now() + READY_TIMEOUT;
    let log = loop {
        let log = daemon.log_text();
        if log.contains(" ready: ") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let line = log.lines().find(|l| l.contains(" ready: ")).expect("ready line");
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "ha")
        .map(|w| w[1].to_string())
        .unwrap_or_else(|| panic!("no ha address in {line:?}"))
}

impl Daemon {
    /// Sends a signal by name (`STOP`, `CONT`, `TERM`) to the process, if it runs.
    pub fn signal(&self, name: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
            assert!(status.is_ok_and(|s| s.success()), "kill -{name} {pid}");
        }
    }
}

/// The used part of every commit-log segment of a store, by `log/segment` name: the
/// bytes up to the end of the last record, or through the blank filler that ends the
/// segment (the rest of a segment file is preallocated zeros).
pub fn commit_log_contents(store: &Path) -> Vec<(String, Vec<u8>)> {
    const BLANK_MAGIC: i32 = 0xCBD4_3194_u32 as i32;
    let root = store.join("commitlog");
    let mut out = Vec::new();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    logs.sort();
    for log in logs {
        let mut segments: Vec<PathBuf> = std::fs::read_dir(&log)
            .expect("log dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.len() == 20))
            .collect();
        segments.sort();
        for segment in segments {
            let bytes = std::fs::read(&segment).expect("segment");
            let mut at = 0usize;
            while at + 8 <= bytes.len() {
                let total = i32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
                let magic = i32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
                if total <= 0 {
                    break;
                }
                if magic == BLANK_MAGIC {
                    at += 8;
                    break;
                }
                at += total as usize;
            }
            let name = format!(
                "{}/{}",
                log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                segment.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            );
            out.push((name, bytes[..at.min(bytes.len())].to_vec()));
        }
    }
    out
}

/// A client of the NameServers `namesrv` sending headers in `serialize_type`.
pub fn client(namesrv: &str, serialize_type: ramjet_proto::SerializeType) -> ramjet_client::Client {
    let mut c = ramjet_client::ClientConfig::new(namesrv).expect("client config");
    c.serialize_type = serialize_type;
    ramjet_client::Client::new(c)
}

/// Waits (bounded: 30 s) until the NameServer routes `topic` with `queues` write queues,
/// and returns them. Route changes reach the NameServer with the broker's next
/// registration, which a topic change triggers at once.
pub async fn wait_for_route(
    producer: &ramjet_client::Producer,
    topic: &str,
    queues: usize,
) -> Vec<ramjet_client::MessageQueue> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        producer.client().invalidate_route(topic);
        if let Ok(q) = producer.write_queues(topic).await {
            if q.len() == queues {
                return q;
            }
        }
        assert!(Instant::now() < deadline, "route of {topic} never appeared");
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

/// The messages of `queue` from offset 0, read until at least `expect` arrived and a long
/// poll (300 ms) finds nothing more, or until `wait` passes.
pub async fn read_queue(
    consumer: &ramjet_client::PullConsumer,
    queue: &ramjet_client::MessageQueue,
    expect: usize,
    wait: Duration,
) -> Vec<ramjet_proto::message::StoredMessage> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let r = consumer
            .pull(queue, offset, 32, Some(Duration::from_millis(300)), None)
            .await
            .expect("pull");
        if r.status == ramjet_client::PullStatus::Found {
            out.extend(r.messages);
            offset = r.next_begin_offset;
        } else if out.len() >= expect || Instant::now() > deadline {
            return out;
        }
    }
}

/// New connections made by [`assert_every_shard_serves`]: with two shards behind one
/// SO_REUSEPORT port, eight land on both but for a 1-in-128 chance.
pub const FRESH_CONNECTIONS: usize = 8;

/// Checks that a broker still serves on every shard: [`FRESH_CONNECTIONS`] new
/// connections each ask GET_MAX_OFFSET of every queue in `queues` (each answered
/// SUCCESS), and a new producer per connection sends `"{tag}-{c}"` to every queue.
/// Returns how many messages were sent (every queue gets one per connection, in order).
pub async fn assert_every_shard_serves(
    namesrv: &str,
    addr: &str,
    queues: &[ramjet_client::MessageQueue],
    tag: &str,
) -> usize {
    use ramjet_proto::codes::{request, response};
    let mut sent = 0;
    for c in 0..FRESH_CONNECTIONS {
        let options = ramjet_client::ConnectionOptions::default();
        let conn = ramjet_client::Connection::connect(addr, options).await.expect("connect");
        for q in queues {
            let mut h = ramjet_proto::Header::request(
                request::GET_MAX_OFFSET,
                0,
                ramjet_proto::SerializeType::RocketMq,
            );
            h.ext_fields.insert("topic", q.topic.as_str());
            h.ext_fields.insert("queueId", q.queue_id.to_string());
            let reply = conn.request(h, b"", Duration::from_secs(20)).await.expect("answered");
            assert_eq!(reply.header.code, response::SUCCESS, "connection {c} queue {q:?}");
        }
        let producer = ramjet_client::Producer::new(
            client(namesrv, ramjet_proto::SerializeType::RocketMq),
            format!("{tag}-producers"),
        );
        for q in queues {
            let msg = ramjet_client::Message::new(q.topic.as_str(), format!("{tag}-{c}"));
            producer.send_to_queue(q, msg).await.expect("send on a fresh connection");
            sent += 1;
        }
    }
    sent
}

// ---------------------------------------------------------------------------------------
// Processes expected to exit on their own (tests/tests/panic_exit.rs).

/// A daemon started with extra environment that is expected to end by itself (a test
/// fault); its stderr is collected. Killed when dropped if it still runs.
pub struct Exiting {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Exiting {
    /// Starts binary `name` with `args` and environment `env`, not waiting for anything.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Exiting {
        let mut cmd = Command::new(bin(name));
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log2.lock().expect("log");
                l.push_str(&line);
                l.push('\n');
            }
        });
        Exiting { child, log }
    }

    /// Waits (bounded by `timeout`) until the log holds `needle`; false when it never did.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_for_line(&self.log, needle, timeout)
    }

    /// The word after `key` in the ready line (`broker`, `namesrv`, `metrics`).
    pub fn ready_word(&self, key: &str) -> String {
        assert!(self.wait_for_log(" ready: ", READY_TIMEOUT), "never ready:\n{}", self.log_text());
        let log = self.log_text();
        let line = log.lines().find(|l| l.contains(" ready: ")).expect("ready line");
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[0] == key)
            .map(|w| w[1].to_string())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    }

    /// Waits (bounded by `timeout`) for the process to exit; `None` when it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What it printed on stderr so far.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Exiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Access-key credentials without a security token (ACL tests).
pub fn credentials(access_key: &str, secret_key: &str) -> ramjet_client::Credentials {
    ramjet_client::Credentials {
        access_key: access_key.into(),
        secret_key: secret_key.into(),
        security_token: None,
    }
}

/// Waits (bounded by `limit`) until `condition` holds, checking every 50 ms; panics naming
/// `what` when it never did.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}
