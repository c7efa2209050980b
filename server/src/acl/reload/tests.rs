//! Goal: the reloader picks up a changed file, ignores an unchanged one, and keeps the
//! last good configuration on a bad or vanished file. Method: a file source in memory
//! whose stamp the test sets, so no clock or sleep is involved; one test on a real file.

use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

use super::*;

struct Memory(RefCell<Option<(FileStamp, String)>>);

impl Memory {
    fn new(text: &str, second: u64) -> Memory {
        let m = Memory(RefCell::new(None));
        m.write(text, second);
        m
    }

    fn write(&self, text: &str, second: u64) {
        let stamp = FileStamp {
            modified: Some(UNIX_EPOCH + Duration::from_secs(second)),
            size_bytes: text.len() as u64,
        };
        *self.0.borrow_mut() = Some((stamp, text.to_string()));
    }

    fn remove(&self) {
        *self.0.borrow_mut() = None;
    }
}

impl FileSource for Memory {
    fn stamp(&self, _: &Path) -> io::Result<FileStamp> {
        self.0.borrow().as_ref().map(|(s, _)| *s).ok_or(io::ErrorKind::NotFound.into())
    }
    fn read(&self, _: &Path) -> io::Result<String> {
        self.0.borrow().as_ref().map(|(_, t)| t.clone()).ok_or(io::ErrorKind::NotFound.into())
    }
}

const ONE: &str = "accounts:\n  - accessKey: account1\n    secretKey: 12345678\n";
const TWO: &str = "accounts:\n  - accessKey: account2\n    secretKey: 12345678\n";
const BAD: &str = "accounts:\n  - accessKey: account3\n    secretKey: [\n";

fn keys(r: &AclReloader) -> Vec<String> {
    r.current().accounts.keys().cloned().collect()
}

#[test]
fn reloads_on_change_and_keeps_last_good_on_bad_file() {
    let file = Memory::new(ONE, 1);
    let mut r =
        AclReloader::open(PathBuf::from("plain_acl.yml"), &file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys(&r), ["account1"]);
    assert!(matches!(r.poll(&file), Reload::Unchanged));

    file.write(TWO, 2);
    assert!(matches!(r.poll(&file), Reload::Reloaded));
    assert_eq!(keys(&r), ["account2"]);

    file.write(BAD, 3);
    assert!(matches!(r.poll(&file), Reload::KeptLastGood(ConfigError::Yaml { .. })));
    assert_eq!(keys(&r), ["account2"]);
    assert!(matches!(r.poll(&file), Reload::Unchanged), "a bad file is reported once");

    file.remove();
    assert!(matches!(r.poll(&file), Reload::KeptLastGood(ConfigError::Io { .. })));
    assert!(matches!(r.poll(&file), Reload::Unchanged), "a vanished file is reported once");
    assert_eq!(keys(&r), ["account2"]);

    // Same size, new mtime: still a change.
    file.write(ONE, 4);
    assert!(matches!(r.poll(&file), Reload::Reloaded));
    assert_eq!(keys(&r), ["account1"]);
}

#[test]
fn bad_or_missing_file_at_start_is_an_error() {
    let file = Memory::new(BAD, 1);
    assert!(AclReloader::open(PathBuf::from("x"), &file).is_err());
    file.remove();
    assert!(matches!(AclReloader::open(PathBuf::from("x"), &file), Err(ConfigError::Io { .. })));
}

#[test]
fn real_file_edit_is_picked_up() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("plain_acl.yml");
    std::fs::write(&path, ONE).unwrap_or_else(|e| panic!("{e}"));
    let mut r = AclReloader::open(path.clone(), &Fs).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(r.poll(&Fs), Reload::Unchanged));
    // A different size is a change whatever the mtime granularity.
    std::fs::write(&path, format!("{TWO}\n# edited\n")).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(r.poll(&Fs), Reload::Reloaded));
    assert_eq!(keys(&r), ["account2"]);
}
