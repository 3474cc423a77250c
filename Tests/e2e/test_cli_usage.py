"""Usage errors, help and version of the real binary."""
import re

import pytest


def test_version(happy):
    r = happy.run("--version")
    assert r.returncode == 0
    assert re.fullmatch(r"happy \d+\.\d+\.\d+\S*\n", r.stdout)
    # --version never reads profiles: even a broken selected profile does not matter.
    happy.write_profile("broken", "a: [1\n")
    assert happy.run("--profile", "broken", "--version").returncode == 0


@pytest.mark.parametrize("args,needle", [
    (["sesion", "list"], "did you mean 'session'"),
    (["daemon", "stpo"], "did you mean 'stop'"),
    (["auth", "login", "--forse"], "did you mean '--force'"),
    (["profile", "list", "--jsn"], "did you mean '--json'"),
    (["session", "stop"], "missing argument SESSION_ID"),
    (["auth", "login", "--method"], "needs a value"),
    (["auth", "login", "--method", "fax"], "invalid value 'fax'"),
    (["logs", "tail", "-n", "many"], "invalid value 'many'"),
    (["daemon"], "needs a subcommand"),
    (["completions", "tcsh"], "invalid value 'tcsh'"),
])
def test_usage_errors_exit_2(happy, args, needle):
    r = happy.run(*args)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith("error: ")
    assert needle in r.stderr
    assert r.stderr.count("\n") == 1


def test_unknown_profile_lists_available(happy):
    happy.write_profile("mine", "description: mine\n")
    for args, env in ((["--profile", "nope", "profile", "show"], None),
                      (["profile", "show"], {"HAPPY_PROFILE": "nope"}),
                      (["profile", "show", "nope"], None),
                      (["session", "list", "--profile=nope"], None)):
        r = happy.run(*args, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert "unknown profile 'nope'" in r.stderr
        assert "default, dev, local, mine" in r.stderr


def test_globals_before_and_after(happy):
    a = happy.run("--profile", "dev", "profile", "show", "--json")
    b = happy.run("profile", "show", "--json", "--profile=dev")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["daemon", "--help"], ["session", "new", "-h"],
                                  ["auth", "login", "--help"], ["profile", "show", "--help"], []])
def test_help_everywhere(happy, args):
    r = happy.run(*args)
    assert r.returncode == 0
    assert "Usage: happy" in r.stdout
    assert "--profile NAME" in r.stdout


def test_stub_commands_fail_cleanly(happy):
    # Every command either works or fails with a one-line error, never a crash.
    for args in (["daemon", "status"], ["machine", "list"], ["logs", "path"], ["doctor"]):
        r = happy.run(*args, timeout=20)
        assert r.returncode in (0, 1), (args, r.returncode, r.stderr)
        assert "Fatal error" not in r.stderr and "Stack dump" not in r.stderr
