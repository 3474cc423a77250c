"""Sessions in the app (SPEC §7): the phone spawns a session, sends the first prompt,
reads the decrypted conversation, and drives it."""
import json
import time

from session_fixtures import app_accepts, ss, ssd, wait_until  # noqa: F401
from sync_fixtures import emu  # noqa: F401


def spawn_from_phone(h, **params):
    phone = h.phone()
    r = phone.rpc(h.machine_id(), "spawn-happy-session", dict({"directory": str(h.work)}, **params))
    assert r.get("type") == "success", r
    return r["sessionId"]


def test_spawn_from_the_phone_creates_a_server_session_and_streams_the_conversation(ss):
    h = ss
    h.start()
    assert h.wait_running()
    sid = spawn_from_phone(h)
    app = h.session_phone()
    s = app.wait_session(sid, lambda s: s["metadata"] is not None)
    meta = s["metadata"]
    assert meta["path"] == str(h.work) and meta["host"] and meta["flavor"] == "claude"
    assert meta["startedBy"] == "daemon" and meta["startedFromDaemon"] is True and meta["os"] == "linux"
    assert meta["machineId"] == h.machine_id() and meta["lifecycleState"] == "running"
    assert not app_schema_errors(meta)
    # The local record knows its server session.
    local = h.local_sessions()
    assert [l["serverSessionId"] for l in local] == [sid] and local[0]["sync"] == "synced"
    assert local[0]["startedBy"] == "mobile-app"
    # The first prompt, as the app sends it, reaches claude once.
    app.send_text(sid, "hello from the phone")
    assert wait_until(lambda: any(l["message"]["content"] == "hello from the phone" for l in h.user_lines()), 15)
    answer = app.wait_message(sid, lambda c: c.get("role") == "agent" and c["content"].get("type") == "output", 15)
    data = answer["content"]["content"]["data"]
    assert data["type"] == "assistant" and "echo: hello from the phone" in json.dumps(data)
    assert app_accepts(answer["content"]) == []
    app.wait_message(sid, lambda c: c.get("role") == "agent" and c["content"].get("type") == "event"
                     and c["content"]["data"]["type"] == "ready", 15)
    # Every message the daemon sent is one the app renders; no result line is forwarded.
    for m in app.messages(sid):
        c = m["content"]
        if c and c.get("role") == "agent":
            assert app_accepts(c) == [], c
            if c["content"].get("type") == "output":
                assert c["content"]["data"]["type"] in ("assistant", "user")
    # The title is the first prompt.
    assert app.wait_metadata(sid, lambda m: (m.get("summary") or {}).get("text") == "hello from the phone", 10)
    assert len([l for l in h.user_lines() if l["message"]["content"] == "hello from the phone"]) == 1


def app_schema_errors(meta):
    from happy_emulator import app_schema
    return app_schema.metadata_errors(meta)


def tool_prompt(cmd):
    return "__tool Bash " + json.dumps({"command": cmd})


def control_responses(h):
    return [l for l in h.stdin_lines() if l.get("type") == "control_response"]


