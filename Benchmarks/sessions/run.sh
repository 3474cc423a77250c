#!/usr/bin/env bash
# Sessions-in-the-app budgets (SPEC §7.8) on the release build, against the emulator and
# the fake claude: message latencies (app → stdin, output → server ack, permission
# answer → control_response), 10 synced idle sessions (RSS, CPU), 10,000 lines through a
# server restart. The measuring code is Tests/e2e/test_sessions_bench.py.
# Usage: Benchmarks/sessions/run.sh   (SKIP_BUILD=1 reuses the release build;
#        HAPPY_BENCH_RUNS=40, HAPPY_BENCH_IDLE_SECONDS=60)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --static-swift-stdlib 2>&1 | tail -1
fi
export HAPPY_BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)/happy"
export HAPPY_BENCH=1
exec python3 -m pytest -q -s -p no:cacheprovider Tests/e2e/test_sessions_bench.py "$@"
