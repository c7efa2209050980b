//! The NameServer's scrape page.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::*;

/// The NameServer's scrape page: every registered broker (value 1) and the topic count.
pub fn render_namesrv(info: &ramjet_proto::body::ClusterInfo, topics: usize) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(NamesrvPage { info: info.clone(), topics }));
    let mut out = String::new();
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct NamesrvPage {
    info: ramjet_proto::body::ClusterInfo,
    topics: usize,
}

impl Collector for NamesrvPage {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut rows: Vec<([(&'static str, String); 4], f64)> = Vec::new();
        for (cluster, names) in &self.info.cluster_addr_table {
            for name in names {
                let Some(b) = self.info.broker_addr_table.get(name) else { continue };
                for (id, addr) in &b.broker_addrs {
                    let labels = [
                        ("cluster", cluster.clone()),
                        ("broker", name.clone()),
                        ("broker_id", id.to_string()),
                        ("addr", addr.clone()),
                    ];
                    rows.push((labels, 1.0));
                }
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        gauge(
            &mut e,
            "ramjet_namesrv_broker_registered",
            "A broker registered with this NameServer (value 1; gone once it expires).",
            &rows,
        )?;
        let none: [(&str, String); 0] = [];
        gauge(
            &mut e,
            "ramjet_namesrv_topics",
            "Topics with a route.",
            &[(none, self.topics as f64)],
        )?;
        encode_limit_hits(&mut e)
    }
}
