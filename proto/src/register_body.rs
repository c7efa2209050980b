//! The compressed REGISTER_BROKER (103) body, as the reference's
//! `RegisterBrokerBody.encode(true)` writes it (header `compressed=true`; `bodyCrc32` is the
//! CRC of these compressed bytes, as for a JSON body).
//!
//! The body is one zlib stream (`DeflaterOutputStream`) of:
//!
//! ```text
//! i32 n | n bytes   DataVersion JSON
//! i32 count         topic configs, then for each:
//!   i32 n | n bytes   TopicConfig.encode(): "name readQ writeQ perm filterType[ attributesJson]"
//!                     (space-separated; topicSysFlag and order are not carried)
//! i32 n | n bytes   filterServerList JSON array
//! i32 count         static-topic mappings (5.x brokers), then for each: i32 n | n bytes JSON
//! ```
//! All integers big-endian. The mappings are skipped (ramjet has no static topics); an
//! older broker's body ends after the filter server list.
//!
//! Decoding inflates as it reads and stops at [`INFLATED_BYTES_MAX`], so a zip bomb costs
//! at most that much work and memory; no count or length is trusted before the bytes it
//! announces have arrived.

use std::io::{Read, Write};

use crate::body::{
    self, DataVersion, RegisterBrokerBody, TopicConfig, TopicConfigSerializeWrapper,
};

/// Most bytes a compressed registration body may inflate to: 64 MiB, about 400,000 topics
/// with 127-byte names.
pub const INFLATED_BYTES_MAX: usize = 64 << 20;

/// Most topics one compressed body may announce (the in-memory table of 500,000 topics
/// is about 75 MB).
pub const TOPICS_MAX: usize = 500_000;

/// Longest single field (one topic config's text, the data version, a mapping).
const FIELD_BYTES_MAX: usize = 1 << 20;

/// A compressed body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterBodyError {
    /// The zlib stream is invalid or ends early.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// The inflated body passes [`INFLATED_BYTES_MAX`] or a field its own limit.
    TooLarge {
        /// What was being read.
        what: &'static str,
    },
    /// A field does not parse.
    Bad {
        /// What was being read.
        what: &'static str,
    },
}

impl std::fmt::Display for RegisterBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterBodyError::Truncated { what } => write!(f, "compressed body ends in {what}"),
            RegisterBodyError::TooLarge { what } => {
                write!(f, "compressed body too large at {what} (inflated max {INFLATED_BYTES_MAX})")
            }
            RegisterBodyError::Bad { what } => write!(f, "compressed body: bad {what}"),
        }
    }
}

impl std::error::Error for RegisterBodyError {}

/// Encodes `body` compressed, as `RegisterBrokerBody.encode(true)`.
pub fn encode_compressed(body: &RegisterBrokerBody) -> Vec<u8> {
    let mut raw = Vec::new();
    let wrapper = &body.topic_config_serialize_wrapper;
    put_field(&mut raw, &body::to_json(&wrapper.data_version));
    put_i32(&mut raw, wrapper.topic_config_table.len());
    for config in wrapper.topic_config_table.values() {
        put_field(&mut raw, topic_config_text(config).as_bytes());
    }
    put_field(&mut raw, &body::to_json(&body.filter_server_list));
    put_i32(&mut raw, 0); // No static-topic mappings.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = z.write_all(&raw);
    z.finish().unwrap_or_default()
}

fn put_i32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&i32::try_from(n).unwrap_or(i32::MAX).to_be_bytes());
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    put_i32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// `TopicConfig.encode()`: name, queue counts, perm and filter type, space-separated.
fn topic_config_text(c: &TopicConfig) -> String {
    format!(
        "{} {} {} {} {}",
        c.topic_name, c.read_queue_nums, c.write_queue_nums, c.perm, c.topic_filter_type
    )
}

