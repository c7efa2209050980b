//! Bounded tables against real processes (issue 13 item 4): every table a client can grow
//! has a limit with a documented refusal, the broker keeps answering other clients, and
//! messages stored before stay intact; topic creation costs the same at the 10,000th topic
//! as at the first.

use std::time::{Duration, Instant};

use ramjet_client::Admin;
use ramjet_proto::SerializeType;
use ramjet_tests::{client, run_glommio, store_dir, BrokerOptions, Daemon};

// Goal: a measurement, not a check (tests never assert timings): creates/s over the first
// 1,000 topics and over the 100 creates that end at the 10,000th.
// Method: one broker, one admin connection, 10,000 sequential UPDATE_AND_CREATE_TOPIC
// requests of 4 queues each; prints both rates.
// Run: cargo test -p ramjet-tests --test table_bounds -- --ignored --nocapture topic_create_rate
#[test]
#[ignore = "measurement; run by hand"]
fn topic_create_rate() {
    let dir = store_dir();
    let broker = Daemon::broker(&BrokerOptions::new(dir.path()));
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    run_glommio(move || async move {
        let admin = Admin::new(client(&ns, SerializeType::RocketMq));
        let started = Instant::now();
        let mut window = Instant::now();
        for i in 1..=10_000u32 {
            if i == 9_901 {
                window = Instant::now();
            }
            admin
                .create_topic(&addr, &format!("rate-topic-{i:05}"), 4, 4)
                .await
                .unwrap_or_else(|e| panic!("create {i}: {e}"));
            if i == 1_000 {
                let s = started.elapsed().as_secs_f64();
                println!(
                    "topic_create_rate: first 1,000 creates: {s:.2} s = {:.0} creates/s",
                    1000.0 / s
                );
            }
        }
        let s = window.elapsed().as_secs_f64();
        println!("topic_create_rate: creates 9,901..10,000: {s:.3} s = {:.0} creates/s", 100.0 / s);
        let total = started.elapsed().as_secs_f64();
        println!("topic_create_rate: all 10,000: {total:.1} s");
        let _ = Duration::ZERO;
    });
}
