//! The controller's durable Raft log: one append-only file, `raft.log`, under
//! `controllerStorePath`.
//!
//! Lives on: the controller executor (plain blocking file calls: the controller's own
//! thread waits for its disk, no other executor does).
//!
//! Record layout, little-endian:
//!
//! ```text
//! u32 len (kind byte + payload)  u32 crc32c(kind byte + payload)  u8 kind  payload
//! kind 1: HardState (protobuf)   kind 2: Entry (protobuf)   kind 3: Snapshot (protobuf)
//! ```
//!
//! Every Ready's records are written with one `write` and made durable with one
//! `fdatasync` before its persisted messages (votes, append acknowledgements) leave and
//! before Raft is told they are stable. Replay applies the records in file order to a
//! `MemStorage`: an entry at index i replaces every entry from i on, as `MemStorage::append`
//! does at run time, so the replayed log is the one Raft last saw. A torn or corrupt tail
//! (short record, bad CRC, unparsable payload, an entry that would leave a gap) ends the
//! replay and is cut off. Compaction ([`RaftLog::rewrite`]) writes the snapshot, the hard
//! state and the entries after it to `raft.log.tmp`, fdatasyncs it, renames it over
//! `raft.log` and fsyncs the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::prelude::{Entry, HardState, Snapshot};
use raft::storage::MemStorage;

const KIND_HARD_STATE: u8 = 1;
const KIND_ENTRY: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;
/// Largest record accepted on replay (a snapshot of the bounded state is far smaller).
pub const RECORD_BYTES_MAX: usize = 64 << 20;

/// The open log file.
pub struct RaftLog {
    dir: PathBuf,
    file: File,
    len: u64,
    pending: Vec<u8>,
}