def test_the_phone_approves_and_denies_tool_uses(ssd, tmp_path):
    h = ssd
    h.start()
    assert h.wait_running()
    sid = spawn_from_phone(h)
    app = h.session_phone()
    app.send_text(sid, tool_prompt("touch approved.txt"))
    rid, req = app.wait_request(sid, 15)
    assert req["tool"] == "Bash" and req["arguments"]["command"] == "touch approved.txt" and req["createdAt"] > 0
    assert rid.startswith("toolu_")
    # The tool call the card joins to carries the same id.
    app.wait_message(sid, lambda c: c.get("role") == "agent" and any(
        b.get("type") == "tool_use" and b.get("id") == rid
        for b in c["content"].get("data", {}).get("message", {}).get("content", [])), 10)
    # Visible locally too.
    pend = h.local_sessions()[0]["pendingPermissions"]
    assert [p["id"] for p in pend] == [rid] and pend[0]["tool"] == "Bash"
    assert app.permission(sid, rid, approved=True) is None
    assert wait_until(lambda: (h.work / "approved.txt").exists(), 10)
    st = app.wait_agent_state(sid, lambda s: rid in (s.get("completedRequests") or {}), 10)
    assert st["completedRequests"][rid]["status"] == "approved" and rid not in (st.get("requests") or {})
    assert st["controlledByUser"] is False
    allow = [r for r in control_responses(h) if r["response"]["response"].get("behavior") == "allow"]
    assert len(allow) == 1 and allow[0]["response"]["response"]["updatedInput"]["command"] == "touch approved.txt"
    # The tool result reaches the app.
    app.wait_message(sid, lambda c: c.get("role") == "agent" and c["content"].get("data", {}).get("type") == "user", 10)
    assert h.local_sessions()[0]["pendingPermissions"] == []

    # Denied: not run, claude told the standard refusal.
    app.send_text(sid, tool_prompt("touch denied.txt"))
    rid2, _ = app.wait_request(sid, 15, lambda r, _: r != rid)
    app.permission(sid, rid2, approved=False)
    st = app.wait_agent_state(sid, lambda s: rid2 in (s.get("completedRequests") or {}), 10)
    assert st["completedRequests"][rid2]["status"] == "denied"
    deny = [r for r in control_responses(h) if r["response"]["response"].get("behavior") == "deny"]
    assert len(deny) == 1 and deny[0]["response"]["response"]["message"].startswith("The user doesn't want to proceed")
    time.sleep(0.5)
    assert not (h.work / "denied.txt").exists()

    # "Always": the rule is remembered and the same command is not asked again.
    app.send_text(sid, tool_prompt("touch always.txt"))
    rid3, _ = app.wait_request(sid, 15, lambda r, _: r not in (rid, rid2))
    app.permission(sid, rid3, approved=True, allowTools=["Bash(touch always.txt)"])
    st = app.wait_agent_state(sid, lambda s: rid3 in (s.get("completedRequests") or {}), 10)
    assert st["completedRequests"][rid3].get("allowedTools") == ["Bash(touch always.txt)"]
    assert wait_until(lambda: (h.work / "always.txt").exists(), 10)
    (h.work / "always.txt").unlink()
    n_allow = len([r for r in control_responses(h) if r["response"]["response"].get("behavior") == "allow"])
    app.send_text(sid, tool_prompt("touch always.txt"))
    assert wait_until(lambda: (h.work / "always.txt").exists(), 15)
    assert len([r for r in control_responses(h) if r["response"]["response"].get("behavior") == "allow"]) == n_allow + 1
    assert not (app.agent_state(sid) or {}).get("requests")
    # An answer for a request that does not exist does nothing (and does not fail).
    assert app.permission(sid, "toolu_unknown", approved=True) is None


def test_abort_interrupts_claude_and_cancels_pending_requests(ssd):
    h = ssd
    h.start()
    assert h.wait_running()
    sid = spawn_from_phone(h)
    app = h.session_phone()
    app.send_text(sid, tool_prompt("touch never.txt"))
    rid, _ = app.wait_request(sid, 15)
    assert app.abort(sid) is None
    assert wait_until(lambda: any(l.get("type") == "control_request" and l["request"]["subtype"] == "interrupt"
                                  for l in h.stdin_lines()), 10)
    st = app.wait_agent_state(sid, lambda s: rid in (s.get("completedRequests") or {}), 10)
    assert st["completedRequests"][rid]["status"] == "canceled" and not st.get("requests")
    app.wait_message(sid, lambda c: c.get("role") == "agent" and c["content"].get("type") == "event"
                     and c["content"]["data"] == {"type": "message", "message": "Aborted by user"}, 10)
    # The interrupted turn ends with is_error: that is the abort, not a "Turn failed" message.
    app.wait_message(sid, lambda c: c.get("role") == "agent" and c["content"].get("type") == "event"
                     and c["content"]["data"]["type"] == "ready", 10)
    time.sleep(0.5)
    texts = [m["content"]["content"]["data"].get("message", "") for m in app.messages(sid)
             if m["content"] and m["content"].get("role") == "agent" and m["content"]["content"].get("type") == "event"]
    assert not any(t.startswith("Turn failed") for t in texts), texts
    assert h.local_sessions()[0]["thinking"] is False
    assert not (h.work / "never.txt").exists()


