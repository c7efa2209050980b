//! A store opened through a path relative to the working directory (as `--store-path
//! ./ramjet-store` gives it) creates, syncs, closes and reopens like an absolute one.
//!
//! Alone in its own test binary because it changes the process's working directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use ramjet_storage::{FlushMode, GetRequest, GetStatus};

#[test]
fn relative_store_path_opens_syncs_and_reopens() {
    // Goal: every directory operation works on a relative path (glommio's directory open
    // needs an absolute one, so the store resolves it).
    // Method: chdir into a fresh directory, open `./store` (sync flush, so directories are
    // fsynced on the way), append, close, reopen, read back.
    let dir = store_dir();
    std::env::set_current_dir(dir.path()).unwrap();
    let config = config(Path::new("./store"), FlushMode::Sync);
    run(|| async move {
        let store = open(&config).await;
        store.append(single("Rel", 0, b"relative", None)).await.unwrap();
        store.close().await.unwrap();
        let store = open(&config).await;
        let got = store
            .get_messages(GetRequest {
                topic: "Rel",
                queue_id: 0,
                queue_offset: 0,
                max_count: 8,
                max_bytes: 1 << 20,
                tags_filter: None,
            })
            .await
            .unwrap();
        assert_eq!(got.status, GetStatus::Found);
        assert_eq!(got.messages.len(), 1);
        store.close().await.unwrap();
    });
    assert!(dir.path().join("store").is_dir());
}
