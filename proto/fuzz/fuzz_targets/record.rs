//! Fuzz target: stored records (decoder, view and slot check), pull bodies and batch bodies.
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
    let _ = message::classify_slot(data, u64::MAX, 1 << 22);
    if let Ok(view) = message::RecordView::new(data) {
        let _ = (view.born_host(), view.store_host(), view.store_timestamp());
        let _ = (view.body(), view.topic(), view.properties(), view.layout());
    }
});
