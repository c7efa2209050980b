//! The attacks of issue 13, each on its own raw connections to one broker.
//!
//! Each attack returns its outcome (the response codes it drew, what it timed) and the
//! connections it keeps open ([`Held`]) while the normal producer is measured; dropping
//! `Held` closes them. Counts are the issue's, times `--scale` (at least 1 each).
//!
//! | letter | attack |
//! |---|---|
//! | a | 40 sends with 1 MiB topic names (refused) |
//! | b | 400 pipelined pulls of one 787 KB message each, never read |
//! | c | 1,200 offset resets pushed to a consumer that never reads |
//! | d | 20 UPDATE_CONSUMER_OFFSET with 1 MiB topic names |
//! | e | 1,000 idle connections, and 50 each holding 1 MiB of a declared 16 MiB frame |
//! | f | 16 `/metrics` scrapers that never read, then a 17th scrape, timed |
//! | g | one message with 7,274 distinct KEYS, then a batch of 24 such messages, timed |
//! | h | 1,000 topic creates, creates/s over the first and the last tenth |

use std::io::Write;
use std::net::TcpStream;
use std::time::Instant;

use ramjet_client::protocol::{self, PullArgs, SendContext};
use ramjet_client::{Message, MessageQueue, Subscription};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::SendMessageRequestHeader;
use ramjet_proto::{CommandHeader, Header, LanguageCode, SerializeType};
use serde_json::{json, Value};

use super::raw::{self, outcome_key, RawConn, Tally};
use super::Ctx;

/// One attack of the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// a: sends with 1 MiB topic names.
    JunkSends,
    /// b: pipelined pulls of big messages, never read.
    UnreadPulls,
    /// c: offset resets pushed to a consumer that never reads.
    UnreadResets,
    /// d: offset commits with 1 MiB topic names.
    JunkOffsets,
    /// e: idle connections and partial frames.
    Connections,
    /// f: `/metrics` scrapers that never read.
    StuckScrapers,
    /// g: messages with thousands of KEYS.
    ManyKeys,
    /// h: topic creates.
    TopicCreates,
}

impl Attack {
    /// Every attack, in the issue's order.
    pub const ALL: [Attack; 8] = [
        Attack::JunkSends,
        Attack::UnreadPulls,
        Attack::UnreadResets,
        Attack::JunkOffsets,
        Attack::Connections,
        Attack::StuckScrapers,
        Attack::ManyKeys,
        Attack::TopicCreates,
    ];

    /// The issue's letter.
    pub fn letter(self) -> char {
        match self {
            Attack::JunkSends => 'a',
            Attack::UnreadPulls => 'b',
            Attack::UnreadResets => 'c',
            Attack::JunkOffsets => 'd',
            Attack::Connections => 'e',
            Attack::StuckScrapers => 'f',
            Attack::ManyKeys => 'g',
            Attack::TopicCreates => 'h',
        }
    }

    /// The attack of `letter`.
    pub fn from_letter(letter: char) -> Option<Attack> {
        Attack::ALL.into_iter().find(|a| a.letter() == letter.to_ascii_lowercase())
    }

    /// What it does, with the counts of this run.
    pub fn title(self, ctx: &Ctx) -> String {
        let n = |count| ctx.count(count);
        match self {
            Attack::JunkSends => format!("{} sends, 1 MiB topic names", n(40)),
            Attack::UnreadPulls => format!("{} pipelined pulls of 787 KB, never read", n(400)),
            Attack::UnreadResets => format!("{} offset resets, consumer never reads", n(1200)),
            Attack::JunkOffsets => format!("{} offset commits, 1 MiB topic names", n(20)),
            Attack::Connections => {
                format!("{} idle conns + {} with 1 MiB of a 16 MiB frame", n(1000), n(50))
            }
            Attack::StuckScrapers => format!("{} /metrics scrapers never read", n(16)),
            Attack::ManyKeys => format!("7,274 KEYS: 1 message, batch of {}", n(24)),
            Attack::TopicCreates => format!("{} topic creates", n(1000)),
        }
    }
}

/// Connections an attack keeps open while the producer is measured; closed on drop.
#[derive(Default)]
pub struct Held {
    groups: Vec<(&'static str, Vec<TcpStream>)>,
}

impl Held {
    fn one(name: &'static str, streams: Vec<TcpStream>) -> Held {
        Held { groups: vec![(name, streams)] }
    }

