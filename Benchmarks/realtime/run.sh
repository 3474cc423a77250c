#!/bin/sh
# Connect-to-ready time (TCP connect -> Socket.IO CONNECT ack) against the local
# python-socketio emulator (Tests/emulator), plain ws and wss (self-signed cert).
# Usage: Benchmarks/realtime/run.sh [debug|release]   (N connects: HAPPY_BENCH_N, default 30)
set -eu
cd "$(dirname "$0")/../.."
CONF="${1:-debug}"
swift build -c "$CONF" --build-tests >/dev/null
HAPPY_BENCH=1 swift test -c "$CONF" --skip-build --filter RealtimeBenchmark 2>&1 | grep '^BENCH'
