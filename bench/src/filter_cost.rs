//! `ramjet-bench filter`: the per-message cost of the broker's pull-time filters, in one
//! thread, no I/O: a TAG subscription (the consume-queue entry's tags code against the
//! subscription's codes, as the store's scan does) against SQL92 selectors (the stored
//! record's properties read in place and the compiled selector evaluated, as a SQL92 pull
//! does for each record it reads). Records look like a producer's: `UNIQ_KEY`, `KEYS`,
//! `TAGS`, `WAIT` and two user properties.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use ramjet_proto::filter::Filter;
use ramjet_proto::message::{encode_properties, encode_record, tags_code, MessageMeta};

/// Options.
pub struct FilterOptions {
    /// Distinct records cycled through.
    pub records: usize,
    /// Evaluations per filter.
    pub iterations: u64,
    /// Print one JSON object.
    pub json: bool,
}

/// The SQL92 selectors measured, simplest first.
const SELECTORS: [&str; 4] = [
    "a > 5",
    "TAGS = 'odd' AND a BETWEEN 5 AND 500",
    "region IN ('eu-1', 'eu-2', 'us-1') AND (a < 100 OR a > 900) AND TAGS <> 'none'",
    "region IS NOT NULL AND NOT (a = 3) AND price >= 10.5 OR missing IS NULL",
];

fn records(count: usize) -> Result<Vec<(Vec<u8>, i64)>, String> {
    let host: SocketAddr = "127.0.0.1:10911".parse().map_err(|e| format!("{e}"))?;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        let (a, uniq, key) = (i.to_string(), format!("7F000001{i:024X}"), format!("key-{i}"));
        let region = ["eu-1", "us-1", "ap-1"][i % 3];
        let price = format!("{}.25", i % 40);
        let props = encode_properties([
            ("UNIQ_KEY", uniq.as_str()),
            ("KEYS", key.as_str()),
            ("TAGS", tag),
            ("WAIT", "true"),
            ("a", a.as_str()),
            ("region", region),
            ("price", price.as_str()),
        ]);
        let meta = MessageMeta {
            queue_id: 0,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: host,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        };
        let mut buf = Vec::new();
        encode_record(&mut buf, &meta, &[0u8; 256], "bench-topic", &props)
            .map_err(|e| format!("{e}"))?;
        out.push((buf, tags_code(tag)));
    }
    Ok(out)
}

fn per_message_ns(iterations: u64, mut step: impl FnMut(u64) -> bool) -> (f64, u64) {
    let start = Instant::now();
    let mut matched = 0u64;
    for i in 0..iterations {
        matched += u64::from(black_box(step(i)));
    }
    (start.elapsed().as_nanos() as f64 / iterations.max(1) as f64, matched)
}

/// Runs the measurement and prints it.
///
/// # Errors
/// A selector or record that does not build.
pub fn run(o: FilterOptions) -> Result<(), String> {
    let records = records(o.records.max(1))?;
    let n = records.len() as u64;
    let at = |i: u64| &records[(i % n) as usize];
    let wanted = [tags_code("odd")];
    let mut rows = Vec::new();
    let (ns, matched) =
        per_message_ns(o.iterations, |i| black_box(&wanted[..]).contains(&black_box(at(i)).1));
    rows.push(("TAG 'odd'".to_string(), ns, matched));
    for selector in SELECTORS {
        let filter = Filter::compile(selector).map_err(|e| e.to_string())?;
        let (ns, matched) =
            per_message_ns(o.iterations, |i| filter.matches_record(black_box(&at(i).0)));
        rows.push((format!("SQL92 {selector}"), ns, matched));
    }
    if o.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(f, ns, m)| serde_json::json!({"filter": f, "ns_per_msg": ns, "matched": m}))
            .collect();
        println!("{}", serde_json::json!({"iterations": o.iterations, "filters": list}));
    } else {
        for (f, ns, m) in rows {
            println!("{ns:>9.1} ns/msg  matched {m:>9}  {f}");
        }
    }
    Ok(())
}
