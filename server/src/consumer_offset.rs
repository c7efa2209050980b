//! Consumer-group offsets of the queues a shard owns.
//!
//! Lives on: the owner shard of the queue. Offsets of the queues of log `L` are persisted
//! to `{store}/config/consumerOffset/{L:03}.json` (RocketMQ's `consumerOffset.json` shape,
//! `{"offsetTable":{"topic@group":{"queueId":offset}}}`), so a store reopened with another
//! shard count finds each log's offsets beside it. Written every few seconds when dirty and
//! at shutdown, atomically (temp file, fsync, rename).
//!
//! Limits (offsets committed by clients, [`ConsumerOffsets::set_from_client`]): a topic name
//! over 127 bytes or a group over 255 bytes is refused before anything is stored (the
//! reference's name limits), and this shard holds at most its part of
//! `consumerOffsetMaxCount` entries (one per group, topic and queue). The broker's own
//! progress offsets (delay levels, transaction checks) use [`ConsumerOffsets::set`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::table_limits::TableLimit;

/// How often dirty offsets are persisted (the client commits every 5 s).
pub const PERSIST_INTERVAL_MS: u64 = 5_000;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetFile {
    #[serde(default)]
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// Offsets keyed by log id, then `topic@group`, then queue id.
#[derive(Debug)]
pub struct ConsumerOffsets {
    root: PathBuf,
    by_log: HashMap<u32, BTreeMap<String, BTreeMap<i32, i64>>>,
    dirty: Vec<u32>,
    /// Entries (group, topic, queue) held, all logs.
    entry_count: usize,
    entries_max: usize,
}

impl Default for ConsumerOffsets {
    fn default() -> ConsumerOffsets {
        ConsumerOffsets {
            root: PathBuf::new(),
            by_log: HashMap::new(),
            dirty: Vec::new(),
            entry_count: 0,
            entries_max: crate::table_limits::TableLimits::default().offset_entries_max,
        }
    }
}

/// Longest consumer group name a client may commit an offset for (the reference's
/// `Validators.CHARACTER_MAX_LENGTH`).
pub const GROUP_NAME_BYTES_MAX: usize = 255;

/// Why an offset from a client was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetRefused {
    /// The topic or group name is longer than the reference allows.
    NameTooLong,
    /// The table holds its maximum number of entries.
    TableFull {
        /// The maximum (this shard's part).
        max: usize,
    },
}

impl std::fmt::Display for OffsetRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OffsetRefused::NameTooLong => write!(
                f,
                "topic longer than {} bytes or group longer than {GROUP_NAME_BYTES_MAX} bytes",
                crate::topic::TOPIC_NAME_BYTES_MAX
            ),
            OffsetRefused::TableFull { max } => {
                let what = "the consumer offset table is full";
                f.write_str(&TableLimit::OffsetEntries.remark(what, *max))
            }
        }
    }
}

fn key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

