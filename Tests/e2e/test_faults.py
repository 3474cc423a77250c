"""Fault injection against the real daemon (issue 8): the server killed mid-handshake,
mid-RPC and mid-update (through a TCP proxy that kills the emulator the moment a given
frame passes), a server answering garbage (junk HTTP, junk WebSocket frames, oversize
messages), undecryptable RPC params and `update` values, odd versions, wall-clock jumps
(an LD_PRELOAD clock shim), and a full or read-only disk under the home (tmpfs). In every case the
daemon keeps serving, ends `running` once the server is healthy again, and never
corrupts or deletes a good file."""
import base64
import hashlib
import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

from sync_fixtures import Account, SyncEmulator, SyncHappy, emu, pid_alive, wait_until  # noqa: F401

CLOCKSHIFT_C = r"""// LD_PRELOAD shim: shifts CLOCK_REALTIME (and gettimeofday/time) by the number of
// seconds in the file named by $CLOCKSHIFT_FILE, re-read at most every 50 ms.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static int (*real_cg)(clockid_t, struct timespec *);
static long long shift_s;
static struct timespec last_read;

static long long shift(void) {
    if (!real_cg) real_cg = dlsym(RTLD_NEXT, "clock_gettime");
    struct timespec m;
    real_cg(CLOCK_MONOTONIC, &m);
    long long ms = (m.tv_sec - last_read.tv_sec) * 1000LL + (m.tv_nsec - last_read.tv_nsec) / 1000000;
    if (last_read.tv_sec == 0 || ms >= 50) {
        last_read = m;
        const char *p = getenv("CLOCKSHIFT_FILE");
        FILE *f = p ? fopen(p, "re") : NULL;
        if (f) { long long v; if (fscanf(f, "%lld", &v) == 1) shift_s = v; fclose(f); }
    }
    return shift_s;
}

int clock_gettime(clockid_t c, struct timespec *ts) {
    if (!real_cg) real_cg = dlsym(RTLD_NEXT, "clock_gettime");
    int r = real_cg(c, ts);
    if (r == 0 && (c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift();
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
    (void)tz;
    return r;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
"""


def nodelay(s):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---------------------------------------------------------------- a fault-injecting proxy

def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B65").encode()).digest()).decode()


def ws_frame(payload: bytes, opcode=1, fin=True, rsv=0, claimed_len=None) -> bytes:
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if claimed_len is None else claimed_len
    if n < 126:
        head = bytes([b0, n])
    elif n < 65536:
        head = bytes([b0, 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 127]) + struct.pack(">Q", n)
    return head + payload


EIO_OPEN = b'0{"sid":"junk","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'

# WebSocket answers of a broken server: (name, handshake ok?, bytes after the handshake).
WS_GARBAGE = [
    ("bad-accept", False, b""),
    ("random-bytes", True, os.urandom(4096)),
    ("reserved-bits", True, ws_frame(b"hello", rsv=7)),
    ("bad-opcode", True, ws_frame(b"hello", opcode=3)),
    ("masked-from-server", True, bytes([0x81, 0x85]) + os.urandom(9)),
    ("huge-claimed-length", True, ws_frame(b"", claimed_len=(1 << 63) - 1) + os.urandom(1024)),
    ("oversize-message", True, ws_frame(EIO_OPEN) + ws_frame(b"4" + b"x" * 3_000_000)),
    ("oversize-fragments", True, ws_frame(EIO_OPEN) + ws_frame(b"4" + b"x" * 600_000, fin=False)
     + ws_frame(b"x" * 600_000, opcode=0, fin=False) + ws_frame(b"x" * 600_000, opcode=0)),
    ("junk-engineio", True, ws_frame(b"not engine.io") + ws_frame(b"0{not json") + ws_frame(b"9") + ws_frame(b"")),
    ("junk-socketio", True, ws_frame(EIO_OPEN) + ws_frame(b"40{bad") + ws_frame(b"42[") + ws_frame(b"42{}")
     + ws_frame(b'42["update"') + ws_frame(b"4" + b"\xff\xfe" * 10) + ws_frame(b"\x00\x01", opcode=2)
     + ws_frame(b'44{"message":"no"}')),
    ("control-frames", True, ws_frame(EIO_OPEN) + ws_frame(b"x" * 200, opcode=9) + ws_frame(b"", opcode=8, fin=False)),
    ("close-with-junk", True, ws_frame(b"\x03\xe8" + b"\xff" * 100, opcode=8)),
]


