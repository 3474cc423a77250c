#!/usr/bin/env bash
# THE test command (README, .ci/run). On a fresh machine it installs what the tests need,
# builds once, runs every Swift test, then the end-to-end tests of the real binary, and
# ends with one summary line: `N passed, N failed`. Exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/happy-test.XXXXXX")

say() { printf '==> %s\n' "$*"; }

# --- 1. System tools (shells for completion checks, zbarimg for QR tests) -------------
need_apt=()
command -v zsh >/dev/null 2>&1 || need_apt+=(zsh)
command -v fish >/dev/null 2>&1 || need_apt+=(fish)
command -v zbarimg >/dev/null 2>&1 || need_apt+=(zbar-tools)
if ((${#need_apt[@]})); then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    say "installing ${need_apt[*]} (apt-get)"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1 \
        || say "warning: apt-get could not install ${need_apt[*]}"
fi

# --- 2. Python packages (emulator + pytest) ---------------------------------------------
PY=${PYTHON:-python3}
if [ -f Tests/emulator/requirements.txt ]; then
    pip_args=(-r Tests/emulator/requirements.txt)
else
    pip_args=(python-socketio aiohttp pynacl pytest)
fi
if [ -f Tests/emulator/requirements.txt ] || ! "$PY" -c 'import socketio, aiohttp, nacl, pytest' >/dev/null 2>&1; then
    # pip does not touch the network when every requirement is already satisfied.
    "$PY" -m pip install -q --disable-pip-version-check "${pip_args[@]}" >/dev/null 2>&1 \
        || "$PY" -m pip install -q --disable-pip-version-check --break-system-packages "${pip_args[@]}" >/dev/null 2>&1 \
        || say "warning: pip could not install ${pip_args[*]}"
fi

# The real Claude Code CLI for the offline end-to-end tests: the claude-agent-sdk wheel
# bundles it (only the binary is used). Tests that need it skip with a reason when it is
# missing (HAPPY_REAL_CLAUDE=0 turns them off).
if [ "${HAPPY_REAL_CLAUDE:-}" != "0" ]; then
    "$PY" -m pip install -q --disable-pip-version-check --no-deps -r Tests/real_claude/requirements.txt >/dev/null 2>&1 \
        || "$PY" -m pip install -q --disable-pip-version-check --break-system-packages --no-deps -r Tests/real_claude/requirements.txt >/dev/null 2>&1 \
        || say "warning: pip could not install the real claude (Tests/real_claude/requirements.txt); those tests will skip"
fi

# --- 3. Build once ----------------------------------------------------------------------
say "swift build --build-tests"
if ! swift build --build-tests >"$LOG_DIR/build.log" 2>&1; then
    grep -E "error:" "$LOG_DIR/build.log" | head -40
    tail -20 "$LOG_DIR/build.log"
    echo "0 passed, 1 failed"
    exit 1
fi
BIN_DIR=$(swift build --show-bin-path)
export HAPPY_BIN="$BIN_DIR/happy"

# --- 4. Swift tests ---------------------------------------------------------------------
say "swift test --skip-build"
swift test --skip-build >"$LOG_DIR/swift-test.log" 2>&1
swift_rc=$?
grep -E "^(✘|􀢄) |Test run with|Executed [0-9]+ tests?, with [1-9]" "$LOG_DIR/swift-test.log" | tail -60
swift_total=$(grep -Eo "Test run with [0-9]+ tests?" "$LOG_DIR/swift-test.log" | grep -Eo "[0-9]+" | tail -1)
swift_failed=$(grep -E "^(✘|􀢄) Test .* failed after " "$LOG_DIR/swift-test.log" | grep -vc "Test run with" || true)
xc_total=$(grep -Eo "Executed [0-9]+ tests?, with [0-9]+ failures?" "$LOG_DIR/swift-test.log" | tail -1 | grep -Eo "[0-9]+" | head -1)
xc_failed=$(grep -Eo "Executed [0-9]+ tests?, with [0-9]+ failures?" "$LOG_DIR/swift-test.log" | tail -1 | grep -Eo "[0-9]+" | sed -n 2p)
swift_total=${swift_total:-0}; swift_failed=${swift_failed:-0}; xc_total=${xc_total:-0}; xc_failed=${xc_failed:-0}
if [ "$swift_rc" -ne 0 ] && [ "$swift_failed" -eq 0 ] && [ "$xc_failed" -eq 0 ]; then
    # The runner failed without a countable test failure (crash, signal): count it once.
    tail -30 "$LOG_DIR/swift-test.log"
    swift_failed=1
fi
passed=$((swift_total - swift_failed + xc_total - xc_failed))
failed=$((swift_failed + xc_failed))
[ $passed -lt 0 ] && passed=0

# --- 5. End-to-end tests of the binary (pytest) -------------------------------------------
if compgen -G "Tests/e2e/test_*.py" >/dev/null; then
    say "pytest Tests/e2e (HAPPY_BIN=$HAPPY_BIN)"
    "$PY" -m pytest -q -p no:cacheprovider Tests/e2e >"$LOG_DIR/pytest.log" 2>&1
    py_rc=$?
    tail -25 "$LOG_DIR/pytest.log"
    summary=$(grep -E "[0-9]+ (passed|failed|error)" "$LOG_DIR/pytest.log" | tail -1)
    py_passed=$(grep -Eo "[0-9]+ passed" <<<"$summary" | grep -Eo "[0-9]+" || true)
    py_failed=$(grep -Eo "[0-9]+ failed" <<<"$summary" | grep -Eo "[0-9]+" || true)
    py_errors=$(grep -Eo "[0-9]+ errors?" <<<"$summary" | grep -Eo "[0-9]+" || true)
    py_passed=${py_passed:-0}; py_failed=$(( ${py_failed:-0} + ${py_errors:-0} ))
    if [ "$py_rc" -ne 0 ] && [ "$py_rc" -ne 5 ] && [ "$py_failed" -eq 0 ]; then py_failed=1; fi
    passed=$((passed + py_passed))
    failed=$((failed + py_failed))
fi

rm -rf "$LOG_DIR"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
