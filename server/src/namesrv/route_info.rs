//! The NameServer's routing registry as a plain state machine: events in (register,
//! unregister, connection closed, tick with `now`), answers out. No I/O, no clock.
//!
//! Lives on: the NameServer executor.
//!
//! Invariants (asserted in `check`):
//! - every broker address in `broker_addr_table` has a live entry, and vice versa;
//! - every broker name in `cluster_addr_table` has a `broker_addr_table` entry;
//! - a topic's queue data names only brokers that are registered.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ramjet_proto::body::{BrokerData, ClusterInfo, QueueData, TopicConfig, TopicRouteData};

/// Default time after which a silent broker is forgotten (the reference's 120 s).
pub const BROKER_EXPIRY_MS_DEFAULT: u64 = 120_000;

/// What a broker says when it registers.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Cluster name.
    pub cluster_name: String,
    /// Broker name (shared by master and slaves).
    pub broker_name: String,
    /// `ip:port` clients use.
    pub broker_addr: String,
    /// `ip:port` of its HA service.
    pub ha_server_addr: String,
    /// 0 for the master.
    pub broker_id: i64,
    /// Expiry override (`heartbeatTimeoutMillis`).
    pub heartbeat_timeout_ms: Option<u64>,
    /// The broker's topics.
    pub topics: Vec<TopicConfig>,
    /// Identifies the connection the registration came on, so its close forgets the broker.
    pub connection_id: u64,
}

/// The result of a registration, for the response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterResult {
    /// The master's HA address (for slaves).
    pub ha_server_addr: Option<String>,
    /// The master's address (for slaves).
    pub master_addr: Option<String>,
}

#[derive(Debug, Clone)]
struct BrokerLive {
    last_update_ms: u64,
    timeout_ms: u64,
    ha_server_addr: String,
    connection_id: u64,
    broker_name: String,
    cluster_name: String,
    broker_id: i64,
}

/// The registry.
#[derive(Debug, Default)]
pub struct RouteInfo {
    /// topic → broker name → queue data.
    topic_queue_table: HashMap<String, BTreeMap<String, QueueData>>,
    /// broker name → broker data.
    broker_addr_table: BTreeMap<String, BrokerData>,
    /// cluster → broker names.
    cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
    /// broker address → liveness.
    live: HashMap<String, BrokerLive>,
}

impl RouteInfo {
    /// An empty registry.
    pub fn new() -> RouteInfo {
        RouteInfo::default()
    }

    /// Records a broker's registration at `now_ms`.
    pub fn register(&mut self, reg: Registration, now_ms: u64) -> RegisterResult {
        self.cluster_addr_table
            .entry(reg.cluster_name.clone())
            .or_default()
            .insert(reg.broker_name.clone());
        let data =
            self.broker_addr_table.entry(reg.broker_name.clone()).or_insert_with(|| BrokerData {
                cluster: reg.cluster_name.clone(),
                broker_name: reg.broker_name.clone(),
                broker_addrs: BTreeMap::new(),
                ..BrokerData::default()
            });
        // One address holds one broker id: drop an older id registered at this address.
        data.broker_addrs.retain(|id, addr| *addr != reg.broker_addr || *id == reg.broker_id);
        data.broker_addrs.insert(reg.broker_id, reg.broker_addr.clone());
        if reg.broker_id == 0 {
            self.update_topics(&reg.broker_name, &reg.topics);
        }
        self.live.insert(
            reg.broker_addr.clone(),
            BrokerLive {
                last_update_ms: now_ms,
                timeout_ms: reg.heartbeat_timeout_ms.unwrap_or(BROKER_EXPIRY_MS_DEFAULT),
                ha_server_addr: reg.ha_server_addr.clone(),
                connection_id: reg.connection_id,
                broker_name: reg.broker_name.clone(),
                cluster_name: reg.cluster_name.clone(),
                broker_id: reg.broker_id,
            },
        );
        let mut result = RegisterResult { ha_server_addr: None, master_addr: None };
        if reg.broker_id != 0 {
            if let Some(master) = self
                .broker_addr_table
                .get(&reg.broker_name)
                .and_then(|d| d.broker_addrs.get(&0))
                .cloned()
            {
                result.ha_server_addr = self.live.get(&master).map(|l| l.ha_server_addr.clone());
                result.master_addr = Some(master);
            }
        }
        self.check();
        result
    }

