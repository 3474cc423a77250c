"""Shared fixtures and helpers for the auth/machine end-to-end tests: the real
`happy` binary against the Happy Server emulator (Tests/emulator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from conftest import EMULATOR_DIR, HAPPY_BIN, free_port, start_emulator, stop_process  # noqa: E402,F401

sys.path.insert(0, str(EMULATOR_DIR))

from happy_emulator.phone import (  # noqa: E402
    Phone, b64, encrypt_value, http, unb64, wrap_data_key,
)

HAPPY = HAPPY_BIN


class Emulator:
    def __init__(self) -> None:
        self.proc, self.port = start_emulator()
        assert self.port is not None, "the emulator did not start"
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body=None, token: Optional[str] = None):
        return http(method, self.url + path, body, token=token)

    def fault(self, path: str, method: str = "*", count: int = 1, **kw) -> None:
        st, _ = self.call("POST", "/__test/fault", dict(path=path, method=method, count=count, **kw))
        assert st == 200

    def reset(self) -> None:
        self.call("POST", "/__test/reset_faults", {})
        self.call("POST", "/__test/clear_requests", {})

    def requests(self) -> list:
        return self.call("GET", "/__test/requests")[1]["requests"]

    def account(self) -> tuple[str, str]:
        st, b = self.call("POST", "/__test/account", {})
        return b["accountId"], b["token"]

    def seed_machine(self, token: str, **fields) -> dict:
        st, b = self.call("POST", "/__test/machine", dict(token=token, **fields))
        assert st == 200, b
        return b["machine"]

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="module")
def emulator():
    e = Emulator()
    yield e
    e.stop()


@pytest.fixture
def emu(emulator):
    emulator.reset()
    yield emulator
    emulator.reset()


closed_port = free_port  # a loopback port nothing listens on


class Home:
    def __init__(self, path: Path, server_url: str) -> None:
        self.path = path
        self.server_url = server_url

    @property
    def access_key(self) -> Path:
        return self.path / "access.key"

    @property
    def settings(self) -> Path:
        return self.path / "settings.json"

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAPPY_")}
        env.update({
            "HAPPY_HOME_DIR": str(self.path), "HAPPY_SERVER_URL": self.server_url,
            "HAPPY_WEBAPP_URL": "http://webapp.invalid", "XDG_CONFIG_HOME": str(self.path.parent / "xdg"),
            "NO_COLOR": "1",
        })
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            env.pop(k, None)
        env.update(extra)
        return env

    def run(self, *args, input: Optional[str] = None, timeout: float = 30, **extra) -> subprocess.CompletedProcess:
        return subprocess.run([HAPPY, *args], env=self.env(**extra), input=input if input is not None else "",
                              capture_output=True, text=True, timeout=timeout)

    def run_json(self, *args, **kw):
        r = self.run(*args, "--json", **kw)
        return r, (json.loads(r.stdout) if r.stdout.strip() else None)

    def credentials(self) -> dict:
        return json.loads(self.access_key.read_text())

    def write_credentials(self, obj: dict) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.access_key.write_text(json.dumps(obj, indent=2))
        os.chmod(self.access_key, 0o600)

    def settings_json(self) -> dict:
        return json.loads(self.settings.read_text())

    def login_secret(self, secret: bytes) -> subprocess.CompletedProcess:
        r = self.run("auth", "login", "--secret-stdin", input=b64(secret) + "\n")
        assert r.returncode == 0, r.stderr
        return r


@pytest.fixture
def home(tmp_path, emu) -> Home:
    return Home(tmp_path / "home", emu.url)


def start_terminal_login(home: Home, *args):
    """Starts `happy auth login` and returns (proc, mobile link, stdout so far)."""
    p = subprocess.Popen([HAPPY, "auth", "login", *args], env=home.env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.time() + 20
    link = None
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("Mobile link: "):
            link = line.split("Mobile link: ", 1)[1].strip()
            break
    assert link, "".join(seen) + (p.stderr.read() if p.poll() is not None else "")
    return p, link, "".join(seen)


def finish(p: subprocess.Popen, timeout: float = 20) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err