def test_kill_session_answers_then_archives(ss):
    h = ss
    h.start()
    assert h.wait_running()
    sid = spawn_from_phone(h)
    app = h.session_phone()
    app.send_text(sid, "first")
    app.wait_message(sid, lambda c: c.get("role") == "agent", 15)
    assert app.kill(sid) == {"success": True, "message": "Killing happy-cli process"}
    meta = app.wait_metadata(sid, lambda m: m.get("lifecycleState") == "archived", 15)
    assert meta["archivedBy"] == "cli" and meta["archiveReason"]
    assert wait_until(lambda: h.local_sessions()[0]["status"] == "stopped", 10)
    log = h.emu.call("GET", f"/__test/sessions/log?sessionId={sid}")[1]
    events = [e["event"] for e in log["events"]]
    assert "session-end" in events and "archive" in events, events
    assert app.wait_session(sid, lambda s: s["active"] is False, 10)


def test_local_prompts_are_mirrored_and_ids_resolve_by_server_id(ss):
    h = ss
    h.start()
    assert h.wait_running()
    r = h.json("session", "new", str(h.work), "--prompt", "typed on the machine")
    local = r["session"]
    app = h.session_phone()
    assert wait_until(lambda: h.local_sessions()[0].get("serverSessionId"), 15)
    sid = h.local_sessions()[0]["serverSessionId"]
    app.wait_message(sid, lambda c: c.get("role") == "user" and c["content"] == {"type": "text", "text": "typed on the machine"}, 15)
    app.wait_message(sid, lambda c: "echo: typed on the machine" in json.dumps(c), 15)
    # Sent with the server id (and with a prefix of it).
    assert h.run("session", "send", sid, "second, by server id").returncode == 0
    assert h.run("session", "send", sid[:8], "third, by prefix").returncode == 0
    app.wait_message(sid, lambda c: c.get("role") == "user" and c["content"].get("text") == "third, by prefix", 15)
    texts = [l["message"]["content"] for l in h.user_lines()]
    assert texts == ["typed on the machine", "second, by server id", "third, by prefix"]
    # The mirrored prompts are not delivered back to claude: each arrived once.
    time.sleep(1)
    assert [l["message"]["content"] for l in h.user_lines()] == texts
    # Order in the app: each prompt before claude's answer to it.
    order = []
    for m in app.messages(sid):
        c = m["content"]
        if c.get("role") == "user":
            order.append(("user", c["content"]["text"]))
        elif c["content"].get("type") == "output" and c["content"]["data"]["type"] == "assistant":
            order.append(("agent", json.dumps(c["content"]["data"]["message"]["content"])))
    assert order[0] == ("user", "typed on the machine") and order[1][0] == "agent"
    assert local["id"] == h.local_sessions()[0]["id"]


