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
}

impl Daemon {
    fn spawn(mut cmd: Command, name: &str) -> Daemon {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        if std::env::var("RUST_LOG").is_err() {
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
        };
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => {
                let words: Vec<&str> = line.split_whitespace().collect();
                for w in words.windows(2) {
                    match w[0] {
                        "broker" => d.broker_addr = w[1].to_string(),
                        "namesrv" => d.namesrv_addr = w[1].to_string(),
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

/// One frame recorded from a third-party client (`shared/client-frames`).
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/client-frames");
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

/// Standard base64 with padding.
pub fn base64_decode(text: &str) -> Vec<u8> {
    fn sextet(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 character {c:#x}"),
        }
    }
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..chunk.len() - pad] {
            n = (n << 6) | sextet(c);
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}