class FaultProxy:
    """127.0.0.1 TCP proxy in front of the emulator. `kill_on`: when a chunk from the
    server contains this pattern, the emulator is SIGKILLed (before the chunk is
    delivered, or `kill_delay` s after it). `http_garbage` / `ws_garbage`: lists of
    answers the proxy gives itself to the next non-WebSocket / WebSocket connections."""

    def __init__(self, emu: SyncEmulator):
        self.emu = emu
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.kill_on: bytes | None = None
        self.kill_delay = 0.0
        self.killed = threading.Event()
        self.http_garbage: list[bytes] = []
        self.ws_garbage: list = []
        self.served: list[str] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        try:
            self.ls.close()
        except OSError:
            pass

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c):
        nodelay(c)
        c.settimeout(10)
        try:
            first = c.recv(65536)
        except OSError:
            c.close()
            return
        is_ws = b"upgrade: websocket" in first.lower()
        with self.lock:
            ws_g = self.ws_garbage.pop(0) if is_ws and self.ws_garbage else None
            http_g = self.http_garbage.pop(0) if not is_ws and self.http_garbage else None
        if http_g is not None or ws_g is not None:
            try:
                self._garbage(c, first, http_g, ws_g)
            except OSError:
                pass
            finally:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            return
        try:
            up = socket.create_connection(("127.0.0.1", self.emu.port), timeout=5)
        except OSError:
            c.close()
            return
        nodelay(up)
        up.settimeout(None)
        c.settimeout(None)
        try:
            up.sendall(first)
        except OSError:
            up.close()
            c.close()
            return
        threading.Thread(target=self._pump, args=(c, up, False), daemon=True).start()
        self._pump(up, c, True)

    def _garbage(self, c, first, http_g, ws_g):
        if http_g is not None:
            self.served.append("http-garbage")
            c.sendall(http_g)
            return
        if ws_g is not None:
            name, ok, junk = ws_g
            self.served.append(name)
            key = next((l.split(b":", 1)[1].strip().decode() for l in first.split(b"\r\n")
                        if l.lower().startswith(b"sec-websocket-key:")), "x")
            accept = ws_accept(key) if ok else base64.b64encode(os.urandom(20)).decode()
            c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            if junk:
                c.sendall(junk)
            time.sleep(0.3)

    def _pump(self, src, dst, from_server):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                pat = self.kill_on
                if from_server and pat is not None and pat in data:
                    self.kill_on = None
                    if self.kill_delay:
                        dst.sendall(data)
                        time.sleep(self.kill_delay)
                    self.emu.proc.kill()
                    self.emu.proc.wait()
                    self.killed.set()
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


class FaultHappy(SyncHappy):
    def __init__(self, tmp, emu, account, proxy=None, heartbeat=0.5):
        super().__init__(tmp, emu, account, heartbeat=heartbeat)
        self.proxy = proxy
        if proxy:
            self.env["HAPPY_SERVER_URL"] = proxy.url

    def health(self) -> int:
        st = self.state() or {}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{st.get('httpPort')}/health", timeout=5) as r:
                return r.status
        except Exception:
            return 0

    def running_after_restart(self, timeout=15):
        """A successful `running` machine-update-state on the (restarted) emulator, and
        the daemon reports connected."""
        def ok():
            try:
                for e in self.emu.events("machine-update-state"):
                    if (e.get("ack") or {}).get("result") == "success" and \
                            self.account.decrypt(e["payload"]["daemonState"])["status"] == "running":
                        return self.server_status() == "connected"
            except Exception:
                return False
            return False
        return wait_until(ok, timeout, 0.1)

    def crash_traces(self) -> str:
        p = self.home / "logs" / "daemon-stdio.log"
        return p.read_text(errors="replace") if p.exists() else ""


