"""Concurrency stress of the real daemon (issue 8): parallel starts, kill -9 recovery,
100 sessions spawned and stopped at once through the control API (all tracked, all
reaped, no descriptor leak). The whole file is meant to stay under ~2 minutes."""
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from daemon_fixtures import DaemonHappy, control_request, pid_alive, wait_until


def api(port, token, method, path, body=None, timeout=30):
    return control_request(port, method, path, token, body, timeout=timeout)


@pytest.fixture
def sdh(tmp_path):
    h = DaemonHappy(tmp_path, extra_profile="sessions:\n  max: 256\n")
    yield h
    h.cleanup()


def happy_daemons(home) -> list[int]:
    """Pids of live `happy daemon start-sync` processes for this home (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if b"start-sync" in cmd and f"HAPPY_HOME_DIR={home}".encode() in env and pid_alive(int(d)):
            out.append(int(d))
    return out


def fd_count(pid) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def zombie_children(ppid) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if rest[0] == "Z" and int(rest[1]) == ppid:
            out.append(int(d))
    return out


def test_20_parallel_starts_exactly_one_daemon(sdh):
    for rnd in range(5):
        procs = [subprocess.Popen([sdh.bin, "daemon", "start", "--json"], env=sdh.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(20)]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, f"round {rnd}: exit {p.returncode}: {err}"
            outs.append(json.loads(out))
        pids = {o["pid"] for o in outs}
        for pid in pids:
            sdh.track(pid)
        assert len(pids) == 1, f"round {rnd}: {pids}"
        assert sum(1 for o in outs if not o["alreadyRunning"]) == 1, f"round {rnd}"
        (pid,) = pids
        assert sdh.state()["pid"] == pid
        assert happy_daemons(sdh.home) == [pid]
        assert sdh.run("daemon", "status").returncode == 0
        assert sdh.run("daemon", "stop").returncode == 0
        assert wait_until(lambda: not pid_alive(pid), 10)
        assert happy_daemons(sdh.home) == []


def test_20_kill9_then_start_recovers(sdh):
    seen = set()
    for i in range(20):
        info = sdh.start()
        assert not info["alreadyRunning"], f"cycle {i}"
        assert info["pid"] not in seen
        seen.add(info["pid"])
        assert sdh.run("daemon", "status").returncode == 0, f"cycle {i}"
        os.kill(info["pid"], signal.SIGKILL)
        assert wait_until(lambda: not pid_alive(info["pid"]), 5), f"cycle {i}"
    info = sdh.start()
    assert happy_daemons(sdh.home) == [info["pid"]]
    st = sdh.state()
    assert api(st["httpPort"], st["controlToken"], "GET", "/status")[0] == 200
    sdh.run("daemon", "stop")


def test_kill9_during_startup_then_start_recovers(sdh):
    """kill -9 at random points of a daemon's start-up (lock taken, state half written...)."""
    import random
    rng = random.Random(8)
    for i in range(10):
        p = subprocess.Popen([sdh.bin, "daemon", "start-sync"], env=sdh.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        sdh.track(p.pid)
        time.sleep(rng.uniform(0, 0.15))
        p.kill()
        p.wait(5)
        info = sdh.start()
        assert not info["alreadyRunning"] and info["pid"] != p.pid, f"cycle {i}"
        assert sdh.run("daemon", "status").returncode == 0, f"cycle {i}"
        assert sdh.state()["pid"] == info["pid"]
        assert sdh.run("daemon", "stop").returncode == 0, f"cycle {i}"
        assert not sdh.state_path.exists() and not sdh.lock_path.exists()
    assert not list(sdh.home.glob("daemon.state.json.corrupt-*"))


def test_100_sessions_spawned_and_stopped_concurrently(sdh):
    info = sdh.start()
    st = sdh.state()
    port, token, dpid = st["httpPort"], st["controlToken"], info["pid"]
    work = sdh.tmp / "work"
    work.mkdir()
    # Warm up (first spawn creates folders, opens the sessions dir, etc.).
    code, b = api(port, token, "POST", "/sessions", {"directory": str(work)})
    assert code == 201, b
    assert api(port, token, "DELETE", f"/sessions/{b['session']['id']}")[0] == 200
    time.sleep(0.5)
    fds_before = fd_count(dpid)

    n = 100
    with ThreadPoolExecutor(max_workers=50) as ex:
        spawned = list(ex.map(lambda i: api(port, token, "POST", "/sessions",
                                            {"directory": str(work), "prompt": f"hi {i}"}), range(n)))
    assert all(c == 201 for c, _ in spawned), [b for c, b in spawned if c != 201][:3]
    sessions = [b["session"] for _, b in spawned]
    ids = {s["id"] for s in sessions}
    pids = [s["pid"] for s in sessions]
    for p in pids:
        sdh.track(p)
    assert len(ids) == n and len(set(pids)) == n
    code, lst = api(port, token, "GET", "/sessions")
    assert code == 200 and ids <= {s["id"] for s in lst["sessions"]}
    assert all(pid_alive(p) for p in pids)

    with ThreadPoolExecutor(max_workers=50) as ex:
        stopped = list(ex.map(lambda s: api(port, token, "DELETE", f"/sessions/{s}"), ids))
    assert all(c == 200 for c, _ in stopped), [b for c, b in stopped if c != 200][:3]
    assert all(b["session"]["status"] == "stopped" for _, b in stopped)
    # All tracked: every one listed as stopped; all reaped: gone from /proc, no zombie children.
    code, lst = api(port, token, "GET", "/sessions?all=true")
    by_id = {s["id"]: s for s in lst["sessions"]}
    assert all(by_id[i]["status"] == "stopped" for i in ids)
    assert api(port, token, "GET", "/sessions")[1]["sessions"] == []
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{p}/stat") and not_other(p, work) for p in pids), 10), \
        [p for p in pids if os.path.exists(f"/proc/{p}")]
    assert wait_until(lambda: zombie_children(dpid) == [], 5), zombie_children(dpid)
    # No descriptor leak in the daemon.
    assert wait_until(lambda: fd_count(dpid) <= fds_before, 5), (fds_before, fd_count(dpid),
                                                                 sorted(os.listdir(f"/proc/{dpid}/fd")))
    print(f"\n100 sessions: fds before {fds_before}, after {fd_count(dpid)}")
    assert pid_alive(dpid) and api(port, token, "GET", "/health")[0] == 200


def not_other(pid, work) -> bool:
    """True when /proc/PID is still (a zombie of) our session, not a reused pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return True
        return os.readlink(f"/proc/{pid}/cwd") == str(work)
    except OSError:
        return False
