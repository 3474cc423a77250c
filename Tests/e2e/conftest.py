"""Shared fixtures for end-to-end tests of the real `happy` binary.

`HAPPY_BIN` (exported by scripts/test.sh) names the binary; it defaults to the debug
build. The `happy` fixture runs it with a private HOME, HAPPY_HOME_DIR,
HAPPY_PROFILES_DIR and XDG_CONFIG_HOME under pytest's tmp_path, so tests never touch
the user's real files and never see each other's state.
"""
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
HAPPY_BIN = os.environ.get("HAPPY_BIN") or str(REPO / ".build" / "debug" / "happy")
EMULATOR_DIR = REPO / "Tests" / "emulator"


def start_helper(args, port: int = 0, env=None):
    """Starts a Python test server of Tests/emulator (`args`: a script path or `-m module`,
    then its own flags) on 127.0.0.1:port (0: any free port); it exits by itself when our
    end of its stdin closes. Returns (process, port) once it listens, or (process, None)
    when it exited without listening (the port was busy)."""
    proc = subprocess.Popen(
        [sys.executable, "-u", *args, "--port", str(port), "--watch-stdin"],
        cwd=str(EMULATOR_DIR), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    return proc, (int(line.split()[-1]) if line else None)


def start_emulator(port: int = 0, env=None):
    """The Happy Server emulator, as `start_helper` starts it."""
    return start_helper(["-m", "happy_emulator"], port, env)


def stop_process(proc, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; always reaped."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    """A loopback port that was free a moment ago (nothing listens on it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Happy:
    def __init__(self, tmp: pathlib.Path):
        self.bin = HAPPY_BIN
        self.tmp = tmp
        self.user_home = tmp / "user"
        self.home = tmp / "happy-home"
        self.profiles_dir = tmp / "profiles"
        self.xdg = tmp / "xdg"
        for d in (self.user_home, self.profiles_dir, self.xdg):
            d.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAPPY_") and k != "NO_COLOR"}
        env.update({
            "HOME": str(self.user_home),
            "HAPPY_HOME_DIR": str(self.home),
            "HAPPY_PROFILES_DIR": str(self.profiles_dir),
            "XDG_CONFIG_HOME": str(self.xdg),
        })
        self.env = env

    def write_profile(self, name: str, text: str, folder: pathlib.Path | None = None) -> pathlib.Path:
        p = (folder or self.profiles_dir) / f"{name}.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def run(self, *args, input=None, env=None, timeout=30, cwd=None) -> subprocess.CompletedProcess:
        e = dict(self.env)
        if env:
            for k, v in env.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
        return subprocess.run([self.bin, *map(str, args)], input=input, env=e, cwd=cwd or self.tmp,
                              capture_output=True, text=True, timeout=timeout)

    def json(self, *args, **kw):
        """Runs with --json and parses stdout (which must be exactly one JSON document)."""
        r = self.run(*args, "--json", **kw)
        assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
        return json.loads(r.stdout)


@pytest.fixture
def happy(tmp_path) -> Happy:
    return Happy(tmp_path)
