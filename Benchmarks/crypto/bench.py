"""libsodium (PyNaCl) and OpenSSL (Python `cryptography`) in the same run as
happy-bench-crypto; reads the Swift results on stdin and prints ratios."""
import os, sys, time
import nacl.bindings as sodium
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def measure(nbytes, fn, rounds=5, min_seconds=0.3):
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

swift = {}
for line in sys.stdin:
    parts = line.split()
    if len(parts) == 3:
        swift[(parts[0], int(parts[1]))] = float(parts[2])
        print("swift   " + line.rstrip())

key, n24, n12 = os.urandom(32), os.urandom(24), os.urandom(12)
gcm = AESGCM(key)
ref = {}
for size in (1024, 1 << 20):
    msg = os.urandom(size)
    ref[("secretbox", size)] = measure(size, lambda: sodium.crypto_secretbox(msg, n24, key))
    boxed = sodium.crypto_secretbox(msg, n24, key)
    ref[("secretbox-open", size)] = measure(size, lambda: sodium.crypto_secretbox_open(boxed, n24, key))
    ref[("aesgcm", size)] = measure(size, lambda: gcm.encrypt(n12, msg, None))
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
    elif name == "aesgcm":
        good = ratio >= 0.8
        budget = f"{'OK' if good else 'MISSED'} (>= 0.8x)"
        ok &= good
    print(f"{name + ' ' + str(size):<28}{s:>12.1f}{v:>13.1f}{ratio:>8.2f}  {budget}")
sys_gcm = float(os.environ.get("OPENSSL_GCM_1M") or 0)
if sys_gcm and ("aesgcm", 1 << 20) in swift:
    s = swift[("aesgcm", 1 << 20)]
    print(f"{'aesgcm 1048576 vs system':<28}{s:>12.1f}{sys_gcm:>13.1f}{s / sys_gcm:>8.2f}  (openssl speed, same library)")
print("all budgets met" if ok else "BUDGET MISSED")