/// `TopicConfig.decode()`: at least five space-separated words; attributes are ignored.
fn parse_topic_config(text: &str) -> Option<TopicConfig> {
    let mut words = text.split(' ');
    let topic_name = words.next().filter(|w| !w.is_empty())?.to_string();
    let read_queue_nums = words.next()?.parse().ok()?;
    let write_queue_nums = words.next()?.parse().ok()?;
    let perm = words.next()?.parse().ok()?;
    let topic_filter_type = words.next()?;
    if topic_filter_type != "SINGLE_TAG" && topic_filter_type != "MULTI_TAG" {
        return None; // The reference's TopicFilterType.valueOf throws.
    }
    Some(TopicConfig {
        topic_name,
        read_queue_nums,
        write_queue_nums,
        perm,
        topic_filter_type: topic_filter_type.to_string(),
        ..TopicConfig::default()
    })
}

struct Inflated<R> {
    reader: std::io::Take<R>,
}

impl<R: Read> Inflated<R> {
    fn exact(&mut self, n: usize, what: &'static str) -> Result<Vec<u8>, RegisterBodyError> {
        let mut buf = Vec::new();
        let got = (&mut self.reader)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(|_| RegisterBodyError::Truncated { what })?;
        if got < n {
            return Err(if self.reader.limit() == 0 {
                RegisterBodyError::TooLarge { what }
            } else {
                RegisterBodyError::Truncated { what }
            });
        }
        Ok(buf)
    }

    fn i32(&mut self, what: &'static str) -> Result<usize, RegisterBodyError> {
        let b = self.exact(4, what)?;
        let n = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        usize::try_from(n).map_err(|_| RegisterBodyError::Bad { what })
    }

    fn field(&mut self, what: &'static str) -> Result<Vec<u8>, RegisterBodyError> {
        let n = self.i32(what)?;
        if n > FIELD_BYTES_MAX {
            return Err(RegisterBodyError::TooLarge { what });
        }
        self.exact(n, what)
    }
}

