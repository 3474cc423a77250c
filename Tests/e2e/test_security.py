"""Security checks of the real binary (issue 8; SPEC §2.2, §4.2, §4.5): file modes,
no secret bytes in any log or error output, the control API's token and Host checks,
and no reading or writing through symlinks planted in the home."""
import base64
import json
import os
import socket
import stat
import subprocess
import time
import types

from daemon_fixtures import control_request, raw_http
from sync_fixtures import Account, SyncHappy, decrypt_value, emu, pid_alive, wait_until  # noqa: F401


def mode(p) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def req(port, method, path, token=None, host="default", body=None) -> int:
    return control_request(port, method, path, token, body, host)[0]


def secret_forms(b: bytes) -> list[str]:
    """Every text form a 32-byte secret could take in a log."""
    return [base64.b64encode(b).decode(), base64.b64encode(b).decode().rstrip("="),
            base64.urlsafe_b64encode(b).decode().rstrip("="), b.hex(), b.hex().upper(),
            base64.b32encode(b).decode().rstrip("=")]


def all_files(root):
    for dirpath, _, files in os.walk(root):
        for f in files:
            yield os.path.join(dirpath, f)


class Recorder:
    """Runs commands and keeps every stdout/stderr they printed."""

    def __init__(self, h):
        self.h = h
        self.outputs = []

    def run(self, *args, **kw):
        r = self.h.run(*args, **kw)
        self.outputs.append(f"$ happy {' '.join(map(str, args))}\n{r.stdout}\n{r.stderr}")
        return r


def exercise(h, rec: Recorder, tmp_path):
    """Starts the daemon, waits for `running`, spawns/stops sessions over the CLI and
    RPC, provokes some errors. Returns the daemon state (with controlToken)."""
    r = rec.run("daemon", "start")
    assert r.returncode == 0, r.stderr
    st = h.state()
    h.track(st["pid"])
    assert h.wait_running(15), h.status()
    work = tmp_path / "work"
    work.mkdir()
    r = rec.run("session", "new", work, "--prompt", "hello")
    assert r.returncode == 0, r.stderr
    sid = r.stdout.strip()
    assert wait_until(lambda: (h.json("session", "list")["sessions"][0].get("numTurns") or 0) >= 1, 10)
    rec.run("session", "send", sid, "again")
    rec.run("session", "logs", sid)
    mid = h.machine_id()
    phone = h.phone()
    r = phone.rpc(mid, "spawn-happy-session", {"directory": str(work)})
    assert r["type"] == "success", r
    assert phone.rpc(mid, "stop-session", {"sessionId": r["sessionId"]}) == {"message": "Session stopped"}
    ack = phone.rpc_raw(mid, "spawn-happy-session", "bm90IGVuY3J5cHRlZA==")  # undecryptable
    assert ack["ok"] is True
    # Error paths that print to stderr.
    assert rec.run("daemon", "start-sync", timeout=15).returncode != 0
    assert rec.run("session", "send", "nope", "x").returncode != 0
    assert rec.run("session", "stop", "nope").returncode != 0
    assert rec.run("machine", "show", "no-such-machine").returncode != 0
    rec.run("auth", "status")
    rec.run("auth", "status", "--json")
    rec.run("daemon", "status", "--json")
    rec.run("doctor")
    rec.run("logs")
    return st, sid


def check_modes(h, sid):
    assert mode(h.home) == 0o700
    for name in ("access.key", "settings.json", "daemon.state.json", "daemon.state.json.lock"):
        p = h.home / name
        assert p.exists(), name
        assert mode(p) == 0o600, (name, oct(mode(p)))
    logs = list((h.home / "logs").iterdir())
    assert any(p.name.endswith("-daemon.log") for p in logs) and (h.home / "logs" / "daemon-stdio.log").exists()
    assert mode(h.home / "logs") == 0o700
    for p in logs:
        assert mode(p) == 0o600, (p, oct(mode(p)))
    sess_root = h.home / "sessions"
    assert mode(sess_root) == 0o700
    sdirs = list(sess_root.iterdir())
    assert len(sdirs) >= 2
    for d in sdirs:
        assert mode(d) == 0o700, d
        files = list(d.iterdir())
        assert {"session.json", "stdout.jsonl", "stderr.log", "stdin.fifo"} <= {p.name for p in files}, files
        for p in files:
            assert mode(p) == 0o600, (p, oct(mode(p)))
    fifo = sess_root / sid / "stdin.fifo"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def check_no_secrets(h, rec: Recorder, secrets: dict):
    texts = {f"output of {o.splitlines()[0]}": o for o in rec.outputs}
    for p in all_files(h.home / "logs"):
        with open(p, "rb") as f:
            texts[p] = f.read().decode("utf-8", "replace")
    assert any("-daemon.log" in k and len(v) > 200 for k, v in texts.items())
    for where, text in texts.items():
        for what, forms in secrets.items():
            for form in forms:
                assert form not in text, f"{what} appears in {where}"


