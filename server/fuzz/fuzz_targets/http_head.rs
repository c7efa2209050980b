//! Fuzz target: the metrics listener's request head parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ramjet_server::http::{head_complete, parse_head};

fuzz_target!(|data: &[u8]| {
    let _ = head_complete(data);
    let _ = parse_head(&String::from_utf8_lossy(data));
});
