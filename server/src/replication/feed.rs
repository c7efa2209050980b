//! Metadata in-band: topic and subscription group changes travel on the replication
//! stream, ahead of the first record that needs them, so a slave never holds a record of a
//! topic it does not know (a SYNC_MASTER killed right after a topic create leaves every
//! acknowledged message of it readable on its slave).
//!
//! Lives on: shard 0 of a master publishes into the [`MetaFeed`] (a `Mutex`, touched once
//! per change and once per DATA frame written); each session on the replication shard
//! keeps what it has sent ([`Sent`]) and writes METADATA frames before the next DATA frame
//! when the feed moved. On the slave, [`apply`] runs on shard 0.
//!
//! Order: shard 0 publishes a topic change into the feed before it installs the new table
//! on any shard (`Shard::install_topics`), so no record of the topic can be appended, read
//! by a pump and queued before the feed holds it; the session's writer compares the feed
//! before every DATA frame, so the METADATA frame precedes that record on the socket. The
//! slave applies and persists a METADATA frame before it reads the next frame, so the
//! change is durable before any later byte is placed, let alone acknowledged.
//!
//! A session's first METADATA is a snapshot of both tables (in parts of at most
//! [`PART_BYTES`] of JSON); the slave replaces its tables with it once the last part
//! arrived. Later ones are changes: the topics that differ (`TopicTable::changes_since`,
//! O(changes)) and the groups that differ.

use std::rc::Rc;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ramjet_proto::admin_body::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
use ramjet_proto::body::{self, DataVersion, TopicConfig};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::durable_file::write_file_durably;
use crate::shard::Shard;
use crate::topic::TopicTable;

/// JSON bytes of one METADATA frame, about at most (one item may pass it).
pub const PART_BYTES: usize = 4 * 1024 * 1024;

/// What shard 0 of a master last published.
#[derive(Clone, Default)]
struct Published {
    topics: Arc<TopicTable>,
    groups: Arc<SubscriptionGroupWrapper>,
}

/// The master's current metadata, shared by shard 0 and the replication shard.
///
/// Lives on: shared (`Arc`); shard 0 writes, the replication shard reads.
#[derive(Default)]
pub struct MetaFeed {
    state: Mutex<Published>,
}

