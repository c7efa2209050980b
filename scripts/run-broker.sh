#!/usr/bin/env bash
# Starts a single-node broker with its embedded NameServer, data in ./ramjet-store.
# Extra arguments go to ramjet-broker (e.g. --flush-disk-type SYNC_FLUSH).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -l unlimited 2>/dev/null || true
cargo build --release -p ramjet-server --bins
exec target/release/ramjet-broker --store-path ./ramjet-store --broker-ip 127.0.0.1 "$@"