def test_approve_and_deny_on_this_machine_and_through_the_control_api(ssd):
    from daemon_fixtures import control_request
    h = ssd
    h.start()
    assert h.wait_running()
    local = h.json("session", "new", str(h.work), "--prompt", tool_prompt("touch cli-approved.txt"))["session"]["id"]
    assert wait_until(lambda: h.local_sessions()[0]["pendingPermissions"], 15)
    # `!` marks a session that waits; SYNC names the server session.
    listing = h.run("session", "list").stdout
    assert "!" + local in listing and "synced" in listing
    r = h.run("session", "approve", local[:8], "--always")
    assert r.returncode == 0, r.stderr
    assert "approved Bash touch cli-approved.txt" in r.stdout
    assert wait_until(lambda: (h.work / "cli-approved.txt").exists(), 10)
    sid = h.local_sessions()[0]["serverSessionId"]
    app = h.session_phone()
    st = app.wait_agent_state(sid, lambda s: any(c.get("status") == "approved" for c in (s.get("completedRequests") or {}).values()), 10)
    assert not st.get("requests")
    # Deny with a reason: claude is told the reason.
    h.run("session", "send", local, tool_prompt("touch cli-denied.txt"))
    assert wait_until(lambda: h.local_sessions()[0]["pendingPermissions"], 15)
    r = h.run("session", "deny", local, "--reason", "not here")
    assert r.returncode == 0, r.stderr
    deny = [l for l in h.stdin_lines() if l.get("type") == "control_response"
            and l["response"]["response"].get("behavior") == "deny"]
    assert wait_until(lambda: [l for l in h.stdin_lines() if l.get("type") == "control_response"
                               and l["response"]["response"].get("behavior") == "deny"], 5)
    deny = [l for l in h.stdin_lines() if l.get("type") == "control_response" and l["response"]["response"].get("behavior") == "deny"]
    assert deny[-1]["response"]["response"]["message"] == "not here"
    # Nothing pending: a clear error.
    assert wait_until(lambda: not h.local_sessions()[0]["pendingPermissions"], 5)
    r = h.run("session", "approve", local)
    assert r.returncode == 1 and "no pending permission request" in r.stderr
    # The control API route: 404 for an unknown request, 200 with the session for a pending one.
    st = h.state()
    code, body = control_request(st["httpPort"], "POST", f"/sessions/{local}/permissions/toolu_nope", token=st["controlToken"],
                                 body={"approved": True})
    assert code == 404 and "error" in body
    code, body = control_request(st["httpPort"], "POST", f"/sessions/{local}/permissions/x", token=st["controlToken"],
                                 body={"approved": "yes"})
    assert code == 400
    h.run("session", "send", local, tool_prompt("touch api-approved.txt"))
    assert wait_until(lambda: h.local_sessions()[0]["pendingPermissions"], 15)
    rid = h.local_sessions()[0]["pendingPermissions"][0]["id"]
    code, body = control_request(st["httpPort"], "POST", f"/sessions/{sid}/permissions/{rid}", token=st["controlToken"],
                                 body={"approved": True})
    assert code == 200 and body["session"]["pendingPermissions"] == [], body
    assert wait_until(lambda: (h.work / "api-approved.txt").exists(), 10)
    # session logs shows requests and answers.
    logs = h.run("session", "logs", local).stdout
    assert "permission requested: Bash" in logs
    assert "permission approved on this machine: Bash" in logs and "permission denied on this machine: Bash" in logs
    assert "not here" in logs


def test_spawn_options_reach_claude(ssd):
    h = ssd
    h.start()
    assert h.wait_running()
    phone = h.phone()
    r = phone.rpc(h.machine_id(), "spawn-happy-session", {"directory": str(h.work), "permissionMode": "acceptEdits",
                                                          "modelMode": "opus-test", "effortLevel": "high"})
    assert r["type"] == "success", r
    s = h.local_sessions()[0]
    assert s["permissionMode"] == "acceptEdits"
    # The app's first message: claude's init shows the mode and model it was started with.
    app = h.session_phone()
    app.send_text(r["sessionId"], "hi")
    assert wait_until(lambda: h.local_sessions()[0].get("numTurns") == 1, 15)
    lines = (h.home / "sessions" / s["id"] / "stdout.jsonl").read_text().splitlines()
    init = next(json.loads(l) for l in lines if '"init"' in l)
    assert init["permissionMode"] == "acceptEdits" and init["model"] == "opus-test"
    # And from the command line.
    r = h.json("session", "new", str(h.work), "--permission-mode", "plan", "--model", "cli-model", "--prompt", "x")
    assert r["session"]["permissionMode"] == "plan"
    assert wait_until(lambda: next(x for x in h.local_sessions() if x["id"] == r["session"]["id"]).get("model") == "cli-model", 15)
    bad = h.run("session", "new", str(h.work), "--permission-mode", "yolo")
    assert bad.returncode == 2
