//! Consumer offsets of broadcasting consumers, kept in a local file.
//!
//! Lives on: the executor of the push consumer that owns it.
//!
//! In broadcasting mode every member consumes every message, so the broker keeps no
//! offset for the group; each member keeps its own, as the reference's
//! `LocalFileOffsetStore` does, in `{dir}/{client id}/{group}/offsets.json`:
//!
//! ```text
//! {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:42,
//!                 {"brokerName":"b","queueId":1,"topic":"t"}:17}}
//! ```
//!
//! That is fastjson's encoding of `OffsetSerializeWrapper` (a JSON object used as a map
//! key), so the file is the one a Java consumer writes. Saving writes
//! `offsets.json.tmp`, fsyncs it, keeps the previous file as `offsets.json.bak` and renames
//! the new one in place; loading falls back to the `.bak` file when the main one is
//! missing or unreadable. The files are small and written every few seconds, so plain
//! blocking `std::fs` calls are used.
//!
//! The encoding and decoding are pure; only [`load`] and [`save`] touch the disk.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ramjet_proto::body::from_json;

use crate::error::ClientError;
use crate::message::MessageQueue;

/// The offsets file of `group` for `client_id` under `dir`. Characters that cannot be
/// in a file name (`/`, NUL) in the id or group are replaced by `_`.
pub fn offsets_path(dir: &Path, client_id: &str, group: &str) -> PathBuf {
    let clean = |s: &str| s.replace(['/', '\0'], "_");
    dir.join(clean(client_id)).join(clean(group)).join("offsets.json")
}

/// The file's text for `offsets`, queues in sorted order.
pub fn encode(offsets: &[(MessageQueue, i64)]) -> Vec<u8> {
    let mut sorted: Vec<&(MessageQueue, i64)> = offsets.iter().collect();
    sorted.sort();
    let entries: Vec<String> = sorted
        .iter()
        .map(|(q, offset)| {
            let key = serde_json::json!({
                "brokerName": q.broker_name,
                "queueId": q.queue_id,
                "topic": q.topic,
            });
            format!("{key}:{offset}")
        })
        .collect();
    format!("{{\"offsetTable\":{{{}}}}}", entries.join(",")).into_bytes()
}

/// Parses a file written by [`encode`] or by a Java consumer.
///
/// # Errors
/// `InvalidArgument` naming what does not parse.
pub fn decode(bytes: &[u8]) -> Result<Vec<(MessageQueue, i64)>, ClientError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Wrapper {
        offset_table: HashMap<String, serde_json::Value>,
    }
    let invalid = |reason: String| ClientError::InvalidArgument { reason };
    let wrapper: Wrapper =
        from_json(bytes).map_err(|e| invalid(format!("offsets file does not parse: {e}")))?;
    let mut out = Vec::with_capacity(wrapper.offset_table.len());
    for (key, value) in wrapper.offset_table {
        let queue: MessageQueue = from_json(key.as_bytes())
            .map_err(|e| invalid(format!("offsets file key {key:?}: {e}")))?;
        // fastjson writes an AtomicLong as a number; accept a numeric string as well.
        let offset = value
            .as_i64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| invalid(format!("offsets file value {value} of {key:?}")))?;
        out.push((queue, offset));
    }
    out.sort();
    Ok(out)
}

/// Reads the offsets at `path`, or its `.bak` copy; empty when neither exists.
///
/// # Errors
/// `Io` when a file exists but cannot be read, `InvalidArgument` when neither parses.
pub fn load(path: &Path) -> Result<Vec<(MessageQueue, i64)>, ClientError> {
    let mut first_error = None;
    for candidate in [path.to_path_buf(), with_suffix(path, ".bak")] {
        match std::fs::read(&candidate) {
            Ok(bytes) => match decode(&bytes) {
                Ok(offsets) => return Ok(offsets),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                first_error.get_or_insert(io_error(&candidate, "read", &e));
            }
        }
    }
    first_error.map_or(Ok(Vec::new()), Err)
}

/// Writes `offsets` to `path` (see the module notes), creating its directory.
///
/// # Errors
/// `Io` for any failed file operation.
pub fn save(path: &Path, offsets: &[(MessageQueue, i64)]) -> Result<(), ClientError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "create directory", &e))?;
    }
    let tmp = with_suffix(path, ".tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| io_error(&tmp, "create", &e))?;
    file.write_all(&encode(offsets)).map_err(|e| io_error(&tmp, "write", &e))?;
    file.sync_data().map_err(|e| io_error(&tmp, "fsync", &e))?;
    drop(file);
    if path.exists() {
        let bak = with_suffix(path, ".bak");
        std::fs::copy(path, &bak).map_err(|e| io_error(&bak, "copy", &e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, "rename", &e))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn io_error(path: &Path, op: &str, e: &std::io::Error) -> ClientError {
    ClientError::Io { path: path.display().to_string(), message: format!("{op}: {e}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(topic: &str, id: i32) -> MessageQueue {
        MessageQueue { topic: topic.into(), broker_name: "broker-a".into(), queue_id: id }
    }

    #[test]
    fn encode_writes_fastjson_object_keys_and_decode_reads_them_back() {
        let offsets = vec![(q("t", 1), 17), (q("t", 0), 42), (q("%RETRY%g", 0), 3)];
        let text = String::from_utf8(encode(&offsets)).expect("utf8");
        assert!(
            text.starts_with(
                r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"%RETRY%g"}:3,"#
            ),
            "{text}"
        );
        let mut want = offsets.clone();
        want.sort();
        assert_eq!(decode(text.as_bytes()).expect("decodes"), want);
        assert_eq!(decode(br#"{"offsetTable":{}}"#).expect("empty"), []);
    }

    #[test]
    fn decode_reads_a_java_file_and_rejects_garbage() {
        let java = br#"{"offsetTable":{{"brokerName":"broker-a","queueId":2,"topic":"t"}:5,
            {"brokerName":"broker-a","queueId":3,"topic":"t"}:"6"}}"#;
        assert_eq!(decode(java).expect("decodes"), [(q("t", 2), 5), (q("t", 3), 6)]);
        assert!(decode(b"not json").is_err());
        assert!(decode(br#"{"offsetTable":{{"topic":"t"}:true}}"#).is_err());
    }

    #[test]
    fn save_and_load_round_trip_with_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = offsets_path(dir.path(), "127.0.0.1@1#2/x", "g");
        assert!(path.ends_with("127.0.0.1@1#2_x/g/offsets.json"));
        assert_eq!(load(&path).expect("missing is empty"), []);
        save(&path, &[(q("t", 0), 1)]).expect("save");
        save(&path, &[(q("t", 0), 2)]).expect("save again");
        assert_eq!(load(&path).expect("load"), [(q("t", 0), 2)]);
        std::fs::write(&path, b"torn").expect("corrupt");
        assert_eq!(load(&path).expect("falls back to .bak"), [(q("t", 0), 1)]);
    }
}