@pytest.fixture
def px(tmp_path, emu):
    p = FaultProxy(emu)
    acc = Account(emu, "legacy")
    emu.stop()  # a clean stop saves the account to the state file: it survives the SIGKILLs below
    emu.start()
    h = FaultHappy(tmp_path, emu, acc, p)
    yield h
    h.cleanup()
    p.close()


# ---------------------------------------------------------------- server killed mid-...

@pytest.mark.parametrize("pattern", [b"HTTP/1.1 200", b'0{"sid"', b"40{", b"rpc-registered"],
                         ids=["mid-registration", "mid-engineio-open", "mid-socketio-connect", "mid-rpc-register"])
def test_server_killed_mid_handshake(px, pattern):
    px.proxy.kill_on = pattern
    info = px.start()
    assert px.proxy.killed.wait(10), "the pattern never passed"
    time.sleep(0.5)
    assert pid_alive(info["pid"]) and px.health() == 200
    px.emu.start()
    assert px.running_after_restart(), px.status()
    assert px.state()["pid"] == info["pid"] and "Fatal error" not in px.crash_traces()


@pytest.mark.parametrize("delay", [0.0, 0.05], ids=["before-delivery", "while-handling"])
def test_server_killed_mid_rpc(px, delay, tmp_path):
    info = px.start()
    assert px.wait_running(10)
    mid = px.machine_id()
    phone = px.phone()
    px.proxy.kill_delay = delay
    px.proxy.kill_on = b"rpc-request"
    work = tmp_path / "w"
    work.mkdir()
    try:
        phone.rpc(mid, "spawn-happy-session", {"directory": str(work)}, timeout=3)
    except Exception:
        pass
    assert px.proxy.killed.wait(5)
    phone.close()
    px.phones.clear()
    assert pid_alive(info["pid"]) and px.health() == 200
    px.emu.start()
    assert px.running_after_restart(), px.status()
    # Serves RPCs again; whatever was spawned during the fault is tracked (and stoppable).
    phone = px.phone()
    r = phone.rpc(mid, "spawn-happy-session", {"directory": str(work)})
    assert r["type"] == "success", r
    sessions = px.json("session", "list")["sessions"]
    assert r["sessionId"] in {s["serverSessionId"] for s in sessions} and len(sessions) in (1, 2)
    for s in sessions:
        px.track(s["pid"])
        assert phone.rpc(mid, "stop-session", {"sessionId": s["id"]}) == {"message": "Session stopped"}
    assert px.state()["pid"] == info["pid"]


@pytest.mark.parametrize("pattern", [b"update-machine", b'"result":"success"'], ids=["at-broadcast", "at-ack"])
def test_server_killed_mid_update(px, pattern):
    px.proxy.kill_on = pattern
    info = px.start()
    assert px.proxy.killed.wait(10)
    assert pid_alive(info["pid"]) and px.health() == 200
    px.emu.start()
    assert px.running_after_restart(), px.status()
    mid = px.machine_id()
    m = px.emu.machine(mid)
    assert px.account.decrypt(m["daemonState"])["status"] == "running"
    # A clean stop still gets its two versioned updates through.
    n = len(px.emu.events("machine-update-state"))
    assert px.run("daemon", "stop").returncode == 0
    ups = px.emu.events("machine-update-state")[n:]
    assert [u["ack"]["result"] for u in ups][-2:] == ["success", "success"]


# ---------------------------------------------------------------- a server answering garbage