    fn update_topics(&mut self, broker_name: &str, topics: &[TopicConfig]) {
        // Topics this master no longer has disappear from its routes.
        for queues in self.topic_queue_table.values_mut() {
            queues.retain(|b, _| b != broker_name);
        }
        for t in topics {
            self.topic_queue_table.entry(t.topic_name.clone()).or_default().insert(
                broker_name.to_string(),
                QueueData {
                    broker_name: broker_name.to_string(),
                    read_queue_nums: t.read_queue_nums,
                    write_queue_nums: t.write_queue_nums,
                    perm: t.perm,
                    topic_sys_flag: t.topic_sys_flag,
                },
            );
        }
        self.topic_queue_table.retain(|_, q| !q.is_empty());
    }

    /// Forgets the broker at `broker_addr` (UNREGISTER_BROKER, expiry, channel close).
    pub fn unregister(&mut self, broker_addr: &str) {
        let Some(live) = self.live.remove(broker_addr) else {
            return;
        };
        let mut name_gone = false;
        if let Some(data) = self.broker_addr_table.get_mut(&live.broker_name) {
            data.broker_addrs.retain(|_, a| a != broker_addr);
            name_gone = data.broker_addrs.is_empty();
        }
        if name_gone {
            self.broker_addr_table.remove(&live.broker_name);
            if let Some(names) = self.cluster_addr_table.get_mut(&live.cluster_name) {
                names.remove(&live.broker_name);
                if names.is_empty() {
                    self.cluster_addr_table.remove(&live.cluster_name);
                }
            }
        }
        // Routes follow the master: with it gone, its queues go too.
        if live.broker_id == 0 || name_gone {
            for queues in self.topic_queue_table.values_mut() {
                queues.remove(&live.broker_name);
            }
            self.topic_queue_table.retain(|_, q| !q.is_empty());
        }
        self.check();
    }

