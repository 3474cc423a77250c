"""End-to-end: `happy session ...` through the daemon (SPEC §3.4)."""
import json
import time

from daemon_fixtures import dh, pid_alive, wait_until  # noqa: F401


def test_session_new_starts_daemon_and_lists(dh):
    work = dh.tmp / "w"
    work.mkdir()
    r = dh.run("session", "new", "--prompt", "hello", cwd=work)
    assert r.returncode == 0, r.stderr
    sid = r.stdout.strip()
    dh.track(dh.state()["pid"])
    j = dh.json("session", "list")
    assert len(j["sessions"]) == 1
    s = j["sessions"][0]
    assert s["id"] == sid and s["directory"] == str(work) and s["startedBy"] == "cli"
    dh.track(s["pid"])
    r = dh.run("session", "list")
    for col in ("ID", "PID", "STATUS", "DIRECTORY", "STARTED", "STARTED BY", "LAST EVENT", "COST"):
        assert col in r.stdout
    assert sid in r.stdout
    # Output shows up.
    assert wait_until(lambda: (dh.json("session", "list")["sessions"][0].get("numTurns") or 0) >= 1, timeout=5)
    r = dh.run("session", "logs", sid)
    assert "assistant: echo: hello" in r.stdout and "result:" in r.stdout and "1 turn" in r.stdout
    raw = dh.run("session", "logs", sid, "--raw").stdout.splitlines()
    assert all(json.loads(l) for l in raw)
    # send, then stop.
    assert dh.run("session", "send", sid, "again").returncode == 0
    assert wait_until(lambda: "echo: again" in dh.run("session", "logs", sid).stdout, timeout=5)
    r = dh.run("session", "stop", sid)
    assert r.returncode == 0
    assert dh.json("session", "list")["sessions"] == []
    allj = dh.json("session", "list", "--all")["sessions"]
    assert allj[0]["status"] == "stopped"
    r = dh.run("session", "send", sid, "x")
    assert r.returncode == 1 and "not running" in r.stderr
    r = dh.run("session", "stop", "nope")
    assert r.returncode == 1 and "not found" in r.stderr


def test_session_new_json_and_missing_dir(dh):
    missing = dh.tmp / "missing" / "dir"
    r = dh.run("session", "new", missing)
    assert r.returncode == 1 and "does not exist" in r.stderr and "--create-dir" in r.stderr
    j = dh.json("session", "new", missing, "--create-dir", "--env", "FOO=bar")
    dh.track(dh.state()["pid"])
    assert set(j) == {"session"} and j["session"]["directory"] == str(missing)
    dh.track(j["session"]["pid"])
    assert missing.is_dir()


def test_session_limit(dh):
    dh.write_profile("t", dh.profile_text + "sessions:\n  max: 1\n")
    w = dh.tmp / "w"
    w.mkdir()
    assert dh.run("session", "new", w).returncode == 0
    dh.track(dh.state()["pid"])
    r = dh.run("session", "new", w)
    assert r.returncode == 1 and "session limit reached (1, sessions.max)" in r.stderr


def test_session_logs_follow(dh):
    import subprocess
    w = dh.tmp / "w"
    w.mkdir()
    sid = dh.run("session", "new", w).stdout.strip()
    dh.track(dh.state()["pid"])
    p = subprocess.Popen([dh.bin, "session", "logs", sid, "-f"], env=dh.env, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        dh.run("session", "send", sid, "followed")
        line = ""
        end = time.monotonic() + 5
        while time.monotonic() < end and "echo: followed" not in line:
            line += p.stdout.readline()
        assert "echo: followed" in line
    finally:
        p.kill()
        p.wait()


def test_session_logs_json(dh):
    import subprocess
    w = dh.tmp / "w"
    w.mkdir()
    sid = dh.run("session", "new", w, "--prompt", "hello").stdout.strip()
    dh.track(dh.state()["pid"])
    out = dh.home / "sessions" / sid / "stdout.jsonl"
    assert wait_until(lambda: out.exists() and '"type":"result"' in out.read_text().replace(" ", ""), 10)
    for extra in ([], ["--raw"]):
        j = dh.json("session", "logs", sid, *extra)
        assert j["session"] == sid
        types = [e["type"] for e in j["events"]]
        assert types[0] == "system" and "assistant" in types and "result" in types
        assert any(c.get("text") == "echo: hello" for e in j["events"] if e["type"] == "assistant"
                   for c in e["message"]["content"])
    # The raw lines are the same events, one per line.
    raw = [json.loads(l) for l in dh.run("session", "logs", sid, "--raw").stdout.splitlines()]
    assert raw == j["events"]
    # Following with --json: one compact event per line.
    p = subprocess.Popen([dh.bin, "session", "logs", sid, "-f", "--json"], env=dh.env,
                         stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(p.stdout.readline())
        assert first["type"] == "system"
    finally:
        p.kill()
        p.wait()
