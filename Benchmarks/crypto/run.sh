#!/bin/sh
# Crypto throughput benchmark (not a test): HappyCrypto vs libsodium (PyNaCl) and
# OpenSSL through Python `cryptography`, in the same run. Release build.
# Usage: Benchmarks/crypto/run.sh   (from anywhere; needs pynacl + cryptography)
set -eu
cd "$(dirname "$0")/../.."
python3 -c 'import nacl, cryptography' 2>/dev/null || pip install -q pynacl cryptography
# Same-library AES-GCM reference: Debian's python3-cryptography links the system OpenSSL.
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || apt-get install -y -qq python3-cryptography >/dev/null 2>&1 || true
swift build -c release --static-swift-stdlib --product happy-bench-crypto >&2
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)/happy-bench-crypto"
echo "host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
# Same-library reference: the system OpenSSL that HappyCrypto links (cryptography's
# wheel bundles its own, newer OpenSSL).
# Every side (the Swift binary, libsodium through PyNaCl, the OpenSSL references) runs in
# the same clean environment: `env -i PATH=/usr/bin:/bin` (no inherited OPENSSL_*,
# PYTHON* or LD_* variables), in the same run, alternating.
PY=$(python3 -c 'import sys; print(sys.executable)')
CLEAN="env -i PATH=/usr/bin:/bin"
OPENSSL_GCM_1M=$($CLEAN openssl speed -elapsed -seconds 2 -bytes 1048576 -evp aes-256-gcm 2>/dev/null | awk '/^AES-256-GCM/{sub("k","",$2); print $2/1000}')
echo "system $(openssl version | cut -d' ' -f1-2); python cryptography bundles $($CLEAN "$PY" -c 'from cryptography.hazmat.backends.openssl import backend; print(backend.openssl_version_text())')"
echo "environment: env -i PATH=/usr/bin:/bin for every measured process"
$CLEAN OPENSSL_GCM_1M="$OPENSSL_GCM_1M" "$PY" Benchmarks/crypto/bench.py "$BIN"
echo "poly1305 crossover (secretbox MB/s with OpenSSL vs Swift Poly1305):"
$CLEAN "$BIN" --poly
