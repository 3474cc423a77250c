"""Completion scripts: identical to the checked-in files, and they complete in bash and fish."""
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import REPO

FILES = {"bash": "completions/happy.bash", "zsh": "completions/_happy", "fish": "completions/happy.fish"}


@pytest.mark.parametrize("shell", sorted(FILES))
def test_output_matches_checked_in_file(happy, shell):
    r = happy.run("completions", shell)
    assert r.returncode == 0
    assert r.stdout == (REPO / FILES[shell]).read_text()


def _session(happy, sid, status):
    d = happy.home / "sessions" / sid
    d.mkdir(parents=True)
    (d / "session.json").write_text(f'{{"id": "{sid}", "status": "{status}"}}')


def test_complete_profiles_and_sessions(happy):
    happy.write_profile("mine", "")
    r = happy.run("__complete", "profiles")
    assert r.returncode == 0 and r.stdout.split() == ["default", "dev", "local", "mine"]
    _session(happy, "s-old", "exited")
    _session(happy, "s-live", "running")
    r = happy.run("__complete", "sessions")
    assert r.returncode == 0 and r.stdout.split() == ["s-live", "s-old"]
    # Other profile → other home → no sessions; never an error.
    r = happy.run("--home-dir", str(happy.tmp / "empty"), "__complete", "sessions")
    assert r.returncode == 0 and r.stdout == ""


def _bash_complete(happy, words):
    script = f"""
source {REPO / FILES['bash']}
COMP_WORDS=({' '.join(repr(w) for w in words)})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_happy
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = dict(happy.env)
    env["PATH"] = str(pathlib.Path(happy.bin).parent) + os.pathsep + env.get("PATH", "")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return [l for l in r.stdout.splitlines() if l]


def test_bash_completes_commands_flags_and_dynamic_values(happy):
    happy.write_profile("mine", "")
    _session(happy, "abc123", "running")
    assert _bash_complete(happy, ["happy", ""])[:3] == ["auth", "machine", "daemon"]
    assert _bash_complete(happy, ["happy", "daemon", "sta"]) == ["start", "start-sync", "status"]
    assert "--keep-sessions" in _bash_complete(happy, ["happy", "daemon", "stop", "--"])
    assert _bash_complete(happy, ["happy", "--profile", "mi"]) == ["mine"]
    assert _bash_complete(happy, ["happy", "session", "stop", ""]) == ["abc123"]
    assert _bash_complete(happy, ["happy", "--json", "session", "logs", "a"]) == ["abc123"]
    assert _bash_complete(happy, ["happy", "auth", "login", "--method", ""]) == ["mobile", "web"]
    assert "__complete" not in _bash_complete(happy, ["happy", "_"])


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_completes(happy):
    happy.write_profile("mine", "")
    _session(happy, "abc123", "running")
    env = dict(happy.env)
    env["PATH"] = str(pathlib.Path(happy.bin).parent) + os.pathsep + env.get("PATH", "")

    def comp(line):
        r = subprocess.run(["fish", "--no-config", "-c",
                            f"source {REPO / FILES['fish']}; complete -C '{line}'"],
                           env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return [l.split("\t")[0] for l in r.stdout.splitlines()]

    assert "daemon" in comp("happy ")
    assert "start-sync" in comp("happy daemon ")
    assert "mine" in comp("happy --profile ")
    assert comp("happy session stop ") == ["abc123"]
    assert "--keep-sessions" in comp("happy daemon stop --")


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_completes(happy):
    """Runs the zsh function with the completion builtins replaced by printers."""
    happy.write_profile("mine", "")
    _session(happy, "abc123", "running")
    env = dict(happy.env)
    env["PATH"] = str(pathlib.Path(happy.bin).parent) + os.pathsep + env.get("PATH", "")
    prelude = f"""
compdef() {{ :; }}
_describe() {{ local n=${{@[-1]}}; print -l -- "${{(@P)n}}" | cut -d: -f1 }}
compadd() {{ [[ $1 == -- ]] && shift; print -l -- "$@" }}
_files() {{ print -- "_files $*" }}
compset() {{ :; }}
source {REPO / FILES['zsh']}
"""

    def comp(*words):
        script = prelude + "words=(" + " ".join(repr(w) for w in words) + "); CURRENT=$#words; _happy\n"
        r = subprocess.run(["zsh", "-f", "-c", script], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert comp("happy", "")[:3] == ["auth", "machine", "daemon"]
    assert "start-sync" in comp("happy", "daemon", "")
    assert comp("happy", "--profile", "") == ["default", "dev", "local", "mine"]
    assert comp("happy", "session", "stop", "") == ["abc123"]
    assert comp("happy", "auth", "login", "--method", "") == ["mobile", "web"]
    assert "--secret-stdin" in comp("happy", "auth", "login", "--s")
    assert comp("happy", "session", "new", "") == ["_files", "-/"]