    /// Forgets every broker whose registration came on connection `connection_id`.
    pub fn connection_closed(&mut self, connection_id: u64) -> Vec<String> {
        let gone: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| l.connection_id == connection_id)
            .map(|(a, _)| a.clone())
            .collect();
        for addr in &gone {
            self.unregister(addr);
        }
        gone
    }

    /// Forgets brokers silent for longer than their timeout; returns their addresses.
    pub fn expire(&mut self, now_ms: u64) -> Vec<String> {
        let gone: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| now_ms.saturating_sub(l.last_update_ms) > l.timeout_ms)
            .map(|(a, _)| a.clone())
            .collect();
        for addr in &gone {
            self.unregister(addr);
        }
        gone
    }

    /// The route of `topic`, or `None` when no live broker serves it.
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let queues = self.topic_queue_table.get(topic)?;
        let queue_datas: Vec<QueueData> = queues.values().cloned().collect();
        let broker_datas: Vec<BrokerData> =
            queues.keys().filter_map(|b| self.broker_addr_table.get(b)).cloned().collect();
        if broker_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData { queue_datas, broker_datas, ..TopicRouteData::default() })
    }

    /// GET_BROKER_CLUSTER_INFO.
    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self
                .broker_addr_table
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cluster_addr_table: self
                .cluster_addr_table
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
        }
    }

    /// Every topic with a route.
    pub fn topics(&self) -> Vec<String> {
        let mut v: Vec<String> = self.topic_queue_table.keys().cloned().collect();
        v.sort();
        v
    }

    /// Topics served by brokers of `cluster`.
    pub fn topics_of_cluster(&self, cluster: &str) -> Vec<String> {
        let Some(names) = self.cluster_addr_table.get(cluster) else {
            return Vec::new();
        };
        let mut v: Vec<String> = self
            .topic_queue_table
            .iter()
            .filter(|(_, q)| q.keys().any(|b| names.contains(b)))
            .map(|(t, _)| t.clone())
            .collect();
        v.sort();
        v
    }

    /// DELETE_TOPIC_IN_NAMESRV.
    pub fn delete_topic(&mut self, topic: &str) {
        self.topic_queue_table.remove(topic);
    }

    /// Number of live brokers.
    pub fn broker_count(&self) -> usize {
        self.live.len()
    }

    fn check(&self) {
        for (addr, live) in &self.live {
            let data = self.broker_addr_table.get(&live.broker_name);
            assert!(
                data.is_some_and(|d| d.broker_addrs.values().any(|a| a == addr)),
                "live broker {addr} missing from the address table"
            );
        }
        for (cluster, names) in &self.cluster_addr_table {
            for n in names {
                assert!(self.broker_addr_table.contains_key(n), "{cluster}/{n} has no broker data");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, queues: i32) -> TopicConfig {
        TopicConfig {
            topic_name: name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm: 6,
            ..TopicConfig::default()
        }
    }

    fn reg(name: &str, addr: &str, id: i64, topics: Vec<TopicConfig>, conn: u64) -> Registration {
        Registration {
            cluster_name: "DefaultCluster".into(),
            broker_name: name.into(),
            broker_addr: addr.into(),
            ha_server_addr: format!("{addr}-ha"),
            broker_id: id,
            heartbeat_timeout_ms: None,
            topics,
            connection_id: conn,
        }
    }

    #[test]
    fn route_lists_every_master_serving_the_topic() {
        let mut r = RouteInfo::new();
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 1), 0);
        r.register(reg("b", "127.0.0.1:2", 0, vec![topic("t", 8), topic("u", 1)], 2), 0);
        let route = r.route("t").expect("route");
        assert_eq!(route.queue_datas.len(), 2);
        assert_eq!(route.broker_datas.len(), 2);
        assert!(r.route("nope").is_none());
        assert_eq!(r.topics(), vec!["t".to_string(), "u".to_string()]);
    }

    #[test]
    fn slave_learns_master_and_joins_broker_data() {
        let mut r = RouteInfo::new();
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 1), 0);
        let res = r.register(reg("a", "127.0.0.1:3", 1, vec![], 2), 0);
        assert_eq!(res.master_addr.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(res.ha_server_addr.as_deref(), Some("127.0.0.1:1-ha"));
        let route = r.route("t").expect("route");
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
    }

    #[test]
    fn silent_brokers_expire_and_take_their_routes() {
        let mut r = RouteInfo::new();
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 1), 0);
        r.register(reg("b", "127.0.0.1:2", 0, vec![topic("t", 4)], 2), 100_000);
        assert!(r.expire(BROKER_EXPIRY_MS_DEFAULT).is_empty());
        assert_eq!(r.expire(BROKER_EXPIRY_MS_DEFAULT + 1), vec!["127.0.0.1:1".to_string()]);
        let route = r.route("t").expect("b still serves t");
        assert_eq!(route.broker_datas.len(), 1);
        assert_eq!(route.broker_datas[0].broker_name, "b");
        assert!(!r.cluster_info().broker_addr_table.contains_key("a"));
    }

    #[test]
    fn closed_connection_forgets_its_brokers() {
        let mut r = RouteInfo::new();
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 7), 0);
        assert_eq!(r.connection_closed(7), vec!["127.0.0.1:1".to_string()]);
        assert!(r.route("t").is_none());
        assert_eq!(r.broker_count(), 0);
        assert!(r.cluster_info().cluster_addr_table.is_empty());
    }

    #[test]
    fn reregistration_drops_topics_the_master_no_longer_has() {
        let mut r = RouteInfo::new();
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4), topic("u", 4)], 1), 0);
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 1), 10);
        assert!(r.route("u").is_none());
        assert!(r.route("t").is_some());
    }
}
