"""Sessions in the app under faults (SPEC §7.1, §7.4): the server down at spawn, restarted
mid-output, the daemon restarted mid-session — what the phone received is compared with
claude's stdout line by line: nothing lost, nothing duplicated."""
import json
import time

from session_fixtures import SessionHappy, ss, ssd, wait_until  # noqa: F401
from sync_fixtures import Account, emu  # noqa: F401


def assistant_texts(app, sid):
    """The text of every assistant output message, in server order."""
    out = []
    for m in app.messages(sid):
        c = m["content"]
        if c and c.get("role") == "agent" and c["content"].get("type") == "output":
            d = c["content"]["data"]
            if d["type"] == "assistant":
                out += [b["text"] for b in d["message"]["content"] if b.get("type") == "text"]
    return out


def stdout_texts(h, local_id):
    """The assistant text blocks claude wrote, in order (rotated part first)."""
    d = h.home / "sessions" / local_id
    out = []
    for name in ("stdout.1.jsonl", "stdout.jsonl"):
        p = d / name
        if not p.exists():
            continue
        for line in p.read_text().splitlines():
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if j.get("type") == "assistant":
                out += [b["text"] for b in j["message"]["content"] if b.get("type") == "text"]
    return out


def server_sid(h, timeout=20):
    assert wait_until(lambda: h.local_sessions() and h.local_sessions()[0].get("serverSessionId"), timeout)
    return h.local_sessions()[0]["serverSessionId"]


def spawned_from_the_app(h):
    """Starts the daemon, spawns a session from the phone; (server session id, session phone)."""
    h.start()
    assert h.wait_running()
    sid = h.phone().rpc(h.machine_id(), "spawn-happy-session", {"directory": str(h.work)})["sessionId"]
    return sid, h.session_phone()


def test_a_session_started_while_the_server_is_down_is_created_later_with_its_output(ss):
    h = ss
    h.start()
    assert h.wait_running()
    h.emu.stop()
    r = h.json("session", "new", str(h.work), "--prompt", "written while offline")
    local = r["session"]["id"]
    assert r["session"]["sync"] == "pending"
    assert wait_until(lambda: h.local_sessions()[0].get("numTurns") == 1, 15)
    assert h.local_sessions()[0]["sync"] == "pending" and h.local_sessions()[0]["serverSessionId"] is None
    sync_file = json.loads((h.home / "sessions" / local / "sync.json").read_text())
    assert sync_file["tag"] == local and sync_file["variant"] == h.account.variant
    assert oct((h.home / "sessions" / local / "sync.json").stat().st_mode & 0o777) == "0o600"
    h.emu.start()
    sid = server_sid(h, 30)
    app = h.session_phone()
    app.wait_message(sid, lambda c: c.get("role") == "user" and c["content"].get("text") == "written while offline", 20)
    app.wait_message(sid, lambda c: c.get("role") == "agent" and "echo: written while offline" in json.dumps(c), 20)
    # One server session for that tag, whatever the retries.
    sessions = h.emu.call("GET", "/__test/sessions")[1]["sessions"]
    assert len(sessions) == 1


def lines_through_a_server_restart(h, n, timeout):
    """claude writes n lines; the server is stopped for 1 s once the first reached it.
    Returns (what claude wrote, what the phone reads), both in order."""
    h.start()
    assert h.wait_running()
    h.run("session", "new", str(h.work))
    sid = server_sid(h)
    local = h.local_sessions()[0]["id"]
    app = h.session_phone()
    h.run("session", "send", local, f"__lines {n}")
    assert wait_until(lambda: len(assistant_texts(app, sid)) > 0, 30)
    h.emu.stop()
    time.sleep(1.0)
    h.emu.start()
    assert wait_until(lambda: h.local_sessions()[0]["lastEventType"] == "result", timeout)
    expected = stdout_texts(h, local)
    assert len(expected) == n
    assert wait_until(lambda: len(assistant_texts(app, sid)) >= n, 2 * timeout)
    time.sleep(1)
    return expected, assistant_texts(app, sid)


