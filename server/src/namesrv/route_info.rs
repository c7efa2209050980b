//! The NameServer's routing registry as a plain state machine: events in (register,
//! unregister, connection closed, tick with `now`), answers out. No I/O, no clock.
//!
//! Lives on: the NameServer executor.
//!
//! Invariants (checked by [`RouteInfo::invariant_violation`] after every change, as a
//! debug assertion; a property test drives random event sequences through them):
//! - every live address is in its broker name's `broker_addrs` under its broker id, and
//!   every address in `broker_addrs` is live under that name and id;
//! - a broker name is in a cluster's set exactly while a live address registered it there;
//! - a topic's queue data names only brokers that are registered;
//! - no empty set, map or address table is kept.
//!
//! Every event keeps them, whatever a client sends: an address that registers under
//! another broker name or cluster leaves its old place first (the reference's channel
//! close does the same sweep over every cluster), and an id registered at a new address
//! displaces the address that held it.

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
    /// `dataVersion.stateVersion` of the registration body: a registration for an id held
    /// by another live address with a higher state version is refused (a deposed master
    /// cannot take the route back from the one promoted after it).
    pub state_version: i64,
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
    /// Why the registration was ignored (the reference's stateVersion check), if it was.
    pub refused: Option<String>,
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
    state_version: i64,
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
        // The reference's stateVersion check: an id held by another live address with a
        // higher state version keeps it; the newcomer is ignored and forgotten.
        let holder = self
            .broker_addr_table
            .get(&reg.broker_name)
            .and_then(|d| d.broker_addrs.get(&reg.broker_id))
            .filter(|a| **a != reg.broker_addr)
            .and_then(|a| self.live.get(a).map(|l| (a.clone(), l.state_version)));
        if let Some((held_by, version)) = holder.filter(|(_, v)| *v > reg.state_version) {
            self.unregister(&reg.broker_addr);
            return RegisterResult {
                ha_server_addr: None,
                master_addr: None,
                refused: Some(format!(
                    "{}/{} at {} has state version {}, below {version} of {held_by} holding it",
                    reg.broker_name, reg.broker_id, reg.broker_addr, reg.state_version
                )),
            };
        }
        // An address moving to another broker name or cluster leaves its old place first.
        if self
            .live
            .get(&reg.broker_addr)
            .is_some_and(|l| l.broker_name != reg.broker_name || l.cluster_name != reg.cluster_name)
        {
            self.unregister(&reg.broker_addr);
        }
        // One id holds one address: an id now registered at a new address displaces the
        // old one (a master that came back on another port).
        let displaced = self
            .broker_addr_table
            .get(&reg.broker_name)
            .and_then(|d| d.broker_addrs.get(&reg.broker_id))
            .filter(|a| **a != reg.broker_addr)
            .cloned();
        if let Some(old) = displaced {
            self.unregister(&old);
        }
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
                state_version: reg.state_version,
            },
        );
        let mut result = RegisterResult { ha_server_addr: None, master_addr: None, refused: None };
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
        }
        // The name stays in its cluster only while another live address registered it there.
        let still_in_cluster = self
            .live
            .values()
            .any(|l| l.broker_name == live.broker_name && l.cluster_name == live.cluster_name);
        if !still_in_cluster {
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

    /// Checks the invariants (see the module doc) after a change: a debug assertion, so a
    /// bug shows in tests and never stops a release NameServer.
    fn check(&self) {
        debug_assert_eq!(self.invariant_violation(), None);
    }

    /// The first broken invariant, described; `None` when the tables agree.
    pub fn invariant_violation(&self) -> Option<String> {
        for (addr, live) in &self.live {
            let held = self
                .broker_addr_table
                .get(&live.broker_name)
                .and_then(|d| d.broker_addrs.get(&live.broker_id));
            if held != Some(addr) {
                return Some(format!(
                    "live {addr} ({}/{}) not in the address table",
                    live.broker_name, live.broker_id
                ));
            }
            let listed = self
                .cluster_addr_table
                .get(&live.cluster_name)
                .is_some_and(|names| names.contains(&live.broker_name));
            if !listed {
                return Some(format!("live {addr} missing from cluster {}", live.cluster_name));
            }
        }
        for (name, data) in &self.broker_addr_table {
            if data.broker_addrs.is_empty() {
                return Some(format!("broker {name} has no addresses"));
            }
            for (id, addr) in &data.broker_addrs {
                let ok = self
                    .live
                    .get(addr)
                    .is_some_and(|l| l.broker_name == *name && l.broker_id == *id);
                if !ok {
                    return Some(format!("address {addr} of {name}/{id} is not live as such"));
                }
            }
        }
        for (cluster, names) in &self.cluster_addr_table {
            if names.is_empty() {
                return Some(format!("cluster {cluster} is empty"));
            }
            for n in names {
                let registered =
                    self.live.values().any(|l| l.broker_name == *n && l.cluster_name == *cluster);
                if !registered {
                    return Some(format!("{cluster}/{n} has no live address"));
                }
            }
        }
        for (topic, queues) in &self.topic_queue_table {
            if queues.is_empty() {
                return Some(format!("topic {topic} has no queues"));
            }
            if let Some(b) = queues.keys().find(|b| !self.broker_addr_table.contains_key(*b)) {
                return Some(format!("topic {topic} names unregistered broker {b}"));
            }
        }
        None
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
            state_version: 0,
        }
    }

    // Goal: the reference's stateVersion check: an id held by a live address with a higher
    // state version is not taken by a lower one (it is ignored and forgotten); an equal or
    // higher one takes it, and a re-registration of the holder itself always passes.
    #[test]
    fn a_lower_state_version_does_not_take_a_held_id() {
        let mut r = RouteInfo::new();
        let versioned = |addr: &str, id: i64, version: i64| Registration {
            state_version: version,
            ..reg("a", addr, id, vec![topic("t", 4)], 1)
        };
        r.register(versioned("127.0.0.1:1", 0, 5), 0);
        r.register(versioned("127.0.0.1:2", 1, 0), 0);
        // The old master comes back at version 4, and the slave (the same address) too.
        let refused = r.register(versioned("127.0.0.1:3", 0, 4), 1);
        assert!(refused.refused.is_some(), "{refused:?}");
        let refused = r.register(versioned("127.0.0.1:2", 0, 4), 1);
        assert!(refused.refused.is_some(), "{refused:?}");
        let addrs = &r.cluster_info().broker_addr_table["a"].broker_addrs;
        assert_eq!(addrs.get(&0).map(String::as_str), Some("127.0.0.1:1"));
        assert_eq!(addrs.get(&1), None, "a refused address is forgotten, as the reference");
        assert_eq!(r.invariant_violation(), None);
        // The holder lowering its own version, and an equal version elsewhere, pass.
        assert!(r.register(versioned("127.0.0.1:1", 0, 3), 2).refused.is_none());
        assert!(r.register(versioned("127.0.0.1:4", 0, 3), 3).refused.is_none());
        let addrs = &r.cluster_info().broker_addr_table["a"].broker_addrs;
        assert_eq!(addrs.get(&0).map(String::as_str), Some("127.0.0.1:4"));
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

    #[test]
    fn same_broker_under_a_second_cluster_then_unregister_keeps_tables_consistent() {
        // Issue 12: this sequence tripped the consistency assert and stopped the NameServer.
        let mut r = RouteInfo::new();
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 1), 0);
        let mut second = reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 1);
        second.cluster_name = "OtherCluster".into();
        r.register(second, 1);
        assert_eq!(r.invariant_violation(), None);
        let clusters = r.cluster_info().cluster_addr_table;
        assert_eq!(clusters.keys().collect::<Vec<_>>(), vec!["OtherCluster"]);
        r.unregister("127.0.0.1:1");
        assert_eq!(r.invariant_violation(), None);
        assert!(r.cluster_info().cluster_addr_table.is_empty());
        assert!(r.cluster_info().broker_addr_table.is_empty());
        assert!(r.route("t").is_none());
    }

    #[test]
    fn a_master_back_on_another_address_displaces_the_old_one() {
        let mut r = RouteInfo::new();
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 1), 0);
        r.register(reg("a", "127.0.0.1:9", 0, vec![topic("t", 4)], 2), 1);
        assert_eq!(r.invariant_violation(), None);
        assert_eq!(r.broker_count(), 1);
        let route = r.route("t").expect("route");
        assert_eq!(
            route.broker_datas[0].broker_addrs.get(&0).map(String::as_str),
            Some("127.0.0.1:9")
        );
        // The old address's connection closing forgets nothing it no longer holds.
        assert!(r.connection_closed(1).is_empty());
        assert!(r.route("t").is_some());
    }

    #[test]
    fn an_address_renamed_to_another_broker_leaves_its_old_name() {
        let mut r = RouteInfo::new();
        r.register(reg("a", "127.0.0.1:1", 0, vec![topic("t", 4)], 1), 0);
        r.register(reg("b", "127.0.0.1:1", 0, vec![topic("u", 4)], 1), 1);
        assert_eq!(r.invariant_violation(), None);
        assert!(r.route("t").is_none());
        assert!(!r.cluster_info().broker_addr_table.contains_key("a"));
        r.unregister("127.0.0.1:1");
        assert_eq!(r.invariant_violation(), None);
        assert!(r.cluster_info().broker_addr_table.is_empty());
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;
        use super::topic;

        /// One NameServer event, over small name spaces so that names and addresses collide.
        #[derive(Debug, Clone)]
        enum Op {
            Register {
                cluster: u8,
                name: u8,
                addr: u8,
                id: u8,
                conn: u8,
                topics: u8,
                timeout: bool,
                version: u8,
            },
            Unregister {
                addr: u8,
            },
            Close {
                conn: u8,
            },
            Tick {
                ms: u64,
            },
            DeleteTopic {
                topic: u8,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u8..3, 0u8..3, 0u8..4, 0u8..3, 0u8..3, any::<u8>(), any::<bool>(), 0u8..3)
                    .prop_map(|(cluster, name, addr, id, conn, topics, timeout, version)| {
                        Op::Register { cluster, name, addr, id, conn, topics, timeout, version }
                    }),
                2 => (0u8..4).prop_map(|addr| Op::Unregister { addr }),
                1 => (0u8..3).prop_map(|conn| Op::Close { conn }),
                1 => (0u64..200_000).prop_map(|ms| Op::Tick { ms }),
                1 => (0u8..4).prop_map(|topic| Op::DeleteTopic { topic }),
            ]
        }

        fn addr(i: u8) -> String {
            format!("127.0.0.1:{}", 10_911 + u16::from(i))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Any sequence of register / unregister / close / expiry keeps the tables
            /// consistent, and every answer is built without a panic.
            #[test]
            fn any_event_sequence_keeps_the_tables_consistent(
                ops in proptest::collection::vec(op(), 1..60)
            ) {
                let mut r = RouteInfo::new();
                let mut now = 0u64;
                for op in ops {
                    match op.clone() {
                        Op::Register { cluster, name, addr: a, id, conn, topics, timeout, version } => {
                            let reg = Registration {
                                cluster_name: format!("c{cluster}"),
                                broker_name: format!("b{name}"),
                                broker_addr: addr(a),
                                ha_server_addr: format!("{}-ha", addr(a)),
                                broker_id: i64::from(id),
                                heartbeat_timeout_ms: timeout.then_some(30_000),
                                topics: (0..4u8)
                                    .filter(|t| topics & (1 << t) != 0)
                                    .map(|t| topic(&format!("t{t}"), 1 + i32::from(t)))
                                    .collect(),
                                connection_id: u64::from(conn),
                                state_version: i64::from(version),
                            };
                            r.register(reg, now);
                        }
                        Op::Unregister { addr: a } => r.unregister(&addr(a)),
                        Op::Close { conn } => {
                            r.connection_closed(u64::from(conn));
                        }
                        Op::Tick { ms } => {
                            now += ms;
                            r.expire(now);
                        }
                        Op::DeleteTopic { topic } => r.delete_topic(&format!("t{topic}")),
                    }
                    prop_assert_eq!(r.invariant_violation(), None, "after {:?}", op);
                    for t in r.topics() {
                        let route = r.route(&t);
                        prop_assert!(route.is_some(), "listed topic {} has no route", t);
                    }
                    let info = r.cluster_info();
                    let listed: usize =
                        info.broker_addr_table.values().map(|d| d.broker_addrs.len()).sum();
                    prop_assert_eq!(listed, r.broker_count());
                }
            }
        }
    }
}
