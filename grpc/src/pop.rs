//! POP state: which messages of each (group, topic, queue) are invisible, until when, after
//! how many deliveries, and where the next read starts; durable in an append-only journal.
//!
//! A queue's state is `next` (the first offset never delivered to the group) and the
//! in-flight map `offset -> (deadline, attempt, generation)`. Everything below `next` that
//! is not in flight is done (acked, sent to the DLQ, or filtered out). A receive reads
//! expired in-flight offsets again (redelivery, attempt + 1) and new ones from `next`;
//! an ack removes the offset; a change of invisible duration sets a new deadline and
//! generation. The generation is in the receipt handle, so a handle from an earlier
//! delivery of the same offset is refused.
//!
//! Durability: every change is one JSON line appended (`write`) to `pop.journal` before the
//! client hears of it, so a SIGKILL loses nothing (the page cache survives the process);
//! `sync` (every 200 ms when dirty, and at stop) makes it survive a power loss too. At open
//! the journal is replayed and rewritten as one snapshot line per queue (temp file, fsync,
//! rename), and again whenever it grows past [`COMPACT_RECORDS`] records. A torn last line
//! (power loss mid-write) is skipped.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Journal records between two rewrites.
pub const COMPACT_RECORDS: u64 = 200_000;

/// A queue of a group: (group, topic, queue id).
pub type QueueKey = (String, String, i32);

/// One invisible message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inflight {
    /// Visible again at this time, ms since the epoch.
    pub deadline_ms: u64,
    /// Deliveries so far (1 = first).
    pub attempt: u32,
    /// Generation of the delivery (in its receipt handle).
    pub gen: u64,
}

/// A queue's POP state.
#[derive(Debug, Default, Clone)]
pub struct QueueState {
    /// First offset never delivered.
    pub next: i64,
    /// Invisible messages by queue offset.
    pub inflight: BTreeMap<i64, Inflight>,
    /// A receive is reading this queue (not persisted).
    busy: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "k")]
enum Record {
    /// Deliveries: set `next`, add or replace these in-flight entries.
    #[serde(rename = "pop")]
    Pop { g: String, t: String, q: i32, next: i64, items: Vec<(i64, u64, u32, u64)> },
    /// The whole state of a queue (snapshot).
    #[serde(rename = "queue")]
    Queue { g: String, t: String, q: i32, next: i64, items: Vec<(i64, u64, u32, u64)> },
    /// Done (acked, or sent to the DLQ).
    #[serde(rename = "ack")]
    Ack { g: String, t: String, q: i32, o: i64 },
    /// New deadline and generation.
    #[serde(rename = "chg")]
    Change { g: String, t: String, q: i32, o: i64, d: u64, h: u64 },
}

/// Why an ack or change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// The handle names a delivery that is no longer the current one (redelivered since).
    Stale,
    /// The message is no longer in flight (acked already); acks of it succeed.
    Done,
}

/// Why a receive cannot start on a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginError {
    /// Another receive is reading it.
    Busy,
    /// The broker's table of groups is full.
    TooManyGroups,
}

/// All POP state and its journal.
pub struct PopStore {
    queues: HashMap<QueueKey, QueueState>,
    dir: PathBuf,
    journal: File,
    records: u64,
    dirty: bool,
    next_gen: u64,
    max_groups: usize,
    groups: HashMap<String, usize>,
}

fn items_of(state: &QueueState) -> Vec<(i64, u64, u32, u64)> {
    state.inflight.iter().map(|(o, f)| (*o, f.deadline_ms, f.attempt, f.gen)).collect()
}

