//! Consumer-group offsets of the queues a shard owns.
//!
//! Lives on: the owner shard of the queue. Offsets of the queues of log `L` are persisted
//! to `{store}/config/consumerOffset/{L:03}.json` (RocketMQ's `consumerOffset.json` shape,
//! `{"offsetTable":{"topic@group":{"queueId":offset}}}`), so a store reopened with another
//! shard count finds each log's offsets beside it. Written every few seconds when dirty and
//! at shutdown, atomically (temp file, fsync, rename).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How often dirty offsets are persisted (the client commits every 5 s).
pub const PERSIST_INTERVAL_MS: u64 = 5_000;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetFile {
    #[serde(default)]
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// Offsets keyed by log id, then `topic@group`, then queue id.
#[derive(Debug, Default)]
pub struct ConsumerOffsets {
    root: PathBuf,
    by_log: HashMap<u32, BTreeMap<String, BTreeMap<i32, i64>>>,
    dirty: Vec<u32>,
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

    /// Commits an offset.
    pub fn set(&mut self, log: u32, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let table = self.by_log.entry(log).or_default();
        let slot = table.entry(key(topic, group)).or_default().entry(queue_id).or_insert(-1);
        if *slot != offset {
            *slot = offset;
            if !self.dirty.contains(&log) {
                self.dirty.push(log);
            }
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
}
