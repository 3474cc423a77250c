#!/usr/bin/env bash
# Daemon benchmarks (SPEC §5): `happy daemon status` vs `node -e 0` (median wall; node in
# a clean environment, env -i PATH=/usr/bin:/bin),
# idle RSS after 60 s, GET /health throughput with 50 keep-alive connections (wrk),
# POST /sessions p50/p99 with the fake claude, output line → visible in GET /sessions/:id.
# Usage: Benchmarks/daemon/run.sh   (SKIP_BUILD=1 reuses the release build; IDLE_SECONDS=60)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --static-swift-stdlib 2>&1 | tail -1
fi
BIN=$(swift build -c release --static-swift-stdlib --show-bin-path)/happy
command -v wrk >/dev/null 2>&1 || { apt-get install -y -qq wrk >/dev/null 2>&1 || true; }
TMP=$(mktemp -d)
export HOME=$TMP HAPPY_HOME_DIR=$TMP/home HAPPY_PROFILES_DIR=$TMP/profiles XDG_CONFIG_HOME=$TMP/xdg HAPPY_PROFILE=bench
unset HAPPY_SERVER_URL HAPPY_WEBAPP_URL
mkdir -p "$HAPPY_PROFILES_DIR"
cat >"$HAPPY_PROFILES_DIR/bench.yaml" <<YAML
daemon:
  httpPort: 0
sessions:
  max: 1000
claude:
  command: $ROOT/Tests/fake_claude/claude
YAML
cleanup() { "$BIN" daemon stop >/dev/null 2>&1 || true; rm -rf "$TMP"; }
trap cleanup EXIT
"$BIN" daemon start >/dev/null
python3 - "$BIN" "${IDLE_SECONDS:-60}" "${CPU_SECONDS:-60}" <<'PY'
import json, os, socket, statistics, subprocess, sys, time
BIN, IDLE, CPU_SECONDS = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
home = os.environ["HAPPY_HOME_DIR"]
st = json.load(open(f"{home}/daemon.state.json"))
pid, port, token = st["pid"], st["httpPort"], st["controlToken"]

def median_ms(cmd, runs=100, env=None):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)

class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        h = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        if body is not None: h += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.s.sendall(h.encode() + b"\r\n" + data)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk: raise ConnectionError("closed by the daemon")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(rest) < n:
            chunk = self.s.recv(65536)
            if not chunk: raise ConnectionError("closed by the daemon")
            rest += chunk
        self.buf = rest[n:]
        return int(head.split()[1]), json.loads(rest[:n] or b"null")

out = {}
out["daemon status median ms"] = round(median_ms([BIN, "daemon", "status"]), 2)
# The reference runs in a clean environment (an inherited NODE_EXTRA_CA_CERTS doubles
# node's start-up): the same PATH=/usr/bin:/bin and nothing else.
NODE = subprocess.run(["sh", "-c", "command -v node"], capture_output=True, text=True).stdout.strip() or "node"
out["node -e 0 median ms (env -i PATH=/usr/bin:/bin)"] = round(median_ms([NODE, "-e", "0"], 30, env={"PATH": "/usr/bin:/bin"}), 2)

# GET /health throughput, 50 keep-alive connections.
try:
    r = subprocess.run(["wrk", "-t2", "-c50", "-d10s", f"http://127.0.0.1:{port}/health"], capture_output=True, text=True)
    rps = [l for l in r.stdout.splitlines() if "Requests/sec" in l]
    errs = [l.strip() for l in r.stdout.splitlines() if "Non-2xx" in l or "Socket errors" in l]
    out["GET /health req/s (wrk -t2 -c50 -d10s)"] = float(rps[0].split()[-1]) if rps else None
    out["GET /health errors"] = errs or "none"
except FileNotFoundError:
    out["GET /health req/s (wrk -t2 -c50 -d10s)"] = "wrk missing"

# POST /sessions latency (fake claude), sessions stopped right after.
c = Conn()
work = os.path.join(os.environ["HOME"], "work"); os.makedirs(work, exist_ok=True)
lat, ids = [], []
for i in range(60):
    t0 = time.perf_counter(); code, j = c.req("POST", "/sessions", {"directory": work}); lat.append((time.perf_counter() - t0) * 1000)
    assert code == 201, j
    ids.append(j["session"]["id"])
    if len(ids) >= 10:
        for sid in ids: c.req("DELETE", f"/sessions/{sid}")
        ids = []
for sid in ids: c.req("DELETE", f"/sessions/{sid}")
lat.sort()
out["POST /sessions p50 ms"] = round(statistics.median(lat), 2)
out["POST /sessions p99 ms"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2)

# Output line written → visible in GET /sessions/:id (lastEventType changes).
code, j = c.req("POST", "/sessions", {"directory": work})
sid, path = j["session"]["id"], j["session"]["stdoutPath"]
time.sleep(1.0)
vis = []
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
for i in range(100):
    kind = f"bench{i}"
    t0 = time.perf_counter()
    os.write(fd, (json.dumps({"type": kind}) + "\n").encode())
    while True:
        _, s = c.req("GET", f"/sessions/{sid}")
        if s["session"].get("lastEventType") == kind: break
        if time.perf_counter() - t0 > 2: break
    vis.append((time.perf_counter() - t0) * 1000)
os.close(fd)
c.req("DELETE", f"/sessions/{sid}")
out["output line -> visible p50 ms"] = round(statistics.median(vis), 2)
out["output line -> visible max ms"] = round(max(vis), 2)

# Idle RSS after IDLE seconds (no sessions, no requests).
time.sleep(IDLE)
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
out[f"daemon idle RSS after {int(IDLE)} s MiB"] = round(int(rss) / 1024, 2)
t = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
cpu0 = int(t[11]) + int(t[12]); time.sleep(10)
t = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
cpu1 = int(t[11]) + int(t[12])
out["daemon idle CPU % (10 s, no sessions)"] = round((cpu1 - cpu0) / os.sysconf("SC_CLK_TCK") / 10 * 100, 3)
# Idle CPU with 10 idle sessions (a new connection: the idle one was dropped after 10 s).
c = Conn()
ids = [c.req("POST", "/sessions", {"directory": work})[1]["session"]["id"] for _ in range(10)]
time.sleep(2)
t = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split(); cpu0 = int(t[11]) + int(t[12])
time.sleep(CPU_SECONDS)
t = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split(); cpu1 = int(t[11]) + int(t[12])
out[f"daemon idle CPU % ({int(CPU_SECONDS)} s, 10 idle sessions)"] = round((cpu1 - cpu0) / os.sysconf("SC_CLK_TCK") / CPU_SECONDS * 100, 3)
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
out["daemon RSS with 10 idle sessions MiB"] = round(int(rss) / 1024, 2)
for k, v in out.items(): print(f"{k}: {v}", flush=True)
c = Conn()  # the previous connection sat idle past the 10 s timeout
for sid in ids: c.req("DELETE", f"/sessions/{sid}")
PY
