"""`happy profile list|show|path` and configuration precedence, end to end."""
import json
import os
import stat

KEYS = ["serverUrl", "webappUrl", "homeDir", "daemon.httpPort", "daemon.heartbeatSeconds",
        "daemon.healthCheckSeconds", "daemon.logMaxMiB", "daemon.logFiles", "sessions.max",
        "sessions.idleTimeoutMinutes", "sessions.maxOutputMiB", "sessions.sync", "sessions.permissionMode", "rpc.roots", "rpc.audit", "claude.command", "claude.args", "env"]


def test_profile_list_json(happy):
    p = happy.write_profile("mine", "description: my server\nserverUrl: http://127.0.0.1:9\n")
    happy.write_profile("nodesc", "serverUrl: http://127.0.0.1:9\n")
    doc = happy.json("profile", "list", env={"HAPPY_PROFILE": "mine"})
    assert doc["active"] == "mine"
    by = {x["name"]: x for x in doc["profiles"]}
    assert set(by) == {"default", "dev", "local", "mine", "nodesc"}
    assert by["mine"] == {"name": "mine", "source": str(p), "description": "my server", "active": True}
    assert by["nodesc"]["description"] is None
    assert by["default"]["source"] == "built-in" and by["default"]["active"] is False
    assert sum(x["active"] for x in doc["profiles"]) == 1


def test_profile_list_human(happy):
    r = happy.run("profile", "list")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert "NAME" in lines[0] and "SOURCE" in lines[0]
    assert any(l.startswith("*") and " default " in l for l in lines)
    assert "\x1b[" not in r.stdout  # not a terminal: no colour


def test_profile_show_json_shape_and_sources(happy):
    f = happy.write_profile("p", "serverUrl: http://profile:1\ndaemon:\n  logMaxMiB: 0.05\nsessions:\n  max: 2\n")
    doc = happy.json("profile", "show", env={"HAPPY_PROFILE": "p", "HAPPY_WEBAPP_URL": "http://web:2",
                                              "HAPPY_SERVER_URL": None}, )
    assert doc["profile"] == "p"
    s = doc["settings"]
    assert list(sorted(s)) == sorted(KEYS)
    for k in KEYS:
        assert set(s[k]) == {"value", "source", "from"}
    assert s["serverUrl"] == {"value": "http://profile:1", "source": "profile", "from": str(f)}
    assert s["webappUrl"] == {"value": "http://web:2", "source": "env", "from": "HAPPY_WEBAPP_URL"}
    assert s["homeDir"] == {"value": str(happy.home), "source": "env", "from": "HAPPY_HOME_DIR"}
    assert s["daemon.logMaxMiB"]["value"] == 0.05
    assert s["sessions.max"] == {"value": 2, "source": "profile", "from": str(f)}
    assert s["daemon.httpPort"] == {"value": 64875, "source": "default", "from": "built-in"}
    assert s["claude.args"]["value"] == [] and s["env"]["value"] == {}


def test_flag_beats_env_beats_profile(happy):
    doc = happy.json("--profile", "dev", "profile", "show", "--server-url", "http://flag:3",
                     "--home-dir", str(happy.tmp / "flaghome"), env={"HAPPY_SERVER_URL": "http://env:2"})
    s = doc["settings"]
    assert s["serverUrl"] == {"value": "http://flag:3", "source": "flag", "from": "--server-url"}
    assert s["homeDir"] == {"value": str(happy.tmp / "flaghome"), "source": "flag", "from": "--home-dir"}
    assert s["webappUrl"] == {"value": "http://localhost:8081", "source": "profile", "from": "built-in"}
    doc = happy.json("--profile", "dev", "profile", "show", env={"HAPPY_SERVER_URL": "http://env:2"})
    assert doc["settings"]["serverUrl"]["source"] == "env"


