"""End-to-end (issue 9, SPEC §4.4 proxies): the real daemon and CLI reach the Happy Server
through the HTTP CONNECT proxy named by HTTP_PROXY / http_proxy, for REST and for the
Socket.IO link; NO_PROXY bypasses it; the local control API never goes through it; a
proxy that refuses is named with its status line."""
import json

import pytest

from conftest import EMULATOR_DIR, start_helper, stop_process
from daemon_fixtures import raw_http
from sync_fixtures import Account, SyncHappy, emu, wait_until  # noqa: F401

PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
              "ALL_PROXY", "all_proxy")


class Proxy:
    """Tests/emulator/connect_proxy.py on 127.0.0.1: counts tunnels and their targets."""

    def __init__(self, *args):
        self.proc, self.port = start_helper([str(EMULATOR_DIR / "connect_proxy.py"), *args])
        assert self.port is not None, "the proxy did not start"
        self.url = f"http://127.0.0.1:{self.port}"

    def count(self) -> dict:
        code, body = raw_http(self.port, b"GET /__count HTTP/1.1\r\nHost: x\r\n\r\n")
        assert code == 200
        return json.loads(body)


@pytest.fixture
def proxy():
    p = Proxy()
    yield p
    stop_process(p.proc)


def proxied_home(tmp_path, emu, proxy_url, var, **extra) -> SyncHappy:
    h = SyncHappy(tmp_path, emu, Account(emu, "legacy"))
    for k in PROXY_VARS:
        h.env.pop(k, None)
    h.env[var] = proxy_url
    h.env.update(extra)
    return h


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy"])
def test_daemon_and_cli_go_through_the_proxy(tmp_path, emu, proxy, var):
    h = proxied_home(tmp_path, emu, proxy.url, var)
    try:
        h.start()
        assert h.wait_running(15), h.status()
        target = f"127.0.0.1:{emu.port}"
        n = proxy.count()
        # Registration (REST) and the Socket.IO link: at least two tunnels, all to the server.
        assert n["tunnels"] >= 2 and set(n["targets"]) == {target}, n
        # The control API (CLI -> daemon, 127.0.0.1:httpPort) never goes through the proxy.
        port = h.state()["httpPort"]
        assert f"127.0.0.1:{port}" not in n["targets"] and f"localhost:{port}" not in n["targets"]
        # A REST command of the CLI tunnels too.
        before = n["tunnels"]
        r = h.run("machine", "list", "--json")
        assert r.returncode == 0, r.stderr
        assert h.machine_id() in [m["id"] for m in json.loads(r.stdout)["machines"]]
        assert proxy.count()["tunnels"] > before
    finally:
        h.cleanup()


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
def test_no_proxy_bypasses(tmp_path, emu, proxy, no_proxy):
    h = proxied_home(tmp_path, emu, proxy.url, "HTTP_PROXY", NO_PROXY=no_proxy)
    try:
        h.start()
        assert h.wait_running(15), h.status()
        assert h.run("machine", "list").returncode == 0
        assert proxy.count()["tunnels"] == 0
    finally:
        h.cleanup()


def test_refusing_proxy_is_named(tmp_path, emu):
    refusing = Proxy("--refuse")
    h = proxied_home(tmp_path, emu, refusing.url, "http_proxy")
    try:
        r = h.run("machine", "list")
        assert r.returncode == 1
        assert "403" in r.stderr, r.stderr
        # The daemon keeps running offline and keeps trying through the proxy.
        h.start()
        assert wait_until(lambda: len(refusing.count()["auth"]) >= 2, 10)
        assert h.status()["server"] in ("offline", "connecting")
        assert h.run("daemon", "status").returncode == 0
    finally:
        h.cleanup()
        stop_process(refusing.proc)
