//! Producers and consumers known from heartbeats.
//!
//! Lives on: shard 0 (heartbeats, unregistrations and group queries are routed there).
//! A plain state machine: heartbeats and `now` in, membership out. A client silent for
//! `CLIENT_EXPIRY_MS` (the reference's 120 s) is dropped by [`ClientRegistry::expire`].

use std::collections::{BTreeMap, BTreeSet};

use ramjet_proto::body::{ConsumerData, HeartbeatData};

use crate::error::BrokerError;
use crate::table_limits::TableLimit;

/// Silence after which a client is forgotten.
pub const CLIENT_EXPIRY_MS: u64 = 120_000;

/// Where and how a client is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChannel {
    /// The shard holding its connection.
    pub shard: usize,
    /// Its socket address.
    pub addr: String,
    /// Header encoding of its heartbeats (server-initiated requests use it too).
    pub serialize_type: ramjet_proto::SerializeType,
    /// LanguageCode name.
    pub language: String,
    /// MQVersion ordinal.
    pub version: i32,
}

#[derive(Debug, Clone)]
struct ClientInfo {
    channel: ClientChannel,
    addr: String,
    last_seen_ms: u64,
    producer_groups: BTreeSet<String>,
    consumers: BTreeMap<String, ConsumerData>,
}

/// The registry.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: BTreeMap<String, ClientInfo>,
}

/// What a change did to consumer groups (for NOTIFY_CONSUMER_IDS_CHANGED).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// Groups whose member set changed.
    pub changed_groups: Vec<String>,
}

impl ClientRegistry {
    /// Records a heartbeat from `addr`.
    ///
    /// # Errors
    /// A consumer group with more subscriptions than `consumerGroupSubscriptionMaxCount`,
    /// or a client new to a group that has `consumerGroupClientMaxCount` members already;
    /// nothing is recorded then.
    pub fn heartbeat(
        &mut self,
        hb: HeartbeatData,
        channel: ClientChannel,
        now_ms: u64,
    ) -> Result<MembershipChange, BrokerError> {
        self.admit(&hb)?;
        let before = self.group_members_snapshot(&hb);
        let addr = channel.addr.clone();
        let info = self.clients.entry(hb.client_id.clone()).or_insert_with(|| ClientInfo {
            channel: channel.clone(),
            addr: addr.clone(),
            last_seen_ms: now_ms,
            producer_groups: BTreeSet::new(),
            consumers: BTreeMap::new(),
        });
        info.addr = addr;
        info.channel = channel;
        info.last_seen_ms = now_ms;
        info.producer_groups = hb.producer_data_set.into_iter().map(|p| p.group_name).collect();
        info.consumers =
            hb.consumer_data_set.into_iter().map(|c| (c.group_name.clone(), c)).collect();
        let groups: Vec<String> = info.consumers.keys().cloned().collect();
        let changed_groups =
            groups.into_iter().filter(|g| before.get(g) != Some(&self.consumer_ids(g))).collect();
        Ok(MembershipChange { changed_groups })
    }

    /// Checks a heartbeat against the table limits before anything is recorded.
    fn admit(&self, hb: &HeartbeatData) -> Result<(), BrokerError> {
        let limits = crate::table_limits::limits();
        let known = self.clients.get(&hb.client_id);
        for c in &hb.consumer_data_set {
            let subscriptions = c.subscription_data_set.len();
            if subscriptions > limits.group_subscriptions_max {
                crate::table_limits::report(TableLimit::GroupSubscriptions);
                let what = format!("{subscriptions} subscriptions in one consumer group");
                let remark =
                    TableLimit::GroupSubscriptions.remark(&what, limits.group_subscriptions_max);
                return Err(BrokerError::System(remark));
            }
            if known.is_some_and(|k| k.consumers.contains_key(&c.group_name)) {
                continue;
            }
            let members = self.clients.values().filter(|k| k.consumers.contains_key(&c.group_name));
            if members.count() >= limits.group_clients_max {
                crate::table_limits::report(TableLimit::GroupClients);
                let what = "the consumer group has the most clients allowed";
                return Err(BrokerError::System(
                    TableLimit::GroupClients.remark(what, limits.group_clients_max),
                ));
            }
        }
        Ok(())
    }

    fn group_members_snapshot(&self, hb: &HeartbeatData) -> BTreeMap<String, Vec<String>> {
        hb.consumer_data_set
            .iter()
            .map(|c| (c.group_name.clone(), self.consumer_ids(&c.group_name)))
            .collect()
    }

    /// Removes a client (UNREGISTER_CLIENT or a closed connection).
    pub fn unregister(&mut self, client_id: &str) -> MembershipChange {
        match self.clients.remove(client_id) {
            Some(info) => MembershipChange { changed_groups: info.consumers.into_keys().collect() },
            None => MembershipChange::default(),
        }
    }

    /// Removes every client last seen from `addr` (its connection closed).
    pub fn connection_closed(&mut self, addr: &str) -> MembershipChange {
        let ids: Vec<String> =
            self.clients.iter().filter(|(_, c)| c.addr == addr).map(|(id, _)| id.clone()).collect();
        let mut change = MembershipChange::default();
        for id in ids {
            change.changed_groups.extend(self.unregister(&id).changed_groups);
        }
        change.changed_groups.sort();
        change.changed_groups.dedup();
        change
    }

    /// Drops clients silent for longer than [`CLIENT_EXPIRY_MS`].
    pub fn expire(&mut self, now_ms: u64) -> MembershipChange {
        let ids: Vec<String> = self
            .clients
            .iter()
            .filter(|(_, c)| now_ms.saturating_sub(c.last_seen_ms) > CLIENT_EXPIRY_MS)
            .map(|(id, _)| id.clone())
            .collect();
        let mut change = MembershipChange::default();
        for id in ids {
            change.changed_groups.extend(self.unregister(&id).changed_groups);
        }
        change.changed_groups.sort();
        change.changed_groups.dedup();
        change
    }

