"""Fixtures for the daemon/session/logs/doctor end-to-end tests."""
import json
import os
import pathlib
import signal
import socket
import time

import pytest

from conftest import Happy, REPO

FAKE_CLAUDE = REPO / "Tests" / "fake_claude" / "claude"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


def wait_until(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class DaemonHappy(Happy):
    """A Happy runner with a test profile (`t`: any free port, fake claude) that stops
    every daemon and session it started, by pid."""

    def __init__(self, tmp: pathlib.Path, extra_profile: str = ""):
        super().__init__(tmp)
        self.profile_text = (
            "daemon:\n  httpPort: 0\n  healthCheckSeconds: 0.5\n"
            f"claude:\n  command: {FAKE_CLAUDE}\n" + extra_profile
        )
        self.write_profile("t", self.profile_text)
        self.env["HAPPY_PROFILE"] = "t"
        self.pids: set[int] = set()

    @property
    def state_path(self) -> pathlib.Path:
        return self.home / "daemon.state.json"

    @property
    def lock_path(self) -> pathlib.Path:
        return self.home / "daemon.state.json.lock"

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

    def start(self) -> dict:
        r = self.run("daemon", "start", "--json")
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        self.pids.add(info["pid"])
        return info

    def track(self, pid: int):
        self.pids.add(pid)

    def cleanup(self):
        try:
            self.run("daemon", "stop", timeout=30)
        except Exception:
            pass
        sess = self.home / "sessions"
        if sess.is_dir():
            for rec in sess.glob("*/session.json"):
                try:
                    self.pids.add(int(json.loads(rec.read_text())["pid"]))
                except Exception:
                    pass
        for pid in self.pids:
            if pid > 1 and pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


@pytest.fixture
def dh(tmp_path):
    h = DaemonHappy(tmp_path)
    yield h
    h.cleanup()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
