//! Helpers shared by the bounded fuzz tests: the runner that counts cases, the recorded
//! client frames, byte mutations and hostile ext-field values.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Runs `check` on `cases` generated values (each may feed several inputs, counted by
/// `check`'s return) and prints the totals.
pub fn fuzz<S: Strategy>(name: &str, cases: u32, strategy: S, check: impl Fn(S::Value) -> usize)
where
    S::Value: std::fmt::Debug,
{
    let inputs = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    let mut runner =
        TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        inputs.fetch_add(check(v), Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!(
        "fuzz {name}: {} cases, {} inputs",
        ran.load(Ordering::Relaxed),
        inputs.load(Ordering::Relaxed)
    );
}

/// The recorded client frames, each with its length prefix.
pub fn recorded_frames() -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/tests/client-frames");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixture dir {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("fixture");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture json");
            let b64 = v["frame_base64"].as_str().expect("frame_base64");
            out.push(base64::engine::general_purpose::STANDARD.decode(b64).expect("base64"));
        }
    }
    assert!(out.len() >= 10, "only {} recorded frames", out.len());
    out
}

/// A byte-level mutation: flips, an inserted run, a cut.
#[derive(Debug, Clone)]
pub struct Mutation {
    flips: Vec<(usize, u8)>,
    insert: Option<(usize, u8, usize)>,
    cut: Option<usize>,
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    (
        proptest::collection::vec((any::<usize>(), 1u8..=255), 0..4),
        proptest::option::of((any::<usize>(), any::<u8>(), 0usize..300)),
        proptest::option::weighted(0.3, any::<usize>()),
    )
        .prop_map(|(flips, insert, cut)| Mutation { flips, insert, cut })
}

impl Mutation {
    pub fn apply(&self, base: &[u8]) -> Vec<u8> {
        let mut v = base.to_vec();
        for &(at, x) in &self.flips {
            if !v.is_empty() {
                let i = at % v.len();
                v[i] ^= x;
            }
        }
        if let Some((at, byte, n)) = self.insert {
            let i = if v.is_empty() { 0 } else { at % v.len() };
            v.splice(i..i, vec![byte; n]);
        }
        if let Some(c) = self.cut {
            v.truncate(c % (v.len() + 1));
        }
        v
    }
}

/// A value: usually one of a few colliding names, sometimes garbage or very long.
pub fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u8..3).prop_map(|i| format!("n{i}")),
        2 => (0i64..3).prop_map(|i| i.to_string()),
        1 => Just("-1".to_string()),
        1 => Just(String::new()),
        1 => ".{0,12}",
        1 => (0usize..3).prop_map(|i| "\u{1}".repeat([300, 5_000, 70_000][i])),
    ]
}
