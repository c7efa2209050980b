//! Topic configurations: one owner, snapshots everywhere else.
//!
//! Lives on: the table is owned by shard 0 (`TopicManager`), which persists it to
//! `{store}/config/topics.json` plus an append-only journal of later changes
//! ([`crate::topic_journal`]) and publishes immutable [`TopicTable`] snapshots to every
//! shard. Other shards only read their latest snapshot; a change is a request to shard 0.
//! A change costs the same whatever the number of topics: one journal line, one shared
//! fdatasync, a snapshot that shares the bulk of the previous one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ramjet_proto::body::{self, DataVersion, TopicConfig, TopicConfigSerializeWrapper};

use crate::clock::now_ms;
use crate::error::BrokerError;
use crate::table_limits::TableLimit;
use crate::topic_journal::{self, JournalLine};

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
/// replaced on change.
///
/// ```text
///   TopicTable ──base──▶ Arc<HashMap<name, TopicConfig>>   shared by every snapshot
///              └─recent─▶ HashMap<name, Option<TopicConfig>> changes since base (None = deleted),
///                                                           at most ~√n entries, owned
/// ```
///
/// A change copies only `recent` (O(√n) entries) and shares `base`; once `recent` passes
/// `max(64, √n)` entries it is folded into a new base (O(n), once per √n changes), so a
/// change costs O(√n) on average instead of a copy of the whole table.
#[derive(Debug, Clone, Default)]
pub struct TopicTable {
    base: Arc<HashMap<String, TopicConfig>>,
    recent: HashMap<String, Option<TopicConfig>>,
    len: usize,
    /// Bumped on every change.
    pub data_version: DataVersion,
}

/// `recent` entries always allowed before folding into the base.
const RECENT_MIN: usize = 64;

impl TopicTable {
    /// A table holding `topics`.
    pub fn from_map(topics: HashMap<String, TopicConfig>, data_version: DataVersion) -> Self {
        TopicTable {
            len: topics.len(),
            base: Arc::new(topics),
            recent: HashMap::new(),
            data_version,
        }
    }

    /// A topic's config.
    pub fn get(&self, topic: &str) -> Option<&TopicConfig> {
        match self.recent.get(topic) {
            Some(change) => change.as_ref(),
            None => self.base.get(topic),
        }
    }

