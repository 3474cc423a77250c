"""Where the real Claude Code CLI is, and the environment that runs it offline.

The binary comes from the PyPI wheel `claude-agent-sdk`, which bundles it at
`claude_agent_sdk/_bundled/claude` (see requirements.txt here for the pinned version;
`pip install --no-deps -r Tests/real_claude/requirements.txt` is enough: only the
binary is used, never the Python package, which is not imported).
`HAPPY_REAL_CLAUDE=/path/to/claude` overrides the lookup; `HAPPY_REAL_CLAUDE=0` turns the
real-claude tests off.

    from locate import claude_path, claude_env, skip_reason
    path = claude_path()            # None → skip the test with skip_reason()
    env = claude_env("http://127.0.0.1:%d" % port, home)
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess

FAKE_API_KEY = "sk-ant-api03-fake-offline-test-key-000000000000000000000000000000000000AA"


def claude_path() -> str | None:
    """The real claude binary, or None when it is not installed."""
    override = os.environ.get("HAPPY_REAL_CLAUDE")
    if override is not None:
        if override in ("", "0", "off", "no"):
            return None
        return override if os.access(override, os.X_OK) else None
    try:
        spec = importlib.util.find_spec("claude_agent_sdk")  # does not import the package
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        p = pathlib.Path(folder) / "_bundled" / "claude"
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def skip_reason() -> str:
    if os.environ.get("HAPPY_REAL_CLAUDE") in ("", "0", "off", "no"):
        return "real claude turned off (HAPPY_REAL_CLAUDE=0)"
    return ("real claude not installed: pip install --no-deps -r Tests/real_claude/requirements.txt "
            "(the claude-agent-sdk wheel bundles the binary), or set HAPPY_REAL_CLAUDE=/path/to/claude")


def claude_version(path: str, timeout: float = 30.0) -> str:
    r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=timeout,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
                            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"})
    return r.stdout.strip()


def claude_env(api_url: str, home: str | os.PathLike, extra: dict | None = None) -> dict:
    """An environment in which claude talks only to `api_url` (the fake Anthropic API),
    keeps its state under `home`, never prompts, never updates itself and sends no
    telemetry. Nothing of the caller's environment is inherited but PATH, LANG and TERM."""
    home = pathlib.Path(home)
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "SHELL": "/bin/bash",
        "ANTHROPIC_BASE_URL": api_url,
        "ANTHROPIC_API_KEY": FAKE_API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
        # Fail fast on a scripted API error instead of retrying with back-off.
        "CLAUDE_CODE_MAX_RETRIES": "0",
        # No proxy: the fake API is on loopback.
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if os.environ.get("TERM"):
        env["TERM"] = os.environ["TERM"]
    if extra:
        env.update(extra)
    return env