def test_server_answering_garbage(px):
    p = px.proxy
    p.http_garbage = [os.urandom(8192), b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n{",
                      b"HTTP/1.1 200 OK\r\n" + b"X-Junk: " + b"a" * 200_000 + b"\r\n\r\n",
                      b"garbage\r\n\r\n"]
    p.ws_garbage = list(WS_GARBAGE)
    info = px.start()
    # Every broken answer is consumed, one connection each, then the real server answers.
    assert wait_until(lambda: not p.http_garbage and not p.ws_garbage, 60, 0.2), (p.http_garbage, len(p.ws_garbage))
    assert pid_alive(info["pid"]) and px.health() == 200
    assert px.running_after_restart(20), px.status()
    assert px.state()["pid"] == info["pid"]
    assert "Fatal error" not in px.crash_traces() and "Sanitizer" not in px.crash_traces()
    log = open(px.state()["daemonLogPath"]).read()
    assert log.count("\n") > 5
    print(f"\nserved: {p.served}")


def test_oversize_event_from_real_server(px):
    info = px.start()
    assert px.wait_running(10)
    st, b = px.emu.call("POST", "/__test/large", {"size": 3_000_000, "event": "update"})
    assert st == 200
    time.sleep(0.5)
    assert pid_alive(info["pid"]) and px.health() == 200
    assert px.running_after_restart(15)
    assert px.state()["pid"] == info["pid"]


# ---------------------------------------------------------------- undecryptable input

def machine_sid(h):
    sids = [s for s, i in h.emu.log()["sockets"].items() if i["clientType"] == "machine-scoped"]
    assert len(sids) == 1
    return sids[0]


def emit(h, event, data, ack=False):
    st, b = h.emu.call("POST", "/__test/emit", {"event": event, "sid": machine_sid(h), "ack": ack, "data": data,
                                                  "timeout": 5})
    assert st == 200, b
    return b


@pytest.fixture
def dh_sync(tmp_path, emu):
    h = FaultHappy(tmp_path, emu, Account(emu, "dataKey"))
    yield h
    h.cleanup()


def test_undecryptable_rpc_params_keep_serving(dh_sync, tmp_path):
    h = dh_sync
    info = h.start()
    assert h.wait_running(10)
    mid = h.machine_id()
    phone = h.phone()
    bad = ["", "!!!", "bm90IGVuY3J5cHRlZA==", base64.b64encode(os.urandom(10)).decode(),
           base64.b64encode(os.urandom(200)).decode(), base64.b64encode(b"\x00" + os.urandom(100)).decode(),
           base64.b64encode(os.urandom(300_000)).decode(), 123, None, {"a": 1}, ["x"], True]
    for params in bad:
        r = emit(h, "rpc-request", {"method": f"{mid}:spawn-happy-session", "params": params}, ack=True)
        ack = r["results"][0].get("ack")
        assert ack and isinstance(ack[0], str), (params if not isinstance(params, str) else params[:20], r)
        assert "error" in phone.dec(ack[0])
    # Malformed requests themselves.
    for data in [{"params": phone.enc({})}, {"method": 5}, {"method": ""}, "junk", None, [1, 2],
                 {"method": f"{mid}:../../etc", "params": phone.enc({})},
                 {"method": f"{mid}:spawn-happy-session", "params": phone.enc("not an object")},
                 {"method": f"{mid}:spawn-happy-session", "params": phone.enc({"directory": 5})},
                 {"method": f"{mid}:stop-session", "params": phone.enc({"sessionId": ["x"]})}]:
        emit(h, "rpc-request", data, ack=True)
    # Still serving, same socket, same pid.
    assert pid_alive(info["pid"]) and h.server_status() == "connected"
    r = phone.rpc(mid, "spawn-happy-session", {"directory": str(tmp_path)})
    assert r["type"] == "success", r
    h.track(h.json("session", "list")["sessions"][0]["pid"])
    assert phone.rpc(mid, "stop-session", {"sessionId": r["sessionId"]}) == {"message": "Session stopped"}
    assert len([e for e in h.emu.events("connect") if e["payload"].get("clientType") == "machine-scoped"]) == 1


def test_undecryptable_and_odd_updates(dh_sync):
    h = dh_sync
    info = h.start()
    assert h.wait_running(10)
    mid = h.machine_id()

    def upd(body):
        return {"id": "x", "seq": 1, "body": body, "createdAt": int(time.time() * 1000)}
    junk_values = ["!!!", base64.b64encode(os.urandom(64)).decode(), "", 5, None, {"v": 1}]
    odd_versions = [-5, 0, 1.5, 1e20, 2 ** 63, "7", None, True, float("inf")]
    events = []
    for field in ("daemonState", "metadata"):
        for v in junk_values:
            events.append(upd({"t": "update-machine", "machineId": mid, field: {"value": v, "version": 50}}))
        for ver in odd_versions:
            ver = ver if ver != float("inf") else 1e308
            events.append(upd({"t": "update-machine", "machineId": mid, field: {"value": None, "version": ver}}))
        events.append(upd({"t": "update-machine", "machineId": mid, field: "not an object"}))
    events += [upd({"t": "update-machine"}), upd({"t": "update-machine", "machineId": 5}), upd("body"),
               upd(None), {"body": {"t": "new-message"}}, "junk", 42, None, [], {"no": "body"},
               upd({"t": "update-machine", "machineId": "other-machine", "daemonState": {"value": "!!", "version": 1}})]
    for e in events:
        emit(h, "update", e)
    # Also through the server's own path: a bump with an undecryptable stored value.
    st, b = h.emu.call("POST", "/__test/sync/bump", {"machineId": mid, "field": "daemonState", "by": 2,
                                                     "value": base64.b64encode(os.urandom(80)).decode()})
    assert st == 200
    time.sleep(0.5)
    assert pid_alive(info["pid"]) and h.health() == 200 and h.server_status() == "connected"
    # The daemon still gets its state through: a reconnect re-sends `running`.
    n = len(h.emu.events("machine-update-state"))
    h.emu.call("POST", "/__test/sync/disconnect", {"machineId": mid})

    def running_again():
        ups = h.emu.events("machine-update-state")[n:]
        return any((u.get("ack") or {}).get("result") == "success" for u in ups)
    assert wait_until(running_again, 15), h.emu.events("machine-update-state")[n:]
    assert h.daemon_state()["status"] == "running"
    assert h.account.decrypt(h.emu.machine(mid)["metadata"])["happyHomeDir"] == str(h.home)
    n = len(h.emu.events("machine-update-state"))
    assert h.run("daemon", "stop").returncode == 0
    ups = h.emu.events("machine-update-state")[n:]
    assert [u["ack"]["result"] for u in ups][-2:] == ["success", "success"]
    assert h.daemon_state()["status"] == "offline"


# ---------------------------------------------------------------- clock jumps

def clockshift_lib(tmp_path) -> str:
    """Builds the LD_PRELOAD shim that shifts the wall clock (libfaketime cannot be used:
    preloaded into a Swift binary it loses the command-line arguments)."""
    cc = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to build the clock-shift shim")
    src = tmp_path / "clockshift.c"
    src.write_text(CLOCKSHIFT_C)
    lib = tmp_path / "clockshift.so"
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(src), "-ldl"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build the clock-shift shim: {r.stderr[:200]}")
    return str(lib)


def test_wall_clock_jumps(dh_sync, tmp_path):
    """The daemon's wall clock jumps a year ahead, then a year back, while it runs (an
    LD_PRELOAD shim shifts CLOCK_REALTIME by the seconds in a file; the monotonic clock
    is left alone, as on a real machine whose clock is set)."""
    h = dh_sync
    tfile = tmp_path / "clockshift"
    tfile.write_text("0\n")
    h.env.update({"LD_PRELOAD": clockshift_lib(tmp_path), "CLOCKSHIFT_FILE": str(tfile)})
    info = h.start()
    assert h.wait_running(10)
    mid = h.machine_id()
    year_ms = 365 * 86400 * 1000
    phone = h.phone()
    year_s = year_ms // 1000
    for offset, label in ((year_s, "ahead"), (-year_s, "back"), (0, "back to now")):
        tfile.write_text(f"{offset}\n")
        t0 = time.time()
        time.sleep(2.5)
        alive = [a for a in h.emu.log()["alive"] if a["machineId"] == mid and a["t"] / 1000 >= t0 + 0.5]
        # Heartbeats keep their cadence (0.5 s) whatever the wall clock says ...
        assert len(alive) >= 3, (label, len(alive))
        # ... and carry the daemon's (jumped) time.
        expect = offset * 1000
        assert all(abs(a["time"] - a["t"] - expect) < 60_000 for a in alive), (label, alive[:2])
        assert pid_alive(info["pid"]) and h.health() == 200 and h.server_status() == "connected"
        r = phone.rpc(mid, "spawn-happy-session", {"directory": str(tmp_path)})
        assert r["type"] == "success", (label, r)
        h.track(next(s["pid"] for s in h.json("session", "list")["sessions"] if s["serverSessionId"] == r["sessionId"]))
        assert phone.rpc(mid, "stop-session", {"sessionId": r["sessionId"]}) == {"message": "Session stopped"}
    # The state file's heartbeat still advances and the daemon stops cleanly.
    hb = h.state()["lastHeartbeat"]
    assert wait_until(lambda: h.state()["lastHeartbeat"] != hb, 3)
    assert h.run("daemon", "stop").returncode == 0


# ---------------------------------------------------------------- disk full / read-only home

def can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    d = pathlib.Path(f"/tmp/happy-mount-probe-{os.getpid()}")
    d.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(d)], capture_output=True)
    d.rmdir()
    return ok


