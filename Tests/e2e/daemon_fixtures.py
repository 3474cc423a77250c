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


def raw_http(port, request: bytes, timeout=5.0) -> tuple[int, bytes]:
    """Send one raw request to 127.0.0.1:port on a fresh connection and read to EOF:
    (status code, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(request)
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def control_request(port, method, path, token=None, body=None, host="default", timeout=5.0):
    """One `Connection: close` request to the daemon's control API: (status, JSON body or
    None). `host="default"` sends `127.0.0.1:<port>`; `host=None` leaves the header out."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host == "default":
        host = f"127.0.0.1:{port}"
    if host is not None:
        lines.append(f"Host: {host}")
    lines.append("Connection: close")
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    code, payload = raw_http(port, ("\r\n".join(lines) + "\r\n\r\n").encode() + data, timeout)
    return code, json.loads(payload) if payload else None
