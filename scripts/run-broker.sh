#!/usr/bin/env bash
# Starts a single-node broker with its embedded NameServer, data in ./ramjet-store (under
# the directory you run it from). Extra arguments go to ramjet-broker (e.g.
# --flush-disk-type SYNC_FLUSH, -c broker.conf); relative paths in them are relative to
# that directory too.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ulimit -l unlimited 2>/dev/null || true
(cd "$ROOT" && cargo build --release -p ramjet-server --bins)
# Loopback unless the caller names an address (a flag, or brokerIP1 in a -c file).
ip_args=(--broker-ip 127.0.0.1)
for arg in "$@"; do
  case "$arg" in
    --broker-ip|--broker-ip=*|-c|--config|--config=*) ip_args=() ;;
  esac
done
exec "$ROOT/target/release/ramjet-broker" "${ip_args[@]}" "$@"
