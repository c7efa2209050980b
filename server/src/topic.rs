//! Topic configurations: one owner, snapshots everywhere else.
//!
//! Lives on: the table is owned by shard 0 (`TopicManager`), which persists it to
//! `{store}/config/topics.json` and publishes immutable [`TopicTable`] snapshots to every
//! shard. Other shards only read their latest snapshot; a change is a request to shard 0.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ramjet_proto::body::{self, DataVersion, TopicConfig, TopicConfigSerializeWrapper};

use crate::clock::now_ms;
use crate::error::BrokerError;

/// The auto-create template topic.
pub const TBW102: &str = "TBW102";
/// Delay-level parking topic.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Transaction half-message topic.
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// Transaction op topic.
pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
/// Longest topic name accepted (the reference's `TOPIC_MAX_LENGTH`).
pub const TOPIC_NAME_BYTES_MAX: usize = 127;
/// Most queues a topic may have.
pub const TOPIC_QUEUES_MAX: i32 = 1024;
/// PermName bits.
pub const PERM_READ: i32 = 0x4;
/// PermName bits.
pub const PERM_WRITE: i32 = 0x2;
/// PermName bits.
pub const PERM_INHERIT: i32 = 0x1;

/// An immutable topic table with its version. Shared read-only across shards by `Arc`,
/// swapped whole on change.
#[derive(Debug, Clone, Default)]
pub struct TopicTable {
    /// Topic name → config.
    pub topics: HashMap<String, TopicConfig>,
    /// Bumped on every change.
    pub data_version: DataVersion,
}

impl TopicTable {
    /// A topic's config.
    pub fn get(&self, topic: &str) -> Option<&TopicConfig> {
        self.topics.get(topic)
    }

    /// The JSON of `topics.json` / GET_ALL_TOPIC_CONFIG.
    pub fn to_wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            topic_config_table: self.topics.clone(),
            data_version: self.data_version,
        }
    }
}

/// Checks a topic name as the reference does: 1..=127 bytes of `[A-Za-z0-9%_|-]`.
pub fn validate_topic_name(topic: &str) -> Result<(), BrokerError> {
    if topic.is_empty() {
        return Err(BrokerError::System("the specified topic is blank".into()));
    }
    if topic.len() > TOPIC_NAME_BYTES_MAX {
        return Err(BrokerError::System(format!(
            "the specified topic is longer than {TOPIC_NAME_BYTES_MAX} bytes"
        )));
    }
    if !topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"%_|-".contains(&b)) {
        return Err(BrokerError::System(format!(
            "the specified topic[{topic}] contains illegal characters"
        )));
    }
    Ok(())
}

/// A topic config with `queues` read and write queues and perm RW.
pub fn topic_config(name: &str, queues: i32, perm: i32) -> TopicConfig {
    TopicConfig {
        topic_name: name.to_string(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm,
        ..TopicConfig::default()
    }
}

/// The owner of the topic table.
///
/// Lives on: shard 0.
#[derive(Debug)]
pub struct TopicManager {
    path: PathBuf,
    table: Arc<TopicTable>,
}

impl TopicManager {
    /// Loads `{root}/config/topics.json` (or starts empty) and adds the system topics.
    /// Runs before the executors start (blocking I/O is fine there).
    ///
    /// # Errors
    /// An unreadable or unparsable file: refusing to start beats forgetting topics.
    pub fn load(root: &Path, system: &[TopicConfig]) -> Result<TopicManager, String> {
        let path = root.join("config").join("topics.json");
        let mut table = TopicTable::default();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let w: TopicConfigSerializeWrapper =
                    body::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                table.topics = w.topic_config_table;
                table.data_version = w.data_version;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        for t in system {
            table.topics.entry(t.topic_name.clone()).or_insert_with(|| t.clone());
        }
        Ok(TopicManager { path, table: Arc::new(table) })
    }

    /// The current snapshot.
    pub fn table(&self) -> Arc<TopicTable> {
        self.table.clone()
    }

    /// Inserts or replaces a topic; returns the new snapshot and the bytes to persist, or
    /// `None` when nothing changed.
    pub fn upsert(&mut self, config: TopicConfig) -> Option<(Arc<TopicTable>, Vec<u8>)> {
        if self.table.topics.get(&config.topic_name) == Some(&config) {
            return None;
        }
        let mut next = (*self.table).clone();
        next.topics.insert(config.topic_name.clone(), config);
        Some(self.publish(next))
    }

    /// Replaces the whole table with a master's (a slave's metadata sync), keeping the
    /// master's data version; `None` when the topics are the same.
    pub fn replace(&mut self, table: TopicTable) -> Option<(Arc<TopicTable>, Vec<u8>)> {
        if self.table.topics == table.topics {
            return None;
        }
        self.table = Arc::new(table);
        Some((self.table.clone(), body::to_json(&self.table.to_wrapper())))
    }

    /// Removes a topic; `None` when it did not exist.
    pub fn remove(&mut self, topic: &str) -> Option<(Arc<TopicTable>, Vec<u8>)> {
        if !self.table.topics.contains_key(topic) {
            return None;
        }
        let mut next = (*self.table).clone();
        next.topics.remove(topic);
        Some(self.publish(next))
    }

    fn publish(&mut self, mut next: TopicTable) -> (Arc<TopicTable>, Vec<u8>) {
        next.data_version.counter += 1;
        next.data_version.timestamp = now_ms() as i64;
        self.table = Arc::new(next);
        (self.table.clone(), body::to_json(&self.table.to_wrapper()))
    }

    /// Where the table is persisted.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_checked_like_the_reference() {
        assert!(validate_topic_name("Orders_2024-x|%RETRY%g").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"x".repeat(128)).is_err());
    }

    #[test]
    fn upsert_bumps_the_version_only_on_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = TopicManager::load(dir.path(), &[topic_config(TBW102, 8, 7)]).expect("load");
        let v0 = m.table().data_version.counter;
        assert!(m.upsert(topic_config(TBW102, 8, 7)).is_none());
        let (t, json) = m.upsert(topic_config("t", 4, 6)).expect("changed");
        assert_eq!(t.data_version.counter, v0 + 1);
        assert!(t.get("t").is_some());
        let back: TopicConfigSerializeWrapper = body::from_json(&json).expect("json");
        assert_eq!(back.topic_config_table.len(), 2);
    }
}
