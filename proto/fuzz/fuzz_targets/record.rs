//! Fuzz target: stored records, pull bodies and batch bodies.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ramjet_proto::{batch, message};

fuzz_target!(|data: &[u8]| {
    let b = Bytes::copy_from_slice(data);
    let _ = message::decode_record(&b, true);
    let _ = message::decode_records(&b, false);
    let _ = batch::decode_batch(&b);
    let _ = message::parse_properties(data);
});
