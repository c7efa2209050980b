//! `{root}/store.meta`: what a store is fixed to at creation, chiefly its log count.
//!
//! Lives on: the process, before executors start (plain `std::fs`, synchronous).
//!
//! ```text
//! off size field
//!   0    4 magic      "RJSM"
//!   4    4 version    u32 BE, 1
//!   8    4 log_count  u32 BE, 1..=128
//!  12    4 crc32c     u32 BE over bytes 0..12
//! ```
//!
//! Written once: to `store.meta.tmp`, `fsync`, rename over `store.meta`, `fsync` the root
//! directory. A reader checks the CRC before trusting any field.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::StoreError;
use crate::log_offset::LOG_ID_MAX;

const META_MAGIC: &[u8; 4] = b"RJSM";
const META_VERSION: u32 = 1;
const META_SIZE_BYTES: usize = 16;

/// Reads `{root}/store.meta`, or creates the root and the meta with `log_count_if_new`
/// logs; returns the log count the store was created with.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// assert_eq!(ramjet_storage::open_or_create_meta(dir.path(), 4).unwrap(), 4);
/// // Fixed at creation: a later call with another count gets the original.
/// assert_eq!(ramjet_storage::open_or_create_meta(dir.path(), 8).unwrap(), 4);
/// ```
///
/// # Errors
/// `Meta` for a damaged meta, an unknown version or a `log_count_if_new` outside
/// `1..=128`; `Io` when the file cannot be read or written.
pub fn open_or_create_meta(root: &Path, log_count_if_new: u32) -> Result<u32, StoreError> {
    let path = root.join("store.meta");
    match fs::read(&path) {
        Ok(bytes) => decode_meta(&bytes).map_err(|reason| StoreError::Meta { path, reason }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if !(1..=LOG_ID_MAX + 1).contains(&log_count_if_new) {
                let reason = format!("log count {log_count_if_new} outside 1..=128");
                return Err(StoreError::Meta { path, reason });
            }
            create_meta(root, log_count_if_new)?;
            Ok(log_count_if_new)
        }
        Err(error) => Err(StoreError::io("read", &path, &error)),
    }
}

fn encode_meta(log_count: u32) -> [u8; META_SIZE_BYTES] {
    let mut out = [0u8; META_SIZE_BYTES];
    out[0..4].copy_from_slice(META_MAGIC);
    out[4..8].copy_from_slice(&META_VERSION.to_be_bytes());
    out[8..12].copy_from_slice(&log_count.to_be_bytes());
    let crc = crc32c::crc32c(&out[0..12]);
    out[12..16].copy_from_slice(&crc.to_be_bytes());
    out
}

fn decode_meta(bytes: &[u8]) -> Result<u32, String> {
    let field = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    if bytes.len() != META_SIZE_BYTES {
        return Err(format!("{} bytes, expected {META_SIZE_BYTES}", bytes.len()));
    }
    let (Some(version), Some(log_count), Some(crc)) = (field(4), field(8), field(12)) else {
        return Err("truncated".to_string());
    };
    let computed = crc32c::crc32c(bytes.get(0..12).unwrap_or_default());
    if crc != computed {
        return Err(format!("crc32c {crc:#x} stored, {computed:#x} computed"));
    }
    if bytes.get(0..4) != Some(META_MAGIC.as_slice()) {
        return Err("bad magic".to_string());
    }
    if version != META_VERSION {
        return Err(format!("unknown version {version}"));
    }
    if !(1..=LOG_ID_MAX + 1).contains(&log_count) {
        return Err(format!("log count {log_count} outside 1..=128"));
    }
    Ok(log_count)
}

fn create_meta(root: &Path, log_count: u32) -> Result<(), StoreError> {
    fs::create_dir_all(root).map_err(|e| StoreError::io("create_dir", root, &e))?;
    let tmp = root.join("store.meta.tmp");
    let path = root.join("store.meta");
    let mut file = fs::File::create(&tmp).map_err(|e| StoreError::io("create", &tmp, &e))?;
    file.write_all(&encode_meta(log_count)).map_err(|e| StoreError::io("write", &tmp, &e))?;
    file.sync_all().map_err(|e| StoreError::io("fsync", &tmp, &e))?;
    fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename", &path, &e))?;
    let dir = fs::File::open(root).map_err(|e| StoreError::io("open", root, &e))?;
    dir.sync_all().map_err(|e| StoreError::io("fsync", root, &e))
}

/// Reads the log count of an existing store.
pub(crate) fn read_meta(root: &Path) -> Result<u32, StoreError> {
    let path = root.join("store.meta");
    match fs::read(&path) {
        Ok(bytes) => decode_meta(&bytes).map_err(|reason| StoreError::Meta { path, reason }),
        Err(error) => Err(StoreError::Meta {
            path,
            reason: format!("{error}; call open_or_create_meta before opening logs"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_rejects_damage() {
        let bytes = encode_meta(7);
        assert_eq!(decode_meta(&bytes), Ok(7));
        for index in 0..META_SIZE_BYTES {
            let mut damaged = bytes;
            damaged[index] ^= 0x40;
            assert!(decode_meta(&damaged).is_err(), "flip at {index} accepted");
        }
        assert!(decode_meta(&bytes[..15]).is_err());
    }
}