    /// True when the attack holds nothing (it is over once it returns).
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|(_, s)| s.is_empty())
    }

    /// Per group, how many of its connections the broker has closed: `{"name": [closed,
    /// of]}`.
    pub fn closed_by_broker(&self) -> Value {
        let groups = self.groups.iter().map(|(name, streams)| {
            let closed = streams.iter().filter(|s| raw::closed_by_peer(s)).count();
            (name.to_string(), json!([closed, streams.len()]))
        });
        Value::Object(groups.collect())
    }
}

/// Prepares what `attack` needs (topics, stored messages), outside the measured windows.
///
/// # Errors
/// A refused create or send, or a broker that does not answer.
pub fn setup(attack: Attack, ctx: &Ctx) -> Result<(), String> {
    match attack {
        Attack::UnreadPulls => {
            let mut conn = RawConn::connect(&ctx.broker_addr)?;
            let topic = ctx.topic("big");
            create_topic(&mut conn, &topic, 1)?;
            let what =
                Stored { topic: &topic, queues: 1, count: BIG_MESSAGES, size: BIG_MESSAGE_BYTES };
            store(&mut conn, ctx, what)
        }
        Attack::UnreadResets => {
            let mut conn = RawConn::connect(&ctx.broker_addr)?;
            let topic = ctx.topic("reset");
            create_topic(&mut conn, &topic, RESET_QUEUES)?;
            store(&mut conn, ctx, Stored { topic: &topic, queues: 16, count: 16, size: 4096 })
        }
        Attack::ManyKeys => {
            let mut conn = RawConn::connect(&ctx.broker_addr)?;
            create_topic(&mut conn, &ctx.topic("keys"), 1)
        }
        _ => Ok(()),
    }
}

/// Runs `attack`; returns its outcome and what it keeps open.
///
/// # Errors
/// Failures that stop the attack itself (its first connect, a missing `--metrics`);
/// refusals are outcomes, not errors.
pub fn run(attack: Attack, ctx: &Ctx) -> Result<(Value, Held), String> {
    match attack {
        Attack::JunkSends => junk_sends(ctx),
        Attack::UnreadPulls => unread_pulls(ctx),
        Attack::UnreadResets => unread_resets(ctx),
        Attack::JunkOffsets => junk_offsets(ctx),
        Attack::Connections => connections(ctx),
        Attack::StuckScrapers => stuck_scrapers(ctx),
        Attack::ManyKeys => many_keys(ctx),
        Attack::TopicCreates => topic_creates(ctx),
    }
}

/// Messages stored for the pull attack, and their body size (the issue's 787 KB).
const BIG_MESSAGES: u64 = 8;
const BIG_MESSAGE_BYTES: usize = 787_000;
/// Queues of the reset attack's topic: each reset push lists every queue (about 60 KB).
const RESET_QUEUES: i32 = 1024;
/// Distinct KEYS of the keys attack's messages.
const KEYS_PER_MESSAGE: u32 = 7_274;
/// A junk name's length: 1 MiB.
const JUNK_NAME_BYTES: usize = 1 << 20;

fn create_topic(conn: &mut RawConn, topic: &str, queues: i32) -> Result<(), String> {
    let h = protocol::create_topic_request(topic, queues, queues, SerializeType::RocketMq);
    expect_success(conn.request(h, b""), &format!("creating {topic}"))
}

