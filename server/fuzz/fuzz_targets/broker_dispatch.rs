//! Fuzz target: the broker's whole request path after decoding. One broker (two shards, an
//! O_DIRECT store under `RAMJET_FUZZ_STORE` or ./fuzz-store, which must be on a real
//! filesystem) runs for the whole fuzzing session; each input is one frame (after the
//! length prefix) dispatched as a connection would. A request that is not one-way must be
//! answered with a response that encodes; a panic on a shard leaves it unanswered, which
//! aborts here. server/tests/fuzz_dispatch.rs runs the same checks, bounded, in CI.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ramjet_proto::frame::{decode_frame_bytes, encode_frame};
use ramjet_server::config::BrokerConfig;
use ramjet_server::runtime::RunningBroker;

fn broker() -> &'static RunningBroker {
    static BROKER: OnceLock<RunningBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        let store = std::env::var("RAMJET_FUZZ_STORE").unwrap_or_else(|_| "fuzz-store".into());
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let config = BrokerConfig {
            listen_port: 0,
            namesrv_port: 0,
            store_path: store.into(),
            shards: 2,
            broker_ip: localhost,
            bind_ip: localhost,
            segment_size_bytes: 16 << 20,
            long_poll_hold_ms_max: 50,
            spin_before_park_us: 0,
            ..BrokerConfig::default()
        };
        ramjet_server::runtime::start(config).expect("broker starts")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&shard, frame)) = data.split_first() else { return };
    let Ok(frame) = decode_frame_bytes(Bytes::copy_from_slice(frame)) else { return };
    if frame.header.is_response() {
        return;
    }
    let (oneway, opaque) = (frame.header.is_oneway(), frame.header.opaque);
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);
    let resp = broker()
        .dispatch(usize::from(shard), frame, peer)
        .recv_timeout(Duration::from_secs(20))
        .expect("answered: a shard stalled or died");
    if oneway {
        return;
    }
    let resp = resp.expect("a response to a request that is not one-way");
    assert_eq!(resp.header.opaque, opaque);
    let mut out = BytesMut::new();
    let body: Vec<u8> = resp.body_parts().flat_map(|p| p.iter().copied()).collect();
    encode_frame(&resp.header, &body, &mut out).expect("the response encodes");
});
