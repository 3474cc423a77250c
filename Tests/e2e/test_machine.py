"""E2E: `happy machine show|list` for both encryption variants and every error path."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

from test_auth_helpers import (  # noqa: F401  (also puts Tests/emulator on sys.path)
    HAPPY, Home, Phone, b64, closed_port, emu, emulator, encrypt_value, finish, home, start_terminal_login, unb64,
    wrap_data_key,
)
from happy_emulator.phone import content_keypair, unwrap_data_key  # noqa: E402

META = {"host": "box-1", "platform": "linux", "happyCliVersion": "0.1.0", "homeDir": "/home/u",
        "happyHomeDir": "/home/u/.happy", "profile": "default"}
NOW = int(time.time() * 1000)
STATE = {"status": "running", "pid": 4242, "httpPort": 64875, "startedAt": NOW - 180_000}
SHOW_KEYS = {"id", "metadata", "metadataVersion", "daemonState", "daemonStateVersion", "active", "activeAt",
             "createdAt", "updatedAt", "encryption"}


def legacy_home(home: Home) -> tuple[bytes, str]:
    secret = os.urandom(32)
    home.login_secret(secret)
    return secret, home.credentials()["token"]


def datakey_home(home: Home, emu) -> tuple[bytes, bytes, str]:
    """dataKey credentials written directly (token from the emulator)."""
    _, token = emu.account()
    pk, mk = os.urandom(32), os.urandom(32)
    home.write_credentials({"encryption": {"publicKey": b64(pk), "machineKey": b64(mk)}, "token": token})
    home.settings.write_text(json.dumps({"schemaVersion": 2, "machineId": str(uuid.uuid4())}))
    return pk, mk, token


def this_id(home: Home) -> str:
    return home.settings_json()["machineId"]


def test_show_legacy_this_machine(home, emu):
    NOW = int(time.time() * 1000)  # per test: relative times ("1 min ago") are checked
    state = dict(STATE, startedAt=NOW - 180_000)
    secret, token = legacy_home(home)
    mid = this_id(home)
    emu.seed_machine(token, id=mid, metadata=encrypt_value(META, secret, "legacy"), metadataVersion=3,
                     daemonState=encrypt_value(state, secret, "legacy"), daemonStateVersion=5, active=True,
                     activeAt=NOW - 60_000, createdAt=NOW - 86_400_000, updatedAt=NOW - 1000)
    r, j = home.run_json("machine", "show")
    assert r.returncode == 0, r.stderr
    assert set(j) == SHOW_KEYS
    assert j["id"] == mid and j["metadata"] == META and j["daemonState"] == state
    assert j["metadataVersion"] == 3 and j["daemonStateVersion"] == 5
    assert j["active"] is True and j["activeAt"] == NOW - 60_000 and j["createdAt"] == NOW - 86_400_000
    assert j["updatedAt"] == NOW - 1000 and j["encryption"] == "legacy"
    assert r.stderr == ""
    reqs = [q for q in emu.requests() if q["path"] == f"/v1/machines/{mid}"]
    assert reqs and reqs[0]["client"].startswith("cli-coding-session/")
    # Human form.
    h = home.run("machine", "show")
    assert h.returncode == 0
    for s in ("box-1", "linux", "0.1.0", "/home/u/.happy", "running", "4242", "64875", "3 min ago", "1 min ago",
              "this machine", "legacy"):
        assert s in h.stdout, (s, h.stdout)


def test_show_datakey(home, emu):
    _, mk, token = datakey_home(home, emu)
    mid = this_id(home)
    emu.seed_machine(token, id=mid, metadata=encrypt_value(META, mk, "dataKey"),
                     daemonState=encrypt_value(STATE, mk, "dataKey"),
                     dataEncryptionKey=b64(wrap_data_key(mk, os.urandom(32))))
    r, j = home.run_json("machine", "show", mid)
    assert r.returncode == 0, r.stderr
    assert j["metadata"] == META and j["daemonState"] == STATE and j["encryption"] == "dataKey"


def test_show_after_real_v2_login(home, emu):
    phone = Phone(emu.url)
    p, link, _ = start_terminal_login(home)
    phone.approve(Phone.public_key_from_link(link), 2)
    code, _, err = finish(p)
    assert code == 0, err
    creds = home.credentials()
    mk = unb64(creds["encryption"]["machineKey"])
    mid = this_id(home)
    # As the daemon would register it: values under machineKey, the key wrapped for the account.
    dek = wrap_data_key(mk, unb64(creds["encryption"]["publicKey"]))
    emu.seed_machine(creds["token"], id=mid, metadata=encrypt_value(META, mk, "dataKey"), dataEncryptionKey=b64(dek))
    r, j = home.run_json("machine", "show")
    assert r.returncode == 0, r.stderr
    assert j["metadata"] == META and j["daemonState"] is None and j["encryption"] == "dataKey"
    # The phone (holding the account secret) can unwrap the machine key.
    assert unwrap_data_key(dek, content_keypair(phone.secret)) == mk


def test_legacy_credentials_read_datakey_record_through_dataencryptionkey(home, emu):
    """Legacy credentials hold the account secret, so a record written by a dataKey
    client of the same account (dataEncryptionKey wrapped to the content key) opens."""
    secret, token = legacy_home(home)
    key = os.urandom(32)
    content_pub = bytes(content_keypair(secret).public_key)
    emu.seed_machine(token, id="other", metadata=encrypt_value(META, key, "dataKey"),
                     dataEncryptionKey=b64(wrap_data_key(key, content_pub)))
    r, j = home.run_json("machine", "show", "other")
    assert r.returncode == 0, r.stderr
    assert j["metadata"] == META and j["encryption"] == "dataKey"


def test_list_marks_this_machine(home, emu):
    NOW = int(time.time() * 1000)  # per test: relative times ("1 min ago") are checked
    secret, token = legacy_home(home)
    mid = this_id(home)
    emu.seed_machine(token, id=mid, metadata=encrypt_value(META, secret, "legacy"), activeAt=NOW - 5_000)
    other = dict(META, host="box-2")
    emu.seed_machine(token, id="m-other", metadata=encrypt_value(other, secret, "legacy"),
                     daemonState=encrypt_value({"status": "offline"}, secret, "legacy"), activeAt=NOW - 7_200_000)
    r, j = home.run_json("machine", "list")
    assert r.returncode == 0, r.stderr
    assert set(j) == {"machines"}
    ms = {m["id"]: m for m in j["machines"]}
    assert set(ms) == {mid, "m-other"}
    assert all(set(m) == SHOW_KEYS | {"thisMachine"} for m in ms.values())
    assert ms[mid]["thisMachine"] is True and ms["m-other"]["thisMachine"] is False
    assert ms["m-other"]["metadata"]["host"] == "box-2" and ms["m-other"]["daemonState"] == {"status": "offline"}
    h = home.run("machine", "list")
    assert h.returncode == 0
    lines = h.stdout.splitlines()
    mine = [l for l in lines if mid in l]
    assert mine and mine[0].lstrip().startswith("*")
    assert any("box-2" in l and "2 h ago" in l and "offline" in l for l in lines)


def run_on_pty(home: Home, *args) -> tuple[int, bytes]:
    """Runs happy with stdout on a pseudo-terminal; returns (exit code, what the terminal got)."""
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen([HAPPY, *args], env=home.env(), stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    return p.wait(timeout=10), out


def test_server_strings_cannot_drive_the_terminal(home, emu):
    # Metadata is whatever the server (or another client of the account) wrote: on a
    # terminal its control characters and escape sequences are dropped.
    secret, token = legacy_home(home)
    mid = this_id(home)
    evil = dict(META, host="box\x1b]0;evil\x07\x1b[2J-1", platform="linux\x9b31m\r")
    emu.seed_machine(token, id=mid, metadata=encrypt_value(evil, secret, "legacy"))
    for args in (["machine", "show"], ["machine", "list"]):
        code, out = run_on_pty(home, *args)
        assert code == 0
        text = out.decode()
        assert "box-1" in text and "linux" in text, text
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "evil" not in text
    # Through a pipe the bytes stay as they are; --json escapes them.
    assert "box\x1b]0;evil\x07" in home.run("machine", "show").stdout
    r, j = home.run_json("machine", "show")
    assert j["metadata"]["host"] == evil["host"] and "\\u001b" in r.stdout


def test_list_empty(home, emu):
    legacy_home(home)
    r, j = home.run_json("machine", "list")
    assert r.returncode == 0 and j == {"machines": []}


@pytest.mark.parametrize("variant", ["legacy", "dataKey"])
def test_undecryptable_values_are_null_with_warning(home, emu, variant):
    if variant == "legacy":
        _, token = legacy_home(home)
    else:
        _, _, token = datakey_home(home, emu)
    wrong = os.urandom(32)
    mid = this_id(home)
    emu.seed_machine(token, id=mid, metadata=encrypt_value(META, wrong, variant),
                     daemonState=encrypt_value(STATE, wrong, variant))
    emu.seed_machine(token, id="garbage", metadata="!!!notbase64", daemonState=b64(b"\x00short"))
    r, j = home.run_json("machine", "show")
    assert r.returncode == 0
    assert j["metadata"] is None and j["daemonState"] is None and j["encryption"] == variant
    assert "warning" in r.stderr and "metadata" in r.stderr and "daemonState" in r.stderr
    r, j = home.run_json("machine", "list")
    assert r.returncode == 0 and len(j["machines"]) == 2
    assert all(m["metadata"] is None for m in j["machines"])
    h = home.run("machine", "show", "garbage")
    assert h.returncode == 0 and "warning" in h.stderr


def test_not_logged_in(home, emu):
    for args in (["machine", "show", "x"], ["machine", "list"]):
        r = home.run(*args)
        assert r.returncode == 1
        assert "happy auth login" in r.stderr and r.stderr.startswith("error:")
    assert emu.requests() == []


def test_token_rejected(home, emu):
    _, token = legacy_home(home)
    emu.call("POST", "/__test/revoke", {"token": token})
    for args in (["machine", "show"], ["machine", "list"]):
        r = home.run(*args)
        assert r.returncode == 1
        assert "happy auth login" in r.stderr


def test_not_found(home, emu):
    legacy_home(home)
    r = home.run("machine", "show", "no-such-machine")
    assert r.returncode == 1
    assert "no-such-machine" in r.stderr and f"not found on {emu.url}" in r.stderr


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error(home, emu, status):
    legacy_home(home)
    emu.fault("/v1/machines*", "GET", count=2, status=status)
    r = home.run("machine", "list")
    assert r.returncode == 1 and str(status) in r.stderr and "server error" in r.stderr
    r = home.run("machine", "show", "x")
    assert r.returncode == 1 and str(status) in r.stderr


def test_garbage_json(home, emu):
    legacy_home(home)
    emu.fault("/v1/machines*", "GET", count=2, garbage=True)
    for args in (["machine", "list"], ["machine", "show", "x"]):
        r = home.run(*args)
        assert r.returncode == 1
        assert f"unexpected response from {emu.url}" in r.stderr


def test_wrong_shape_json(home, emu):
    legacy_home(home)
    emu.fault("/v1/machines", "GET", status=200, body='{"machines": []}')
    r = home.run("machine", "list")
    assert r.returncode == 1 and "unexpected response" in r.stderr


def test_server_down_names_url(home, emu):
    legacy_home(home)
    down = Home(home.path, f"http://127.0.0.1:{closed_port()}")
    for args in (["machine", "list"], ["machine", "show"]):
        r = down.run(*args)
        assert r.returncode == 1
        assert down.server_url in r.stderr


def test_show_without_machine_id(home, emu):
    _, token = legacy_home(home)
    s = home.settings_json()
    del s["machineId"]
    home.settings.write_text(json.dumps(s))
    r = home.run("machine", "show")
    assert r.returncode == 1 and "machine id" in r.stderr
