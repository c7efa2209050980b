//! `ramjet-bench attack`: issue 13's hostile clients, one after another, against a running
//! broker, while a normal producer runs alongside; per attack, the broker's memory and the
//! producer's throughput without and during the attack.
//!
//! ```text
//! ramjet-bench attack -n NS --broker ADDR --pid PID [--metrics ADDR] [--attacks abcdefgh]
//!     [--warmup-secs 120] [--baseline-secs 5] [--hold-secs 5] [--idle-secs 10]
//!     [--scale 1] [--json]
//! ```
//!
//! The normal producer is `produce` with 1 connection, 1 request in flight and 1 KiB
//! bodies, running from start to end on its own executor. It first runs alone until the
//! broker's RSS is steady (its own traffic fills the logs' tail caches, 64 MiB each, and
//! would otherwise be read as the attacks' memory; at most `--warmup-secs`). Each attack
//! then runs as:
//!
//! ```text
//!  setup ─▶ baseline ─▶ RSS before ─▶ attack ─▶ hold ─▶ RSS after ─▶ release ─▶ idle ─▶ RSS idle
//!  (topics,  (producer    │           (raw conns;     (its conns     (conns     (no attack)
//!   stored    alone)      │            kept open or    still open)    closed)
//!   messages)             │            not)
//!                         └── during window: the attack, and at least --hold-secs ──┘
//! ```
//!
//! The during window lasts the attack plus `--hold-secs` when the attack keeps connections
//! open, else the attack and whatever is left of `--hold-secs` after it, so a short attack's
//! after-effects (a stalled shard, a burst of writes) fall inside it. RSS is `VmRSS` of
//! `/proc/<pid>/status` (KiB), peak `VmHWM`; the broker must run on this host. Limit hits
//! are the `ramjet_limit_hits_total` series of `--metrics` that grew from setup to the end
//! of the idle wait. Windows are read from the producer's counters, which flush every
//! 100 ms. Everything is bounded: counts are fixed, every request waits at most 30 s, and
//! every connection an attack opened is closed before the idle wait.

mod cases;
mod raw;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::produce::{Background, ProduceOptions};
use crate::stats::{self, Counts, SharedTotals};
use crate::NetArgs;
pub use cases::Attack;

/// Options of the attack mode.
#[derive(Debug, Clone)]
pub struct AttackOptions {
    /// NameServer addresses (the normal producer's routes).
    pub namesrv_addr: String,
    /// The broker's remoting address (the attacks' target).
    pub broker_addr: String,
    /// The broker's process id (its memory, from /proc).
    pub pid: u32,
    /// The broker's `/metrics` address (the scraper attack and limit hits).
    pub metrics_addr: Option<String>,
    /// Attacks to run, in order.
    pub attacks: Vec<Attack>,
    /// The producer alone before each attack.
    pub baseline: Duration,
    /// How long an attack that keeps connections keeps them, measured.
    pub hold: Duration,
    /// Wait after an attack before the last RSS reading.
    pub idle: Duration,
    /// Longest warm-up (the producer alone until the broker's RSS is steady).
    pub warmup: Duration,
    /// Multiplies every count of the issue (at least 1 each).
    pub scale: f64,
    /// One JSON object per attack on stdout instead of a table.
    pub json: bool,
}

/// What the attacks share: where the broker is, the run's scale and names.
#[derive(Debug)]
pub struct Ctx {
    broker_addr: String,
    metrics_addr: Option<String>,
    scale: f64,
    run_id: String,
    /// Topics created by attack h so far: a repeated h creates new topics, not updates.
    topics_created: std::sync::atomic::AtomicU64,
}

impl Ctx {
    /// The issue's count `n`, scaled (at least 1).
    pub fn count(&self, n: u64) -> u64 {
        ((n as f64 * self.scale).round() as u64).max(1)
    }

    /// A topic of this run's attack `what`.
    fn topic(&self, what: &str) -> String {
        format!("ramjet-attack-{what}-{}", self.run_id)
    }

    /// A 1 MiB topic name unique to `i`.
    fn junk(&self, i: u64) -> String {
        cases::junk_name(&self.run_id, i)
    }

    /// A message's UNIQ_KEY unique to `i` in this run.
    fn unique_key(&self, i: u64) -> String {
        format!("ATTACK{}{i:08X}", self.run_id.to_uppercase())
    }
}

