//! Broker settings that UPDATE_BROKER_CONFIG (25) may change while the broker runs, and
//! the properties GET_BROKER_CONFIG (26) reports.
//!
//! Lives on: every shard, as an immutable `Arc<LiveSettings>` snapshot. Shard 0 applies an
//! update and publishes the new snapshot to every shard (`OpsQuery::Settings`) before it
//! answers, so a client sees the change on any connection at once. Updates live in memory
//! only: to keep one across restarts, put it in `broker.conf` too.
//!
//! Live keys (RocketMQ names): `autoCreateTopicEnable`, `maxMessageSize`,
//! `diskMaxUsedSpaceRatio` (percent; starts from broker.conf's; a live change moves the
//! broker's disk warning and the `ramjet_disk_ratio_max` gauge, while retention keeps the
//! value it started with), `brokerPermission` (read back by GET_BROKER_CONFIG only). Every other key is refused with the reason, instead
//! of being accepted and silently ignored.

use std::collections::BTreeMap;

use ramjet_proto::text::clip_echo;

use crate::config::BrokerConfig;

/// The live settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSettings {
    /// Create unknown topics on first send (through TBW102).
    pub auto_create_topic_enable: bool,
    /// Largest message body accepted, bytes.
    pub max_message_size_bytes: usize,
    /// Percent of the store's filesystem past which the broker warns (reference default 75).
    pub disk_max_used_space_ratio: i32,
    /// PermName bits of the broker (6 = read + write).
    pub broker_permission: i32,
}

/// The reference's `diskMaxUsedSpaceRatio` default.
pub const DISK_MAX_USED_SPACE_RATIO_DEFAULT: i32 = 75;

impl LiveSettings {
    /// The settings a broker starts with.
    pub fn from_config(c: &BrokerConfig) -> LiveSettings {
        LiveSettings {
            auto_create_topic_enable: c.auto_create_topic_enable,
            max_message_size_bytes: c.max_message_size_bytes,
            disk_max_used_space_ratio: (c.retention.disk_max_used_space_ratio * 100.0).round()
                as i32,
            broker_permission: 6,
        }
    }

    /// A copy with `props` applied.
    ///
    /// # Errors
    /// A key that cannot change at run time, or a value that does not parse or is out of
    /// range; nothing is applied then.
    pub fn with(&self, props: &BTreeMap<String, String>) -> Result<LiveSettings, String> {
        let mut next = self.clone();
        for (k, v) in props {
            let bad = || format!("invalid value \"{}\" for {}", clip_echo(v), clip_echo(k));
            match k.as_str() {
                "autoCreateTopicEnable" => {
                    next.auto_create_topic_enable = match v.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad()),
                    }
                }
                "maxMessageSize" => {
                    let n: usize = v.parse().map_err(|_| bad())?;
                    if n == 0 || n > ramjet_proto::frame::FRAME_SIZE_BYTES_MAX {
                        return Err(bad());
                    }
                    next.max_message_size_bytes = n;
                }
                "diskMaxUsedSpaceRatio" => {
                    let n: i32 = v.parse().map_err(|_| bad())?;
                    if !(10..=95).contains(&n) {
                        return Err(format!("{k} must be within 10..=95, got {}", clip_echo(v)));
                    }
                    next.disk_max_used_space_ratio = n;
                }
                "brokerPermission" => {
                    let n: i32 = v.parse().map_err(|_| bad())?;
                    if !(0..8).contains(&n) {
                        return Err(bad());
                    }
                    next.broker_permission = n;
                }
                _ => {
                    return Err(format!(
                        "{} cannot change while the broker runs; set it in broker.conf and \
                         restart (live keys: autoCreateTopicEnable, maxMessageSize, \
                         diskMaxUsedSpaceRatio, brokerPermission)",
                        clip_echo(k)
                    ))
                }
            }
        }
        Ok(next)
    }
}

/// Every setting as RocketMQ-named properties (GET_BROKER_CONFIG's body, sorted).
pub fn properties(c: &BrokerConfig, live: &LiveSettings) -> BTreeMap<String, String> {
    let role = match c.broker_role {
        crate::config::BrokerRole::AsyncMaster => "ASYNC_MASTER",
        crate::config::BrokerRole::SyncMaster => "SYNC_MASTER",
        crate::config::BrokerRole::Slave => "SLAVE",
    };
    let flush = match c.flush {
        ramjet_storage::FlushMode::Async => "ASYNC_FLUSH",
        ramjet_storage::FlushMode::Sync => "SYNC_FLUSH",
    };
    let pairs: [(&str, String); 20] = [
        ("brokerClusterName", c.cluster.clone()),
        ("brokerName", c.broker_name.clone()),
        ("brokerId", c.broker_id.to_string()),
        ("brokerRole", role.into()),
        ("brokerIP1", c.broker_ip.to_string()),
        ("listenPort", c.listen_port.to_string()),
        ("namesrvAddr", c.namesrv_addrs.join(";")),
        ("storePathRootDir", c.store_path.display().to_string()),
        ("flushDiskType", flush.into()),
        ("mappedFileSizeCommitLog", c.segment_size_bytes.to_string()),
        ("registerNameServerPeriod", c.register_interval_ms.to_string()),
        ("longPollingHoldMsMax", c.long_poll_hold_ms_max.to_string()),
        ("defaultTopicQueueNums", c.default_topic_queue_nums.to_string()),
        ("shards", c.shards.to_string()),
        ("autoCreateTopicEnable", live.auto_create_topic_enable.to_string()),
        ("maxMessageSize", live.max_message_size_bytes.to_string()),
        ("diskMaxUsedSpaceRatio", live.disk_max_used_space_ratio.to_string()),
        ("brokerPermission", live.broker_permission.to_string()),
        ("enablePropertyFilter", c.enable_property_filter.to_string()),
        ("metricsPort", c.metrics_port.map_or_else(String::new, |p| p.to_string())),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Java-properties text of `props`.
pub fn to_properties_text(props: &BTreeMap<String, String>) -> String {
    props.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_keys_change_and_others_are_refused() {
        let s = LiveSettings::from_config(&BrokerConfig::default());
        assert_eq!(s.disk_max_used_space_ratio, DISK_MAX_USED_SPACE_RATIO_DEFAULT);
        let mut p = BTreeMap::new();
        p.insert("autoCreateTopicEnable".to_string(), "false".to_string());
        p.insert("maxMessageSize".to_string(), "1024".to_string());
        let n = s.with(&p).expect("live keys");
        assert!(!n.auto_create_topic_enable);
        assert_eq!(n.max_message_size_bytes, 1024);
        p.insert("listenPort".to_string(), "1".to_string());
        assert!(s.with(&p).expect_err("not live").contains("listenPort cannot change"));
        let mut bad = BTreeMap::new();
        bad.insert("maxMessageSize".to_string(), "x".to_string());
        assert!(s.with(&bad).is_err());
    }

    #[test]
    fn properties_name_every_live_key() {
        let c = BrokerConfig::default();
        let p = properties(&c, &LiveSettings::from_config(&c));
        for k in ["autoCreateTopicEnable", "maxMessageSize", "diskMaxUsedSpaceRatio", "brokerName"]
        {
            assert!(p.contains_key(k), "{k}");
        }
        assert!(to_properties_text(&p).contains("brokerName=broker-a\n"));
    }
}