def test_a_server_restart_mid_output_loses_and_duplicates_nothing(ssd):
    expected, got = lines_through_a_server_restart(ssd, 3000, 30)
    assert got == expected


def test_a_daemon_restart_mid_session_resumes_the_same_server_session(ssd):
    h = ssd
    h.start()
    assert h.wait_running()
    h.run("session", "new", str(h.work), "--prompt", "before the restart")
    sid = server_sid(h)
    local = h.local_sessions()[0]["id"]
    app = h.session_phone()
    app.wait_message(sid, lambda c: "echo: before the restart" in json.dumps(c), 20)
    assert h.run("daemon", "restart").returncode == 0
    assert h.wait_running(20)
    assert h.local_sessions()[0]["status"] == "running" and h.local_sessions()[0]["serverSessionId"] == sid
    app.send_text(sid, "after the restart")
    app.wait_message(sid, lambda c: "echo: after the restart" in json.dumps(c), 20)
    time.sleep(1)
    texts = [l["message"]["content"] for l in h.user_lines()]
    assert texts == ["before the restart", "after the restart"]
    assert assistant_texts(app, sid) == stdout_texts(h, local)
    assert len(h.emu.call("GET", "/__test/sessions")[1]["sessions"]) == 1


def test_an_older_server_without_v3_gets_messages_through_the_socket(tmp_path, emu):
    st, _ = emu.call("POST", "/__test/sessions/config", {"legacyServer": True})
    assert st == 200
    h = SessionHappy(tmp_path, emu, Account(emu, "legacy"))
    try:
        h.start()
        assert h.wait_running()
        h.run("session", "new", str(h.work), "--prompt", "old server")
        sid = server_sid(h)
        app = h.session_phone()
        app.wait_message(sid, lambda c: "echo: old server" in json.dumps(c), 20)
        app.send_text(sid, "second on the old server")
        app.wait_message(sid, lambda c: "echo: second on the old server" in json.dumps(c), 20)
        assert [l["message"]["content"] for l in h.user_lines()] == ["old server", "second on the old server"]
    finally:
        h.cleanup()


def test_version_conflicts_are_adopted_and_retried(ssd):
    h = ssd
    h.start()
    assert h.wait_running()
    sid = None
    phone = h.phone()
    r = phone.rpc(h.machine_id(), "spawn-happy-session", {"directory": str(h.work)})
    sid = r["sessionId"]
    app = h.session_phone()
    # The app writes its mode pick into metadata; another client bumps agentState.
    app.set_modes(sid, permission_mode="acceptEdits", model_mode="opus")
    st, _ = h.emu.call("POST", "/__test/sessions/bump", {"sid": sid, "field": "agentState", "by": 3})
    assert st == 200
    app.send_text(sid, "__tool Bash " + json.dumps({"command": "touch conflict.txt"}))
    rid, _ = app.wait_request(sid, 15)
    app.permission(sid, rid, approved=True)
    app.wait_agent_state(sid, lambda s: rid in (s.get("completedRequests") or {}), 15)
    # The daemon's own metadata writes kept the app's keys.
    app.send_text(sid, "title comes from the first prompt? no: it was the tool prompt")
    meta = app.wait_metadata(sid, lambda m: m.get("summary") is not None, 10)
    assert meta.get("permissionMode") == "acceptEdits" and meta.get("modelMode") == "opus"