impl PopStore {
    /// Opens (creating) the journal in `dir`, replays it and rewrites it compacted.
    ///
    /// # Errors
    /// I/O errors of the directory or journal.
    pub fn open(dir: &Path, max_groups: usize) -> std::io::Result<PopStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("pop.journal");
        let mut queues: HashMap<QueueKey, QueueState> = HashMap::new();
        let mut max_gen = 0u64;
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                let Ok(rec) = serde_json::from_str::<Record>(&line) else {
                    tracing::warn!("POP journal: skipping an unreadable line (torn write)");
                    continue;
                };
                apply(&mut queues, rec, &mut max_gen);
            }
        }
        let journal = write_snapshot(dir, &queues)?;
        let mut groups: HashMap<String, usize> = HashMap::new();
        for ((g, _, _), s) in &queues {
            *groups.entry(g.clone()).or_default() += s.inflight.len();
        }
        let seed = crate::service::now_ms().saturating_mul(1000);
        Ok(PopStore {
            queues,
            dir: dir.to_path_buf(),
            journal,
            records: 0,
            dirty: false,
            next_gen: max_gen.max(seed) + 1,
            max_groups,
            groups,
        })
    }

    fn append(&mut self, rec: &Record) {
        let mut line = match serde_json::to_vec(rec) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "POP journal: cannot encode a record");
                return;
            }
        };
        line.push(b'\n');
        if let Err(e) = self.journal.write_all(&line) {
            tracing::error!(error = %e, "POP journal: write failed");
        }
        self.dirty = true;
        self.records += 1;
        if self.records >= COMPACT_RECORDS {
            match write_snapshot(&self.dir, &self.queues) {
                Ok(f) => {
                    self.journal = f;
                    self.records = 0;
                    self.dirty = false;
                }
                Err(e) => tracing::error!(error = %e, "POP journal: compaction failed"),
            }
        }
    }

    /// Flushes the journal to disk when it changed since the last call.
    pub fn sync(&mut self) {
        if self.dirty {
            self.dirty = false;
            if let Err(e) = self.journal.sync_data() {
                tracing::error!(error = %e, "POP journal: fdatasync failed");
            }
        }
    }

    fn gen(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    /// In-flight messages of `group` (all topics).
    pub fn group_inflight(&self, group: &str) -> usize {
        self.groups.get(group).copied().unwrap_or(0)
    }

    /// A copy of a queue's state (default when unknown).
    pub fn peek(&self, key: &QueueKey) -> QueueState {
        self.queues.get(key).cloned().unwrap_or_default()
    }

    /// Marks the queue as being read by one receive and returns its state.
    ///
    /// # Errors
    /// Busy (another receive reads it), or a new group past the table's bound.
    pub fn begin(&mut self, key: &QueueKey) -> Result<QueueState, BeginError> {
        if !self.queues.contains_key(key) {
            if !self.groups.contains_key(&key.0) && self.groups.len() >= self.max_groups {
                return Err(BeginError::TooManyGroups);
            }
            self.groups.entry(key.0.clone()).or_default();
            self.queues.insert(key.clone(), QueueState::default());
        }
        let s = self.queues.get_mut(key).ok_or(BeginError::Busy)?;
        if s.busy {
            return Err(BeginError::Busy);
        }
        s.busy = true;
        Ok(s.clone())
    }

    /// Ends a [`PopStore::begin`] without deliveries.
    pub fn abort(&mut self, key: &QueueKey) {
        if let Some(s) = self.queues.get_mut(key) {
            s.busy = false;
        }
    }

    /// Ends a [`PopStore::begin`]: `next` moves to `next`, `delivered` (offset, attempt)
    /// become invisible until `deadline_ms`, `done` offsets leave the in-flight map (sent
    /// to the DLQ, or gone from the store). Returns the generation of each delivery.
    pub fn commit(
        &mut self,
        key: &QueueKey,
        next: i64,
        delivered: &[(i64, u32)],
        deadline_ms: u64,
        done: &[i64],
    ) -> Vec<u64> {
        let gens: Vec<u64> = delivered.iter().map(|_| self.gen()).collect();
        let Some(s) = self.queues.get_mut(key) else { return gens };
        s.busy = false;
        let before = s.inflight.len();
        let old_next = s.next;
        for o in done {
            s.inflight.remove(o);
        }
        s.next = s.next.max(next);
        let mut items = Vec::with_capacity(delivered.len());
        for ((o, a), g) in delivered.iter().zip(&gens) {
            s.inflight.insert(*o, Inflight { deadline_ms, attempt: *a, gen: *g });
            items.push((*o, deadline_ms, *a, *g));
        }
        let after = s.inflight.len();
        let next = s.next;
        if let Some(n) = self.groups.get_mut(&key.0) {
            *n = (*n + after).saturating_sub(before);
        }
        for o in done {
            self.append(&Record::Ack { g: key.0.clone(), t: key.1.clone(), q: key.2, o: *o });
        }
        if !items.is_empty() || next != old_next {
            self.append(&Record::Pop { g: key.0.clone(), t: key.1.clone(), q: key.2, next, items });
        }
        gens
    }

    /// Acks the delivery `gen` of `offset`.
    ///
    /// # Errors
    /// `Done` when it is not in flight (nothing changes), `Stale` for another delivery.
    pub fn ack(&mut self, key: &QueueKey, offset: i64, gen: u64) -> Result<(), HandleError> {
        let s = self.queues.get_mut(key).ok_or(HandleError::Done)?;
        match s.inflight.get(&offset) {
            None => return Err(HandleError::Done),
            Some(f) if f.gen != gen => return Err(HandleError::Stale),
            Some(_) => {}
        }
        s.inflight.remove(&offset);
        if let Some(n) = self.groups.get_mut(&key.0) {
            *n = n.saturating_sub(1);
        }
        self.append(&Record::Ack { g: key.0.clone(), t: key.1.clone(), q: key.2, o: offset });
        Ok(())
    }

    /// The in-flight entry of `offset` when `gen` is its current delivery.
    pub fn current(&self, key: &QueueKey, offset: i64, gen: u64) -> Option<Inflight> {
        self.queues.get(key)?.inflight.get(&offset).copied().filter(|f| f.gen == gen)
    }

    /// Makes delivery `gen` of `offset` invisible until `deadline_ms`; returns the new
    /// generation.
    ///
    /// # Errors
    /// `Done` when not in flight, `Stale` for another delivery.
    pub fn change(
        &mut self,
        key: &QueueKey,
        offset: i64,
        gen: u64,
        deadline_ms: u64,
    ) -> Result<Inflight, HandleError> {
        let new_gen = self.gen();
        let s = self.queues.get_mut(key).ok_or(HandleError::Done)?;
        let f = s.inflight.get_mut(&offset).ok_or(HandleError::Done)?;
        if f.gen != gen {
            return Err(HandleError::Stale);
        }
        f.deadline_ms = deadline_ms;
        f.gen = new_gen;
        let out = *f;
        self.append(&Record::Change {
            g: key.0.clone(),
            t: key.1.clone(),
            q: key.2,
            o: offset,
            d: deadline_ms,
            h: new_gen,
        });
        Ok(out)
    }

    /// Earliest deadline of the group's in-flight messages of `topic`.
    pub fn earliest_deadline(&self, group: &str, topic: &str) -> Option<u64> {
        self.queues
            .iter()
            .filter(|((g, t, _), _)| g == group && t == topic)
            .filter_map(|(_, s)| s.inflight.values().map(|f| f.deadline_ms).min())
            .min()
    }
}