/// Runs every attack of `opts` and prints its report.
///
/// # Errors
/// The broker's /proc entry cannot be read, or the normal producer cannot start or send.
pub fn run(opts: AttackOptions) -> Result<(), String> {
    raw::proc_status_kib(opts.pid, "VmRSS")?;
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let ctx = Ctx {
        broker_addr: opts.broker_addr.clone(),
        metrics_addr: opts.metrics_addr.clone(),
        scale: opts.scale,
        run_id: format!("{:x}", since_epoch.as_secs()),
        topics_created: Default::default(),
    };
    let totals = stats::shared_totals();
    let producer = Background::start(&normal_producer(&opts, &ctx), &totals)?;
    wait_for_first_send(&totals)?;
    warm_up(opts.pid, opts.warmup);
    // The table goes to stdout, or to stderr when stdout carries the JSON lines.
    let table = |line: String| if opts.json { eprintln!("{line}") } else { println!("{line}") };
    table(table_head());
    for attack in &opts.attacks {
        eprintln!("attack {}: {}", attack.letter(), attack.title(&ctx));
        let report = measure(*attack, &ctx, &opts, &totals);
        if opts.json {
            println!("{report}");
        }
        table(table_row(&report));
    }
    producer.stop();
    Ok(())
}

/// The normal producer: 1 connection, 1 in flight, 1 KiB, unlimited rate.
fn normal_producer(opts: &AttackOptions, ctx: &Ctx) -> ProduceOptions {
    ProduceOptions {
        net: NetArgs {
            namesrv_addr: opts.namesrv_addr.clone(),
            topic: ctx.topic("normal"),
            connections: 1,
            inflight: 1,
            duration: None,
            messages: None,
            rate: 0,
            json: false,
            json_header: false,
            threads: Some(1),
            timeout_ms: 3000,
            access_key: None,
            secret_key: None,
        },
        size: 1024,
        batch: 1,
        queues: 8,
        create_topic: true,
        group: "ramjet-attack-normal".into(),
        delay_level: None,
        transaction: false,
    }
}

/// Waits (at most 30 s) until the normal producer has a send acknowledged.
fn wait_for_first_send(totals: &SharedTotals) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut errors = BTreeMap::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let c = stats::take_interval(totals);
        if c.messages > 0 {
            return Ok(());
        }
        for (k, v) in c.errors_by_code {
            *errors.entry(k).or_insert(0u64) += v;
        }
    }
    Err(format!("the normal producer sent nothing in 30 s; errors: {errors:?}"))
}

/// RSS readings, one a second, over which the warm-up must stay within
/// [`STEADY_SPREAD_KIB`].
const STEADY_SAMPLES: usize = 5;
/// What "steady" allows: 2 MiB between the lowest and highest of the last readings.
const STEADY_SPREAD_KIB: u64 = 2048;