fn encode(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = 1 + payload.len() as u32;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

fn pb<M: protobuf::Message>(m: &M) -> std::io::Result<Vec<u8>> {
    m.write_to_bytes().map_err(std::io::Error::other)
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The last snapshot record, if any (its data is the state machine's JSON).
    pub snapshot: Option<Snapshot>,
    /// Records applied.
    pub records: usize,
    /// Bytes cut off a torn tail.
    pub cut_bytes: u64,
}

impl RaftLog {
    /// Opens (creating) `dir/raft.log` and replays it into `storage`.
    ///
    /// # Errors
    /// The directory or file cannot be created, read or truncated.
    pub fn open(dir: &Path, storage: &MemStorage) -> std::io::Result<(RaftLog, Replayed)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("raft.log");
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut replayed = Replayed::default();
        let mut pos = 0usize;
        // The write guard is taken per record: MemStorage's index reads take the read lock.
        while bytes.len() - pos >= 9 {
            let len =
                u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
                    as usize;
            let crc = u32::from_le_bytes([
                bytes[pos + 4],
                bytes[pos + 5],
                bytes[pos + 6],
                bytes[pos + 7],
            ]);
            if len == 0 || len > RECORD_BYTES_MAX || bytes.len() - pos - 8 < len {
                break;
            }
            let body = &bytes[pos + 8..pos + 8 + len];
            if crc32c::crc32c(body) != crc {
                break;
            }
            let (kind, payload) = (body[0], &body[1..]);
            let ok = match kind {
                KIND_HARD_STATE => match HardState::parse_from_bytes(payload) {
                    Ok(hs) => {
                        storage.wl().set_hardstate(hs);
                        true
                    }
                    Err(_) => false,
                },
                KIND_ENTRY => match Entry::parse_from_bytes(payload) {
                    Ok(e) => {
                        let first = raft::Storage::first_index(storage).unwrap_or(1);
                        let last = raft::Storage::last_index(storage).unwrap_or(0);
                        if e.index < first || e.index > last + 1 {
                            false
                        } else {
                            storage.wl().append(&[e]).is_ok()
                        }
                    }
                    Err(_) => false,
                },
                KIND_SNAPSHOT => match Snapshot::parse_from_bytes(payload) {
                    Ok(s) => {
                        let ok = storage.wl().apply_snapshot(s.clone()).is_ok();
                        replayed.snapshot = Some(s);
                        ok
                    }
                    Err(_) => false,
                },
                _ => false,
            };
            if !ok {
                break;
            }
            replayed.records += 1;
            pos += 8 + len;
        }
        if pos < bytes.len() {
            replayed.cut_bytes = (bytes.len() - pos) as u64;
            file.set_len(pos as u64)?;
            file.sync_data()?;
        }
        Ok((
            RaftLog { dir: dir.to_path_buf(), file, len: pos as u64, pending: Vec::new() },
            replayed,
        ))
    }

    /// Queues a hard state record.
    ///
    /// # Errors
    /// Protobuf encoding failed.
    pub fn push_hard_state(&mut self, hs: &HardState) -> std::io::Result<()> {
        let payload = pb(hs)?;
        encode(&mut self.pending, KIND_HARD_STATE, &payload);
        Ok(())
    }

    /// Queues entry records.
    ///
    /// # Errors
    /// Protobuf encoding failed.
    pub fn push_entries(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        for e in entries {
            let payload = pb(e)?;
            encode(&mut self.pending, KIND_ENTRY, &payload);
        }
        Ok(())
    }

    /// Queues a snapshot record.
    ///
    /// # Errors
    /// Protobuf encoding failed.
    pub fn push_snapshot(&mut self, snap: &Snapshot) -> std::io::Result<()> {
        let payload = pb(snap)?;
        encode(&mut self.pending, KIND_SNAPSHOT, &payload);
        Ok(())
    }

    /// Writes the queued records and fdatasyncs them (nothing to do when none are queued).
    ///
    /// # Errors
    /// The write or the fdatasync failed: the caller must not acknowledge anything.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&self.pending, self.len)?;
        self.file.sync_data()?;
        self.len += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replaces the file by `snap`, `hs` and `entries` (those after the snapshot), durably.
    ///
    /// # Errors
    /// Any write, fdatasync, rename or directory fsync failed (the old file stays).
    pub fn rewrite(
        &mut self,
        snap: &Snapshot,
        hs: &HardState,
        entries: &[Entry],
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        encode(&mut buf, KIND_SNAPSHOT, &pb(snap)?);
        encode(&mut buf, KIND_HARD_STATE, &pb(hs)?);
        for e in entries {
            encode(&mut buf, KIND_ENTRY, &pb(e)?);
        }
        let tmp = self.dir.join("raft.log.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, self.dir.join("raft.log"))?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new().read(true).append(true).open(self.dir.join("raft.log"))?;
        self.len = buf.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use raft::Storage;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, data: vec![index as u8].into(), ..Default::default() }
    }

    #[test]
    fn replay_keeps_overwrites_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = MemStorage::new();
            let (mut log, _) = RaftLog::open(dir.path(), &s).unwrap();
            log.push_entries(&[entry(1, 1), entry(2, 1), entry(3, 1)]).unwrap();
            let hs = HardState { term: 2, vote: 3, commit: 1, ..Default::default() };
            log.push_hard_state(&hs).unwrap();
            log.sync().unwrap();
            log.push_entries(&[entry(2, 2)]).unwrap();
            log.sync().unwrap();
        }
        let path = dir.path().join("raft.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[7, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let s = MemStorage::new();
        let (log, replayed) = RaftLog::open(dir.path(), &s).unwrap();
        assert_eq!(replayed.cut_bytes, 6);
        assert_eq!(s.last_index().unwrap(), 2);
        assert_eq!(s.term(2).unwrap(), 2);
        let st = s.initial_state().unwrap();
        assert_eq!((st.hard_state.term, st.hard_state.vote), (2, 3));
        assert_eq!(log.len(), std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn rewrite_starts_from_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let s = MemStorage::new();
        let (mut log, _) = RaftLog::open(dir.path(), &s).unwrap();
        log.push_entries(&[entry(1, 1), entry(2, 1)]).unwrap();
        log.sync().unwrap();
        let mut snap = Snapshot { data: b"{}".to_vec().into(), ..Default::default() };
        snap.mut_metadata().index = 2;
        snap.mut_metadata().term = 1;
        let hs = HardState { term: 1, commit: 2, ..Default::default() };
        log.rewrite(&snap, &hs, &[entry(3, 1)]).unwrap();
        let s2 = MemStorage::new();
        let (_, replayed) = RaftLog::open(dir.path(), &s2).unwrap();
        assert_eq!(replayed.snapshot.unwrap().get_metadata().index, 2);
        assert_eq!(s2.first_index().unwrap(), 3);
        assert_eq!(s2.last_index().unwrap(), 3);
    }
}
