//! Fuzz target: frame splitting and both header decoders, then typed headers.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ramjet_proto::header::{CommandHeader, PullMessageRequestHeader, SendMessageRequestHeader};
use ramjet_proto::{binary_header, frame, json_header};

fuzz_target!(|data: &[u8]| {
    let _ = json_header::decode(data);
    let _ = binary_header::decode(data);
    let mut buf = BytesMut::from(data);
    for _ in 0..64 {
        match frame::decode_frame(&mut buf, 1 << 20) {
            Ok(Some(f)) => {
                let ext = &f.header.ext_fields;
                let _ = SendMessageRequestHeader::decode_for_code(f.header.code, ext);
                let _ = PullMessageRequestHeader::decode(ext);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
