#!/bin/sh
# Crypto throughput benchmark (not a test): HappyKit vs libsodium (PyNaCl) and
# OpenSSL through Python `cryptography`, in the same run. Release build.
# Usage: Benchmarks/crypto/run.sh   (from anywhere; needs pynacl + cryptography)
set -eu
cd "$(dirname "$0")/../.."
python3 -c 'import nacl, cryptography' 2>/dev/null || pip install -q pynacl cryptography
swift build -c release --static-swift-stdlib --product happy-bench-crypto >&2
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)/happy-bench-crypto"
echo "host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$BIN" | python3 Benchmarks/crypto/bench.py
