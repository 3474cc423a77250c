#!/usr/bin/env bash
# Startup benchmark: `happy --version` and `happy profile show` (static release build)
# against `node -e 0`, in the same run. Prints medians and ratios.
# Budget (SPEC §5): median ≤ 10 ms and ≤ 0.1× node. Issue 13: `--version` ≤ 1.5× a static
# Swift hello world (built here with the same toolchain and flags) and the binary size.
# Every command runs in the same clean environment (`env -i` with PATH=/usr/bin:/bin and
# the isolated happy folders only): an inherited NODE_EXTRA_CA_CERTS or NODE_OPTIONS
# doubles node's start-up (59 ms instead of 27 ms here) and would flatter the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-200}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --static-swift-stdlib 2>&1 | tail -1
fi
BIN=$(swift build -c release --static-swift-stdlib --show-bin-path)/happy
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Isolated configuration: no user profiles, home under $TMP; nothing else inherited.
CLEAN=(env -i PATH=/usr/bin:/bin HOME="$TMP" HAPPY_HOME_DIR="$TMP/home" HAPPY_PROFILES_DIR="$TMP/profiles"
       XDG_CONFIG_HOME="$TMP/xdg")
NODE=$(command -v node || true)
# The floor: a static Swift hello world, same toolchain, same -O and static stdlib.
HELLO="$TMP/hello"
printf 'print("hello")\n' >"$TMP/hello.swift"
swiftc -O -static-stdlib "$TMP/hello.swift" -o "$HELLO" 2>/dev/null || HELLO=""

# hyperfine (Debian package) times exec directly; the fallback loop also pays for a
# `date` process per run and reads ~2 ms high.
command -v hyperfine >/dev/null 2>&1 || apt-get install -y -qq hyperfine >/dev/null 2>&1 || true
declare -A MED
if command -v hyperfine >/dev/null 2>&1; then
    cmds=("$BIN --version" "$BIN profile show")
    [ -n "$NODE" ] && cmds+=("$NODE -e 0")
    [ -n "$HELLO" ] && cmds+=("$HELLO")
    "${CLEAN[@]}" "$(command -v hyperfine)" -N --warmup 20 --runs "$RUNS" --export-json "$TMP/h.json" "${cmds[@]}" >/dev/null 2>&1
    while IFS=$'\t' read -r name ms; do MED["$name"]=$ms; done < <(python3 - "$TMP/h.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f'{r["command"]}\t{r["median"] * 1000:.2f}')
PY
)
    tool="env -i PATH=/usr/bin:/bin (+ isolated HOME/HAPPY_* folders) hyperfine -N --warmup 20 --runs $RUNS"
else
    median() { # command... → median wall ms over $RUNS runs
        local i t0 t1; : >"$TMP/t"
        for ((i = 0; i < RUNS; i++)); do
            t0=$(date +%s%N); "${CLEAN[@]}" "$@" >/dev/null 2>&1; t1=$(date +%s%N)
            echo $(((t1 - t0) / 1000)) >>"$TMP/t"
        done
        sort -n "$TMP/t" | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] / 1000}'
    }
    MED["$BIN --version"]=$(median "$BIN" --version)
    MED["$BIN profile show"]=$(median "$BIN" profile show)
    [ -n "$NODE" ] && MED["$NODE -e 0"]=$(median "$NODE" -e 0)
    [ -n "$HELLO" ] && MED["$HELLO"]=$(median "$HELLO")
    tool="date +%s%N loop through env -i PATH=/usr/bin:/bin, $RUNS runs"
fi

node_ms=${MED["$NODE -e 0"]:-}
hello_ms=${MED["$HELLO"]:-}
ratio() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}' || echo "n/a"; }
printf 'tool: %s\n' "$tool"
printf '%-22s %10s %10s %10s\n' "command" "median ms" "× node" "× hello"
for c in "--version" "profile show"; do
    ms=${MED["$BIN $c"]}
    printf '%-22s %10s %10s %10s\n' "happy $c" "$ms" "$(ratio "$ms" "$node_ms")" "$(ratio "$ms" "$hello_ms")"
done
[ -n "$node_ms" ] && printf '%-22s %10s %10s %10s\n' "node -e 0" "$node_ms" "1.000" "$(ratio "$node_ms" "$hello_ms")"
[ -n "$hello_ms" ] && printf '%-22s %10s %10s %10s\n' "static hello world" "$hello_ms" "$(ratio "$hello_ms" "$node_ms")" "1.000"
[ -n "$HELLO" ] && printf 'static hello world: %s bytes\n' "$(stat -c %s "$HELLO")"
printf 'environment: clean (env -i PATH=/usr/bin:/bin + the isolated happy folders) for every command\n'
printf 'binary: %s (%s bytes)\n' "$BIN" "$(stat -c %s "$BIN")"
