#!/usr/bin/env bash
# Builds Fuzz/.. into one libFuzzer + AddressSanitizer binary: .build-fuzz/happy-fuzz.
# The product's library sources (every Sources/Happy* layer below the command layer) and
# Fuzz/Targets/*.swift are compiled together into ONE module (so internal parsers are
# reachable without @testable): a copy of each file with the `import Happy...` lines of
# our own layers removed. Same optimisation as the shipped build (-O, checks on). The
# CPosix C shim is compiled with clang; OpenSSL and libyaml are linked from the system.
# Rebuilds only when a source is newer than the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.build-fuzz
BIN=$OUT/happy-fuzz
mkdir -p "$OUT"
LAYERS="Sources/HappyCore Sources/HappyCrypto Sources/HappyNet Sources/HappyRealtime Sources/HappyConfig Sources/HappyServerAPI Sources/HappySessions Sources/HappySync Sources/HappyDaemon"
C_SRCS=$(find Sources/CPosix -name '*.c' | sort)
# shellcheck disable=SC2086
if [[ -x $BIN && -z "$(find $LAYERS Sources/CPosix Fuzz/Targets -newer "$BIN" -type f | head -1)" ]]; then
    echo "fuzz: $BIN is up to date"
    exit 0
fi
cat > "$OUT/module.modulemap" <<MAP
module CPosix { umbrella header "$PWD/Sources/CPosix/include/CPosix.h" export * }
MAP
rm -rf "$OUT/src" && mkdir -p "$OUT/src"
# shellcheck disable=SC2086
for f in $(find $LAYERS Fuzz/Targets -name '*.swift' | sort); do
    flat=$(echo "$f" | tr '/' '_')
    grep -vE '^(@testable )?import Happy' "$f" > "$OUT/src/$flat"
done
SWIFT_SRCS=$(find "$OUT/src" -name '*.swift' | sort)
echo "fuzz: compiling the library layers + targets (-sanitize=fuzzer,address, -O) ..."
start=$(date +%s)
# shellcheck disable=SC2086
swiftc -sanitize=fuzzer,address -parse-as-library -swift-version 6 -O -g -wmo \
    -module-name HappyFuzz \
    -I Sources/CPosix/include -Xcc -fmodule-map-file="$OUT/module.modulemap" \
    -Xcc -fmodule-map-file=Sources/COpenSSL/module.modulemap \
    -Xcc -fmodule-map-file=Sources/CYaml/module.modulemap \
    $SWIFT_SRCS -c -o "$OUT/happy.o" 2> "$OUT/swiftc.log" || { grep -A12 "error:" "$OUT/swiftc.log" | head -80; exit 1; }
for c in $C_SRCS; do
    clang -fsanitize=address,fuzzer-no-link -O1 -g -I Sources/CPosix/include -c "$c" -o "$OUT/$(basename "$c" .c).o"
done
# shellcheck disable=SC2046
swiftc -sanitize=fuzzer,address "$OUT/happy.o" $(for c in $C_SRCS; do echo "$OUT/$(basename "$c" .c).o"; done) \
    -o "$BIN" -lssl -lcrypto -lyaml 2> "$OUT/ld.log" || { grep -v "Cannot export local symbol" "$OUT/ld.log"; exit 1; }
echo "fuzz: built $BIN in $(( $(date +%s) - start )) s"