impl MetaFeed {
    /// A feed starting at these tables.
    pub fn new(topics: Arc<TopicTable>, groups: &SubscriptionGroupWrapper) -> Arc<MetaFeed> {
        Arc::new(MetaFeed {
            state: Mutex::new(Published { topics, groups: Arc::new(groups.clone()) }),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Published) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// Shard 0: a new topic table, before it is installed anywhere.
    pub fn publish_topics(&self, table: Arc<TopicTable>) {
        self.with(|s| s.topics = table);
    }

    /// Shard 0: the subscription groups after a change.
    pub fn publish_groups(&self, groups: &SubscriptionGroupWrapper) {
        let groups = Arc::new(groups.clone());
        self.with(|s| s.groups = groups);
    }

    fn current(&self) -> Published {
        self.with(|s| s.clone())
    }
}

/// One METADATA frame's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MetaUpdate {
    /// 0: changes; 1: a part of a snapshot, more follow; 2: the last part of a snapshot.
    pub snapshot: u8,
    /// Topics set (whole config).
    pub topics: Vec<TopicConfig>,
    /// Topics removed.
    pub deleted_topics: Vec<String>,
    /// The topic table's version after these changes.
    pub topic_version: DataVersion,
    /// Groups set (whole config).
    pub groups: Vec<SubscriptionGroupConfig>,
    /// Groups removed.
    pub deleted_groups: Vec<String>,
    /// The group table's version after these changes.
    pub group_version: DataVersion,
}

impl MetaUpdate {
    fn items(&self) -> usize {
        self.topics.len()
            + self.deleted_topics.len()
            + self.groups.len()
            + self.deleted_groups.len()
    }
}

/// What one session has sent (`None`: nothing yet, the next frames are a snapshot).
#[derive(Default)]
pub struct Sent {
    last: Option<Published>,
}

impl Sent {
    /// The METADATA bodies to write before the next DATA frame: a snapshot first, then the
    /// changes since what was sent; none when nothing changed.
    pub fn frames(&mut self, feed: &MetaFeed) -> Vec<Bytes> {
        let now = feed.current();
        let frames = match &self.last {
            None => snapshot(&now),
            Some(last)
                if Arc::ptr_eq(&last.topics, &now.topics)
                    && Arc::ptr_eq(&last.groups, &now.groups) =>
            {
                Vec::new()
            }
            Some(last) => changes(last, &now),
        };
        self.last = Some(now);
        frames
    }
}

fn snapshot(now: &Published) -> Vec<Bytes> {
    let base = MetaUpdate {
        snapshot: 1,
        topic_version: now.topics.data_version,
        group_version: now.groups.data_version,
        ..MetaUpdate::default()
    };
    let mut parts = Vec::new();
    let mut part = base.clone();
    let mut size = 0usize;
    let flush = |part: &mut MetaUpdate, size: &mut usize, parts: &mut Vec<MetaUpdate>| {
        parts.push(std::mem::replace(part, base.clone()));
        *size = 0;
    };
    for (_, config) in now.topics.iter() {
        size += body::to_json(config).len() + 1;
        part.topics.push(config.clone());
        if size >= PART_BYTES {
            flush(&mut part, &mut size, &mut parts);
        }
    }
    for config in now.groups.subscription_group_table.values() {
        size += body::to_json(config).len() + 1;
        part.groups.push(config.clone());
        if size >= PART_BYTES {
            flush(&mut part, &mut size, &mut parts);
        }
    }
    if part.items() > 0 || parts.is_empty() {
        parts.push(part);
    }
    if let Some(last) = parts.last_mut() {
        last.snapshot = 2;
    }
    parts.iter().map(|p| Bytes::from(body::to_json(p))).collect()
}

fn changes(last: &Published, now: &Published) -> Vec<Bytes> {
    let mut update = MetaUpdate {
        snapshot: 0,
        topic_version: now.topics.data_version,
        group_version: now.groups.data_version,
        ..MetaUpdate::default()
    };
    for (name, config) in now.topics.changes_since(&last.topics) {
        match config {
            Some(config) => update.topics.push(config),
            None => update.deleted_topics.push(name),
        }
    }
    if !Arc::ptr_eq(&last.groups, &now.groups) {
        let (old, new) =
            (&last.groups.subscription_group_table, &now.groups.subscription_group_table);
        update.groups =
            new.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(_, v)| v.clone()).collect();
        update.deleted_groups = old.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
    }
    if update.items() == 0 {
        return Vec::new();
    }
    vec![Bytes::from(body::to_json(&update))]
}

/// A slave's assembly of snapshot parts: the parts received so far.
#[derive(Default)]
pub struct Assembly {
    parts: Option<MetaUpdate>,
}

impl Assembly {
    /// Takes one METADATA body; returns the update to apply (a change at once, a snapshot
    /// once its last part arrived) and whether it is a snapshot.
    ///
    /// # Errors
    /// A body that does not parse, or a snapshot larger than `max_items`.
    pub fn take(&mut self, json: &[u8], max_items: usize) -> Result<Option<MetaUpdate>, String> {
        let update: MetaUpdate =
            body::from_json(json).map_err(|e| format!("bad METADATA frame: {e}"))?;
        match update.snapshot {
            0 => Ok(Some(update)),
            1 | 2 => {
                let last = update.snapshot == 2;
                let acc = self.parts.get_or_insert_with(MetaUpdate::default);
                acc.topics.extend(update.topics);
                acc.groups.extend(update.groups);
                acc.topic_version = update.topic_version;
                acc.group_version = update.group_version;
                if acc.items() > max_items {
                    self.parts = None;
                    return Err(format!("a metadata snapshot of more than {max_items} items"));
                }
                if !last {
                    return Ok(None);
                }
                let mut whole = self.parts.take().unwrap_or_default();
                whole.snapshot = 2;
                Ok(Some(whole))
            }
            other => Err(format!("bad METADATA frame: snapshot {other}")),
        }
    }
}

