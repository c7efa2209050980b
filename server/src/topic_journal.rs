//! The topic table's append-only journal: one line per change since `topics.json` was last
//! written whole, so a topic create costs one small append and one `fdatasync`, whatever
//! the number of topics.
//!
//! Lives on: shard 0 (through [`crate::topic::TopicManager`]); the file operations run on
//! glommio's blocking pool.
//!
//! ```text
//! {store}/config/topics.json      the table as of the last compaction (RocketMQ's
//!                                 TopicConfigSerializeWrapper, readable by the reference)
//! {store}/config/topics.journal   changes since, one JSON object per line:
//!                                 {"put":{..TopicConfig..},"version":{..DataVersion..}}
//!                                 {"delete":"topic","version":{..DataVersion..}}
//! ```
//!
//! The table is `topics.json` with every journal line applied in order. Lines are absolute
//! (a put carries the whole config), so applying them again over a `topics.json` that
//! already holds them changes nothing: compaction writes `topics.json` durably first, then
//! empties the journal, and a crash between the two loses nothing. A torn last line (a crash
//! inside an append that was never acknowledged) is ignored; a bad line before the last is
//! corruption and refuses the start, as a bad `topics.json` does.
//!
//! Compaction happens at start and once the journal holds more lines than
//! `COMPACT_LINES_MIN` plus half the table, so its cost per change stays constant on
//! average (one whole-table write per `n / 2` changes).

use std::io::Write;
use std::path::Path;

use ramjet_proto::body::{self, DataVersion, TopicConfig};
use serde::{Deserialize, Serialize};

/// Journal lines always allowed before compaction, whatever the table's size.
pub const COMPACT_LINES_MIN: usize = 1024;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    /// The topic's new configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub put: Option<TopicConfig>,
    /// A topic removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
    /// The table's version after the change.
    #[serde(default)]
    pub version: DataVersion,
}

impl JournalLine {
    /// The line's bytes, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = body::to_json(self);
        out.push(b'\n');
        out
    }
}

/// Whether a journal of `lines` lines over a table of `topics` topics is due for compaction.
pub fn compaction_due(lines: usize, topics: usize) -> bool {
    lines > COMPACT_LINES_MIN + topics / 2
}

/// Reads the journal's lines (none when the file is absent).
///
/// # Errors
/// An unreadable file, or a line that does not parse and is not the last.
pub fn read(path: &Path) -> Result<Vec<JournalLine>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let complete = bytes.ends_with(b"\n");
    let pieces: Vec<&[u8]> = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut lines = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.iter().enumerate() {
        match body::from_json::<JournalLine>(piece) {
            Ok(line) => lines.push(line),
            // The last line of a journal that does not end in a newline was torn by a
            // crash during its (never acknowledged) append.
            Err(_) if i + 1 == pieces.len() && !complete => break,
            Err(e) => return Err(format!("{} line {}: {e}", path.display(), i + 1)),
        }
    }
    Ok(lines)
}

/// Appends `lines` (whole encoded lines) and fdatasyncs. Blocking.
///
/// # Errors
/// Any I/O error; the caller then rewrites the table whole at its next persist.
pub fn append_sync(path: &Path, lines: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    f.write_all(lines)?;
    f.sync_data()
}

/// Writes `topics.json` whole (durably), then empties the journal. Blocking.
///
/// # Errors
/// Any I/O error of either step.
pub fn compact_sync(json_path: &Path, json: &[u8], journal: &Path) -> std::io::Result<()> {
    crate::durable_file::write_file_durably_sync(json_path, json)?;
    if journal.exists() {
        let f = std::fs::OpenOptions::new().write(true).truncate(true).open(journal)?;
        f.sync_all()
    } else {
        // Created durably (directory entry synced) so later appends are never orphaned.
        crate::durable_file::write_file_durably_sync(journal, b"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(name: &str, counter: i64) -> JournalLine {
        JournalLine {
            put: Some(crate::topic::topic_config(name, 4, 6)),
            delete: None,
            version: DataVersion { counter, ..DataVersion::default() },
        }
    }

    #[test]
    fn lines_round_trip_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("topics.journal");
        assert!(read(&path).expect("absent").is_empty());
        let del = JournalLine {
            put: None,
            delete: Some("a".into()),
            version: DataVersion { counter: 3, ..DataVersion::default() },
        };
        let mut bytes = put("a", 1).encode();
        bytes.extend(put("b", 2).encode());
        bytes.extend(del.encode());
        append_sync(&path, &bytes).expect("append");
        assert_eq!(read(&path).expect("reads"), vec![put("a", 1), put("b", 2), del.clone()]);
        let torn = put("c", 4).encode();
        append_sync(&path, &torn[..torn.len() / 2]).expect("append torn");
        assert_eq!(read(&path).expect("torn tail ignored").len(), 3);
        append_sync(&path, b"\n").expect("complete the bad line");
        append_sync(&path, &put("d", 5).encode()).expect("append");
        assert!(read(&path).is_err(), "a bad line before the last is corruption");
    }

    #[test]
    fn compaction_is_due_past_a_constant_plus_half_the_table() {
        assert!(!compaction_due(COMPACT_LINES_MIN, 0));
        assert!(compaction_due(COMPACT_LINES_MIN + 1, 0));
        assert!(!compaction_due(COMPACT_LINES_MIN + 5_000, 10_000));
        assert!(compaction_due(COMPACT_LINES_MIN + 5_001, 10_000));
    }
}
