#!/usr/bin/env bash
# scripts/sanitize.sh address|thread [extra swift test args, e.g. --filter Suite]
# Builds and runs the whole Swift test suite under AddressSanitizer or ThreadSanitizer,
# in its own scratch path (.build-asan / .build-tsan, ignored by git) so the normal
# .build stays untouched. Exits with the test run's status; prints the elapsed time
# and a count of sanitizer reports found in the output (.build-?san/sanitize.log).
set -uo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
shift || true
case "$kind" in
    address) scratch=.build-asan; export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:halt_on_error=1} ;;
    thread)  scratch=.build-tsan; export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1} ;;
    *) echo "usage: scripts/sanitize.sh address|thread [swift test args]" >&2; exit 2 ;;
esac
# Instrumented code runs several times slower: test waits for "eventually" stretch by this.
export HAPPY_TEST_TIME_SCALE=${HAPPY_TEST_TIME_SCALE:-3}
mkdir -p "$scratch"
log=$scratch/sanitize.log
start=$(date +%s)
echo "sanitize: building tests with --sanitize=$kind in $scratch ..."
if ! swift build --build-tests --sanitize="$kind" --scratch-path "$scratch" > "$scratch/build.log" 2>&1; then
    grep -E "error:" "$scratch/build.log" | head -40
    echo "sanitize: build FAILED after $(( $(date +%s) - start )) s"
    exit 1
fi
built=$(date +%s)
echo "sanitize: built in $(( built - start )) s; running tests ..."
swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" "$@" > "$log" 2>&1
rc=$?
end=$(date +%s)
reports=$(grep -c -E "^(==[0-9]+==ERROR: AddressSanitizer|WARNING: ThreadSanitizer)" "$log" || true)
tail -5 "$log"
grep -E "^(==[0-9]+==ERROR: AddressSanitizer|WARNING: ThreadSanitizer)" "$log" | sort | uniq -c | head -20
echo "sanitize: $kind: tests rc=$rc, $reports sanitizer report(s), build $(( built - start )) s, tests $(( end - built )) s, log $log"
[[ $rc -eq 0 && $reports -eq 0 ]]
