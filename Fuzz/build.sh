#!/usr/bin/env bash
# Builds Fuzz/.. into one libFuzzer + AddressSanitizer binary: .build-fuzz/happy-fuzz.
# All HappyKit sources and Fuzz/Targets/*.swift are compiled together into ONE module
# (so internal parsers are reachable without @testable); the CPosix C shim is compiled
# with clang; OpenSSL and libyaml are linked from the system.
# Rebuilds only when a source is newer than the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.build-fuzz
BIN=$OUT/happy-fuzz
mkdir -p "$OUT"
SWIFT_SRCS=$(find Sources/HappyKit Fuzz/Targets -name '*.swift' | sort)
C_SRCS=$(find Sources/CPosix -name '*.c' | sort)
if [[ -x $BIN && -z "$(find Sources/HappyKit Sources/CPosix Fuzz/Targets -newer "$BIN" -type f | head -1)" ]]; then
    echo "fuzz: $BIN is up to date"
    exit 0
fi
cat > "$OUT/module.modulemap" <<MAP
module CPosix { umbrella header "$PWD/Sources/CPosix/include/CPosix.h" export * }
MAP
echo "fuzz: compiling HappyKit + targets (-sanitize=fuzzer,address, -O) ..."
start=$(date +%s)
# shellcheck disable=SC2086
swiftc -sanitize=fuzzer,address -parse-as-library -swift-version 6 -O -g -wmo \
    -module-name HappyFuzz \
    -I Sources/CPosix/include -Xcc -fmodule-map-file="$OUT/module.modulemap" \
    -Xcc -fmodule-map-file=Sources/COpenSSL/module.modulemap \
    -Xcc -fmodule-map-file=Sources/CYaml/module.modulemap \
    $SWIFT_SRCS -c -o "$OUT/happykit.o" 2> "$OUT/swiftc.log" || { grep -A12 "error:" "$OUT/swiftc.log" | head -80; exit 1; }
for c in $C_SRCS; do
    clang -fsanitize=address,fuzzer-no-link -O1 -g -I Sources/CPosix/include -c "$c" -o "$OUT/$(basename "$c" .c).o"
done
# shellcheck disable=SC2046
swiftc -sanitize=fuzzer,address "$OUT/happykit.o" $(for c in $C_SRCS; do echo "$OUT/$(basename "$c" .c).o"; done) \
    -o "$BIN" -lssl -lcrypto -lyaml 2> "$OUT/ld.log" || { grep -v "Cannot export local symbol" "$OUT/ld.log"; exit 1; }
echo "fuzz: built $BIN in $(( $(date +%s) - start )) s"