/// Lets the producer run alone until the broker's RSS holds steady, or `longest` passes.
fn warm_up(pid: u32, longest: Duration) {
    let started = Instant::now();
    let first = rss_kib(pid).unwrap_or(0);
    let mut samples = std::collections::VecDeque::new();
    while started.elapsed() < longest {
        std::thread::sleep(Duration::from_secs(1).min(longest));
        samples.push_back(rss_kib(pid).unwrap_or(0));
        if samples.len() > STEADY_SAMPLES {
            samples.pop_front();
        }
        let (low, high) = (samples.iter().min(), samples.iter().max());
        let spread = high.zip(low).map_or(u64::MAX, |(h, l)| h - l);
        if samples.len() == STEADY_SAMPLES && spread <= STEADY_SPREAD_KIB {
            break;
        }
    }
    eprintln!(
        "warm-up: broker RSS {first} KiB -> {} KiB in {:.1} s",
        rss_kib(pid).unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}

/// One attack with its windows; the report object (with `error` when it could not run).
fn measure(attack: Attack, ctx: &Ctx, opts: &AttackOptions, totals: &SharedTotals) -> Value {
    let mut report = json!({ "attack": attack.letter().to_string(), "name": attack.title(ctx) });
    let hits_before = limit_hits(ctx);
    if let Err(e) = cases::setup(attack, ctx) {
        report["error"] = json!(format!("setup: {e}"));
        return report;
    }
    let rss_baseline = rss_kib(opts.pid);
    let baseline = window(totals, || std::thread::sleep(opts.baseline));
    let rss_before = rss_kib(opts.pid);
    let mut held = None;
    let during = window(totals, || {
        let started = Instant::now();
        let result = cases::run(attack, ctx);
        report["attack_s"] = json!(round3(started.elapsed().as_secs_f64()));
        match result {
            Ok((outcome, h)) => {
                let hold = if h.is_empty() {
                    opts.hold.saturating_sub(started.elapsed())
                } else {
                    opts.hold
                };
                std::thread::sleep(hold);
                report["outcome"] = outcome;
                held = Some(h);
            }
            Err(e) => report["error"] = json!(e),
        }
    });
    let (rss_after, hwm) = (rss_kib(opts.pid), raw::proc_status_kib(opts.pid, "VmHWM").ok());
    if let Some(h) = held.take() {
        if !h.is_empty() {
            report["outcome"]["closed_by_broker"] = h.closed_by_broker();
            report["held_s"] = json!(round3(opts.hold.as_secs_f64()));
        }
    }
    std::thread::sleep(opts.idle);
    report["rss_kib"] = json!({
        "baseline_start": rss_baseline,
        "before": rss_before,
        "after": rss_after,
        "idle": rss_kib(opts.pid),
        "idle_s": round3(opts.idle.as_secs_f64()),
        "peak_so_far": hwm,
    });
    report["producer"] = json!({ "without": baseline, "during": during });
    if let (Some(before), Some(after)) = (hits_before, limit_hits(ctx)) {
        let grew: BTreeMap<&String, u64> = after
            .iter()
            .map(|(k, v)| (k, v.saturating_sub(*before.get(k).unwrap_or(&0))))
            .filter(|(_, d)| *d > 0)
            .collect();
        report["limit_hits"] = json!(grew);
    }
    report
}

/// Runs `body` and returns the normal producer's counts over it.
fn window(totals: &SharedTotals, body: impl FnOnce()) -> Value {
    stats::take_interval(totals);
    let started = Instant::now();
    body();
    let counts = stats::take_interval(totals);
    window_json(&counts, started.elapsed())
}

fn window_json(c: &Counts, elapsed: Duration) -> Value {
    let secs = elapsed.as_secs_f64().max(1e-9);
    json!({
        "sends": c.messages,
        "window_s": round3(secs),
        "sends_per_s": round3(c.messages as f64 / secs),
        "errors": c.errors_by_code,
        "latency_us": {
            "p50": c.latency_us.value_at_quantile(0.5),
            "p99": c.latency_us.value_at_quantile(0.99),
            "max": c.latency_us.max(),
        },
    })
}

fn rss_kib(pid: u32) -> Option<u64> {
    raw::proc_status_kib(pid, "VmRSS").ok()
}

/// The broker's limit hits, when `--metrics` is given and the page answers.
fn limit_hits(ctx: &Ctx) -> Option<BTreeMap<String, u64>> {
    let addr = ctx.metrics_addr.as_deref()?;
    match raw::scrape(addr) {
        Ok(s) => Some(raw::limit_hits(&s.body)),
        Err(e) => {
            eprintln!("scraping {addr}: {e}");
            None
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn table_head() -> String {
    format!(
        "{:<51} {:-^29} {:-^29}\n{:<2} {:<48} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  outcome",
        "",
        " RSS KiB ",
        " normal producer ",
        "",
        "attack",
        "before",
        "after",
        "idle",
        "sends/s",
        "during",
        "max ms",
    )
}

fn table_row(r: &Value) -> String {
    let num = |v: &Value| v.as_f64().map_or("-".to_string(), |n| format!("{n:.0}"));
    let rss = &r["rss_kib"];
    let p = &r["producer"];
    let max_ms = p["during"]["latency_us"]["max"].as_f64().map(|us| us / 1e3);
    let outcome = match r.get("error") {
        Some(e) => format!("error: {}", e.as_str().unwrap_or_default()),
        None => {
            format!("{} limit_hits {}", r["outcome"], r.get("limit_hits").unwrap_or(&json!({})))
        }
    };
    format!(
        "{:<2} {:<48} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {outcome}",
        r["attack"].as_str().unwrap_or_default(),
        r["name"].as_str().unwrap_or_default(),
        num(&rss["before"]),
        num(&rss["after"]),
        num(&rss["idle"]),
        num(&p["without"]["sends_per_s"]),
        num(&p["during"]["sends_per_s"]),
        max_ms.map_or("-".to_string(), |m| format!("{m:.1}")),
    )
}

/// Parses `--attacks` ("abcdefgh", any order, letters of the issue).
///
/// # Errors
/// A letter that names no attack.
pub fn parse_attacks(letters: &str) -> Result<Vec<Attack>, String> {
    letters
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',')
        .map(|c| Attack::from_letter(c).ok_or_else(|| format!("no attack {c:?} (a to h)")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_scale_and_stay_positive() {
        let ctx = Ctx {
            broker_addr: String::new(),
            metrics_addr: None,
            scale: 0.01,
            run_id: "r".into(),
            topics_created: Default::default(),
        };
        assert_eq!(ctx.count(1000), 10);
        assert_eq!(ctx.count(40), 1);
        assert_eq!(ctx.count(16), 1);
    }

    #[test]
    fn attacks_parse_from_letters() {
        assert_eq!(parse_attacks("ab").unwrap(), vec![Attack::JunkSends, Attack::UnreadPulls]);
        assert_eq!(parse_attacks("a,h").unwrap().len(), 2);
        assert!(parse_attacks("ax").is_err());
    }
}
