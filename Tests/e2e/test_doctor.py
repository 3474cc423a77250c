"""End-to-end: `happy doctor` (SPEC §3.7)."""
import json

from daemon_fixtures import dh  # noqa: F401


def test_doctor(dh):
    r = dh.run("doctor", "--json")
    j = json.loads(r.stdout)
    names = {c["name"]: c["status"] for c in j["checks"]}
    assert {"config", "home", "credentials", "server", "daemon", "claude", "stale-state", "logs"} <= set(names)
    assert names["claude"] == "ok" and names["daemon"] == "warn"
    assert r.returncode == 0 and j["ok"] is True
    dh.start()
    j = dh.json("doctor")
    assert {c["name"]: c["status"] for c in j["checks"]}["daemon"] == "ok"
    dh.write_profile("t", dh.profile_text.replace("command: ", "command: /nonexistent/"))
    r = dh.run("doctor")
    assert r.returncode == 1 and "fail" in r.stdout
