//! Epochs: per commit log, where each master's term began (the reference's
//! `epochFileCheckpoint`), and the handshake's cut by them.
//!
//! Lives on: the replication shard (a master begins its epoch there at start; a slave
//! adopts its master's table there before placing any byte of a session).
//!
//! Every log holds a table of entries `(epoch, run, start)`: the bytes from `start` up to
//! the next entry's start (or the log's end) were written by the master of that entry.
//! `epoch` orders the entries (a new master takes one more than the highest it holds);
//! `run` is random per term, so two masters that picked the same number (no controller
//! to hand numbers out, or a store restored from a copy) still differ. Every table
//! begins, implicitly, with `(0, 0, 0)`: the bytes written before this store had epochs.
//!
//! A returning replica compares its table with its master's ([`consistent_point`]): the
//! newest entry both hold is the last term they share; the bytes both hold of it agree,
//! up to the smaller of the two ends of that term. Everything past that point on the
//! replica was written by a term the master never had and is cut, even where the
//! replica's log is no longer than the master's (positions that coincide).
//!
//! File: `{store}/epochFileCheckpoint`, JSON `{"logs":[[{"epoch":1,"run":..,"start":0},..],..]}`,
//! replaced durably (temp file, fsync, rename, directory fsync) before a master accepts
//! its first write of the new epoch and before a slave places the first byte of a session.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Entries kept per log; past it the oldest go (they describe the oldest bytes, which
/// retention deletes first). A term adds an entry only when it wrote something.
pub const EPOCH_ENTRIES_MAX: usize = 1024;

/// Where one master's term began in one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochEntry {
    /// Order of the terms (a new master takes one more than the highest it holds).
    pub epoch: u64,
    /// Random per term (never 0: 0 is the era before epochs).
    pub run: u64,
    /// Log position of the term's first byte.
    pub start: u64,
}

impl EpochEntry {
    /// The implicit first entry of every table: bytes written before epochs existed.
    pub const ORIGIN: EpochEntry = EpochEntry { epoch: 0, run: 0, start: 0 };

    fn same_term(&self, other: &EpochEntry) -> bool {
        self.epoch == other.epoch && self.run == other.run && self.start == other.start
    }
}

/// Every log's table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EpochFile {
    /// Per log (index = log id), oldest entry first.
    pub logs: Vec<Vec<EpochEntry>>,
}

impl EpochFile {
    /// The table of `log` (empty when it has none).
    pub fn log(&self, log: usize) -> &[EpochEntry] {
        self.logs.get(log).map_or(&[], Vec::as_slice)
    }

    /// The highest epoch any log holds (0: none).
    pub fn last_epoch(&self) -> u64 {
        self.logs.iter().filter_map(|t| t.last()).map(|e| e.epoch).max().unwrap_or(0)
    }

    /// Begins term `(epoch, run)` at `ends[log]` in every log (see [`begin`]).
    pub fn begin_all(&mut self, epoch: u64, run: u64, ends: &[u64]) {
        if self.logs.len() < ends.len() {
            self.logs.resize(ends.len(), Vec::new());
        }
        for (table, &end) in self.logs.iter_mut().zip(ends) {
            begin(table, EpochEntry { epoch, run, start: end });
        }
    }
}

/// Appends `entry` to `table`. A last entry that starts where `entry` does wrote nothing
/// and is replaced (so masters restarted without writes do not grow the table); entries
/// past `entry.start` (a table that ran ahead of its log) are dropped; at most
/// [`EPOCH_ENTRIES_MAX`] are kept.
pub fn begin(table: &mut Vec<EpochEntry>, entry: EpochEntry) {
    while table.last().is_some_and(|last| last.start >= entry.start) {
        table.pop();
    }
    table.push(entry);
    if table.len() > EPOCH_ENTRIES_MAX {
        let excess = table.len() - EPOCH_ENTRIES_MAX;
        table.drain(..excess);
    }
}

/// The end of entry `index` of `table` (with the implicit origin at index 0) in a log
/// ending at `end`.
fn term_end(table: &[EpochEntry], index: usize, end: u64) -> u64 {
    table.get(index + 1).map_or(end, |next| next.start).min(end)
}

