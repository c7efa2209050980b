//! Per-shard metrics: counters and histograms kept in `Cell`s on the shard that counts
//! them, gathered into one Prometheus text page on demand.
//!
//! Lives on: every shard (`ShardMetrics` is a field of [`Shard`]). Nothing here is shared:
//! the data path bumps plain `Cell`s (no atomics, no locks); a scrape asks every shard
//! for a [`ShardSnapshot`] over the shard channels (`ShardMsg::Ops`) and encodes the sum
//! with `prometheus-client` ([`render()`]).
//!
//! ```text
//!  request ──▶ BrokerService::call ──▶ RequestProbe::start ── dispatch ── finish
//!                                         (topic slot Rc)                │
//!                              ShardMetrics (Cells, per shard) ◀─────────┘
//!  GET /metrics (shard 0) ──▶ gather(Ops::Metrics) ──▶ ShardSnapshot × shards ──▶ render
//! ```
//!
//! What is counted where: requests, put and get counts and latencies on the shard that
//! holds the client connection (a forwarded request is counted once, with the forward
//! included in its latency); storage counters, consumer lag and queue offsets on the shard
//! that owns the log. A pull's latency includes its long-poll hold, if it was held.
//!
//! Modules, by concern: [`histogram`] (shard-local histograms), [`shard_counters`]
//! (`ShardMetrics`, rates), [`probe`] (what one request counts), [`snapshot`](mod@snapshot) (what a shard
//! sends for a scrape), [`render`](mod@render) (the Prometheus page), [`alerts`] (rate samples and
//! threshold warnings), [`namesrv_page`] (the NameServer's page), [`disk`] (statvfs and
//! segment sizes); this file gathers a scrape.

pub mod alerts;
pub mod disk;
pub mod histogram;
pub mod limit_hits;
pub mod namesrv_page;
pub mod probe;
pub mod render;
pub mod series;
pub mod shard_counters;
pub mod snapshot;

pub use alerts::*;
pub use disk::*;
pub use histogram::*;
pub use namesrv_page::*;
pub use probe::*;
pub use render::*;
pub use series::*;
pub use shard_counters::*;
pub use snapshot::*;

use std::rc::Rc;
use std::time::Duration;

use crate::shard::Shard;

/// The limits of the metrics: series kept, and the `/metrics` listener's connections and
/// write timeout (broker.conf; the NameServer's namesrv.conf takes the listener keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsLimits {
    /// `metricsMaxSeries`: per-topic and per-(topic, group) series on the page, per family.
    pub max_series: usize,
    /// `metricsMaxConnections`: `/metrics` connections served at once; more are closed at
    /// accept.
    pub max_connections: usize,
    /// `metricsWriteTimeoutSeconds`: time a scraper has to read the whole response.
    pub write_timeout: Duration,
}

impl Default for MetricsLimits {
    fn default() -> MetricsLimits {
        MetricsLimits {
            max_series: METRICS_MAX_SERIES_DEFAULT,
            max_connections: 64,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// The broker's scrape page: every shard's snapshot plus the disk facts.
pub async fn scrape(shard: &Rc<Shard>) -> String {
    let replies = crate::shard_ops::gather(shard, crate::shard_ops::OpsQuery::Metrics).await;
    let snaps = replies
        .into_iter()
        .filter_map(|r| match r {
            crate::shard_ops::OpsReply::Metrics(s) => Some(*s),
            _ => None,
        })
        .collect();
    let mut page = render(broker_facts(shard).await, snaps);
    if shard.acl.is_some() {
        // ACL denials per account (server/src/acl/stats.rs), only when ACL is on.
        let rows = crate::shard_ops::gather(shard, crate::shard_ops::OpsQuery::AclDenials).await;
        let rows = rows.into_iter().filter_map(|r| match r {
            crate::shard_ops::OpsReply::AclDenials(rows) => Some(rows),
            _ => None,
        });
        page.push_str(&crate::acl::stats::render(crate::acl::stats::merge(rows)));
    }
    if let Some(denials) = shard.zero.as_ref().and_then(|z| z.namesrv_acl_denials.as_ref()) {
        // The embedded NameServer's denials (server/src/acl/namesrv.rs).
        page.push_str(&denials.render());
    }
    page
}

/// Identity, disk and uptime facts (the disk walk runs on the blocking pool).
pub async fn broker_facts(shard: &Shard) -> BrokerFacts {
    let root = shard.config.store_path.clone();
    let (total, free, bytes, segments) =
        glommio::executor().spawn_blocking(move || disk_facts(&root)).await;
    BrokerFacts {
        cluster: shard.config.cluster.clone(),
        broker_name: shard.config.broker_name.clone(),
        broker_id: shard.config.broker_id,
        disk_total_bytes: total,
        disk_free_bytes: free,
        commitlog_bytes: bytes,
        segments,
        disk_ratio_max: f64::from(shard.settings.borrow().disk_max_used_space_ratio) / 100.0,
        uptime_seconds: shard.metrics.started.elapsed().as_secs_f64(),
    }
}

/// The HTTP page producer for shard 0's `/metrics`.
pub fn http_render(shard: Rc<Shard>) -> crate::http::Render {
    Rc::new(move || {
        let shard = shard.clone();
        Box::pin(async move { (scrape(&shard).await, CONTENT_TYPE) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = LocalHistogram::new(&LATENCY_BOUNDS_SECONDS);
        h.observe(0.00005);
        h.observe(0.002);
        h.observe(100.0);
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        let pairs = s.pairs();
        assert_eq!(pairs.first(), Some(&(0.0001, 1)));
        assert_eq!(pairs.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(s.quantile(0.5), 0.0025);
    }

    #[test]
    fn records_are_counted_by_total_size() {
        let mut body = Vec::new();
        for size in [20i32, 30] {
            body.extend_from_slice(&size.to_be_bytes());
            body.resize(body.len() + size as usize - 4, 0);
        }
        assert_eq!(count_records(&body), 2);
        assert_eq!(count_records(&body[..10]), 1, "a torn tail counts its header only");
        assert_eq!(count_records(&[]), 0);
    }

    #[test]
    fn page_renders_counters_and_histograms() {
        let mut s = ShardSnapshot { shard: 0, ..Default::default() };
        s.puts.push(("t".into(), 3, 300));
        s.requests.push((10, 0, 3));
        s.send_latency = LocalHistogram::new(&LATENCY_BOUNDS_SECONDS).snapshot();
        let text = render(BrokerFacts::default(), vec![s]);
        assert!(text.contains("ramjet_put_messages_total{topic=\"t\"} 3"), "{text}");
        assert!(
            text.contains("ramjet_requests_total{code=\"10\",response_code=\"0\"} 3"),
            "{text}"
        );
        assert!(text.contains("ramjet_send_latency_seconds_bucket{le=\"+Inf\"} 0"), "{text}");
    }
}