def test_bad_input_gets_a_log_line_and_nothing_else(ssd):
    h = ssd
    sid, app = spawned_from_the_app(h)
    app.send_text(sid, "first")
    app.wait_message(sid, lambda c: "echo: first" in json.dumps(c), 15)
    # A message the daemon cannot decrypt, and one that is not a user text.
    import os as _os
    from happy_emulator.phone import encrypt_value
    bogus = encrypt_value({"role": "user", "content": {"type": "text", "text": "never"}}, _os.urandom(32), "dataKey")
    app.send_record(sid, {"role": "user", "content": {"type": "image", "ref": "x"}})
    raw_local = "bogus-" + str(time.time())
    import urllib.request
    req = urllib.request.Request(f"{h.emu.url}/v3/sessions/{sid}/messages", method="POST",
                                 data=json.dumps({"messages": [{"content": bogus, "localId": raw_local}]}).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {h.account.token}"})
    urllib.request.urlopen(req, timeout=10).read()
    app.send_text(sid, "second")
    app.wait_message(sid, lambda c: "echo: second" in json.dumps(c), 15)
    assert [l["message"]["content"] for l in h.user_lines()] == ["first", "second"]
    log = open(h.state()["daemonLogPath"]).read()
    assert "could not be decrypted" in log
    assert "is not a user text (user, image); ignored" in log
    assert h.local_sessions()[0]["status"] == "running"


def test_v3_errors_are_retried_and_unanswered_writes_written_again(ssd):
    h = ssd
    sid, app = spawned_from_the_app(h)
    # claude answers 2 s after the prompt; meanwhile /v3 starts failing 3 times.
    app.send_text(sid, "__sleep 2 slow answer")
    assert wait_until(lambda: any(l["message"]["content"] == "__sleep 2 slow answer" for l in h.user_lines()), 10)
    st, _ = h.emu.call("POST", "/__test/fault", {"path": f"/v3/sessions/{sid}/messages", "method": "POST", "count": 3, "status": 503})
    assert st == 200
    app.wait_message(sid, lambda c: "slow answer" in json.dumps(c) and c.get("role") == "agent", 30)
    local = h.local_sessions()[0]["id"]
    assert wait_until(lambda: assistant_texts(app, sid) == stdout_texts(h, local), 15)
    log = open(h.state()["daemonLogPath"]).read()
    assert "503" in log and "retrying" in log
    # An agentState write the server never answers (nor applies) is written again.
    st, _ = h.emu.call("POST", "/__test/sessions/config", {"ignoreEvents": {"update-state": 1}})
    assert st == 200
    app.send_text(sid, "__tool Bash " + json.dumps({"command": "touch retried.txt"}))
    rid, _ = app.wait_request(sid, 30)
    app.permission(sid, rid, approved=True)
    assert wait_until(lambda: (h.work / "retried.txt").exists(), 15)
    assert wait_until(lambda: "update-state not written" in open(h.state()["daemonLogPath"]).read(), 5)


def test_resume_reattaches_to_the_same_server_session(ssd):
    h = ssd
    sid, app = spawned_from_the_app(h)
    app.send_text(sid, "before")
    app.wait_message(sid, lambda c: "echo: before" in json.dumps(c), 15)
    first = h.local_sessions()[0]
    assert app.kill(sid)["success"] is True
    assert wait_until(lambda: h.local_sessions(), 5)
    assert wait_until(lambda: next(s for s in h.json("session", "list", "--all")["sessions"] if s["id"] == first["id"])["status"] == "stopped", 10)
    phone = h.phone()
    r = phone.rpc(h.machine_id(), "resume-happy-session", {"sessionId": sid})
    assert r == {"type": "success", "sessionId": sid}, r
    sessions = h.json("session", "list", "--all")["sessions"]
    new = next(s for s in sessions if s["id"] != first["id"])
    assert new["serverSessionId"] == sid and new["status"] in ("starting", "running")
    argv_resume = first["claudeSessionId"]
    app.send_text(sid, "after")
    app.wait_message(sid, lambda c: "echo: after" in json.dumps(c), 15)
    lines = (h.home / "sessions" / new["id"] / "stdout.jsonl").read_text()
    assert argv_resume in lines  # the fake claude reports --resume's id as its session id
    assert len(h.emu.call("GET", "/__test/sessions")[1]["sessions"]) == 1
    assert phone.rpc(h.machine_id(), "resume-happy-session", {"sessionId": "nope"})["type"] == "error"
