//! Subscription groups (consumer-group settings): created by UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
//! (200), removed by DELETE_SUBSCRIPTIONGROUP (207), listed by GET_ALL_SUBSCRIPTIONGROUP_CONFIG
//! (201).
//!
//! Lives on: shard 0, which persists the table to `{store}/config/subscriptionGroup.json` in
//! RocketMQ's shape (`{"subscriptionGroupTable":{...},"dataVersion":{...}}`, written by
//! temp file, fdatasync, rename) like `topics.json`. A plain state machine: changes in,
//! new table and the bytes to persist out.

use std::path::{Path, PathBuf};

use ramjet_proto::admin_body::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
use ramjet_proto::body;

use crate::clock::now_ms;
use crate::error::BrokerError;
use crate::table_limits::TableLimit;

/// The table's owner.
///
/// Lives on: shard 0.
#[derive(Debug, Default)]
pub struct SubscriptionGroups {
    path: PathBuf,
    table: SubscriptionGroupWrapper,
}

impl SubscriptionGroups {
    /// Loads `{root}/config/subscriptionGroup.json` (empty when absent). Blocking; runs
    /// at start before the shard serves.
    ///
    /// # Errors
    /// An unreadable or unparsable file: refusing to start beats forgetting groups.
    pub fn load(root: &Path) -> Result<SubscriptionGroups, String> {
        let path = root.join("config").join("subscriptionGroup.json");
        let table = match std::fs::read(&path) {
            Ok(bytes) => body::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                SubscriptionGroupWrapper::default()
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(SubscriptionGroups { path, table })
    }

    /// Where the table is persisted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole table.
    pub fn table(&self) -> &SubscriptionGroupWrapper {
        &self.table
    }

    /// A group's settings.
    pub fn get(&self, group: &str) -> Option<&SubscriptionGroupConfig> {
        self.table.subscription_group_table.get(group)
    }

    /// Inserts or replaces a group; the JSON to persist, or `None` when nothing changed.
    ///
    /// # Errors
    /// A new group past `subscriptionGroupMaxCount` (nothing is changed).
    pub fn upsert(
        &mut self,
        config: SubscriptionGroupConfig,
    ) -> Result<Option<Vec<u8>>, BrokerError> {
        let existing = self.get(&config.group_name);
        if existing == Some(&config) {
            return Ok(None);
        }
        let count = self.table.subscription_group_table.len();
        let max = crate::table_limits::limits().subscription_groups_max;
        if existing.is_none() && count >= max {
            crate::table_limits::report(TableLimit::SubscriptionGroups);
            let what = format!("the broker holds {count} subscription groups already");
            return Err(BrokerError::System(TableLimit::SubscriptionGroups.remark(&what, max)));
        }
        self.table.subscription_group_table.insert(config.group_name.clone(), config);
        Ok(Some(self.bump()))
    }

    /// Removes a group; `None` when it did not exist.
    pub fn remove(&mut self, group: &str) -> Option<Vec<u8>> {
        self.table.subscription_group_table.remove(group)?;
        Some(self.bump())
    }

    /// Follows a master (in-band metadata): with `snapshot`, the table becomes exactly
    /// `upserts`; otherwise `upserts` are set and `removed` dropped. The master's version
    /// is kept. The JSON to persist, or `None` when nothing changed. No group limit: the
    /// master's table is already within its own.
    pub fn follow(
        &mut self,
        snapshot: bool,
        upserts: Vec<SubscriptionGroupConfig>,
        removed: &[String],
        version: ramjet_proto::body::DataVersion,
    ) -> Option<Vec<u8>> {
        let table = &mut self.table.subscription_group_table;
        let before = table.clone();
        if snapshot {
            table.clear();
        }
        for config in upserts {
            table.insert(config.group_name.clone(), config);
        }
        for group in removed {
            table.remove(group);
        }
        if *table == before {
            return None;
        }
        self.table.data_version = version;
        Some(body::to_json(&self.table))
    }

    fn bump(&mut self) -> Vec<u8> {
        self.table.data_version.counter += 1;
        self.table.data_version.timestamp = now_ms() as i64;
        body::to_json(&self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_persist_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut g = SubscriptionGroups::load(dir.path()).expect("empty");
        let cfg = SubscriptionGroupConfig { group_name: "g".into(), ..Default::default() };
        let json = g.upsert(cfg.clone()).expect("allowed").expect("changed");
        assert!(g.upsert(cfg).expect("allowed").is_none(), "unchanged");
        crate::durable_file::write_file_durably_sync(g.path(), &json).expect("write");
        let again = SubscriptionGroups::load(dir.path()).expect("reload");
        assert_eq!(again.get("g").map(|c| c.retry_max_times), Some(16));
        assert!(g.remove("g").is_some());
        assert!(g.remove("g").is_none());
    }
}
