"""The real app's machine side (issue 14, SPEC §4.4): merged metadata, records of an older
login, the older server's token rejection, the file/shell RPCs and the audit log."""
import base64
import json
import os
import time

from session_fixtures import SessionHappy, ss, ssd, wait_until  # noqa: F401
from sync_fixtures import Account, SyncHappy, emu, sh  # noqa: F401


def test_the_name_given_in_the_app_survives_reconnects_and_restarts(sh):
    sh.start()
    assert sh.wait_running()
    mid = sh.machine_id()
    phone = sh.phone()
    phone.rename_machine(mid, "Studio box")
    assert sh.run("daemon", "restart").returncode == 0
    assert sh.wait_running(20)
    sh.emu.call("POST", "/__test/sync/disconnect", {"machineId": mid})
    assert wait_until(lambda: sh.server_status() == "connected", 10)
    time.sleep(0.5)
    meta = sh.account.decrypt(sh.emu.machine(mid)["metadata"])
    assert meta["displayName"] == "Studio box"
    assert meta["happyCliVersion"] == sh.run("--version").stdout.split()[-1]


def test_a_record_from_an_older_login_gets_a_new_machine_id(sh):
    mid = "0b6c3f1e-aaaa-4bbb-8ccc-000000000002"
    (sh.home / "settings.json").write_text(json.dumps({"schemaVersion": 2, "machineId": mid, "keep": "me"}))
    from happy_emulator.phone import encrypt_value
    other_key = os.urandom(32)
    stale = encrypt_value({"host": "old"}, other_key, sh.account.variant)
    st, b = sh.emu.call("POST", "/__test/machine", {"token": sh.account.token, "id": mid, "metadata": stale})
    assert st == 200, b
    sh.start()
    assert sh.wait_running()
    new = sh.machine_id()
    assert new != mid and len(new) == 36
    assert json.loads((sh.home / "settings.json").read_text())["keep"] == "me"
    meta = sh.account.decrypt(sh.emu.machine(new)["metadata"])
    assert meta["happyHomeDir"] == str(sh.home)
    log = open(sh.state()["daemonLogPath"]).read()
    assert "older login" in log and mid in log and new in log
    # The app can decrypt and drive the new record.
    assert sh.phone().rpc(new, "stop-session", {"sessionId": "nope"}) == {"error": "Session not found or failed to stop"}


def test_the_older_servers_token_rejection_is_reported_and_retried_slowly(sh):
    sh.start()
    assert sh.wait_running()
    st, _ = sh.emu.call("POST", "/__test/sync/config", {"legacyAuth": True})
    assert st == 200
    before = sh.emu.log()
    st, b = sh.emu.call("POST", "/__test/sync/revoke", {"token": sh.account.token})
    assert b["revoked"] == 1
    assert wait_until(lambda: sh.server_status() == "token-rejected", 10)
    n = len([e for e in sh.emu.events("connect")])
    time.sleep(3)
    # Retried every 60 s, not in a fast loop.
    assert len([e for e in sh.emu.events("connect")]) <= n + 1
    assert sh.server_status() == "token-rejected"
    log = open(sh.state()["daemonLogPath"]).read()
    assert "Invalid authentication token" in log and sh.account.token not in log


def test_machine_file_and_shell_rpcs_are_confined_and_audited(tmp_path, emu):
    h = SessionHappy(tmp_path, emu, Account(emu, "dataKey"))
    try:
        h.start()
        assert h.wait_running()
        mid = h.machine_id()
        phone = h.phone()
        r = phone.rpc(mid, "bash", {"command": "echo hi; echo err >&2", "cwd": str(h.work)})
        assert r == {"success": True, "stdout": "hi\n", "stderr": "err\n", "exitCode": 0}
        r = phone.rpc(mid, "bash", {"command": "exit 3"})
        assert r["success"] is False and r["exitCode"] == 3
        r = phone.rpc(mid, "bash", {"command": "id", "cwd": "/etc"})
        assert r["success"] is False and r["error"] == "path outside the allowed roots (rpc.roots)"
        r = phone.rpc(mid, "writeFile", {"path": str(h.work / "a.txt"), "content": base64.b64encode(b"secret words").decode(),
                                        "expectedHash": None})
        assert r["success"] is True and len(r["hash"]) == 64
        r = phone.rpc(mid, "readFile", {"path": str(h.work / "a.txt")})
        assert base64.b64decode(r["content"]) == b"secret words"
        r = phone.rpc(mid, "readFile", {"path": "/etc/passwd"})
        assert r == {"success": False, "error": "path outside the allowed roots (rpc.roots)"}
        (h.work / "sub").mkdir()
        r = phone.rpc(mid, "listDirectory", {"path": str(h.work)})
        assert [e["name"] for e in r["entries"]][:1] == ["sub"] and r["entries"][0]["type"] == "directory"
        r = phone.rpc(mid, "getDirectoryTree", {"path": str(h.work), "maxDepth": 1})
        assert r["success"] is True and {c["name"] for c in r["tree"]["children"]} >= {"sub", "a.txt"}
        r = phone.rpc(mid, "ripgrep", {"args": ["words", str(h.work)]})
        assert "success" in r
        # The audit log: one line each, no file contents.
        assert wait_until(lambda: len(h.json("logs", "audit", "-n", "100")["entries"]) >= 8, 5)
        entries = h.json("logs", "audit", "-n", "100")["entries"]
        by = [(e["scope"], e["method"], e["result"]) for e in entries]
        assert ("machine", "bash", "ok") in by and ("machine", "bash", "refused") in by and ("machine", "bash", "error") in by
        assert ("machine", "readFile", "refused") in by and ("machine", "writeFile", "ok") in by
        text = (h.home / "logs" / "rpc-audit.jsonl").read_text()
        assert "secret words" not in text and base64.b64encode(b"secret words").decode() not in text
        assert oct((h.home / "logs" / "rpc-audit.jsonl").stat().st_mode & 0o777) == "0o600"
        human = h.run("logs", "audit").stdout
        assert "bash" in human and "echo hi" in human
    finally:
        h.cleanup()


def test_session_rpcs_are_confined_to_the_session_directory(ssd):
    h = ssd
    h.start()
    assert h.wait_running()
    phone = h.phone()
    sub = h.work / "proj"
    sub.mkdir()
    r = phone.rpc(h.machine_id(), "spawn-happy-session", {"directory": str(sub)})
    sid = r["sessionId"]
    app = h.session_phone()
    r = app.bash(sid, "pwd")
    assert r["success"] is True and r["stdout"].strip() == str(sub)
    r = app.rpc(sid, "readFile", {"path": str(h.work / "outside.txt")})
    assert r == {"success": False, "error": "path outside the allowed roots (rpc.roots)"}
    r = app.rpc(sid, "listDirectory", {"path": str(sub)})
    assert r["success"] is True
    assert app.switch(sid) is False
    entries = h.json("logs", "audit", "-n", "50")["entries"]
    assert any(e["scope"] == "session" and e["method"] == "bash" and e.get("sessionId") for e in entries)
