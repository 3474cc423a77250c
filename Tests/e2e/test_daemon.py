"""End-to-end: `happy daemon ...` lifecycle (SPEC §3.3, §4.1, §4.2)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

from daemon_fixtures import DaemonHappy, control_request, dh, pid_alive, wait_until  # noqa: F401

STATUS_KEYS = {"pid", "httpPort", "version", "profile", "machineId", "serverUrl", "server", "startedAt", "sessions",
               "running", "logPath", "uptimeMs"}


def test_start_status_stop(dh):
    r = dh.run("daemon", "start")
    assert r.returncode == 0, r.stderr
    st = dh.state()
    dh.track(st["pid"])
    assert f"pid {st['pid']}" in r.stdout and str(st["httpPort"]) in r.stdout and "t" in r.stdout
    assert st["daemonLogPath"] in r.stdout
    assert oct(dh.state_path.stat().st_mode & 0o777) == "0o600"
    assert oct(dh.lock_path.stat().st_mode & 0o777) == "0o600"
    lock = dh.lock_path.read_text().split("\n")
    assert int(lock[0]) == st["pid"] and int(lock[1]) > 0
    assert set(st) == {"pid", "httpPort", "controlToken", "startTime", "startedWithCliVersion", "lastHeartbeat",
                       "daemonLogPath", "profile"}
    assert len(st["controlToken"]) >= 32
    # Already running → says so, exit 0.
    r = dh.run("daemon", "start")
    assert r.returncode == 0 and "already running" in r.stdout
    # Status.
    r = dh.run("daemon", "status")
    assert r.returncode == 0 and "running" in r.stdout and str(st["pid"]) in r.stdout
    j = dh.json("daemon", "status")
    assert set(j) == STATUS_KEYS
    assert j["running"] is True and j["pid"] == st["pid"] and j["httpPort"] == st["httpPort"]
    assert j["server"] == "no-credentials" and j["profile"] == "t" and j["sessions"] == 0
    assert j["logPath"] == st["daemonLogPath"] and isinstance(j["uptimeMs"], int)
    version = dh.run("--version").stdout.split()[-1]
    assert j["version"] == version
    # Health over the API; 401 without a token elsewhere; 403 on a foreign Host.
    code, body = control_request(st["httpPort"], "GET", "/health")
    assert code == 200 and body["status"] == "ok" and body["pid"] == st["pid"]
    assert control_request(st["httpPort"], "GET", "/status")[0] == 401
    assert control_request(st["httpPort"], "GET", "/health", host="evil.example:80")[0] == 403
    # Stop.
    r = dh.run("daemon", "stop")
    assert r.returncode == 0 and "stopped" in r.stdout
    assert not pid_alive(st["pid"])
    assert not dh.state_path.exists() and not dh.lock_path.exists()
    r = dh.run("daemon", "status", "--json")
    assert r.returncode == 1
    j = json.loads(r.stdout)
    assert set(j) == STATUS_KEYS and j["running"] is False
    assert all(v is None for k, v in j.items() if k != "running")
    r = dh.run("daemon", "stop")
    assert r.returncode == 0 and "not running" in r.stdout


def test_start_sync_exits_nonzero_when_another_runs(dh):
    info = dh.start()
    r = dh.run("daemon", "start-sync", timeout=15)
    assert r.returncode != 0
    assert f"daemon already running (pid {info['pid']})" in r.stderr
    assert dh.state()["pid"] == info["pid"]


def test_two_start_syncs_at_once_exactly_one_runs(dh):
    procs = [subprocess.Popen([dh.bin, "daemon", "start-sync"], env=dh.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        dh.track(p.pid)
    # One exits with an error, the other keeps running.
    loser = wait_until(lambda: next((p for p in procs if p.poll() is not None), None), timeout=10)
    assert loser is not None and loser.returncode != 0
    assert "already running" in loser.stderr.read()
    winner = next(p for p in procs if p is not loser)
    assert winner.poll() is None
    assert wait_until(lambda: (dh.state() or {}).get("pid") == winner.pid)
    r = dh.run("daemon", "status")
    assert r.returncode == 0
    dh.run("daemon", "stop")
    assert winner.wait(timeout=10) == 0


def test_two_starts_at_once(dh):
    procs = [subprocess.Popen([dh.bin, "daemon", "start", "--json"], env=dh.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [json.loads(p.communicate(timeout=20)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    pids = {o["pid"] for o in outs}
    for pid in pids:
        dh.track(pid)
    assert len(pids) == 1
    assert sum(1 for o in outs if not o["alreadyRunning"]) <= 1


def test_kill9_then_start_recovers(dh):
    info = dh.start()
    os.kill(info["pid"], signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(info["pid"]))
    assert dh.state_path.exists() and dh.lock_path.exists()
    r = dh.run("daemon", "status")
    assert r.returncode == 1 and "not running" in r.stdout and "stale" in r.stdout
    assert not dh.state_path.exists() and not dh.lock_path.exists()
    # Leave stale files again and start directly over them.
    info2 = dh.start()
    os.kill(info2["pid"], signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(info2["pid"]))
    info3 = dh.start()
    assert info3["pid"] != info2["pid"] and not info3["alreadyRunning"]
    assert dh.run("daemon", "status").returncode == 0


def test_foreign_pid_in_lock_is_stale(dh):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        dh.home.mkdir(parents=True, exist_ok=True)
        dh.lock_path.write_text(f"{sleeper.pid}\n")
        dh.state_path.write_text(json.dumps({"pid": sleeper.pid, "httpPort": 1, "controlToken": "x"}))
        info = dh.start()
        assert info["pid"] != sleeper.pid and not info["alreadyRunning"]
        assert sleeper.poll() is None  # never signalled
    finally:
        sleeper.kill()
        sleeper.wait()


def test_corrupt_state_file(dh):
    dh.home.mkdir(parents=True, exist_ok=True)
    dh.state_path.write_text("{not json")
    r = dh.run("daemon", "status", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["running"] is False
    assert list(dh.home.glob("daemon.state.json.corrupt-*"))
    dh.state_path.write_text("{still not json")
    info = dh.start()
    assert dh.state()["pid"] == info["pid"]
    assert dh.run("daemon", "status").returncode == 0


def test_busy_port_fails_start_sync(dh):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        dh.write_profile("t", dh.profile_text.replace("httpPort: 0", f"httpPort: {port}"))
        r = dh.run("daemon", "start-sync", timeout=15)
        assert r.returncode != 0
        assert str(port) in r.stderr and "daemon.httpPort" in r.stderr
        assert not dh.lock_path.exists() and not dh.state_path.exists()
        r = dh.run("daemon", "start", timeout=20)
        assert r.returncode != 0
    finally:
        s.close()


def test_sigterm_stops_daemon_and_sessions(dh):
    info = dh.start()
    work = dh.tmp / "work"
    work.mkdir()
    sid = dh.run("session", "new", work).stdout.strip()
    sess = dh.json("session", "list")["sessions"]
    assert [s["id"] for s in sess] == [sid]
    spid = sess[0]["pid"]
    dh.track(spid)
    os.kill(info["pid"], signal.SIGTERM)
    assert wait_until(lambda: not pid_alive(info["pid"]), timeout=30)
    assert wait_until(lambda: not pid_alive(spid), timeout=5)
    assert not dh.state_path.exists() and not dh.lock_path.exists()
    rec = json.loads((dh.home / "sessions" / sid / "session.json").read_text())
    assert rec["status"] == "stopped"


def test_keep_sessions_and_restart_adopts(dh):
    dh.start()
    work = dh.tmp / "work"
    work.mkdir()
    sid = dh.run("session", "new", work, "--prompt", "hi").stdout.strip()
    spid = dh.json("session", "list")["sessions"][0]["pid"]
    dh.track(spid)
    # claude writes its system/init only once it answers the prompt: wait for it.
    assert wait_until(lambda: dh.json("session", "list")["sessions"][0]["status"] == "running", 10)
    r = dh.run("daemon", "stop", "--keep-sessions")
    assert r.returncode == 0
    assert pid_alive(spid)
    info = dh.start()
    sess = dh.json("session", "list")["sessions"]
    assert [(s["id"], s["pid"], s["status"]) for s in sess] == [(sid, spid, "running")]
    # restart keeps it too.
    r = dh.run("daemon", "restart")
    assert r.returncode == 0, r.stderr
    dh.track(dh.state()["pid"])
    assert dh.state()["pid"] != info["pid"]
    assert pid_alive(spid)
    assert [s["id"] for s in dh.json("session", "list")["sessions"]] == [sid]
    assert dh.run("session", "send", sid, "again").returncode == 0
    dh.run("daemon", "stop")
    assert wait_until(lambda: not pid_alive(spid), timeout=10)


def test_stalled_daemon_is_not_declared_stale(dh):
    info = dh.start()
    os.kill(info["pid"], signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = dh.run("daemon", "status", "--json", timeout=30)
        assert time.monotonic() - t0 >= 5
        assert r.returncode == 1
        j = json.loads(r.stdout)
        assert j["running"] is True and j["responding"] is False and j["pid"] == info["pid"]
        r = dh.run("daemon", "status", timeout=30)
        assert f"daemon (pid {info['pid']}) is running but not responding" in r.stdout
        assert dh.state_path.exists() and dh.lock_path.exists()
        # start says it is running, without waiting for /health.
        r = dh.run("daemon", "start", timeout=30)
        assert r.returncode == 0 and "already running" in r.stdout
    finally:
        os.kill(info["pid"], signal.SIGCONT)
    assert dh.run("daemon", "status").returncode == 0


def test_start_detaches_from_caller_stdio(dh):
    # The caller's pipes must close when `daemon start` exits (the daemon keeps none).
    p = subprocess.Popen([dh.bin, "daemon", "start"], env=dh.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=15)  # returns only when every writer closed the pipes
    assert p.returncode == 0
    st = dh.state()
    dh.track(st["pid"])
    assert os.getsid(st["pid"]) == st["pid"]
    assert (dh.home / "logs" / "daemon-stdio.log").exists()


def test_install_uninstall_unit(dh):
    r = dh.run("daemon", "install")
    assert r.returncode == 0, r.stderr
    unit = dh.xdg / "systemd" / "user" / "happy-t.service"
    text = unit.read_text()
    exe = os.path.realpath(dh.bin)
    assert f"ExecStart={exe} --profile t daemon start-sync" in text
    assert "Restart=on-failure" in text and "KillMode=process" in text
    assert "systemctl --user" in r.stdout
    if shutil.which("systemd-analyze"):
        v = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=30)
        if "Failed to initialize manager" not in v.stderr:
            assert v.returncode == 0, v.stderr
            assert "happy-t.service" not in v.stderr, v.stderr
    r = dh.run("daemon", "uninstall")
    assert r.returncode == 0 and not unit.exists() and "systemctl --user" in r.stdout
    r = dh.run("daemon", "uninstall")
    assert r.returncode == 0
