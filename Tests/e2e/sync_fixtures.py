"""Fixtures for the machine-sync end-to-end tests: an emulator that can be stopped and
started again on the same port (state kept in a state file), accounts with legacy or
dataKey credentials written straight into access.key, and a phone client."""
from __future__ import annotations

import base64
import json
import os
import pathlib
import sys
import time

import pytest
from nacl.public import PrivateKey

from conftest import EMULATOR_DIR, start_emulator, stop_process
from daemon_fixtures import DaemonHappy, FAKE_CLAUDE, pid_alive, wait_until  # noqa: F401

sys.path.insert(0, str(EMULATOR_DIR))

from happy_emulator.phone import b64, decrypt_value, http, unwrap_data_key  # noqa: E402,F401
from happy_emulator.phone_client import PhoneClient  # noqa: E402


class SyncEmulator:
    def __init__(self, tmp: pathlib.Path):
        self.state_file = str(tmp / "emulator-state.json")
        self.port = 0
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Starts (again, on the same port once known); returns when it listens (monotonic time)."""
        env = dict(os.environ, HAPPY_EMULATOR_STATE_FILE=self.state_file)
        for _ in range(50):
            self.proc, port = start_emulator(self.port, env)
            if port is not None:
                self.port = port
                return time.monotonic()
            self.proc.wait(5)  # port still busy: try again
            time.sleep(0.05)
        raise RuntimeError("emulator did not start")

    def stop(self):
        stop_process(self.proc)

    def call(self, method, path, body=None):
        return http(method, self.url + path, body)

    def log(self) -> dict:
        return self.call("GET", "/__test/sync/log")[1]

    def events(self, name=None) -> list:
        return [e for e in self.log()["events"] if name is None or e["event"] == name]

    def machine(self, mid) -> dict | None:
        st, b = self.call("GET", f"/__test/sync/machine/{mid}")
        return b["machine"] if st == 200 else None


class Account:
    """An emulator account with credentials of one variant."""

    def __init__(self, emu: SyncEmulator, variant: str):
        st, b = emu.call("POST", "/__test/account", {})
        assert st == 200, b
        self.token = b["token"]
        self.variant = variant
        if variant == "legacy":
            self.secret = os.urandom(32)
            self.key = self.secret
            self.access_key = {"secret": b64(self.secret), "token": self.token}
        else:
            self.content = PrivateKey.generate()
            self.machine_key = os.urandom(32)
            self.key = self.machine_key
            self.access_key = {"encryption": {"publicKey": b64(bytes(self.content.public_key)),
                                              "machineKey": b64(self.machine_key)}, "token": self.token}

    def decrypt(self, b64value):
        return decrypt_value(b64value, self.key, self.variant) if b64value else None


class SyncHappy(DaemonHappy):
    def __init__(self, tmp: pathlib.Path, emu: SyncEmulator, account: Account | None, heartbeat=0.5):
        super().__init__(tmp)
        self.emu = emu
        self.account = account
        self.write_profile("t", f"daemon:\n  httpPort: 0\n  healthCheckSeconds: 0.5\n  heartbeatSeconds: {heartbeat}\n"
                                f"claude:\n  command: {FAKE_CLAUDE}\n")
        self.env["HAPPY_SERVER_URL"] = emu.url
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if account:
            p = self.home / "access.key"
            p.write_text(json.dumps(account.access_key, indent=2))
            p.chmod(0o600)
        self.phones = []

    def machine_id(self) -> str | None:
        try:
            return json.loads((self.home / "settings.json").read_text()).get("machineId")
        except (OSError, ValueError):
            return None

    def status(self) -> dict:
        r = self.run("daemon", "status", "--json")
        return json.loads(r.stdout)

    def server_status(self):
        return self.status().get("server")

    def daemon_state(self):
        """Decrypted daemonState as stored by the emulator."""
        m = self.emu.machine(self.machine_id())
        return self.account.decrypt(m["daemonState"]) if m else None

    def states_sent(self) -> list:
        """Decrypted daemon states of successful machine-update-state events, in order."""
        out = []
        for e in self.emu.events("machine-update-state"):
            if (e.get("ack") or {}).get("result") == "success":
                out.append(self.account.decrypt(e["payload"]["daemonState"]))
        return out

    def wait_running(self, timeout=10):
        return wait_until(lambda: (self.daemon_state() or {}).get("status") == "running"
                          and self.server_status() == "connected", timeout)

    def phone(self) -> PhoneClient:
        key = self.account.key
        if self.account.variant == "dataKey":
            # The app's way: unwrap the machine's dataEncryptionKey with the content key.
            m = self.emu.machine(self.machine_id())
            key = unwrap_data_key(base64.b64decode(m["dataEncryptionKey"]), self.account.content)
        p = PhoneClient(self.emu.url, self.account.token, key, self.account.variant)
        self.phones.append(p)
        return p

    def cleanup(self):
        for p in self.phones:
            p.close()
        super().cleanup()


@pytest.fixture
def emu(tmp_path):
    e = SyncEmulator(tmp_path)
    yield e
    e.stop()


@pytest.fixture(params=["legacy", "dataKey"])
def sh(request, tmp_path, emu):
    h = SyncHappy(tmp_path, emu, Account(emu, request.param))
    yield h
    h.cleanup()
