//! Limit hits: how often each configured limit was reached, exported on `/metrics` as
//! `ramjet_limit_hits_total{limit="<config key>"}`.
//!
//! Lives on: the whole process (one table shared by every executor). A limit counts a hit
//! with one line, `crate::net::limits::count_hit("<config key>")`; the key is a `&'static
//! str`, so the table holds at most one row per key written in the source, whatever clients
//! send. Hits are rare (each one refuses or closes something), so a mutex around a short
//! vector costs nothing on the data path. The connection limits count in their own atomics
//! ([`crate::net::limits::Governor::hits`]) and are merged in by [`limit_hits`].

use std::sync::Mutex;

static HITS: Mutex<Vec<(&'static str, u64)>> = Mutex::new(Vec::new());

/// Counts one hit of the limit configured by `key` (its broker.conf / namesrv.conf key).
pub fn count_hit(key: &'static str) {
    add(key, 1);
}

/// Makes `key` appear on the page (at 0) before its first hit.
pub fn declare(key: &'static str) {
    add(key, 0);
}

fn add(key: &'static str, n: u64) {
    let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
    match hits.iter_mut().find(|(k, _)| *k == key) {
        Some((_, count)) => *count += n,
        None => hits.push((key, n)),
    }
}

/// Hits of `key` so far.
pub fn hit_count(key: &str) -> u64 {
    limit_hits().into_iter().find(|(k, _)| *k == key).map_or(0, |(_, n)| n)
}

/// Every limit's hits, sorted by key: the counted ones and the connection limits.
pub fn limit_hits() -> Vec<(&'static str, u64)> {
    let mut all = HITS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (key, n) in crate::net::limits::governor().hits() {
        match all.iter_mut().find(|(k, _)| *k == key) {
            Some((_, count)) => *count += n,
            None => all.push((key, n)),
        }
    }
    all.sort_unstable_by_key(|(k, _)| *k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_counted_per_key_beside_the_connection_limits() {
        declare("testDeclaredOnly");
        count_hit("testLimitA");
        count_hit("testLimitA");
        let all = limit_hits();
        assert!(all.contains(&("testDeclaredOnly", 0)));
        assert_eq!(hit_count("testLimitA"), 2);
        assert!(all.iter().any(|(k, _)| *k == "serverMaxConnections"));
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "sorted, one row per key");
    }
}
