"""The phone drives the real Claude Code CLI through the daemon (SPEC §6, §7): the claude
binary of the `claude-agent-sdk` wheel against the fake Anthropic API on 127.0.0.1 — a
real tool use approved and denied from the phone, the conversation rendered by the app."""
import json
import pathlib
import sys

import pytest

from conftest import REPO
from session_fixtures import SessionHappy, app_accepts, wait_until
from sync_fixtures import Account, emu  # noqa: F401

sys.path.insert(0, str(REPO / "Tests" / "real_claude"))
sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from locate import claude_env, claude_path, skip_reason  # noqa: E402
from test_claude_real import FakeAPI  # noqa: E402

CLAUDE = claude_path()
pytestmark = pytest.mark.skipif(CLAUDE is None, reason=skip_reason())


@pytest.fixture(scope="module")
def api():
    a = FakeAPI()
    yield a
    a.stop()


@pytest.fixture
def real(tmp_path, emu, api):
    api.reset()
    env = claude_env(api.url, tmp_path / "claude-home")
    env.pop("PATH", None)
    h = SessionHappy(tmp_path, emu, Account(emu, "dataKey"), claude_env=env, claude_command=CLAUDE)
    yield h, api
    h.cleanup()


def test_the_phone_approves_and_denies_a_real_tool_use(real):
    h, api = real
    h.start()
    assert h.wait_running()
    phone = h.phone()
    r = phone.rpc(h.machine_id(), "spawn-happy-session", {"directory": str(h.work)})
    assert r["type"] == "success", r
    sid = r["sessionId"]
    app = h.session_phone()
    api.script([{"tool_use": {"name": "Bash", "input": {"command": "touch real-approved.txt", "description": "make a file"}}}])
    app.send_text(sid, "please make the file")
    rid, req = app.wait_request(sid, 60)
    assert req["tool"] == "Bash" and req["arguments"]["command"] == "touch real-approved.txt"
    assert rid.startswith("toolu_")
    app.permission(sid, rid, approved=True)
    assert wait_until(lambda: (h.work / "real-approved.txt").exists(), 60)
    app.wait_message(sid, lambda c: c.get("role") == "agent" and c["content"].get("type") == "event"
                     and c["content"]["data"]["type"] == "ready", 60)
    # Denied: the real claude does not run it.
    api.script([{"tool_use": {"name": "Bash", "input": {"command": "touch real-denied.txt", "description": "no"}}}])
    app.send_text(sid, "and another one")
    rid2, _ = app.wait_request(sid, 60, lambda r, _: r != rid)
    app.permission(sid, rid2, approved=False)
    st = app.wait_agent_state(sid, lambda s: rid2 in (s.get("completedRequests") or {}), 30)
    assert st["completedRequests"][rid2]["status"] == "denied"
    app.wait_messages(sid, lambda c: c.get("role") == "agent" and c["content"].get("type") == "event"
                      and c["content"]["data"]["type"] == "ready", 2, 60)
    assert not (h.work / "real-denied.txt").exists()
    # Everything the daemon sent is something the app renders.
    for m in app.messages(sid):
        c = m["content"]
        if c and c.get("role") == "agent":
            assert app_accepts(c) == [], c
    s = h.local_sessions()[0]
    assert s["claudeSessionId"] and s["numTurns"] >= 2 and s["status"] == "running"