fn apply(queues: &mut HashMap<QueueKey, QueueState>, rec: Record, max_gen: &mut u64) {
    match rec {
        Record::Pop { g, t, q, next, items } => {
            let s = queues.entry((g, t, q)).or_default();
            s.next = s.next.max(next);
            for (o, d, a, h) in items {
                *max_gen = (*max_gen).max(h);
                s.inflight.insert(o, Inflight { deadline_ms: d, attempt: a, gen: h });
            }
        }
        Record::Queue { g, t, q, next, items } => {
            let s = queues.entry((g, t, q)).or_default();
            s.next = next;
            s.inflight.clear();
            for (o, d, a, h) in items {
                *max_gen = (*max_gen).max(h);
                s.inflight.insert(o, Inflight { deadline_ms: d, attempt: a, gen: h });
            }
        }
        Record::Ack { g, t, q, o } => {
            if let Some(s) = queues.get_mut(&(g, t, q)) {
                s.inflight.remove(&o);
            }
        }
        Record::Change { g, t, q, o, d, h } => {
            *max_gen = (*max_gen).max(h);
            if let Some(f) = queues.get_mut(&(g, t, q)).and_then(|s| s.inflight.get_mut(&o)) {
                f.deadline_ms = d;
                f.gen = h;
            }
        }
    }
}