    /// Number of topics.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no topic.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every topic, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &TopicConfig)> {
        let recent = self.recent.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v)));
        let base = self.base.iter().filter(|(k, _)| !self.recent.contains_key(*k));
        recent.chain(base)
    }

    /// The topics as one map (a copy).
    pub fn to_map(&self) -> HashMap<String, TopicConfig> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The JSON of `topics.json` / GET_ALL_TOPIC_CONFIG.
    pub fn to_wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            topic_config_table: self.to_map(),
            data_version: self.data_version,
        }
    }

    /// The topics whose config differs between `older` and this table, each with its config
    /// here (`None`: removed since). O(changes) when both share a base (a change copies only
    /// `recent`), else O(n).
    pub fn changes_since(&self, older: &TopicTable) -> Vec<(String, Option<TopicConfig>)> {
        let mut names: Vec<&String> = if Arc::ptr_eq(&self.base, &older.base) {
            self.recent.keys().chain(older.recent.keys()).collect()
        } else {
            self.iter().map(|(k, _)| k).chain(older.iter().map(|(k, _)| k)).collect()
        };
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|name| self.get(name) != older.get(name))
            .map(|name| (name.clone(), self.get(name).cloned()))
            .collect()
    }

    /// The table with `topic` set to `config` (`None` removes it), sharing this one's base.
    fn with_change(&self, topic: String, config: Option<TopicConfig>) -> TopicTable {
        let was = self.get(&topic).is_some();
        let len = self.len + usize::from(config.is_some()) - usize::from(was);
        let mut recent = self.recent.clone();
        recent.insert(topic, config);
        let fold_at = RECENT_MIN.max(len.isqrt());
        if recent.len() <= fold_at {
            return TopicTable {
                base: self.base.clone(),
                recent,
                len,
                data_version: self.data_version,
            };
        }
        let mut base = (*self.base).clone();
        for (k, v) in recent {
            match v {
                Some(v) => base.insert(k, v),
                None => base.remove(&k),
            };
        }
        debug_assert_eq!(base.len(), len);
        TopicTable {
            base: Arc::new(base),
            recent: HashMap::new(),
            len,
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

/// Persistence the owner has not done yet (taken under the shard's persist lock).
#[derive(Debug)]
pub enum TopicPersist {
    /// Append these journal lines (and fdatasync).
    Append {
        /// The journal file.
        journal: PathBuf,
        /// Whole encoded lines.
        lines: Vec<u8>,
    },
    /// Write `topics.json` whole, then empty the journal.
    Compact {
        /// `topics.json`.
        json_path: PathBuf,
        /// The table's JSON.
        json: Vec<u8>,
        /// The journal file.
        journal: PathBuf,
    },
}

impl TopicPersist {
    /// Performs the work. Blocking (run it on the blocking pool).
    ///
    /// # Errors
    /// Any I/O error.
    pub fn run_sync(&self) -> std::io::Result<()> {
        match self {
            TopicPersist::Append { journal, lines } => topic_journal::append_sync(journal, lines),
            TopicPersist::Compact { json_path, json, journal } => {
                topic_journal::compact_sync(json_path, json, journal)
            }
        }
    }
}

/// The owner of the topic table.
///
/// Lives on: shard 0. Each change is applied to a new snapshot at once and numbered; its
/// journal line waits in `pending` until a persist takes every pending line for one append
/// and one fdatasync (changes that arrive during a persist share the next one).
#[derive(Debug)]
pub struct TopicManager {
    path: PathBuf,
    journal: PathBuf,
    table: Arc<TopicTable>,
    /// Encoded journal lines of changes not persisted yet.
    pending: Vec<u8>,
    pending_lines: usize,
    /// Lines in the journal file since the last compaction.
    journal_lines: usize,
    /// The next persist writes the whole table (a replaced table, or a failed write).
    compact_next: bool,
    /// Number of the last change, and of the last change persisted.
    change_seq: u64,
    persisted_seq: u64,
}

impl TopicManager {
    /// Loads `{root}/config/topics.json` and its journal (or starts empty), adds the system
    /// topics, and compacts (the journal is emptied into `topics.json`). Runs before the
    /// executors start (blocking I/O is fine there).
    ///
    /// # Errors
    /// An unreadable or unparsable file or journal line, or a failed compaction: refusing
    /// to start beats forgetting topics.
    pub fn load(root: &Path, system: &[TopicConfig]) -> Result<TopicManager, String> {
        let config_dir = root.join("config");
        let path = config_dir.join("topics.json");
        let journal = config_dir.join("topics.journal");
        let (mut topics, mut data_version) = match std::fs::read(&path) {
            Ok(bytes) => {
                let w: TopicConfigSerializeWrapper =
                    body::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                (w.topic_config_table, w.data_version)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        for line in topic_journal::read(&journal)? {
            if let Some(config) = line.put {
                topics.insert(config.topic_name.clone(), config);
            }
            if let Some(topic) = line.delete {
                topics.remove(&topic);
            }
            data_version = line.version;
        }
        for t in system {
            topics.entry(t.topic_name.clone()).or_insert_with(|| t.clone());
        }
        let table = TopicTable::from_map(topics, data_version);
        topic_journal::compact_sync(&path, &body::to_json(&table.to_wrapper()), &journal)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TopicManager {
            path,
            journal,
            table: Arc::new(table),
            pending: Vec::new(),
            pending_lines: 0,
            journal_lines: 0,
            compact_next: false,
            change_seq: 0,
            persisted_seq: 0,
        })
    }

    /// The current snapshot.
    pub fn table(&self) -> Arc<TopicTable> {
        self.table.clone()
    }

    /// Inserts or replaces a topic; returns the change's number, `None` when nothing
    /// changed.
    ///
    /// # Errors
    /// A new topic past `topicMaxCount`.
    pub fn upsert(&mut self, config: TopicConfig) -> Result<Option<u64>, BrokerError> {
        let existing = self.table.get(&config.topic_name);
        if existing == Some(&config) {
            return Ok(None);
        }
        let max = crate::table_limits::limits().topics_max;
        if existing.is_none() && self.table.len() >= max {
            crate::table_limits::report(TableLimit::Topics);
            let what = format!("the broker holds {} topics already", self.table.len());
            return Err(BrokerError::System(TableLimit::Topics.remark(&what, max)));
        }
        let name = config.topic_name.clone();
        Ok(Some(self.change(name, Some(config))))
    }

    /// Replaces the whole table with a master's (a slave's metadata sync), keeping the
    /// master's data version; `None` when the topics are the same.
    pub fn replace(&mut self, table: TopicTable) -> Option<u64> {
        if self.table.to_map() == table.to_map() {
            return None;
        }
        self.table = Arc::new(table);
        self.pending.clear();
        self.pending_lines = 0;
        self.compact_next = true;
        self.change_seq += 1;
        Some(self.change_seq)
    }

    /// Removes a topic; `None` when it did not exist.
    pub fn remove(&mut self, topic: &str) -> Option<u64> {
        self.table.get(topic)?;
        Some(self.change(topic.to_string(), None))
    }

    /// Applies a master's change (a slave following in-band metadata): `config` for
    /// `topic` (`None` removes it) with the master's data version; `None` when nothing
    /// changed. No topic limit: the master's table is already within its own.
    pub fn follow(
        &mut self,
        topic: String,
        config: Option<TopicConfig>,
        version: DataVersion,
    ) -> Option<u64> {
        if self.table.get(&topic) == config.as_ref() {
            return None;
        }
        Some(self.change_to(topic, config, Some(version)))
    }

    fn change(&mut self, topic: String, config: Option<TopicConfig>) -> u64 {
        self.change_to(topic, config, None)
    }

    fn change_to(
        &mut self,
        topic: String,
        config: Option<TopicConfig>,
        version: Option<DataVersion>,
    ) -> u64 {
        let mut next = self.table.with_change(topic.clone(), config.clone());
        match version {
            Some(v) => next.data_version = v,
            None => {
                next.data_version.counter += 1;
                next.data_version.timestamp = now_ms() as i64;
            }
        }
        let delete = if config.is_none() { Some(topic) } else { None };
        let line = JournalLine { put: config, delete, version: next.data_version };
        self.pending.extend(line.encode());
        self.pending_lines += 1;
        self.table = Arc::new(next);
        self.change_seq += 1;
        self.change_seq
    }

    /// Number of the last change persisted.
    pub fn persisted_seq(&self) -> u64 {
        self.persisted_seq
    }

    /// Takes what must be written for every change so far: the pending journal lines, or
    /// the whole table when compaction is due. Returns the change number it covers.
    pub fn take_persist(&mut self) -> Option<(u64, TopicPersist)> {
        if self.persisted_seq == self.change_seq {
            return None;
        }
        let lines = self.journal_lines + self.pending_lines;
        let work = if self.compact_next || topic_journal::compaction_due(lines, self.table.len()) {
            self.journal_lines = 0;
            self.compact_next = false;
            TopicPersist::Compact {
                json_path: self.path.clone(),
                json: body::to_json(&self.table.to_wrapper()),
                journal: self.journal.clone(),
            }
        } else {
            self.journal_lines = lines;
            TopicPersist::Append { journal: self.journal.clone(), lines: self.pending.clone() }
        };
        self.pending.clear();
        self.pending_lines = 0;
        Some((self.change_seq, work))
    }

    /// Records the outcome of the work [`TopicManager::take_persist`] returned for `seq`.
    /// After a failure the next persist writes the whole table.
    pub fn persisted(&mut self, seq: u64, ok: bool) {
        if ok {
            self.persisted_seq = self.persisted_seq.max(seq);
        } else {
            self.compact_next = true;
        }
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
        assert_eq!(m.upsert(topic_config(TBW102, 8, 7)).expect("allowed"), None);
        let seq = m.upsert(topic_config("t", 4, 6)).expect("allowed").expect("changed");
        let t = m.table();
        assert_eq!(t.data_version.counter, v0 + 1);
        assert!(t.get("t").is_some());
        let (covered, work) = m.take_persist().expect("pending");
        assert_eq!(covered, seq);
        assert!(matches!(work, TopicPersist::Append { .. }));
        work.run_sync().expect("append");
        m.persisted(covered, true);
        assert!(m.take_persist().is_none());
    }

    // Goal: the table survives a restart from topics.json plus journal, whichever was
    // written last; compaction and a failed write rewrite the whole table.
    #[test]
    fn journal_and_compaction_rebuild_the_same_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = TopicManager::load(dir.path(), &[]).expect("load");
        let persist = |m: &mut TopicManager| {
            let (seq, work) = m.take_persist().expect("pending");
            work.run_sync().expect("write");
            m.persisted(seq, true);
        };
        let count = 2 * topic_journal::COMPACT_LINES_MIN + 60;
        for i in 0..count {
            m.upsert(topic_config(&format!("t{i}"), 1, 6)).expect("allowed");
            if i == 3 {
                m.remove("t1").expect("existed");
            }
            persist(&mut m);
        }
        let journal = dir.path().join("config").join("topics.journal");
        let lines = std::fs::read(&journal).expect("journal").split(|b| *b == b'\n').count();
        assert!(lines < 100, "compacted once past the threshold: {lines} lines left");
        m.upsert(topic_config("late", 2, 6)).expect("allowed");
        let (seq, _lost) = m.take_persist().expect("pending");
        m.persisted(seq, false);
        let (_, work) = m.take_persist().expect("still pending after a failure");
        assert!(matches!(work, TopicPersist::Compact { .. }));
        work.run_sync().expect("compact");
        let again = TopicManager::load(dir.path(), &[]).expect("reload");
        assert_eq!(again.table().to_map(), m.table().to_map());
        assert!(again.table().get("t1").is_none());
        assert_eq!(again.table().len(), count);
    }

    #[test]
    fn snapshots_share_their_base_and_fold_it() {
        let mut t = TopicTable::default();
        for i in 0..1000 {
            t = t.with_change(format!("t{i}"), Some(topic_config("x", 1, 6)));
            assert!(t.recent.len() <= RECENT_MIN.max(t.len().isqrt()));
        }
        let before = t.clone();
        let after = t.with_change("t5".into(), None);
        assert_eq!((before.len(), after.len()), (1000, 999));
        assert!(before.get("t5").is_some() && after.get("t5").is_none());
        assert_eq!(after.iter().count(), 999);
        assert_eq!(after.to_map().len(), 999);
    }
}
