"""Fixtures for the sessions-in-the-app end-to-end tests (SPEC §7): the real daemon with
credentials against the emulator, a machine phone (spawn RPC) and a session phone that
plays the app (list sessions, decrypt the conversation, send prompts, answer permissions,
call session RPCs), and the fake claude's stdin log."""
from __future__ import annotations

import json
import os
import pathlib
import sys
import time

import pytest

from conftest import EMULATOR_DIR
from daemon_fixtures import FAKE_CLAUDE, wait_until  # noqa: F401
from sync_fixtures import Account, SyncEmulator, SyncHappy  # noqa: F401

sys.path.insert(0, str(EMULATOR_DIR))

from happy_emulator import app_schema  # noqa: E402
from happy_emulator.session_phone import SessionPhone  # noqa: E402


class SessionHappy(SyncHappy):
    """A daemon whose sessions are mirrored to the emulator; `extra` adds profile lines."""

    def __init__(self, tmp: pathlib.Path, emu: SyncEmulator, account: Account, extra: str = "", claude_env=None,
                 claude_command=FAKE_CLAUDE, fast_timers: bool = True):
        super().__init__(tmp, emu, account)
        self.stdin_log = tmp / "stdin.jsonl"
        env_lines = {"FAKE_CLAUDE_STDIN_LOG": str(self.stdin_log)}
        env_lines.update(claude_env or {})
        env_yaml = "".join(f"  {k}: '{v}'\n" for k, v in env_lines.items())
        # Tests want the health check and the machine heartbeat fast; benchmarks use the
        # defaults (60 s, 20 s) that users run with.
        timers = "  healthCheckSeconds: 0.5\n  heartbeatSeconds: 0.5\n" if fast_timers else ""
        self.write_profile("t", "daemon:\n  httpPort: 0\n" + timers +
                                f"claude:\n  command: {claude_command}\n"
                                f"rpc:\n  roots: ['{tmp}']\n"
                                f"env:\n{env_yaml}" + extra)
        self.work = tmp / "work"
        self.work.mkdir(exist_ok=True)
        self.session_phones = []

    def session_phone(self) -> SessionPhone:
        if self.account.variant == "legacy":
            p = SessionPhone(self.emu.url, self.account.token, secret=self.account.secret)
        else:
            p = SessionPhone(self.emu.url, self.account.token, content=self.account.content)
        self.session_phones.append(p)
        return p

    def stdin_lines(self) -> list:
        """The lines the fake claude read on stdin (every session of this daemon), parsed."""
        try:
            return [json.loads(json.loads(l)["line"]) for l in self.stdin_log.read_text().splitlines() if l.strip()]
        except FileNotFoundError:
            return []

    def user_lines(self) -> list:
        return [l for l in self.stdin_lines() if l.get("type") == "user"]

    def session(self, sid: str) -> dict:
        return self.json("session", "list", "--all")["sessions"] and next(
            s for s in self.json("session", "list", "--all")["sessions"] if sid in (s["id"], s.get("serverSessionId")))

    def local_sessions(self) -> list:
        return self.json("session", "list", "--all")["sessions"]

    def cleanup(self):
        for p in self.session_phones:
            p.close()
        super().cleanup()


def app_accepts(content) -> list:
    """Errors the app's schema finds in a decrypted record (empty: it renders it)."""
    return app_schema.validate_record(content)


@pytest.fixture(params=["legacy", "dataKey"])
def ss(request, tmp_path, emu):
    h = SessionHappy(tmp_path, emu, Account(emu, request.param))
    yield h
    h.cleanup()


@pytest.fixture
def ssd(tmp_path, emu):
    """dataKey only (the variant of current accounts)."""
    h = SessionHappy(tmp_path, emu, Account(emu, "dataKey"))
    yield h
    h.cleanup()