impl ConsumerOffsets {
    /// Loads the offset files of `logs`. Runs before the executors start.
    ///
    /// # Errors
    /// A file that exists but does not parse.
    pub fn load(root: &Path, logs: &[u32]) -> Result<ConsumerOffsets, String> {
        let mut me = ConsumerOffsets { root: root.to_path_buf(), ..Default::default() };
        for &log in logs {
            let path = me.path(log);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let f: OffsetFile = serde_json::from_slice(&bytes)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    me.entry_count += f.offset_table.values().map(BTreeMap::len).sum::<usize>();
                    me.by_log.insert(log, f.offset_table);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Ok(me)
    }

    fn path(&self, log: u32) -> PathBuf {
        self.root.join("config").join("consumerOffset").join(format!("{log:03}.json"))
    }

    /// The committed offset of `group` on `(topic, queue_id)` in `log`.
    pub fn get(&self, log: u32, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.by_log.get(&log)?.get(&key(topic, group))?.get(&queue_id).copied()
    }

    /// Sets the most entries this table holds for clients (this shard's part of
    /// `consumerOffsetMaxCount`).
    pub fn set_entries_max(&mut self, entries_max: usize) {
        self.entries_max = entries_max;
    }

    /// Entries held (group, topic, queue), all logs.
    pub fn entry_count(&self) -> usize {
        self.entry_count
    }

    /// Commits an offset a client sent, within the limits.
    ///
    /// # Errors
    /// A name longer than the reference allows, or a new entry in a full table; nothing is
    /// stored then (the refusal is counted and logged).
    pub fn set_from_client(
        &mut self,
        log: u32,
        group: &str,
        topic: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<(), OffsetRefused> {
        if topic.len() > crate::topic::TOPIC_NAME_BYTES_MAX || group.len() > GROUP_NAME_BYTES_MAX {
            return Err(OffsetRefused::NameTooLong);
        }
        if self.entry_count >= self.entries_max && self.get(log, group, topic, queue_id).is_none() {
            crate::table_limits::report(TableLimit::OffsetEntries);
            return Err(OffsetRefused::TableFull { max: self.entries_max });
        }
        self.set(log, group, topic, queue_id, offset);
        Ok(())
    }

    /// Commits an offset (the broker's own progress: no limit applies).
    pub fn set(&mut self, log: u32, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let table = self.by_log.entry(log).or_default();
        let queues = table.entry(key(topic, group)).or_default();
        let changed = match queues.insert(queue_id, offset) {
            Some(previous) => previous != offset,
            None => {
                self.entry_count += 1;
                offset != -1
            }
        };
        if changed && !self.dirty.contains(&log) {
            self.dirty.push(log);
        }
    }

    /// Every (topic@group, queue id, offset) of this shard, for admin listings.
    pub fn all(&self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for table in self.by_log.values() {
            for (k, queues) in table {
                for (q, o) in queues {
                    out.push((k.clone(), *q, *o));
                }
            }
        }
        out
    }

    /// Takes the files to write now: (path, JSON) for each dirty log.
    pub fn take_dirty(&mut self) -> Vec<(PathBuf, Vec<u8>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|log| {
                let file =
                    OffsetFile { offset_table: self.by_log.get(&log).cloned().unwrap_or_default() };
                (self.path(log), serde_json::to_vec(&file).unwrap_or_default())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = ConsumerOffsets::load(dir.path(), &[0, 1]).expect("load");
        o.set(1, "g", "t", 3, 42);
        o.set(1, "g", "t", 3, 42);
        let files = o.take_dirty();
        assert_eq!(files.len(), 1);
        for (p, data) in files {
            crate::durable_file::write_file_durably_sync(&p, &data).expect("write");
        }
        assert!(o.take_dirty().is_empty());
        let again = ConsumerOffsets::load(dir.path(), &[1]).expect("reload");
        assert_eq!(again.get(1, "g", "t", 3), Some(42));
        assert_eq!(again.get(1, "g", "t", 4), None);
    }

    #[test]
    fn client_offsets_are_bounded_by_names_and_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = ConsumerOffsets::load(dir.path(), &[0]).expect("load");
        o.set_entries_max(2);
        let long_topic = "t".repeat(crate::topic::TOPIC_NAME_BYTES_MAX + 1);
        assert_eq!(o.set_from_client(0, "g", &long_topic, 0, 1), Err(OffsetRefused::NameTooLong));
        let long_group = "g".repeat(GROUP_NAME_BYTES_MAX + 1);
        assert_eq!(o.set_from_client(0, &long_group, "t", 0, 1), Err(OffsetRefused::NameTooLong));
        o.set_from_client(0, "g", "t", 0, 1).expect("room");
        o.set_from_client(0, "g", "t", 1, 1).expect("room");
        assert_eq!(o.set_from_client(0, "g", "t", 2, 1), Err(OffsetRefused::TableFull { max: 2 }));
        o.set_from_client(0, "g", "t", 1, 5).expect("an existing entry moves");
        assert_eq!((o.entry_count(), o.get(0, "g", "t", 1)), (2, Some(5)));
        o.set(0, "%SYS%", "t", 0, 3);
        assert_eq!(o.entry_count(), 3, "the broker's own offsets pass the limit");
    }
}