fn expect_success(result: Result<ramjet_proto::Frame, String>, what: &str) -> Result<(), String> {
    match result {
        Ok(f) if f.header.code == response::SUCCESS => Ok(()),
        Ok(f) => {
            Err(format!("{what}: code {} {}", f.header.code, f.header.remark.unwrap_or_default()))
        }
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// What [`store`] stores: `count` messages of `size` bytes, spread over the first `queues`
/// queues of `topic`.
struct Stored<'a> {
    topic: &'a str,
    queues: u64,
    count: u64,
    size: usize,
}

/// Sends the messages of `what`, message `i` to queue `i % queues`.
fn store(conn: &mut RawConn, ctx: &Ctx, what: Stored<'_>) -> Result<(), String> {
    let Stored { topic, queues, count, size } = what;
    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    for i in 0..count {
        let queue = queue(topic, i32::try_from(i % queues.max(1)).unwrap_or(0));
        let msg = Message::new(topic, body.clone());
        let h = protocol::send_request(&send_context(), &msg, &queue, &ctx.unique_key(i));
        expect_success(conn.request(h, &body), &format!("storing in {topic}"))?;
    }
    Ok(())
}

fn queue(topic: &str, queue_id: i32) -> MessageQueue {
    MessageQueue { topic: topic.to_string(), broker_name: String::new(), queue_id }
}

fn send_context() -> SendContext<'static> {
    SendContext {
        producer_group: "ramjet-attack",
        serialize_type: SerializeType::RocketMq,
        born_timestamp_ms: ramjet_client::client::now_ms(),
    }
}

/// Sends `count` requests from `make(i)` one after another on one connection (a new one
/// after a failure), tallying the answers.
fn sequential(
    ctx: &Ctx,
    count: u64,
    make: impl Fn(u64) -> (Header, Vec<u8>),
) -> Result<Tally, String> {
    let mut conn = RawConn::connect(&ctx.broker_addr)?;
    let mut codes = Tally::new();
    for i in 0..count {
        let (h, body) = make(i);
        let result = conn.request(h, &body);
        *codes.entry(outcome_key(&result)).or_default() += 1;
        if result.is_err() {
            conn = RawConn::connect(&ctx.broker_addr)?;
        }
    }
    Ok(codes)
}

fn junk_sends(ctx: &Ctx) -> Result<(Value, Held), String> {
    let count = ctx.count(40);
    let codes = sequential(ctx, count, |i| {
        let header = SendMessageRequestHeader {
            producer_group: "ramjet-attack".into(),
            topic: ctx.junk(i),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            born_timestamp: ramjet_client::client::now_ms(),
            properties: Some(String::new()),
            ..Default::default()
        };
        // Half SEND_MESSAGE (long field names), half SEND_MESSAGE_V2 (short ones).
        let code = if i % 2 == 0 { request::SEND_MESSAGE } else { request::SEND_MESSAGE_V2 };
        let mut h = Header::request(code, 0, SerializeType::RocketMq);
        if code == request::SEND_MESSAGE {
            header.encode(&mut h.ext_fields);
        } else {
            header.encode_v2(&mut h.ext_fields);
        }
        (h, b"body".to_vec())
    })?;
    Ok((json!({ "sends": count, "codes": codes }), Held::default()))
}

fn unread_pulls(ctx: &Ctx) -> Result<(Value, Held), String> {
    let count = ctx.count(400);
    let topic = ctx.topic("big");
    let queue = queue(&topic, 0);
    let mut conn = RawConn::connect(&ctx.broker_addr)?;
    let frames = (0..count)
        .map(|i| {
            let args = PullArgs {
                consumer_group: "ramjet-attack-never-reads",
                queue: &queue,
                offset: (i % BIG_MESSAGES) as i64,
                max_nums: 1,
                suspend_timeout_ms: None,
                subscription: None,
                commit_offset: None,
                sub_version: 0,
            };
            (protocol::pull_request(&args, SerializeType::RocketMq), Vec::new())
        })
        .collect();
    let written = conn.write_frames(frames);
    let outcome = json!({
        "pulls": count,
        "response_bytes_asked": count * BIG_MESSAGE_BYTES as u64,
        "written": written.as_ref().map_or_else(|e| e.clone(), |_| "all".into()),
    });
    Ok((outcome, Held::one("attacker", vec![conn.into_stream()])))
}

