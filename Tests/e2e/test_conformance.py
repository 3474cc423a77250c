"""Conformance checks against SPEC.md, found by the black-box audit."""
import json

from daemon_fixtures import dh  # noqa: F401
from sync_fixtures import Account, SyncHappy, emu  # noqa: F401


def test_doctor_checks_server_and_token(tmp_path, emu):  # noqa: F811
    """§3.7: doctor checks the server (GET /health) and that the token is accepted."""
    h = SyncHappy(tmp_path, emu, Account(emu, "legacy"))
    try:
        j = h.json("doctor")
        checks = {c["name"]: c for c in j["checks"]}
        assert checks["server"]["status"] == "ok", checks["server"]
        assert checks["token"]["status"] == "ok", checks["token"]
        assert all(c["status"] in ("ok", "warn", "fail") for c in j["checks"])
        # A rejected token is a failure (exit 1).
        p = h.home / "access.key"
        ak = json.loads(p.read_text())
        ak["token"] = "bogus-token"
        p.write_text(json.dumps(ak))
        r = h.run("doctor", "--json")
        checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
        assert checks["token"]["status"] == "fail" and r.returncode == 1
    finally:
        h.cleanup()


def test_doctor_statuses_are_ok_warn_fail_when_not_authenticated(tmp_path, emu):  # noqa: F811
    """§3.7: one line per check with ok/warn/fail (no other status values)."""
    h = SyncHappy(tmp_path, emu, None)
    try:
        j = h.json("doctor")
        assert all(c["status"] in ("ok", "warn", "fail") for c in j["checks"]), j["checks"]
    finally:
        h.cleanup()


def test_login_with_corrupt_settings_writes_nothing(tmp_path, emu):  # noqa: F811
    """§2.2: a settings.json that cannot be parsed stops the command with an error naming
    the file; login must not leave credentials behind without a machine id."""
    import base64
    import os
    h = SyncHappy(tmp_path, emu, None)
    try:
        (h.home / "settings.json").write_text("{bad")
        r = h.run("auth", "login", "--secret-stdin", input=base64.b64encode(os.urandom(32)).decode() + "\n")
        assert r.returncode == 1 and "settings.json" in r.stderr and r.stderr.startswith("error: ")
        assert not (h.home / "access.key").exists()
        assert (h.home / "settings.json").read_text() == "{bad"
    finally:
        h.cleanup()
