//! Paths a user gives ramjet are relative to the working directory, as the reference
//! resolves them: a relative `-c` file, `storePathRootDir` inside it, the default store
//! (`./ramjet-store`), and a relative `-c` namesrv.conf.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use ramjet_proto::SerializeType;
use ramjet_tests::*;

#[test]
fn relative_config_file_and_store_path_in_it() {
    // Goal: `-c broker.conf` relative to the cwd, `storePathRootDir=data/store` inside it
    // relative to the cwd too; the broker serves, stores there, stops cleanly and reopens.
    let dir = store_dir();
    std::fs::write(
        dir.path().join("broker.conf"),
        "storePathRootDir=data/store\nbrokerName=rel\nlistenPort=0\n",
    )
    .unwrap();
    let start = || {
        let mut cmd = Command::new(bin("ramjet-broker"));
        cmd.current_dir(dir.path());
        cmd.args(["-c", "broker.conf", "--broker-ip", "127.0.0.1", "--namesrv-port", "0"]);
        cmd.args(["--shards", "2", "--flush-disk-type", "SYNC_FLUSH"]);
        Daemon::start(cmd, "ramjet-broker")
    };
    let mut broker = start();
    assert!(dir.path().join("data/store/store.meta").is_file(), "store not under the cwd");
    let namesrv = broker.namesrv_addr.clone();
    let sent = run_glommio(move || async move {
        let client = client(&namesrv, SerializeType::Json);
        let producer = ramjet_client::Producer::new(client, "pg");
        let mut offsets = Vec::new();
        for i in 0..8 {
            let m = ramjet_client::Message::new("RelTopic", format!("m{i}"));
            offsets.push(producer.send(m).await.expect("send").queue_offset);
        }
        offsets.len()
    });
    assert_eq!(sent, 8);
    let status = broker.stop().expect("exit status");
    assert!(status.success(), "broker exit {status:?}:\n{}", broker.log_text());

    let mut broker = start();
    let namesrv = broker.namesrv_addr.clone();
    let read = run_glommio(move || async move {
        let producer = ramjet_client::Producer::new(client(&namesrv, SerializeType::Json), "pg");
        let queues = producer.write_queues("RelTopic").await.expect("route after restart");
        let consumer = ramjet_client::PullConsumer::new(client(&namesrv, SerializeType::Json), "g");
        let mut total = 0;
        for q in &queues {
            total += read_queue(&consumer, q, 0, std::time::Duration::from_secs(5)).await.len();
        }
        total
    });
    assert_eq!(read, 8, "messages stored under the relative store path read back");
    assert!(broker.stop().expect("exit status").success());
}

#[test]
fn no_flags_stores_in_the_working_directory() {
    // Goal: the default `./ramjet-store` is created in the cwd (the README's no-flag start;
    // ports are ephemeral here, scripts/readme-test.sh runs it truly flagless).
    let dir = store_dir();
    let mut cmd = Command::new(bin("ramjet-broker"));
    cmd.current_dir(dir.path());
    cmd.args(["--broker-ip", "127.0.0.1", "--listen-port", "0", "--namesrv-port", "0"]);
    let mut broker = Daemon::start(cmd, "ramjet-broker");
    assert!(dir.path().join("ramjet-store/store.meta").is_file());
    assert!(broker.stop().expect("exit status").success(), "{}", broker.log_text());
}

#[test]
fn namesrv_reads_a_relative_config_file() {
    // Goal: `ramjet-namesrv -c namesrv.conf` relative to the cwd; its keys apply and flags
    // override them.
    let dir = store_dir();
    std::fs::write(dir.path().join("namesrv.conf"), "listenPort=0\nbindAddress=127.0.0.1\n")
        .unwrap();
    let mut cmd = Command::new(bin("ramjet-namesrv"));
    cmd.current_dir(dir.path());
    cmd.args(["-c", "namesrv.conf"]);
    let mut namesrv = Daemon::start(cmd, "ramjet-namesrv");
    assert!(namesrv.namesrv_addr.starts_with("127.0.0.1:"), "{}", namesrv.namesrv_addr);
    assert_ne!(namesrv.namesrv_addr, "127.0.0.1:9876");
    assert!(namesrv.stop().expect("exit status").success());
}
