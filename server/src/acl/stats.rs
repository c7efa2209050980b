//! ACL denial counts per account, for `/metrics` (`ramjet_acl_denied_total{account}`).
//!
//! Lives on: every shard (a field of the shard's [`AclGate`](super::gate::AclGate)); a
//! scrape gathers each shard's counts over the shard channels and sums them ([`merge`],
//! [`render`]).
//!
//! Bounded: a denial counts under its access key only when the configuration in force
//! holds that account; every other denial (no access key, a key the file does not know)
//! counts under the one series [`UNKNOWN_ACCOUNT`]. The label set is therefore at most the
//! accounts ever loaded, plus one.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use super::config::AclConfig;

/// The account label of denials that name no known account. Six characters: no access
/// key can be this, the reference requires more than six.
pub const UNKNOWN_ACCOUNT: &str = "(none)";

/// The metric's name (the text encoder adds `_total`).
const METRIC: &str = "ramjet_acl_denied";

/// Denials counted on one shard.
///
/// Lives on: every shard.
#[derive(Debug, Default)]
pub struct DenialCounts {
    by_account: BTreeMap<String, u64>,
}

impl DenialCounts {
    /// Counts one denial of a request naming `access_key` under `config`.
    pub fn count(&mut self, config: &AclConfig, access_key: Option<&str>) {
        let account = match access_key {
            Some(key) if config.accounts.contains_key(key) => key,
            _ => UNKNOWN_ACCOUNT,
        };
        match self.by_account.get_mut(account) {
            Some(n) => *n += 1,
            None => {
                self.by_account.insert(account.to_string(), 1);
            }
        }
    }

    /// The counts, by account.
    pub fn rows(&self) -> Vec<(String, u64)> {
        self.by_account.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Sums several shards' rows, by account.
pub fn merge(shards: impl IntoIterator<Item = Vec<(String, u64)>>) -> BTreeMap<String, u64> {
    let mut total = BTreeMap::new();
    for rows in shards {
        for (account, n) in rows {
            *total.entry(account).or_insert(0) += n;
        }
    }
    total
}

#[derive(Debug)]
struct Page {
    metric: &'static str,
    help: &'static str,
    total: BTreeMap<String, u64>,
}

impl Collector for Page {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut m = e.encode_descriptor(self.metric, self.help, None, MetricType::Counter)?;
        for (account, n) in &self.total {
            let labels = [("account", account.clone())];
            ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The Prometheus text of the summed counts (appended to the broker's page; the encoder
/// escapes the label values).
pub fn render(total: BTreeMap<String, u64>) -> String {
    let help = "Requests refused by access control, per account ((none): no or unknown key).";
    render_as(METRIC, help, total)
}

/// As [`render`], under another metric name and help text (the NameServer's counts).
pub fn render_as(metric: &'static str, help: &'static str, total: BTreeMap<String, u64>) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Page { metric, help, total }));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AclConfig {
        super::super::config::parse(
            "accounts:\n  - accessKey: RocketMQ\n    secretKey: '12345678'\n",
        )
        .expect("parses")
    }

    // Goal: known keys count under themselves, anything else under one series, so the
    // label set stays bounded by the file; shards sum; the page names the metric.
    #[test]
    fn counts_are_bounded_and_summed() {
        let config = config();
        let mut a = DenialCounts::default();
        a.count(&config, Some("RocketMQ"));
        a.count(&config, Some("stranger1"));
        a.count(&config, Some("stranger2"));
        a.count(&config, None);
        assert_eq!(a.rows(), vec![(UNKNOWN_ACCOUNT.to_string(), 3), ("RocketMQ".to_string(), 1)]);
        let mut b = DenialCounts::default();
        b.count(&config, Some("RocketMQ"));
        let total = merge([a.rows(), b.rows()]);
        let page = render(total);
        assert!(page.contains("# TYPE ramjet_acl_denied_total counter"), "{page}");
        assert!(page.contains("ramjet_acl_denied_total{account=\"RocketMQ\"} 2"), "{page}");
        assert!(page.contains("ramjet_acl_denied_total{account=\"(none)\"} 3"), "{page}");
    }
}