def test_builtin_profiles(happy):
    env = {"HAPPY_HOME_DIR": None}
    d = happy.json("profile", "show", env=env)["settings"]
    assert d["serverUrl"]["value"] == "https://api.cluster-fluster.com"
    assert d["homeDir"]["value"] == str(happy.user_home / ".happy")
    assert d["daemon.httpPort"]["value"] == 64875
    dev = happy.json("profile", "show", "dev", env=env)
    assert dev["profile"] == "dev"
    assert dev["settings"]["serverUrl"]["value"] == "http://localhost:3005"
    assert dev["settings"]["homeDir"] == {"value": str(happy.user_home / ".happy-dev"), "source": "profile",
                                          "from": "built-in"}
    assert dev["settings"]["daemon.httpPort"]["value"] == 64876


def test_xdg_profile_dir_and_path(happy):
    r = happy.run("profile", "path")
    assert r.returncode == 0 and r.stdout.strip() == str(happy.profiles_dir)
    r = happy.run("profile", "path", env={"HAPPY_PROFILES_DIR": None})
    assert r.stdout.strip() == str(happy.xdg / "happy" / "profiles")
    r = happy.run("profile", "path", env={"HAPPY_PROFILES_DIR": None, "XDG_CONFIG_HOME": None})
    assert r.stdout.strip() == str(happy.user_home / ".config" / "happy" / "profiles")
    f = happy.write_profile("x", "serverUrl: http://xdg:1\n", folder=happy.xdg / "happy" / "profiles")
    s = happy.json("profile", "show", "x")["settings"]["serverUrl"]
    assert s == {"value": "http://xdg:1", "source": "profile", "from": str(f)}


def test_yaml_syntax_error_names_file_line_column(happy):
    f = happy.write_profile("bad", "serverUrl: http://x:1\ndaemon:\n  httpPort: [1, 2\n")
    r = happy.run("profile", "show", "bad")
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: {f}:")
    assert "YAML syntax error" in r.stderr
    line = int(r.stderr.split(":")[2])
    assert line >= 3


def test_wrong_type_and_unknown_key(happy):
    f = happy.write_profile("t", "daemon:\n  httpPort: abc\n")
    r = happy.run("profile", "show", "t")
    assert r.returncode == 1
    assert f"{f}:2:13: daemon.httpPort must be an integer" in r.stderr
    happy.write_profile("u", "colour: blue\ndaemon:\n  heartbeatSeconds: 0.5\n")
    r = happy.run("profile", "show", "u", "--json")
    assert r.returncode == 0
    assert "warning:" in r.stderr and "colour" in r.stderr
    assert json.loads(r.stdout)["settings"]["daemon.heartbeatSeconds"]["value"] == 0.5


def test_bad_profile_files(happy):
    (happy.profiles_dir / "dir.yaml").mkdir()
    r = happy.run("profile", "show", "dir")
    assert r.returncode == 1 and "is a directory" in r.stderr
    (happy.profiles_dir / "bin.yaml").write_bytes(b"serverUrl: \xff\xfe\n")
    r = happy.run("profile", "show", "bin")
    assert r.returncode == 1 and "UTF-8" in r.stderr
    if os.geteuid() != 0:
        p = happy.write_profile("noread", "a: 1\n")
        p.chmod(0)
        r = happy.run("profile", "show", "noread")
        assert r.returncode == 1 and "cannot read profile" in r.stderr
    for r in (happy.run("profile", "show", "dir"), happy.run("profile", "show", "bin")):
        assert "Fatal error" not in r.stderr


def test_home_dir_pointing_at_a_file(happy):
    f = happy.tmp / "afile"
    f.write_text("x")
    r = happy.run("__complete", "sessions", env={"HAPPY_HOME_DIR": str(f)})
    assert r.returncode == 0 and r.stdout == ""
    for args in (["session", "list"], ["daemon", "status"], ["auth", "status"]):
        r = happy.run(*args, env={"HAPPY_HOME_DIR": str(f)})
        assert r.returncode == 1, (args, r.stderr)
        assert f"error: {f} exists but is not a directory" in r.stderr
