#!/usr/bin/env bash
# Fuzz/run.sh [seconds-per-target, default 60] [target ...]
# Builds the libFuzzer+ASan binary (Fuzz/build.sh), then runs every target (or the
# named ones) for the given time, starting from the checked-in seeds in
# Fuzz/corpus/<target>/ (the growing corpus lives in .build-fuzz/corpus/, not in git).
# Prints one summary line per target; exits non-zero when any target crashed,
# leaked, timed out or ran out of memory (reproducers: .build-fuzz/artifacts/<target>/).
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
./Fuzz/build.sh || exit 1
BIN=.build-fuzz/happy-fuzz
ALL=$(ls Fuzz/corpus)
TARGETS=${*:-$ALL}
fails=0
summary=()
for t in $TARGETS; do
    work=.build-fuzz/corpus/$t
    art=.build-fuzz/artifacts/$t
    mkdir -p "$work" "$art"
    cp -n Fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
    log=.build-fuzz/$t.log
    maxlen=4096
    HAPPY_FUZZ_TARGET=$t SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        "$BIN" -max_total_time="$SECS" -max_len=$maxlen -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$art/" "$work" > "$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    eps=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    files=$(ls "$work" | wc -l)
    if [[ $rc -eq 0 ]]; then status=ok; else status="CRASH(rc=$rc, see $log, $art)"; fails=$((fails + 1)); fi
    line=$(printf '%-15s %-6s runs=%-9s exec/s=%-7s cov=%-5s corpus=%-5s time=%ss' "$t" "$status" "${runs:-?}" "${eps:-?}" "${cov:-?}" "$files" "$SECS")
    echo "fuzz: $line"
    summary+=("$line")
done
echo "fuzz summary: ${#summary[@]} targets, $fails failing"
[[ $fails -eq 0 ]]