/// Slave, on shard 0: applies `update` (a change, or a whole snapshot) to the topic and
/// group tables, persists both, and installs the topics on every shard.
///
/// # Errors
/// Not shard 0, or a table that cannot be persisted.
pub async fn apply(shard: &Rc<Shard>, update: MetaUpdate) -> Result<(), String> {
    let Some(zero) = shard.zero.as_ref() else {
        return Err("metadata reached a shard that does not own topics".into());
    };
    let snapshot = update.snapshot == 2;
    let topic_change = {
        let mut manager = zero.topic_manager.borrow_mut();
        if snapshot {
            let table: std::collections::HashMap<String, TopicConfig> =
                update.topics.into_iter().map(|c| (c.topic_name.clone(), c)).collect();
            manager.replace(TopicTable::from_map(table, update.topic_version))
        } else {
            let mut last = None;
            for config in update.topics {
                let name = config.topic_name.clone();
                last = manager.follow(name, Some(config), update.topic_version).or(last);
            }
            for name in update.deleted_topics {
                last = manager.follow(name, None, update.topic_version).or(last);
            }
            last
        }
    };
    if let Some(seq) = topic_change {
        shard.persist_topics(seq).await.map_err(|e| e.to_string())?;
        info!(snapshot, "topics follow the master (in-band)");
    }
    let group_change = zero.subscription_groups.borrow_mut().follow(
        snapshot,
        update.groups,
        &update.deleted_groups,
        update.group_version,
    );
    if let Some(bytes) = group_change {
        let path = zero.subscription_groups.borrow().path().to_path_buf();
        write_file_durably(path.clone(), bytes)
            .await
            .map_err(|e| format!("persisting {}: {e}", path.display()))?;
    }
    shard.replica.metadata_in_band.set(true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::topic_config;

    fn table(names: &[&str]) -> Arc<TopicTable> {
        let map = names.iter().map(|n| (n.to_string(), topic_config(n, 4, 6))).collect();
        Arc::new(TopicTable::from_map(map, DataVersion::default()))
    }

    // Goal: a session sends a snapshot first, nothing while the feed stands still, then
    // exactly the topics and groups that changed; the slave's assembly joins snapshot
    // parts and refuses an oversized one.
    #[test]
    fn a_session_sends_a_snapshot_then_changes() {
        let feed = MetaFeed::new(table(&["a", "b"]), &SubscriptionGroupWrapper::default());
        let mut sent = Sent::default();
        let mut assembly = Assembly::default();
        let first = sent.frames(&feed);
        assert_eq!(first.len(), 1);
        let snap = assembly.take(&first[0], 100).expect("parses").expect("whole");
        assert_eq!(snap.snapshot, 2);
        assert_eq!(snap.topics.len(), 2);
        assert!(sent.frames(&feed).is_empty(), "nothing changed");
        feed.publish_topics(table(&["a", "c"]));
        let mut groups = SubscriptionGroupWrapper::default();
        let group: SubscriptionGroupConfig =
            body::from_json(br#"{"groupName":"g1"}"#).expect("group");
        groups.subscription_group_table.insert("g1".into(), group);
        feed.publish_groups(&groups);
        let next = sent.frames(&feed);
        assert_eq!(next.len(), 1);
        let change = assembly.take(&next[0], 100).expect("parses").expect("change");
        assert_eq!(change.snapshot, 0);
        let names: Vec<&str> = change.topics.iter().map(|t| t.topic_name.as_str()).collect();
        assert_eq!(names, vec!["c"]);
        assert_eq!(change.deleted_topics, vec!["b".to_string()]);
        assert_eq!(change.groups.len(), 1);
        assert!(assembly.take(&first[0], 1).is_err(), "a snapshot past the bound");
        assert!(assembly.take(b"not json", 100).is_err());
    }
}
