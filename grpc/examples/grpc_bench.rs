//! Load over the broker's gRPC port, to compare with `ramjet-bench` over remoting.
//!
//! ```text
//! cargo run --release -p ramjet-grpc --example grpc_bench -- produce 127.0.0.1:8081 TOPIC \
//!     [--messages N] [--inflight K] [--size BYTES]
//! cargo run --release -p ramjet-grpc --example grpc_bench -- consume 127.0.0.1:8081 TOPIC \
//!     [--messages N] [--inflight K] [--group G]
//! ```
//!
//! produce: K concurrent SendMessage calls of one message each until N are stored; consume:
//! K concurrent ReceiveMessage (batch 32, invisible 60 s, long polling 1 s) each followed by
//! one AckMessage of the batch, until N are acked. Prints one JSON line: messages/s and
//! per-call latency percentiles (µs). One current-thread tokio runtime.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ramjet_grpc::pb;
use ramjet_grpc::pb::messaging_service_client::MessagingServiceClient;
use tonic::transport::Channel;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2).find(|w| w[0] == name).map_or(default, |w| w[1].parse().expect(name))
}

fn res(name: &str) -> Option<pb::Resource> {
    Some(pb::Resource { resource_namespace: String::new(), name: name.into() })
}

fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(args.len() >= 4, "usage: grpc_bench produce|consume ADDR TOPIC [options]");
    let (mode, addr, topic) = (args[1].clone(), args[2].clone(), args[3].clone());
    let messages = arg(&args, "--messages", 100_000);
    let inflight = arg(&args, "--inflight", 32) as usize;
    let size = arg(&args, "--size", 1024) as usize;
    let group = args
        .windows(2)
        .find(|w| w[0] == "--group")
        .map_or("grpc-bench".to_string(), |w| w[1].clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async move {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let client = MessagingServiceClient::new(channel)
            .max_decoding_message_size(64 << 20);
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let produce = mode == "produce";
        let mut tasks = Vec::new();
        for t in 0..inflight {
            let mut c = client.clone();
            let (topic, group, done) = (topic.clone(), group.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut n = 0u64;
                loop {
                    if done.load(Ordering::Relaxed) >= messages {
                        break;
                    }
                    let at = Instant::now();
                    if produce {
                        let m = pb::Message {
                            topic: res(&topic),
                            user_properties: Default::default(),
                            system_properties: Some(pb::SystemProperties {
                                message_id: format!("B{t:04}{n:012}"),
                                message_type: pb::MessageType::Normal as i32,
                                ..Default::default()
                            }),
                            body: vec![b'x'; size].into(),
                        };
                        n += 1;
                        let r = c.send_message(pb::SendMessageRequest { messages: vec![m] }).await;
                        let ok = r.ok().and_then(|r| r.into_inner().status.map(|s| s.code)) == Some(pb::Code::Ok as i32);
                        assert!(ok, "send failed");
                        lat.push(at.elapsed().as_micros() as u64);
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let req = pb::ReceiveMessageRequest {
                            group: res(&group),
                            message_queue: Some(pb::MessageQueue { topic: res(&topic), id: -1, ..Default::default() }),
                            filter_expression: None,
                            batch_size: 32,
                            invisible_duration: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
                            auto_renew: false,
                            long_polling_timeout: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
                            attempt_id: None,
                        };
                        let mut s = c.receive_message(req).await.expect("receive").into_inner();
                        let mut entries = Vec::new();
                        while let Some(r) = s.message().await.expect("stream") {
                            if let Some(pb::receive_message_response::Content::Message(m)) = r.content {
                                let sys = m.system_properties.unwrap_or_default();
                                entries.push(pb::AckMessageEntry {
                                    message_id: sys.message_id,
                                    receipt_handle: sys.receipt_handle.unwrap_or_default(),
                                    lite_topic: None,
                                });
                            }
                        }
                        if entries.is_empty() {
                            continue;
                        }
                        let k = entries.len() as u64;
                        c.ack_message(pb::AckMessageRequest { group: res(&group), topic: res(&topic), entries })
                            .await
                            .expect("ack");
                        lat.push(at.elapsed().as_micros() as u64);
                        done.fetch_add(k, Ordering::Relaxed);
                    }
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.expect("task"));
        }
        let secs = started.elapsed().as_secs_f64();
        let total = done.load(Ordering::Relaxed);
        let calls = lat.len();
        println!(
            "{{\"mode\":\"{}\",\"messages\":{total},\"seconds\":{secs:.2},\"msgs_per_s\":{:.0},\"calls\":{calls},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
            args[1],
            total as f64 / secs,
            pct(&mut lat, 0.50),
            pct(&mut lat, 0.99),
            pct(&mut lat, 1.0),
        );
    });
}