/// Writes every queue's state to a new journal (temp, fsync, rename, fsync the directory)
/// and returns it open for appends.
fn write_snapshot(dir: &Path, queues: &HashMap<QueueKey, QueueState>) -> std::io::Result<File> {
    let tmp = dir.join("pop.journal.tmp");
    let path = dir.join("pop.journal");
    {
        let mut f = std::io::BufWriter::new(File::create(&tmp)?);
        for ((g, t, q), s) in queues {
            let rec = Record::Queue {
                g: g.clone(),
                t: t.clone(),
                q: *q,
                next: s.next,
                items: items_of(s),
            };
            serde_json::to_writer(&mut f, &rec).map_err(std::io::Error::other)?;
            f.write_all(b"\n")?;
        }
        f.flush()?;
        f.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    OpenOptions::new().append(true).open(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> QueueKey {
        ("g".into(), "t".into(), 1)
    }

    #[test]
    fn deliveries_acks_and_changes_survive_reopen() {
        let dir = tempdir();
        {
            let mut p = PopStore::open(&dir, 8).expect("open");
            p.begin(&key()).expect("begin");
            let gens = p.commit(&key(), 3, &[(0, 1), (1, 1), (2, 1)], 1000, &[]);
            assert_eq!(p.group_inflight("g"), 3);
            p.ack(&key(), 1, gens[1]).expect("ack");
            assert_eq!(p.ack(&key(), 1, gens[1]), Err(HandleError::Done));
            assert_eq!(p.ack(&key(), 0, gens[1]), Err(HandleError::Stale));
            let f = p.change(&key(), 2, gens[2], 5000).expect("change");
            assert_eq!(f.deadline_ms, 5000);
            assert!(p.change(&key(), 2, gens[2], 6000).is_err(), "old generation refused");
        }
        let p = PopStore::open(&dir, 8).expect("reopen");
        let s = p.peek(&key());
        assert_eq!(s.next, 3);
        assert_eq!(s.inflight.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(s.inflight[&2].deadline_ms, 5000);
        assert_eq!(p.group_inflight("g"), 2);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn busy_queue_and_group_bound() {
        let dir = tempdir();
        let mut p = PopStore::open(&dir, 1).expect("open");
        p.begin(&key()).expect("begin");
        assert_eq!(p.begin(&key()).err(), Some(BeginError::Busy));
        p.abort(&key());
        p.begin(&key()).expect("free again");
        p.abort(&key());
        let other: QueueKey = ("h".into(), "t".into(), 0);
        assert_eq!(p.begin(&other).err(), Some(BeginError::TooManyGroups));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn torn_last_line_is_skipped() {
        let dir = tempdir();
        {
            let mut p = PopStore::open(&dir, 8).expect("open");
            p.begin(&key()).expect("begin");
            p.commit(&key(), 1, &[(0, 1)], 1000, &[]);
        }
        let mut f = OpenOptions::new().append(true).open(dir.join("pop.journal")).expect("j");
        f.write_all(b"{\"k\":\"ack\",\"g\":\"g\"").expect("torn");
        drop(f);
        let p = PopStore::open(&dir, 8).expect("reopen");
        assert_eq!(p.peek(&key()).inflight.len(), 1);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "ramjet-pop-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