MOUNT_OK = can_mount()


@pytest.fixture
def small_home(tmp_path, emu):
    """The home on a 4 MiB tmpfs; logs/ bind-mounted from the normal disk so the
    daemon can still log while the home is full or read-only."""
    if not MOUNT_OK:
        pytest.skip("mount -t tmpfs is not permitted here (needs root with CAP_SYS_ADMIN)")
    h = FaultHappy(tmp_path, emu, Account(emu, "legacy"))
    mounts = []
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(h.home)], check=True)
        mounts.append(h.home)
        real_logs = tmp_path / "real-logs"
        real_logs.mkdir(mode=0o700)
        (h.home / "logs").mkdir(mode=0o700)
        subprocess.run(["mount", "--bind", str(real_logs), str(h.home / "logs")], check=True)
        mounts.append(h.home / "logs")
        (h.home / "access.key").write_text(json.dumps(h.account.access_key, indent=2))
        (h.home / "access.key").chmod(0o600)
        (h.home / "settings.json").write_text(json.dumps({"schemaVersion": 2, "keepMe": {"a": [1, 2]}}))
        (h.home / "settings.json").chmod(0o600)
        yield h
    finally:
        h.cleanup()
        subprocess.run(["mount", "-o", "remount,rw", str(h.home)], capture_output=True)
        for m in reversed(mounts):
            subprocess.run(["umount", "-l", str(m)], capture_output=True)


