//! Fuzz target: the replication wire decoder. What decodes re-encodes to the same message.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ramjet_server::replication::wire;

fuzz_target!(|data: &[u8]| {
    // The first byte picks raw bytes or a body under a valid header (to pass the checksum).
    let mut buf = match data.split_first() {
        Some((k, body)) if k & 0x80 != 0 => {
            let mut v = wire::header(k & 0x07, &[body]).to_vec();
            v.extend_from_slice(body);
            BytesMut::from(&v[..])
        }
        _ => BytesMut::from(data),
    };
    for _ in 0..64 {
        match wire::decode(&mut buf) {
            Ok(Some(m)) => {
                let mut again = wire::encode(&m);
                assert_eq!(wire::decode(&mut again).ok().flatten(), Some(m));
            }
            Ok(None) | Err(_) => break,
        }
    }
});
