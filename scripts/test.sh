#!/usr/bin/env bash
# Installs what the tests need on a fresh machine and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests 2>&1 | tail -5
swift test --skip-build 2>&1 | tee /tmp/happy-swift-test.log | grep -E "^(✔|✘|􀟈|Test run|.*error)" | tail -40
grep -q "Test run with .* passed" /tmp/happy-swift-test.log