def fill(path: pathlib.Path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 1):  # then the rest of partly used pages
            while True:
                try:
                    if os.write(fd, b"\0" * size) < size:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)


def snapshot(h) -> dict:
    return {p.name: p.read_bytes() for p in h.home.iterdir() if p.is_file() and p.name != "filler"}


@pytest.mark.parametrize("fault", ["disk-full", "read-only"])
def test_disk_fault_while_running(small_home, fault, tmp_path):
    h = small_home
    info = h.start()
    assert h.wait_running(10)
    st = h.state()
    work = tmp_path / "w"
    work.mkdir()
    sid = h.run("session", "new", work, "--prompt", "before").stdout.strip()
    h.track(h.json("session", "list")["sessions"][0]["pid"])
    before = snapshot(h)
    assert set(before) >= {"access.key", "settings.json", "daemon.state.json", "daemon.state.json.lock"}
    if fault == "disk-full":
        fill(h.home / "filler")
    else:
        # A file open for writing (a session's output) makes `remount,ro` fail: stop it first.
        assert h.run("session", "stop", sid).returncode == 0
        before = snapshot(h)
        subprocess.run(["mount", "-o", "remount,ro", str(h.home)], check=True)
    try:
        time.sleep(2)  # four health checks try to rewrite daemon.state.json
        assert pid_alive(info["pid"]) and h.health() == 200
        assert h.run("daemon", "status").returncode == 0
        assert h.run("session", "list").returncode == 0
        # A spawn that cannot write its files fails cleanly, the daemon carries on.
        r = h.run("session", "new", work)
        if r.returncode == 0:
            h.track(h.json("session", "list")["sessions"][-1]["pid"])
        else:
            assert "error:" in r.stderr
        phone = h.phone()
        ans = phone.rpc(h.machine_id(), "spawn-happy-session", {"directory": str(work)})
        assert "type" in ans or "error" in ans
        # The session child may die of ENOSPC itself; the daemon still tracks it.
        assert sid in {x["id"] for x in h.json("session", "list", "--all")["sessions"]}
        assert pid_alive(info["pid"]) and h.health() == 200 and h.server_status() == "connected"
        # Good files are untouched (the state file keeps its last good content), no temp files left.
        now = snapshot(h)
        for name in ("access.key", "settings.json", "daemon.state.json", "daemon.state.json.lock"):
            assert now[name] == before[name], name
        json.loads(now["daemon.state.json"])
        json.loads(now["settings.json"])
        assert not [p for p in h.home.iterdir() if ".tmp-" in p.name or ".corrupt-" in p.name]
        log = open(st["daemonLogPath"]).read()
        assert "cannot write daemon.state.json" in log
    finally:
        if fault == "disk-full":
            (h.home / "filler").unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(h.home)], check=True)
    # Space is back: heartbeats reach the state file again, spawns work.
    hb = json.loads(before["daemon.state.json"])["lastHeartbeat"]
    assert wait_until(lambda: (h.state() or {}).get("lastHeartbeat") != hb, 3)
    assert h.state()["pid"] == info["pid"]
    r = h.run("session", "new", work)
    assert r.returncode == 0, r.stderr
    assert json.loads((h.home / "settings.json").read_text())["keepMe"] == {"a": [1, 2]}
    assert h.run("daemon", "stop").returncode == 0


@pytest.mark.parametrize("fault", ["disk-full", "read-only"])
def test_disk_fault_at_start(small_home, fault):
    """The daemon cannot even take its lock / write the machine id: `daemon start`
    fails with an error, and settings.json / access.key stay exactly as they were."""
    h = small_home
    before = snapshot(h)
    if fault == "disk-full":
        fill(h.home / "filler")
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(h.home)], check=True)
    try:
        r = h.run("daemon", "start", timeout=60)
        st = h.state()
        if st:
            h.track(st["pid"])
        assert r.returncode != 0, r.stdout
        assert "error:" in r.stderr
        assert snapshot(h) == before
        assert not [p for p in h.home.iterdir() if ".tmp-" in p.name or ".corrupt-" in p.name]
    finally:
        if fault == "disk-full":
            (h.home / "filler").unlink()
        else:
            subprocess.run(["mount", "-o", "remount,rw", str(h.home)], check=True)
    info = h.start()
    assert h.wait_running(10)
    s = json.loads((h.home / "settings.json").read_text())
    assert s["keepMe"] == {"a": [1, 2]} and s["machineId"]
    assert h.run("daemon", "stop").returncode == 0
    assert not pid_alive(info["pid"])
