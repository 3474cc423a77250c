"""The real Claude Code CLI, driven directly (no happy involved) through its stdin FIFO
and stdout file exactly as the daemon drives it — stream-json in and out,
`--permission-prompt-tool stdio` — against the fake Anthropic API of
Tests/fake_anthropic, offline. The scenarios are Tests/real_claude/scenarios.py, the
same ones Tests/e2e/test_claude_fake.py runs against the fake claude.

Skipped when the binary is not installed (pip install --no-deps -r
Tests/real_claude/requirements.txt). Observed shapes: Tests/real_claude/TRANSCRIPTS.md.
"""
import json
import pathlib
import subprocess
import sys
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "real_claude"))

from driver import Claude  # noqa: E402
from locate import claude_env, claude_path, skip_reason  # noqa: E402
from scenarios import Backend, Scenarios  # noqa: E402

CLAUDE = claude_path()
pytestmark = pytest.mark.skipif(CLAUDE is None, reason=skip_reason())


class FakeAPI:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(REPO / "Tests" / "fake_anthropic" / "server.py"), "--port", "0",
             "--watch-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("fake Anthropic API did not start")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def script(self, turns):
        self.call("POST", "/__script", turns)

    def requests(self, path=None):
        return self.call("GET", "/__requests" + (f"?path={path}" if path else ""))["requests"]

    def reset(self):
        self.call("DELETE", "/__script")
        self.call("DELETE", "/__requests")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


@pytest.fixture(scope="module")
def api():
    a = FakeAPI()
    yield a
    a.stop()


class RealBackend(Backend):
    name = "real"

    def __init__(self, api: FakeAPI, tmp: pathlib.Path):
        self.api = api
        self.tmp = tmp
        self.work = tmp / "work"
        self.work.mkdir()
        self.home = tmp / "home"
        self.procs: list[Claude] = []

    def start(self, args=(), env=None, stdin="fifo", flags=None) -> Claude:
        c = Claude.start(CLAUDE, list(args), env=claude_env(self.api.url, self.home, env), cwd=self.work,
                         tmp=self.tmp / f"p{len(self.procs)}", stdin=stdin, flags=flags)
        self.procs.append(c)
        return c

    def prompt_tools(self, c, uses):
        self.api.script([{"tool_uses": uses}])
        c.send_user("please use the tools")

    def prompt_api_error(self, c, status):
        self.api.script([{"error": status}])
        c.send_user(f"fail with {status}")

    def prompt_slow(self, c, seconds, text):
        self.api.script([{"text": "echo: " + text, "delay": seconds}])
        c.send_user(text)

    def prompt_think(self, c, text):
        self.api.script([{"thinking": "thinking about " + text, "text": "echo: " + text}])
        c.send_user(text)

    def after_resume(self, c, sid, first, resumed):
        last = self.api.requests("/v1/messages")[-1]["body"]["messages"]
        assert "remember banana" in json.dumps(last)  # the resumed conversation went to the API
        # The running total goes on from the resumed session's.
        assert resumed["total_cost_usd"] > first["total_cost_usd"]

    def cleanup(self):
        for c in self.procs:
            c.stop()


@pytest.fixture
def backend(api, tmp_path):
    api.reset()
    b = RealBackend(api, tmp_path)
    yield b
    b.cleanup()


class TestRealClaude(Scenarios):
    pass


def test_only_the_messages_api_is_called(api, tmp_path):
    """With CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 a session calls nothing but
    POST /v1/messages (no telemetry, update check or token count)."""
    api.reset()
    b = RealBackend(api, tmp_path)
    c = b.start()
    try:
        c.send_user("hi")
        c.wait_result(30)
    finally:
        b.cleanup()
    reqs = api.requests()
    assert {(r["method"], r["path"]) for r in reqs} == {("POST", "/v1/messages")}, reqs
    h = reqs[0]["headers"]
    assert h.get("x-api-key") and h.get("anthropic-version") == "2023-06-01"
    body = reqs[0]["body"]
    assert body["stream"] is True and body["tools"] and body["model"]
