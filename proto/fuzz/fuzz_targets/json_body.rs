//! Fuzz target: JSON bodies (with the fastjson key pre-pass) and message ids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramjet_proto::body::{self, HeartbeatData, LockBatchRequestBody, TopicRouteData};
use ramjet_proto::message;

fuzz_target!(|data: &[u8]| {
    let _ = body::from_json::<TopicRouteData>(data);
    let _ = body::from_json::<HeartbeatData>(data);
    let _ = body::from_json::<LockBatchRequestBody>(data);
    let _ = body::quote_bare_keys(data);
    let _ = message::decode_offset_msg_id(&String::from_utf8_lossy(data));
});