/// With the implicit origin first.
fn full(table: &[EpochEntry]) -> Vec<EpochEntry> {
    let mut out = Vec::with_capacity(table.len() + 1);
    if !table.first().is_some_and(|first| first.same_term(&EpochEntry::ORIGIN)) {
        out.push(EpochEntry::ORIGIN);
    }
    out.extend_from_slice(table);
    out
}

/// How far a replica's log (`replica`, ending at `replica_end`) agrees with its master's
/// (`master`, ending at `master_end`): the newest term both tables hold, up to the
/// smaller of its two ends. Bytes of the replica past it were written by a term the
/// master never had. Only the oldest entries dropped by [`EPOCH_ENTRIES_MAX`] can leave no
/// common term but the origin.
pub fn consistent_point(
    master: &[EpochEntry],
    master_end: u64,
    replica: &[EpochEntry],
    replica_end: u64,
) -> u64 {
    let (master, replica) = (full(master), full(replica));
    for (i, entry) in replica.iter().enumerate().rev() {
        if let Some(j) = master.iter().rposition(|m| m.same_term(entry)) {
            return term_end(&replica, i, replica_end).min(term_end(&master, j, master_end));
        }
    }
    0
}

/// `{store}/epochFileCheckpoint`.
pub fn path(store: &Path) -> PathBuf {
    store.join("epochFileCheckpoint")
}

/// Reads the file (absent: no epochs yet).
///
/// # Errors
/// Unreadable or not the format: a broker must not guess its history.
pub fn load(store: &Path) -> Result<EpochFile, String> {
    let path = path(store);
    match std::fs::read(&path) {
        Ok(bytes) => ramjet_proto::body::from_json(&bytes)
            .map_err(|e| format!("{}: {e} (move it away to start without epochs)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EpochFile::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Replaces the file durably.
///
/// # Errors
/// Any I/O error.
pub async fn save(store: &Path, file: &EpochFile) -> Result<(), String> {
    let path = path(store);
    let bytes = ramjet_proto::body::to_json(file);
    crate::durable_file::write_file_durably(path.clone(), bytes)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(epoch: u64, run: u64, start: u64) -> EpochEntry {
        EpochEntry { epoch, run, start }
    }

    #[test]
    fn a_replica_of_the_same_terms_is_not_cut() {
        let t = vec![e(1, 7, 0), e(2, 8, 500)];
        assert_eq!(consistent_point(&t, 900, &t, 700), 700);
        assert_eq!(consistent_point(&t, 900, &t, 900), 900);
        assert_eq!(consistent_point(&t, 900, &t[..1], 400), 400);
    }

    #[test]
    fn a_term_the_master_never_had_is_cut_even_where_positions_coincide() {
        // Replica followed term 2 to 800; the master (restored) ran term 3 from 500 to 800,
        // then term 4 from 800.
        let replica = vec![e(1, 7, 0), e(2, 8, 500)];
        let master = vec![e(1, 7, 0), e(3, 9, 500), e(4, 10, 800)];
        assert_eq!(consistent_point(&master, 900, &replica, 800), 500);
        // A replica away across two terms: term 2 ended at 600 on the master.
        let master = vec![e(1, 7, 0), e(2, 8, 500), e(3, 9, 600)];
        assert_eq!(consistent_point(&master, 900, &replica, 800), 600);
    }

    #[test]
    fn the_era_before_epochs_is_common() {
        assert_eq!(consistent_point(&[], 900, &[], 800), 800);
        assert_eq!(consistent_point(&[e(1, 7, 500)], 900, &[], 800), 500);
        assert_eq!(consistent_point(&[e(1, 7, 500)], 900, &[], 300), 300);
        assert_eq!(consistent_point(&[], 300, &[e(1, 7, 100)], 800), 100);
    }

    #[test]
    fn a_term_that_wrote_nothing_is_replaced_and_the_table_is_bounded() {
        let mut t = vec![e(1, 7, 0)];
        begin(&mut t, e(2, 8, 0));
        assert_eq!(t, vec![e(2, 8, 0)]);
        begin(&mut t, e(3, 9, 100));
        assert_eq!(t.len(), 2);
        for i in 0..(EPOCH_ENTRIES_MAX as u64 * 2) {
            begin(&mut t, e(4 + i, 1, 200 + i));
        }
        assert_eq!(t.len(), EPOCH_ENTRIES_MAX);
        assert_eq!(t.last().map(|x| x.epoch), Some(3 + EPOCH_ENTRIES_MAX as u64 * 2));
    }
}
