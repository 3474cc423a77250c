"""Same-run comparison for happy-bench-crypto (run through run.sh).

Alternates the Swift benchmark binary with libsodium (PyNaCl) and OpenSSL
(Python `cryptography`) for ROUNDS rounds and keeps each one's best result, so a
busy machine hurts both sides alike. Prints a table of ratios and the budgets.
Usage: python3 bench.py <happy-bench-crypto binary>
"""
import os, subprocess, sys, time
import nacl.bindings as sodium
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROUNDS = int(os.environ.get("ROUNDS", "3"))

def measure(nbytes, fn, rounds=3, min_seconds=0.3):
    best = 0.0
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while True:
            fn(); n += 1
            el = time.perf_counter() - start
            if el >= min_seconds:
                break
        best = max(best, n * nbytes / el / 1e6)
    return best

def python_round():
    key, n24, n12 = os.urandom(32), os.urandom(24), os.urandom(12)
    gcm = AESGCM(key)
    out = {}
    for size in (1024, 1 << 20):
        msg = os.urandom(size)
        out[("secretbox", size)] = measure(size, lambda: sodium.crypto_secretbox(msg, n24, key))
        boxed = sodium.crypto_secretbox(msg, n24, key)
        out[("secretbox-open", size)] = measure(size, lambda: sodium.crypto_secretbox_open(boxed, n24, key))
        out[("aesgcm", size)] = measure(size, lambda: gcm.encrypt(n12, msg, None))
    return out

# The AES-GCM budget compares like with like: Python `cryptography` built on the same
# system OpenSSL as the product (Debian's python3-cryptography under /usr/bin/python3).
# The PyPI wheel bundles its own, newer OpenSSL; its numbers are printed for information.
SYSTEM_PY = os.environ.get("SYSTEM_PY", "/usr/bin/python3")
SYSTEM_SNIPPET = r"""
import os, sys, time
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.backends.openssl import backend
key, n12 = os.urandom(32), os.urandom(12)
g = AESGCM(key)
print("lib", backend.openssl_version_text().replace(" ", "_"))
for size in (1024, 1 << 20):
    msg, best = os.urandom(size), 0.0
    for _ in range(3):
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < 0.3:
            g.encrypt(n12, msg, None); n += 1
        best = max(best, n * size / (time.perf_counter() - t) / 1e6)
    print("aesgcm", size, best)
"""

def system_round():
    try:
        text = subprocess.run([SYSTEM_PY, "-c", SYSTEM_SNIPPET], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}, None
    out, lib = {}, None
    for line in text.splitlines():
        parts = line.split()
        if parts[0] == "lib":
            lib = parts[1].replace("_", " ")
        elif len(parts) == 3:
            out[(parts[0], int(parts[1]))] = float(parts[2])
    return out, lib

def swift_round(binary):
    out = {}
    text = subprocess.run([binary], check=True, capture_output=True, text=True).stdout
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[(parts[0], int(parts[1]))] = float(parts[2])
    return out

def best(acc, new):
    for k, v in new.items():
        acc[k] = max(acc.get(k, 0.0), v)

swift, ref, sysref, syslib = {}, {}, {}, None
for r in range(ROUNDS):
    best(swift, swift_round(sys.argv[1]))
    best(ref, python_round())
    sr, syslib = system_round()
    best(sysref, sr)
    print(f"round {r + 1}/{ROUNDS} done", file=sys.stderr)

print(f"best of {ROUNDS} alternating rounds, MB/s = 10^6 bytes/s")
for (name, size), v in sorted(swift.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    print(f"swift   {name} {size} {v:.1f}")
for (name, size), v in ref.items():
    lib = "libsodium" if name.startswith("secretbox") else "cryptography"
    print(f"python  {name} {size} {v:.1f}   ({lib})")

print()
print(f"{'measurement':<28}{'swift MB/s':>12}{'python MB/s':>13}{'ratio':>8}  budget")
ok = True
for (name, size), v in ref.items():
    s = swift.get((name, size))
    if s is None:
        continue
    ratio = s / v
    budget = ""
    if name == "secretbox" and size == 1 << 20:
        good = ratio >= 0.5 and s >= 300
        budget = f"{'OK' if good else 'MISSED'} (>= 0.5x and >= 300 MB/s)"
        ok &= good
    elif name == "aesgcm" and not sysref:
        good = ratio >= 0.8
        budget = f"{'OK' if good else 'MISSED'} (>= 0.8x)"
        ok &= good
    elif name == "aesgcm":
        budget = "(PyPI wheel, bundled OpenSSL: information)"
    print(f"{name + ' ' + str(size):<28}{s:>12.1f}{v:>13.1f}{ratio:>8.2f}  {budget}")
for (name, size), v in sorted(sysref.items()):
    s = swift.get((name, size))
    if s is None:
        continue
    good = s / v >= 0.8
    ok &= good
    print(f"{name + ' ' + str(size) + ' vs sys':<28}{s:>12.1f}{v:>13.1f}{s / v:>8.2f}  {'OK' if good else 'MISSED'} (>= 0.8x; cryptography on {syslib})")
sys_gcm = float(os.environ.get("OPENSSL_GCM_1M") or 0)
if sys_gcm and ("aesgcm", 1 << 20) in swift:
    s = swift[("aesgcm", 1 << 20)]
    print(f"{'aesgcm 1048576 vs system':<28}{s:>12.1f}{sys_gcm:>13.1f}{s / sys_gcm:>8.2f}  (openssl speed, same library)")
print("all budgets met" if ok else "BUDGET MISSED")