def test_modes_and_no_secrets_after_secret_login(tmp_path, emu):
    """Legacy account via `auth login --secret-stdin` with a known secret."""
    h = SyncHappy(tmp_path, emu, None)
    rec = Recorder(h)
    try:
        secret = os.urandom(32)
        r = rec.run("auth", "login", "--secret-stdin", input=base64.b64encode(secret).decode() + "\n")
        assert r.returncode == 0, r.stderr
        creds = json.loads((h.home / "access.key").read_text())
        h.account = types.SimpleNamespace(token=creds["token"], key=secret, variant="legacy",
                                          decrypt=lambda v: decrypt_value(v, secret, "legacy") if v else None)
        st, sid = exercise(h, rec, tmp_path)
        check_modes(h, sid)
        check_no_secrets(h, rec, {"token": [creds["token"]], "secret": secret_forms(secret),
                                  "controlToken": [st["controlToken"]]})
        assert rec.run("daemon", "stop").returncode == 0
        check_no_secrets(h, rec, {"token": [creds["token"]], "secret": secret_forms(secret),
                                  "controlToken": [st["controlToken"]]})
    finally:
        h.cleanup()


def test_modes_and_no_secrets_datakey(tmp_path, emu):
    acc = Account(emu, "dataKey")
    h = SyncHappy(tmp_path, emu, acc)
    rec = Recorder(h)
    try:
        st, sid = exercise(h, rec, tmp_path)
        check_modes(h, sid)
        assert rec.run("daemon", "stop").returncode == 0
        check_no_secrets(h, rec, {"token": [acc.token], "machineKey": secret_forms(acc.machine_key),
                                  "contentPrivateKey": secret_forms(bytes(acc.content)),
                                  "controlToken": [st["controlToken"]]})
    finally:
        h.cleanup()


def test_wide_home_is_tightened(tmp_path, emu):
    h = SyncHappy(tmp_path, emu, None)
    try:
        h.home.chmod(0o755)
        h.start()
        assert mode(h.home) == 0o700
    finally:
        h.cleanup()


def test_control_api_refuses_missing_wrong_token_and_foreign_host(tmp_path, emu):
    h = SyncHappy(tmp_path, emu, None)
    try:
        h.start()
        st = h.state()
        port, token = st["httpPort"], st["controlToken"]
        assert req(port, "GET", "/status", token) == 200
        assert req(port, "GET", "/status", token, host=f"localhost:{port}") == 200
        wrong = [None, "", "x", token[:-1], token + "0", token[:-1] + ("0" if token[-1] != "0" else "1"),
                 token.upper() if token.upper() != token else token.lower()]
        for t in wrong:
            for method, path, body in (("GET", "/status", None), ("GET", "/sessions", None),
                                       ("POST", "/sessions", {"directory": str(tmp_path)}),
                                       ("DELETE", "/sessions/x", None), ("POST", "/stop", {})):
                assert req(port, method, path, t, body=body) == 401, (t, method, path)
        # Other schemes in the Authorization header.
        code, _ = raw_http(port, f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
                                 f"Authorization: Basic {token}\r\n\r\n".encode())
        assert code == 401
        code, _ = raw_http(port, f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
                                 f"Authorization: {token}\r\n\r\n".encode())
        assert code == 401
        # Foreign Host: 403, checked before the token (also for /health).
        for host in ("evil.example", "evil.example:80", f"evil.example:{port}", f"127.0.0.1:{port + 1}",
                     f"localhost.evil.example:{port}", f"127.0.0.1:{port}.evil.example", f"0.0.0.0:{port}"):
            for path in ("/health", "/status", "/sessions"):
                assert req(port, "GET", path, token, host=host) == 403, (host, path)
                assert req(port, "GET", path, None, host=host) == 403, (host, path)
        assert req(port, "POST", "/stop", token, host="evil.example", body={}) == 403
        # Nothing was spawned and the daemon kept running.
        assert h.json("session", "list", "--all")["sessions"] == []
        assert pid_alive(st["pid"]) and req(port, "GET", "/health") == 200
        # The control server listens on 127.0.0.1 only.
        with open("/proc/net/tcp") as f:
            rows = [l.split() for l in f.readlines()[1:]]
        listen = [r[1] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port]
        assert listen == [f"0100007F:{port:04X}"], listen
    finally:
        h.cleanup()


# ---------------------------------------------------------------- planted symlinks