fn unread_resets(ctx: &Ctx) -> Result<(Value, Held), String> {
    let count = ctx.count(1200);
    let topic = ctx.topic("reset");
    let group = format!("ramjet-attack-resetg-{}", ctx.run_id);
    // The consumer registers its group, reads the answer, and then never reads again.
    let mut consumer = RawConn::connect(&ctx.broker_addr)?;
    let sub = Subscription { topic: topic.clone(), expression: "*".into() };
    let client_id = format!("ramjet-attack-never-reads@{}", ctx.run_id);
    let (mut h, body) =
        protocol::heartbeat_request(&client_id, &group, &[sub], 0, SerializeType::Json);
    h.language = LanguageCode::JAVA;
    let registered = outcome_key(&consumer.request(h, &body));
    // Four admin connections reset the group's offsets concurrently.
    const ADMINS: u64 = 4;
    let tallies: Vec<Result<Tally, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..ADMINS)
            .map(|w| {
                let share = count / ADMINS + u64::from(w < count % ADMINS);
                let (topic, group) = (topic.as_str(), group.as_str());
                scope.spawn(move || {
                    sequential(ctx, share, |_| {
                        let mut h = Header::request(
                            request::INVOKE_BROKER_TO_RESET_OFFSET,
                            0,
                            SerializeType::RocketMq,
                        );
                        h.ext_fields.insert("topic", topic);
                        h.ext_fields.insert("group", group);
                        h.ext_fields.insert("timestamp", "0");
                        h.ext_fields.insert("isForce", "true");
                        (h, Vec::new())
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err("panicked".into()))).collect()
    });
    let mut codes = Tally::new();
    for t in tallies {
        raw::merge(&mut codes, t?);
    }
    let outcome = json!({ "resets": count, "codes": codes, "heartbeat": registered });
    Ok((outcome, Held::one("consumer", vec![consumer.into_stream()])))
}

fn junk_offsets(ctx: &Ctx) -> Result<(Value, Held), String> {
    let count = ctx.count(20);
    let codes = sequential(ctx, count, |i| {
        let queue = queue(&ctx.junk(1000 + i), (i % 8) as i32);
        let h =
            protocol::update_offset_request("ramjet-attack", &queue, 1, SerializeType::RocketMq);
        (h, Vec::new())
    })?;
    Ok((json!({ "updates": count, "codes": codes }), Held::default()))
}

/// The frame size a partial-frame connection declares: the largest accepted, 16 MiB.
const DECLARED_FRAME_BYTES: u32 = 16 << 20;
/// What a partial-frame connection sends of it.
const PARTIAL_BYTES: usize = 1 << 20;

fn connections(ctx: &Ctx) -> Result<(Value, Held), String> {
    let (idle_count, partial_count) = (ctx.count(1000), ctx.count(50));
    let mut failed = Tally::new();
    let mut idle = Vec::new();
    for _ in 0..idle_count {
        match raw::connect(&ctx.broker_addr) {
            Ok(s) => idle.push(s),
            Err(_) => *failed.entry("idle_connect".into()).or_default() += 1,
        }
    }
    let mut partial = Vec::new();
    let mut prefix = Vec::with_capacity(8 + PARTIAL_BYTES);
    prefix.extend_from_slice(&DECLARED_FRAME_BYTES.to_be_bytes());
    prefix.extend_from_slice(&8u32.to_be_bytes()); // JSON header of 8 bytes
    prefix.resize(8 + PARTIAL_BYTES, b'x');
    for _ in 0..partial_count {
        match raw::connect(&ctx.broker_addr) {
            Ok(mut s) => {
                if s.write_all(&prefix).is_err() {
                    *failed.entry("partial_write".into()).or_default() += 1;
                }
                partial.push(s);
            }
            Err(_) => *failed.entry("partial_connect".into()).or_default() += 1,
        }
    }
    let outcome = json!({
        "idle_opened": idle.len(),
        "partial_opened": partial.len(),
        "partial_bytes_each": PARTIAL_BYTES,
        "failed": failed,
    });
    Ok((outcome, Held { groups: vec![("idle", idle), ("partial", partial)] }))
}

fn stuck_scrapers(ctx: &Ctx) -> Result<(Value, Held), String> {
    let addr = ctx.metrics_addr.as_deref().ok_or("skipped: needs --metrics")?;
    let count = ctx.count(16);
    // Half send nothing; half send a whole request and never read the page.
    let mut stuck = Vec::new();
    let mut failed = 0u64;
    for i in 0..count {
        match raw::connect(addr) {
            Ok(mut s) => {
                if i % 2 == 1 {
                    let get = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                    if s.write_all(get.as_bytes()).is_err() {
                        failed += 1;
                    }
                }
                stuck.push(s);
            }
            Err(_) => failed += 1,
        }
    }
    let next = match raw::scrape(addr) {
        Ok(s) => json!({
            "status": s.status,
            "page_bytes": s.body.len(),
            "ms": round1(s.took.as_secs_f64() * 1e3),
        }),
        Err(e) => json!({ "error": e }),
    };
    let outcome = json!({ "scrapers": stuck.len(), "failed": failed, "next_scrape": next });
    Ok((outcome, Held::one("scrapers", stuck)))
}

fn many_keys(ctx: &Ctx) -> Result<(Value, Held), String> {
    let topic = ctx.topic("keys");
    let queue = queue(&topic, 0);
    let keys: Vec<String> = (0..KEYS_PER_MESSAGE).map(base36).collect();
    let message = Message::new(topic.as_str(), "many keys").with_keys(keys.join(" "));
    let mut conn = RawConn::connect(&ctx.broker_addr)?;

    let h = protocol::send_request(&send_context(), &message, &queue, &ctx.unique_key(0));
    let started = Instant::now();
    let one = conn.request(h, &message.body);
    let one = json!({ "code": outcome_key(&one), "ms": ms_since(started) });

    let count = ctx.count(24);
    let batch = vec![message; count as usize];
    let uniques: Vec<String> = (0..count).map(|i| ctx.unique_key(1 + i)).collect();
    let (h, body) = protocol::batch_request(&send_context(), &batch, &queue, &uniques)
        .map_err(|e| format!("batch: {e}"))?;
    let started = Instant::now();
    let result = conn.request(h, &body);
    let batch = json!({
        "messages": count,
        "body_bytes": body.len(),
        "code": outcome_key(&result),
        "ms": ms_since(started),
    });
    Ok((json!({ "keys": KEYS_PER_MESSAGE, "one": one, "batch": batch }), Held::default()))
}

fn topic_creates(ctx: &Ctx) -> Result<(Value, Held), String> {
    let count = ctx.count(1000);
    let window = (count / 10).max(1);
    let first = ctx.topics_created.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
    let mut conn = RawConn::connect(&ctx.broker_addr)?;
    let mut codes = Tally::new();
    let started = Instant::now();
    let (mut first_s, mut last_start) = (None, started);
    for i in 0..count {
        if i == count.saturating_sub(window) {
            last_start = Instant::now();
        }
        let topic = format!("{}-{:06}", ctx.topic("t"), first + i);
        let h = protocol::create_topic_request(&topic, 4, 4, SerializeType::RocketMq);
        let result = conn.request(h, b"");
        *codes.entry(outcome_key(&result)).or_default() += 1;
        if result.is_err() {
            conn = RawConn::connect(&ctx.broker_addr)?;
        }
        if i + 1 == window {
            first_s = Some(started.elapsed().as_secs_f64());
        }
    }
    let last_s = last_start.elapsed().as_secs_f64();
    let per_s = |secs: f64| round1(window as f64 / secs.max(1e-9));
    let outcome = json!({
        "creates": count,
        "codes": codes,
        "window": window,
        "first_window_per_s": first_s.map(per_s),
        "last_window_per_s": per_s(last_s),
        "total_s": round1(started.elapsed().as_secs_f64()),
    });
    Ok((outcome, Held::default()))
}

/// A 1 MiB name unique to this run and `i`, of valid topic characters.
pub fn junk_name(run_id: &str, i: u64) -> String {
    let mut s = format!("ramjet-attack-junk-{run_id}-{i}-");
    s.push_str(&"x".repeat(JUNK_NAME_BYTES.saturating_sub(s.len())));
    s
}

fn ms_since(started: Instant) -> f64 {
    round1(started.elapsed().as_secs_f64() * 1e3)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_round_trip() {
        for a in Attack::ALL {
            assert_eq!(Attack::from_letter(a.letter()), Some(a));
        }
        assert_eq!(Attack::from_letter('z'), None);
    }

    #[test]
    fn junk_names_are_1_mib_and_distinct() {
        let (a, b) = (junk_name("r", 1), junk_name("r", 2));
        assert_eq!(a.len(), JUNK_NAME_BYTES);
        assert_ne!(a, b);
    }

    #[test]
    fn keys_are_distinct_base36() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        let keys: std::collections::BTreeSet<String> = (0..KEYS_PER_MESSAGE).map(base36).collect();
        assert_eq!(keys.len(), KEYS_PER_MESSAGE as usize);
    }
}
