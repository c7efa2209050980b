//! Fuzz target: a sequence of frames through the NameServer's dispatch, in process.
//! Every request that is not one-way gets a response that encodes; the route table stays
//! consistent.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ramjet_proto::frame::{decode_frame, encode_frame};
use ramjet_server::namesrv::service::NamesrvService;

fuzz_target!(|data: &[u8]| {
    let ns = NamesrvService::new();
    let mut buf = BytesMut::from(data);
    for connection_id in 0..64u64 {
        let frame = match decode_frame(&mut buf, 1 << 20) {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => break,
        };
        let resp = ns.dispatch(&frame, connection_id % 3);
        if !frame.header.is_oneway() {
            let mut out = BytesMut::new();
            assert!(encode_frame(&resp.header, &resp.body, &mut out).is_ok());
        }
        if connection_id % 5 == 4 {
            ns.connection_closed(connection_id % 3);
        }
        assert_eq!(ns.route_invariant_violation(), None);
    }
});
