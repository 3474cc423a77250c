"""E2E: `happy doctor` server checks (SPEC §3.7): server reachable + token accepted."""

from __future__ import annotations

import os

from test_auth_helpers import Home, closed_port, emu, emulator, home  # noqa: F401


def checks(home):
    r, j = home.run_json("doctor")
    return r, {c["name"]: c for c in j["checks"]}


def test_doctor_server_reachable_and_token_accepted(home, emu):
    home.login_secret(os.urandom(32))
    r, c = checks(home)
    assert c["server"]["status"] == "ok", c["server"]
    assert c["token"]["status"] == "ok", c["token"]
    assert any(q["path"] == "/health" for q in emu.requests())


def test_doctor_token_rejected_fails(home, emu):
    home.login_secret(os.urandom(32))
    emu.call("POST", "/__test/revoke", {"token": home.credentials()["token"]})
    r, c = checks(home)
    assert c["token"]["status"] == "fail"
    assert r.returncode == 1


def test_doctor_server_down_warns(home, emu):
    home.login_secret(os.urandom(32))
    down = Home(home.path, f"http://127.0.0.1:{closed_port()}")
    r, c = checks(down)
    assert c["server"]["status"] == "warn" and "not reachable" in c["server"]["message"]
    assert "token" not in c


def test_doctor_not_authenticated_skips_token(home, emu):
    r, c = checks(home)
    assert c["server"]["status"] == "ok"
    assert c["token"]["status"] == "warn"  # SPEC §3.7: every line is ok, warn or fail
