#!/usr/bin/env bash
# Soak test (not run in CI): the real daemon against the emulator for SOAK_SECONDS
# (default 600 = 10 min; or the first argument, in seconds), heartbeat 1 s, a session
# spawned and stopped every 5 s, the emulator restarted every 2 min. Prints one JSON
# sample per line (RSS KiB, fds) and fails when RSS grows > SOAK_RSS_MIB (8) or the
# descriptor count > SOAK_FDS (10) over the start sample.
#   Benchmarks/soak/run.sh            # 10 minutes
#   Benchmarks/soak/run.sh 180        # 3 minutes
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] && export SOAK_SECONDS="$1"
[ -x "${HAPPY_BIN:-.build/debug/happy}" ] || swift build --product happy >/dev/null
exec "${PYTHON:-python3}" Benchmarks/soak/soak.py
