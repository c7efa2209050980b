//! Fuzz target: whatever decodes re-encodes without a panic (an error is allowed), in both
//! header encodings, and a clipped echo of any text stays bounded.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ramjet_proto::frame::{decode_frame, encode_frame};
use ramjet_proto::text::{clip_echo, CUT_MARK_BYTES_MAX, ECHO_BYTES_MAX};
use ramjet_proto::SerializeType;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    assert!(clip_echo(&text).len() <= ECHO_BYTES_MAX + CUT_MARK_BYTES_MAX);
    let mut buf = BytesMut::from(data);
    if let Ok(Some(frame)) = decode_frame(&mut buf, 1 << 20) {
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let mut h = frame.header.clone();
            h.serialize_type = st;
            let mut out = BytesMut::new();
            let _ = encode_frame(&h, &frame.body, &mut out);
        }
    }
});
