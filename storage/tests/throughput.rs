//! A rough throughput report (ignored by default; numbers, never assertions on timing):
//! `cargo test -p ramjet-storage --test throughput -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use common::*;
use ramjet_storage::FlushMode;

#[test]
#[ignore]
fn append_throughput_report() {
    for flush in [FlushMode::Sync, FlushMode::Async] {
        for inflight in [1usize, 64] {
            let dir = store_dir();
            let mut config = config(dir.path(), flush);
            config.segment_size_bytes = 64 << 20;
            run(|| async move {
                let store = open(&config).await;
                let total =
                    if flush == FlushMode::Sync { 2_000 * inflight.min(10) } else { 200_000 };
                let per_task = total / inflight;
                let body = vec![b'x'; 1024];
                let started = Instant::now();
                let tasks: Vec<_> = (0..inflight)
                    .map(|task| {
                        let (store, body) = (store.clone(), body.clone());
                        glommio::spawn_local(async move {
                            for _ in 0..per_task {
                                store
                                    .append(single("Bench", (task % 8) as i32, &body, None))
                                    .await
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await;
                }
                store.close().await.unwrap();
                let elapsed = started.elapsed().as_secs_f64();
                let messages = (per_task * inflight) as f64;
                let stats = store.stats();
                eprintln!(
                    "{flush:?} inflight {inflight}: {:.0} msgs/s, {:.1} MB/s, {} appends, {} writes, {} fdatasyncs",
                    messages / elapsed,
                    messages * 1024.0 / elapsed / 1e6,
                    stats.appends,
                    stats.writes,
                    stats.fdatasyncs
                );
            });
        }
    }
}
