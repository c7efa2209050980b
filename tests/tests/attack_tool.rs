//! `ramjet-bench attack` (issue 13's measurement, docs/attacks.md) against a real broker
//! with tiny counts, so the tool cannot rot. Its figures are printed, never asserted
//! (tests do not assert timings); what is checked is that every attack ran and drew the
//! refusal or success the broker documents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ramjet_tests::{bin, metrics_addr, store_dir, BrokerOptions, Daemon};

/// The whole tool run: 8 attacks at 1% with 0.3 s windows take about 10 s in a debug build.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the tool to completion (killed past `RUN_TIMEOUT`); its stdout and stderr.
fn run_tool(args: &[&str]) -> (String, String) {
    let mut child = Command::new(bin("ramjet-bench"))
        .arg("attack")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ramjet-bench");
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("ramjet-bench attack ran past {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    (stdout, stderr)
}

/// The broker's metrics address, once its ready line is in its log.
fn metrics_of(daemon: &Daemon) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log_text().contains(" ready: ") {
        assert!(Instant::now() < deadline, "no ready line in the log");
        std::thread::sleep(Duration::from_millis(10));
    }
    metrics_addr(daemon)
}

// Goal: every attack of the tool runs against a 2-shard broker and reports RSS, the normal
// producer's windows and its outcome; the refusals are the documented ones.
// Method: `--scale 0.01` (1 junk send, 4 pulls, 12 resets, 10 idle connections, 10 topic
// creates, ...), 0.3 s windows, `--json`; one object per attack, checked field by field.
#[test]
fn the_attack_tool_runs_every_attack_with_tiny_counts() {
    let dir = store_dir();
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.extra = vec!["--metrics-port".into(), "0".into()];
    let broker = Daemon::broker(&opts);
    let metrics = metrics_of(&broker);
    let pid = broker.pid().expect("running").to_string();
    let (stdout, stderr) = run_tool(&[
        "-n",
        &broker.namesrv_addr,
        "--broker",
        &broker.broker_addr,
        "--pid",
        &pid,
        "--metrics",
        &metrics,
        "--scale",
        "0.01",
        "--baseline-secs",
        "0.3",
        "--hold-secs",
        "0.3",
        "--idle-secs",
        "0.3",
        "--warmup-secs",
        "1",
        "--json",
    ]);
    println!("{stdout}");
    let reports: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let letters: Vec<&str> = reports.iter().map(|r| r["attack"].as_str().unwrap()).collect();
    assert_eq!(letters, ["a", "b", "c", "d", "e", "f", "g", "h"], "stderr:\n{stderr}");
    for r in &reports {
        assert!(r.get("error").is_none(), "attack failed: {r}");
        for key in ["before", "after", "idle"] {
            assert!(r["rss_kib"][key].as_u64().is_some_and(|k| k > 0), "{key} RSS: {r}");
        }
        for window in ["without", "during"] {
            assert!(r["producer"][window]["sends_per_s"].is_number(), "{window}: {r}");
        }
    }
    let outcome = |letter: usize| &reports[letter]["outcome"];
    let codes = |letter: usize| outcome(letter)["codes"].as_object().unwrap().clone();
    // a, d: 1 MiB topic names are refused, answered (not closed), never stored.
    for letter in [0, 3] {
        let codes = codes(letter);
        assert!(!codes.contains_key("0"), "a 1 MiB topic name was accepted: {codes:?}");
        assert!(codes.keys().all(|k| k.parse::<i32>().is_ok()), "not answered: {codes:?}");
    }
    assert_eq!(outcome(1)["written"], "all", "the pipelined pulls were written");
    assert_eq!(outcome(2)["heartbeat"], "0", "the never-reading consumer registered");
    assert_eq!(codes(2).get("0").and_then(|v| v.as_u64()), Some(12), "every reset answered");
    assert_eq!(outcome(4)["idle_opened"], 10);
    assert_eq!(outcome(4)["partial_opened"], 1);
    assert_eq!(outcome(5)["next_scrape"]["status"], 200, "a scrape past the stuck ones");
    assert_eq!(outcome(6)["one"]["code"], "0", "a message with 7,274 keys is stored");
    assert_eq!(outcome(6)["batch"]["code"], "0", "a batch of such messages is stored");
    assert_eq!(codes(7).get("0").and_then(|v| v.as_u64()), Some(10), "10 topics created");
}
