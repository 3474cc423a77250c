"""Tests/fake_claude/claude held to the real claude's protocol: the scenarios of
Tests/real_claude/scenarios.py (also run against the real Claude Code CLI by
test_claude_real.py), driven through a FIFO exactly as the daemon drives claude, plus
the fake's own scripted prompts (__lines, __think, __exit) and env vars
(FAKE_CLAUDE_STDIN_LOG, FAKE_CLAUDE_INIT). Always runs: no dependency but Python."""
import json
import os
import pathlib
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "real_claude"))

from driver import Claude, blocks  # noqa: E402
from scenarios import Backend, Scenarios, is_init  # noqa: E402

FAKE = str(REPO / "Tests" / "fake_claude" / "claude")


class FakeBackend(Backend):
    name = "fake"
    missing_resume_env = {"FAKE_CLAUDE_RESUME": "missing"}
    eof_env = {"FAKE_CLAUDE_EXIT_ON_EOF": "1"}

    def __init__(self, tmp: pathlib.Path):
        self.tmp = tmp
        self.work = tmp / "work"
        self.work.mkdir()
        self.procs: list[Claude] = []

    def env(self, extra=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_CLAUDE_") and k != "IS_SANDBOX"}
        e.update(extra or {})
        return e

    def start(self, args=(), env=None, stdin="fifo", flags=None) -> Claude:
        c = Claude.start(FAKE, list(args), env=self.env(env), cwd=self.work, tmp=self.tmp / f"p{len(self.procs)}",
                         stdin=stdin, flags=flags)
        self.procs.append(c)
        return c

    def prompt_tools(self, c, uses):
        if len(uses) == 1:
            c.send_user("__tool %s %s" % (uses[0]["name"], json.dumps(uses[0]["input"])))
        else:
            c.send_user("__tools " + json.dumps(uses))

    def prompt_api_error(self, c, status):
        c.send_user(f"__api_error {status}")

    def prompt_slow(self, c, seconds, text):
        c.send_user(f"__sleep {seconds} {text}")

    def prompt_think(self, c, text):
        c.send_user(f"__think {text}")

    def cleanup(self):
        for c in self.procs:
            c.stop()


@pytest.fixture
def backend(tmp_path):
    b = FakeBackend(tmp_path)
    yield b
    b.cleanup()


class TestFakeClaude(Scenarios):
    pass


# ---------------------------------------------------------------- the fake's own features
def test_lines_10000_fast_and_complete(backend):
    c = backend.start()
    try:
        t = time.monotonic()
        c.send_user("__lines 10000 700")
        r = c.wait_result(60)
        took = time.monotonic() - t
        lines = [m for m in c.since(0) if isinstance(m, dict) and m.get("type") == "assistant"]
        assert [blocks(m, "text")[0]["text"].split(" ")[0:2] for m in lines] == \
            [["line", str(i)] for i in range(1, 10001)]
        assert len({m["uuid"] for m in lines}) == 10000 and len({m["message"]["id"] for m in lines}) == 1
        size = os.path.getsize(c.out_path)
        assert 10000 * 700 <= size < 10000 * 760
        assert r["result"] == "lines: 10000" and took < 20
    finally:
        c.stop()


def test_stdin_log_records_every_line_once(backend, tmp_path):
    log = tmp_path / "stdin.jsonl"
    c = backend.start(env={"FAKE_CLAUDE_STDIN_LOG": str(log)})
    try:
        sent_at = []
        for i in range(5):
            sent_at.append(time.time() * 1000)
            c.send_user(f"m{i}")
        rid = c.control({"subtype": "interrupt"})
        for _ in range(5):
            c.wait_result(30)
        c.wait_control_response(rid)
        recs = [json.loads(l) for l in log.read_text().splitlines()]
        assert [r["line"] for r in recs] == c.sent
        assert all(r["t"] >= s - 1 for r, s in zip(recs, sent_at)) and all(r["t"] - s < 2000 for r, s in zip(recs, sent_at))
    finally:
        c.stop()


def test_exit_prompt(backend):
    c = backend.start()
    try:
        c.send_user("__exit 7")
        assert c.wait_result()["result"] == "echo: __exit 7"
        assert c.proc.wait(10) == 7
    finally:
        c.stop()


@pytest.mark.parametrize("how,count", [("eager", 2), ("once", 1), ("turn", 1)])
def test_init_env(backend, how, count):
    c = backend.start(env={"FAKE_CLAUDE_INIT": how})
    try:
        if how != "turn":
            assert is_init(c.wait_for(is_init, 10))
        else:
            assert c.quiet_for(0.5) == []
        c.send_user("x")
        c.wait_result()
        assert sum(1 for m in c.since(0) if is_init(m)) == count
    finally:
        c.stop()


def test_resume_sets_session_id_and_exit_on_eof(backend):
    c = backend.start(["--resume", "11111111-2222-4333-8444-555555555555"], env={"FAKE_CLAUDE_EXIT_ON_EOF": "1"},
                      stdin="pipe")
    try:
        c.send_user("x")
        assert c.wait_result()["session_id"] == "11111111-2222-4333-8444-555555555555"
        os.close(c.stdin_fd)
        assert c.proc.wait(10) == 0
    finally:
        c.stop()