/// Decodes a compressed body, as `RegisterBrokerBody.decode(data, true, version)`.
///
/// # Errors
/// An invalid zlib stream, a body that ends early, passes [`INFLATED_BYTES_MAX`] or holds
/// a field that does not parse.
pub fn decode_compressed(data: &[u8]) -> Result<RegisterBrokerBody, RegisterBodyError> {
    let decoder = flate2::read::ZlibDecoder::new(data);
    let mut r = Inflated { reader: decoder.take(INFLATED_BYTES_MAX as u64) };
    let version = r.field("data version")?;
    let data_version: DataVersion =
        body::from_json(&version).map_err(|_| RegisterBodyError::Bad { what: "data version" })?;
    let count = r.i32("topic count")?;
    if count > TOPICS_MAX {
        return Err(RegisterBodyError::TooLarge { what: "topic count" });
    }
    let mut table = std::collections::HashMap::new();
    for _ in 0..count {
        let text = r.field("topic config")?;
        let config = std::str::from_utf8(&text)
            .ok()
            .and_then(parse_topic_config)
            .ok_or(RegisterBodyError::Bad { what: "topic config" })?;
        table.insert(config.topic_name.clone(), config);
    }
    let filters = r.field("filter server list")?;
    let filter_server_list: Vec<String> = body::from_json(&filters).unwrap_or_default();
    // A 5.x broker's static-topic mappings follow (ramjet has none to keep: read and
    // dropped); an older broker's body ends here.
    let mut count = Vec::new();
    (&mut r.reader)
        .take(4)
        .read_to_end(&mut count)
        .map_err(|_| RegisterBodyError::Truncated { what: "mapping count" })?;
    if let [a, b, c, d] = count[..] {
        let n = usize::try_from(i32::from_be_bytes([a, b, c, d]))
            .map_err(|_| RegisterBodyError::Bad { what: "mapping count" })?;
        for _ in 0..n {
            r.field("mapping")?;
        }
    } else if !count.is_empty() {
        return Err(RegisterBodyError::Truncated { what: "mapping count" });
    }
    Ok(RegisterBrokerBody {
        topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
            topic_config_table: table,
            data_version,
        },
        filter_server_list,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn zlib(raw: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(raw).unwrap();
        z.finish().unwrap()
    }

    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    // Goal: the layout written by hand from the reference's encode(true) decodes, with
    // attributes, a 5.x mapping section, and a 4.x body without it.
    #[test]
    fn a_body_laid_out_as_the_reference_writes_it_decodes() {
        for with_mappings in [false, true] {
            let mut raw = Vec::new();
            field(&mut raw, br#"{"counter":7,"stateVersion":0,"timestamp":1700000000000}"#);
            raw.extend_from_slice(&2i32.to_be_bytes());
            field(&mut raw, b"TopicA 8 8 6 SINGLE_TAG {\"+delete.policy\":\"COMPACTION\"}");
            field(&mut raw, b"TopicB 4 2 7 MULTI_TAG");
            field(&mut raw, b"[\"10.0.0.1:1\"]");
            if with_mappings {
                raw.extend_from_slice(&1i32.to_be_bytes());
                field(&mut raw, br#"{"topic":"TopicA","bname":"b","epoch":1}"#);
            }
            let b = decode_compressed(&zlib(&raw)).unwrap();
            let w = &b.topic_config_serialize_wrapper;
            assert_eq!(w.data_version.counter, 7);
            assert_eq!(w.topic_config_table.len(), 2);
            let a = &w.topic_config_table["TopicA"];
            assert_eq!((a.read_queue_nums, a.write_queue_nums, a.perm), (8, 8, 6));
            assert_eq!(w.topic_config_table["TopicB"].topic_filter_type, "MULTI_TAG");
            assert_eq!(b.filter_server_list, vec!["10.0.0.1:1".to_string()]);
        }
    }

    #[test]
    fn encode_and_decode_agree() {
        let mut body = RegisterBrokerBody::default();
        for i in 0..1000 {
            let c = TopicConfig { topic_name: format!("t{i}"), ..TopicConfig::default() };
            body.topic_config_serialize_wrapper.topic_config_table.insert(c.topic_name.clone(), c);
        }
        let bytes = encode_compressed(&body);
        assert_eq!(decode_compressed(&bytes).unwrap(), body);
    }

    #[test]
    fn garbage_truncation_and_bombs_are_errors() {
        assert!(decode_compressed(b"not zlib").is_err());
        let mut raw = Vec::new();
        field(&mut raw, b"{}");
        raw.extend_from_slice(&3i32.to_be_bytes());
        field(&mut raw, b"T 1 1 6 SINGLE_TAG");
        assert!(matches!(decode_compressed(&zlib(&raw)), Err(RegisterBodyError::Truncated { .. })));
        let mut bad = Vec::new();
        field(&mut bad, b"{}");
        bad.extend_from_slice(&1i32.to_be_bytes());
        field(&mut bad, b"T x 1 6 SINGLE_TAG");
        assert!(matches!(decode_compressed(&zlib(&bad)), Err(RegisterBodyError::Bad { .. })));
        let mut many = Vec::new();
        field(&mut many, b"{}");
        many.extend_from_slice(&((TOPICS_MAX + 1) as i32).to_be_bytes());
        assert!(matches!(
            decode_compressed(&zlib(&many)),
            Err(RegisterBodyError::TooLarge { what: "topic count" })
        ));
        let mut bomb = Vec::new();
        field(&mut bomb, b"{}");
        bomb.extend_from_slice(&1i32.to_be_bytes());
        field(&mut bomb, b"T 1 1 6 SINGLE_TAG");
        field(&mut bomb, b"[]");
        bomb.extend_from_slice(&i32::MAX.to_be_bytes());
        let mapping = vec![b'x'; FIELD_BYTES_MAX];
        for _ in 0..(INFLATED_BYTES_MAX / FIELD_BYTES_MAX + 1) {
            field(&mut bomb, &mapping);
        }
        assert!(matches!(decode_compressed(&zlib(&bomb)), Err(RegisterBodyError::TooLarge { .. })));
    }
}
