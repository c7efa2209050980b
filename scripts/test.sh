#!/usr/bin/env bash
# Runs every test: unit, property, fixture, storage and end-to-end (real processes).
# The end-to-end tests start the binaries, so they are built first.
set -euo pipefail
cd "$(dirname "$0")/.."
# glommio registers a little locked memory per executor; raise the limit when allowed.
ulimit -l unlimited 2>/dev/null || true
cargo build --workspace --bins
# The official RocketMQ 5.x Python client for tests/tests/grpc_official.rs (from PyPI,
# pinned; a venv under target/ so nothing leaks into the machine's Python).
if ! target/py5/bin/python -c 'import rocketmq' 2>/dev/null; then
  python3 -m venv target/py5
  target/py5/bin/pip install --quiet --disable-pip-version-check rocketmq-python-client==5.1.2
fi
cargo test --workspace -- --test-threads="${RAMJET_TEST_THREADS:-2}"
# The workspace build enables both client runtimes (the tests crate adds tokio), so the
# client's own suites ran on glommio and tokio above; this checks a tokio-only build.
cargo test -p ramjet-client --no-default-features --features tokio -- --test-threads="${RAMJET_TEST_THREADS:-2}"
# The README's own commands and examples, as a newcomer runs them (fresh copy, private
# network namespace, release build).
scripts/readme-test.sh