    /// Client ids of a consumer group, sorted.
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        self.clients
            .iter()
            .filter(|(_, c)| c.consumers.contains_key(group))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The subscription data of a consumer group (from any member's latest heartbeat).
    pub fn consumer_data(&self, group: &str) -> Option<&ConsumerData> {
        self.clients.values().find_map(|c| c.consumers.get(group))
    }

    /// A live producer of `group` (the most recently heard from).
    pub fn producer_channel(&self, group: &str) -> Option<ClientChannel> {
        self.clients
            .values()
            .filter(|c| c.producer_groups.contains(group))
            .max_by_key(|c| c.last_seen_ms)
            .map(|c| c.channel.clone())
    }

    /// Every (group, topic, expression, expression type) declared by live consumers.
    pub fn subscriptions(&self) -> Vec<(String, String, String, String)> {
        let mut out = Vec::new();
        for c in self.clients.values() {
            for (group, data) in &c.consumers {
                for s in &data.subscription_data_set {
                    out.push((
                        group.clone(),
                        s.topic.clone(),
                        s.sub_string.clone(),
                        s.expression_type.clone(),
                    ));
                }
            }
        }
        out
    }

    /// Channels of a producer group's clients (GET_PRODUCER_CONNECTION_LIST), with ids.
    pub fn producer_channels(&self, group: &str) -> Vec<(String, ClientChannel)> {
        self.clients
            .iter()
            .filter(|(_, c)| c.producer_groups.contains(group))
            .map(|(id, c)| (id.clone(), c.channel.clone()))
            .collect()
    }

    /// Every producer group's clients (GET_ALL_PRODUCER_INFO): group, client id, channel
    /// and last heartbeat time (ms).
    pub fn producers(&self) -> Vec<(String, String, ClientChannel, u64)> {
        let mut out = Vec::new();
        for (id, c) in &self.clients {
            for g in &c.producer_groups {
                out.push((g.clone(), id.clone(), c.channel.clone(), c.last_seen_ms));
            }
        }
        out
    }

    /// Consumer groups with at least one live member.
    pub fn consumer_groups(&self) -> Vec<String> {
        let mut groups: Vec<String> =
            self.clients.values().flat_map(|c| c.consumers.keys().cloned()).collect();
        groups.sort();
        groups.dedup();
        groups
    }

    /// Channels of a group's members (for notifications and connection lists), with ids.
    pub fn consumer_channels(&self, group: &str) -> Vec<(String, ClientChannel)> {
        self.clients
            .iter()
            .filter(|(_, c)| c.consumers.contains_key(group))
            .map(|(id, c)| (id.clone(), c.channel.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(addr: &str) -> ClientChannel {
        ClientChannel {
            shard: 0,
            addr: addr.into(),
            serialize_type: ramjet_proto::SerializeType::Json,
            language: "JAVA".into(),
            version: 0,
        }
    }

    fn hb(client: &str, group: &str) -> HeartbeatData {
        HeartbeatData {
            client_id: client.into(),
            consumer_data_set: vec![ConsumerData {
                group_name: group.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn membership_changes_only_when_members_change() {
        let mut r = ClientRegistry::default();
        let mut beat = |c, a, t| r.heartbeat(hb(c, "g"), ch(a), t).expect("admitted");
        assert_eq!(beat("c1", "a:1", 0).changed_groups, vec!["g"]);
        assert!(beat("c1", "a:1", 10).changed_groups.is_empty());
        assert_eq!(beat("c2", "a:2", 10).changed_groups, vec!["g"]);
        assert_eq!(r.consumer_ids("g"), vec!["c1", "c2"]);
        assert_eq!(r.unregister("c1").changed_groups, vec!["g"]);
        assert_eq!(r.consumer_ids("g"), vec!["c2"]);
    }

    #[test]
    fn silent_and_disconnected_clients_leave() {
        let mut r = ClientRegistry::default();
        r.heartbeat(hb("c1", "g"), ch("a:1"), 0).expect("admitted");
        r.heartbeat(hb("c2", "g"), ch("a:2"), 100_000).expect("admitted");
        assert_eq!(r.expire(CLIENT_EXPIRY_MS + 1).changed_groups, vec!["g"]);
        assert_eq!(r.consumer_ids("g"), vec!["c2"]);
        assert_eq!(r.connection_closed("a:2").changed_groups, vec!["g"]);
        assert!(r.consumer_ids("g").is_empty());
    }

    #[test]
    fn members_and_subscriptions_per_group_are_bounded() {
        let limits = crate::table_limits::limits();
        let mut r = ClientRegistry::default();
        for i in 0..limits.group_clients_max {
            r.heartbeat(hb(&format!("c{i}"), "g"), ch("a:1"), 0).expect("room");
        }
        let refused = r.heartbeat(hb("one-more", "g"), ch("a:1"), 0).unwrap_err();
        assert!(refused.to_string().contains("consumerGroupClientMaxCount"), "{refused}");
        assert_eq!(r.consumer_ids("g").len(), limits.group_clients_max);
        r.heartbeat(hb("c0", "g"), ch("a:1"), 5).expect("a member renews");
        r.heartbeat(hb("one-more", "h"), ch("a:1"), 5).expect("another group has room");
        let mut many = hb("subs", "s");
        many.consumer_data_set[0].subscription_data_set =
            vec![Default::default(); limits.group_subscriptions_max + 1];
        assert!(r.heartbeat(many, ch("a:1"), 0).is_err());
        assert!(r.consumer_ids("s").is_empty(), "nothing recorded");
    }
}