def test_symlinked_access_key_is_not_followed(tmp_path, emu):
    acc = Account(emu, "legacy")
    h = SyncHappy(tmp_path, emu, None)
    try:
        target = tmp_path / "elsewhere" / "creds.json"
        target.parent.mkdir()
        original = json.dumps(acc.access_key)
        target.write_text(original)
        (h.home / "access.key").symlink_to(target)
        # The CLI does not read credentials through the link.
        r = h.run("auth", "status", "--offline", "--json")
        assert r.returncode == 1
        assert json.loads(r.stdout)["authenticated"] is False
        r = h.run("machine", "list")
        assert r.returncode != 0 and "error:" in r.stderr
        assert acc.token not in r.stderr
        # The daemon does not either: it runs without credentials and never connects.
        h.start()
        assert wait_until(lambda: h.server_status() is not None, 5)
        time.sleep(1)
        assert h.server_status() not in ("connected", "connecting")
        assert [e for e in emu.events("connect")] == []
        reqs = [r for r in emu.call("GET", "/__test/requests")[1]["requests"] if r["path"].startswith("/v1/machines")]
        assert reqs == []
        log = open(h.state()["daemonLogPath"]).read()
        assert "access.key" in log and acc.token not in log
        h.run("daemon", "stop")
        # A new login replaces the link, not the file it points to.
        secret = os.urandom(32)
        r = h.run("auth", "login", "--secret-stdin", "--force", input=base64.b64encode(secret).decode())
        assert r.returncode == 0, r.stderr
        assert target.read_text() == original
        assert not (h.home / "access.key").is_symlink()
    finally:
        h.cleanup()


def test_symlinked_access_key_logout_keeps_target(tmp_path, emu):
    acc = Account(emu, "legacy")
    h = SyncHappy(tmp_path, emu, None)
    try:
        target = tmp_path / "creds.json"
        target.write_text(json.dumps(acc.access_key))
        (h.home / "access.key").symlink_to(target)
        h.run("auth", "logout", "--yes")
        assert target.read_text() == json.dumps(acc.access_key)
    finally:
        h.cleanup()


def test_symlinked_state_file_is_not_followed(tmp_path, emu):
    h = SyncHappy(tmp_path, emu, None)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        # A "state" elsewhere that names a live process and a port: following it would
        # make `status` report it and `stop` signal it.
        target = tmp_path / "planted-state.json"
        planted = json.dumps({"pid": sleeper.pid, "httpPort": 1, "controlToken": "planted", "startTime": "x",
                              "startedWithCliVersion": "0", "lastHeartbeat": "x", "daemonLogPath": "/x",
                              "profile": "t"})
        target.write_text(planted)
        h.state_path.symlink_to(target)
        r = h.run("daemon", "status", "--json")
        j = json.loads(r.stdout)
        assert j["pid"] != sleeper.pid
        r = h.run("daemon", "stop")
        assert sleeper.poll() is None
        # Start: the daemon writes its own state file in place of the link.
        info = h.start()
        assert not h.state_path.is_symlink()
        assert h.state()["pid"] == info["pid"]
        assert target.read_text() == planted
        assert h.run("daemon", "stop").returncode == 0
        assert target.read_text() == planted and sleeper.poll() is None
        # Planted while the daemon runs, naming the live daemon's pid but a port we
        # listen on: a CLI that reads through the link would send its requests (and the
        # planted token) there.
        info = h.start()
        trap = socket.socket()
        trap.bind(("127.0.0.1", 0))
        trap.listen(16)
        trap.setblocking(False)
        evil = dict(json.loads(h.state_path.read_text()), httpPort=trap.getsockname()[1], controlToken="planted")
        evil_text = json.dumps(evil)
        target.write_text(evil_text)
        h.state_path.unlink()
        h.state_path.symlink_to(target)
        try:
            for args in (("daemon", "status", "--json"), ("session", "list", "--json"),
                         ("session", "new", str(tmp_path), "--prompt", "private words")):
                h.run(*args, timeout=30)
            try:
                conn, _ = trap.accept()
                conn.close()
                followed = True
            except BlockingIOError:
                followed = False
            assert not followed, "the CLI connected to the port named by a symlinked daemon.state.json"
        finally:
            trap.close()
        assert target.read_text() == evil_text
        # The daemon replaces the link with its own state at its next health check.
        assert wait_until(lambda: not h.state_path.is_symlink(), 5)
        assert h.state()["pid"] == info["pid"] and target.read_text() == evil_text
        assert h.run("daemon", "stop", timeout=30).returncode == 0
        assert sleeper.poll() is None and target.read_text() == evil_text
    finally:
        sleeper.kill()
        sleeper.wait()
        h.cleanup()


def test_symlinked_settings_and_lock_targets_untouched(tmp_path, emu):
    acc = Account(emu, "legacy")
    h = SyncHappy(tmp_path, emu, acc)
    try:
        t_settings = tmp_path / "planted-settings.json"
        t_settings.write_text('{"schemaVersion": 2, "machineId": "planted"}')
        t_lock = tmp_path / "planted-lock"
        t_lock.write_text("precious\n")
        (h.home / "settings.json").symlink_to(t_settings)
        h.lock_path.symlink_to(t_lock)
        h.start()
        h.run("daemon", "stop")
        assert t_settings.read_text() == '{"schemaVersion": 2, "machineId": "planted"}'
        assert t_lock.read_text() == "precious\n"
    finally:
        h.cleanup()
