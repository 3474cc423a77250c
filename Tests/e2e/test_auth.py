"""E2E: `happy auth login|status|logout` against the emulator."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid

import pytest

from test_auth_helpers import (  # noqa: F401
    HAPPY, Home, Phone, b64, closed_port, emu, emulator, finish, home, start_terminal_login, unb64,
)

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def backup_key(secret: bytes) -> str:
    b32 = base64.b32encode(secret).decode().rstrip("=")
    return "-".join(b32[i:i + 5] for i in range(0, len(b32), 5))


# ---------------------------------------------------------------- terminal login

@pytest.mark.parametrize("version", [1, 2])
def test_terminal_login_mobile(home, emu, version):
    phone = Phone(emu.url)
    phone.login()
    p, link, out = start_terminal_login(home)
    assert link.startswith("happy://terminal?")
    pub = Phone.public_key_from_link(link)
    assert len(pub) == 32
    # The web link is printed too, with the same key.
    assert "http://webapp.invalid/terminal/connect#key=" + link.split("?", 1)[1] in out
    st, body = phone.approve(pub, version)
    assert st == 200, body
    code, rest, err = finish(p)
    assert code == 0, err
    creds = home.credentials()
    assert mode(home.access_key) == 0o600
    assert creds["token"]
    if version == 1:
        assert set(creds) == {"secret", "token"}
        assert unb64(creds["secret"]) == phone.secret
    else:
        assert set(creds) == {"encryption", "token"}
        assert unb64(creds["encryption"]["publicKey"]) == phone.content_public
        mk = unb64(creds["encryption"]["machineKey"])
        assert len(mk) == 32 and mk != phone.secret
    # The minted token works for this account.
    st, _ = emu.call("GET", "/v1/machines", token=creds["token"])
    assert st == 200
    s = home.settings_json()
    import re
    assert re.match(UUID_RE, s["machineId"])
    assert mode(home.settings) == 0o600 and mode(home.path) == 0o700
    # The requests carried the auth client header and supportsV2.
    auth_reqs = [r for r in emu.requests() if r["path"] == "/v1/auth/request"]
    assert len(auth_reqs) >= 2 and all(r["client"].startswith("cli/") for r in auth_reqs)
    st, b = emu.call("GET", "/__test/auth_requests")
    assert any(r["publicKey"] == b64(pub) and r["supportsV2"] for r in b["requests"])


def test_terminal_login_polls_every_second(home, emu):
    phone = Phone(emu.url)
    p, link, _ = start_terminal_login(home)
    time.sleep(3.2)
    phone.approve(Phone.public_key_from_link(link), 1)
    code, _, err = finish(p)
    assert code == 0, err
    polls = [r for r in emu.requests() if r["path"] == "/v1/auth/request"]
    # ~1 poll per second: initial + 3 or 4 waits + the authorized one.
    assert 4 <= len(polls) <= 7, len(polls)


def test_terminal_login_qr_code_decodes(home, emu, tmp_path):
    zbar = shutil.which("zbarimg")
    assert zbar, "zbarimg (zbar-tools) is required"
    p, link, out = start_terminal_login(home)
    p.send_signal(signal.SIGINT)
    finish(p)
    lines = [l for l in out.splitlines() if l and set(l) <= set(" ▀▄█")]
    assert len(lines) > 10
    width = max(len(l) for l in lines)
    rows = []
    for l in lines:
        l = l.ljust(width)
        top = [c in "▀█" for c in l]
        bottom = [c in "▄█" for c in l]
        rows += [top, bottom]
    # Ink = light modules; dark = blank. Add a light margin and scale up.
    scale, margin = 4, 4
    n_w = (width + 2 * margin) * scale
    n_h = (len(rows) + 2 * margin) * scale
    pbm = [f"P1\n{n_w} {n_h}\n"]
    for py in range(n_h):
        y = py // scale - margin
        row = []
        for px in range(n_w):
            x = px // scale - margin
            dark = 0 <= y < len(rows) and 0 <= x < width and not rows[y][x]
            row.append("1" if dark else "0")
        pbm.append(" ".join(row) + "\n")
    img = tmp_path / "qr.pbm"
    img.write_text("".join(pbm))
    r = subprocess.run([zbar, "--raw", "-q", str(img)], capture_output=True, text=True)
    assert r.stdout.strip() == link


def test_terminal_login_web_method(home, emu):
    phone = Phone(emu.url)
    p, link, out = start_terminal_login(home, "--method", "web")
    assert "http://webapp.invalid/terminal/connect#key=" in out
    assert "▀" not in out and "▄" not in out  # no QR code in web mode
    phone.approve(Phone.public_key_from_link(link), 2)
    code, _, err = finish(p)
    assert code == 0, err
    assert "encryption" in home.credentials()


def test_ctrl_c_during_login_exits_130_and_writes_nothing(home, emu):
    p, link, _ = start_terminal_login(home)
    time.sleep(1.2)
    p.send_signal(signal.SIGINT)
    code, _, err = finish(p)
    assert code == 130
    assert not home.access_key.exists()
    assert not home.settings.exists()


def test_waiting_indicator_without_tty_is_one_line(home, emu):
    p, link, _ = start_terminal_login(home)
    time.sleep(2.5)
    Phone(emu.url).approve(Phone.public_key_from_link(link), 1)
    code, _, err = finish(p)
    assert code == 0
    assert err.count("Waiting for approval") == 1 and "\r" not in err


def test_login_server_down(home, tmp_path):
    down = Home(home.path, f"http://127.0.0.1:{closed_port()}")
    r = down.run("auth", "login")
    assert r.returncode == 1
    assert "127.0.0.1" in r.stderr and "error:" in r.stderr
    assert not down.access_key.exists()


def test_already_authenticated_without_force(home, emu):
    home.login_secret(os.urandom(32))
    before = home.access_key.read_text()
    mid = home.settings_json()["machineId"]
    r = home.run("auth", "login")
    assert r.returncode == 0
    assert "lready authenticated" in r.stdout
    assert home.access_key.read_text() == before
    assert home.settings_json()["machineId"] == mid


def test_force_replaces_credentials_and_machine_id(home, emu):
    home.login_secret(os.urandom(32))
    mid = home.settings_json()["machineId"]
    new_secret = os.urandom(32)
    r = home.run("auth", "login", "--secret-stdin", "--force", input=b64(new_secret))
    assert r.returncode == 0, r.stderr
    assert unb64(home.credentials()["secret"]) == new_secret
    assert home.settings_json()["machineId"] != mid


def test_every_login_writes_a_new_machine_id_and_keeps_other_settings(home, emu):
    # SPEC §3.1: a machine record keeps the key it was registered with, so each successful
    # login (either flow, with or without --force) registers under a new id.
    import re
    home.path.mkdir(parents=True)
    mid = str(uuid.uuid4())
    home.settings.write_text(json.dumps({"schemaVersion": 2, "machineId": mid, "chromeMode": True,
                                         "custom": {"keep": [1, 2]}}))
    home.login_secret(os.urandom(32))
    s1 = home.settings_json()
    assert re.match(UUID_RE, s1["machineId"]) and s1["machineId"] != mid
    assert s1["chromeMode"] is True and s1["custom"] == {"keep": [1, 2]}
    # Terminal flow, without --force (no credentials left from the first login).
    home.access_key.unlink()
    phone = Phone(emu.url)
    phone.login()
    p, link, _ = start_terminal_login(home)
    phone.approve(Phone.public_key_from_link(link), 2)
    code, out, err = finish(p)
    assert code == 0, err
    s2 = home.settings_json()
    assert re.match(UUID_RE, s2["machineId"]) and s2["machineId"] not in (mid, s1["machineId"])
    assert f"Machine id: {s2['machineId']}" in out
    assert s2["chromeMode"] is True and s2["custom"] == {"keep": [1, 2]}
    # --secret-stdin --force over existing credentials: a third id.
    r = home.run("auth", "login", "--secret-stdin", "--force", input=b64(os.urandom(32)))
    assert r.returncode == 0, r.stderr
    s3 = home.settings_json()
    assert s3["machineId"] not in (mid, s1["machineId"], s2["machineId"]) and s3["custom"] == {"keep": [1, 2]}


# ---------------------------------------------------------------- --secret-stdin

@pytest.mark.parametrize("form", ["base64", "base64url", "backup", "backup-lower-spaces"])
def test_secret_stdin_forms(home, emu, form):
    secret = os.urandom(32)
    if form == "base64":
        text = base64.b64encode(secret).decode()
    elif form == "base64url":
        text = base64.urlsafe_b64encode(secret).decode().rstrip("=")
    elif form == "backup":
        text = backup_key(secret)
    else:
        text = backup_key(secret).lower().replace("-", " ")
    r = home.run("auth", "login", "--secret-stdin", input=text + "\n")
    assert r.returncode == 0, r.stderr
    creds = home.credentials()
    assert unb64(creds["secret"]) == secret and set(creds) == {"secret", "token"}
    # The account is keyed by the Ed25519 public key of the secret: a phone with the
    # same secret logs into the same account and sees the same machines.
    phone = Phone(emu.url, secret)
    emu.seed_machine(phone.login(), id="m-" + form, metadata="AAAA")
    st, ms = emu.call("GET", "/v1/machines", token=creds["token"])
    assert [m["id"] for m in ms] == ["m-" + form]
    reqs = [r for r in emu.requests() if r["path"] == "/v1/auth"]
    assert reqs and reqs[0]["client"].startswith("cli/")


@pytest.mark.parametrize("text", ["", "AAAA", base64.b64encode(os.urandom(31)).decode(),
                                  base64.b64encode(os.urandom(33)).decode(), "ABCDE-FGHIJ-KLMNO", "not a secret at all!"])
def test_invalid_secret_exits_1_before_any_request(home, emu, text):
    r = home.run("auth", "login", "--secret-stdin", input=text)
    assert r.returncode == 1
    assert "error:" in r.stderr
    assert emu.requests() == []
    assert not home.access_key.exists()


def test_secret_login_signature_rejected(home, emu):
    emu.fault("/v1/auth", "POST", status=401, body='{"error":"Invalid signature"}')
    r = home.run("auth", "login", "--secret-stdin", input=b64(os.urandom(32)))
    assert r.returncode == 1 and "signature" in r.stderr
    assert not home.access_key.exists()


# ---------------------------------------------------------------- status

def test_status_not_authenticated(home, emu):
    r, j = home.run_json("auth", "status")
    assert r.returncode == 1
    assert j == {"authenticated": False, "encryption": None, "serverUrl": emu.url, "machineId": None,
                 "tokenAccepted": None}


def test_status_legacy_accepted(home, emu):
    home.login_secret(os.urandom(32))
    r, j = home.run_json("auth", "status")
    assert r.returncode == 0, r.stderr
    assert j == {"authenticated": True, "encryption": "legacy", "serverUrl": emu.url,
                 "machineId": home.settings_json()["machineId"], "tokenAccepted": True}
    assert r.stdout.count("\n") <= 1 or json.loads(r.stdout)  # one JSON document
    # The token check is GET /v1/machines with the token.
    assert any(q["path"] == "/v1/machines" and q["authorization"] == "Bearer " for q in emu.requests())


def test_status_datakey_offline(home, emu):
    home.write_credentials({"encryption": {"publicKey": b64(os.urandom(32)), "machineKey": b64(os.urandom(32))},
                            "token": "whatever"})
    r, j = home.run_json("auth", "status", "--offline")
    assert r.returncode == 0
    assert j["encryption"] == "dataKey" and j["tokenAccepted"] is None and j["authenticated"] is True
    assert emu.requests() == []


def test_status_token_rejected(home, emu):
    home.login_secret(os.urandom(32))
    emu.call("POST", "/__test/revoke", {"token": home.credentials()["token"]})
    r, j = home.run_json("auth", "status")
    assert r.returncode == 1
    assert j["tokenAccepted"] is False and j["authenticated"] is True


def test_status_forbidden_is_rejected(home, emu):
    home.login_secret(os.urandom(32))
    emu.fault("/v1/machines", "GET", status=403, body='{"error":"Forbidden"}')
    r, j = home.run_json("auth", "status")
    assert r.returncode == 1 and j["tokenAccepted"] is False


@pytest.mark.parametrize("fault", [dict(status=500), dict(garbage=True, status=200), dict(status=404)])
def test_status_other_answers_are_unchecked(home, emu, fault):
    home.login_secret(os.urandom(32))
    emu.fault("/v1/machines", "GET", **fault)
    r, j = home.run_json("auth", "status")
    if fault.get("garbage"):
        # 200 with a garbage body still means the token was accepted.
        assert j["tokenAccepted"] is True
    else:
        assert j["tokenAccepted"] is None
    assert r.returncode == 0


def test_status_server_down(home, emu):
    home.login_secret(os.urandom(32))
    down = Home(home.path, f"http://127.0.0.1:{closed_port()}")
    r, j = down.run_json("auth", "status")
    assert r.returncode == 0
    assert j["tokenAccepted"] is None and j["serverUrl"] == down.server_url


def test_status_human(home, emu):
    home.login_secret(os.urandom(32))
    r = home.run("auth", "status")
    assert r.returncode == 0
    assert "legacy" in r.stdout and emu.url in r.stdout and "accepted" in r.stdout


def test_invalid_access_key_is_not_authenticated(home, emu):
    home.write_credentials({"secret": "short", "token": "t"})
    r, j = home.run_json("auth", "status")
    assert r.returncode == 1 and j["authenticated"] is False


# ---------------------------------------------------------------- logout

def test_logout_yes(home, emu):
    home.login_secret(os.urandom(32))
    s = home.settings_json()
    s["custom"] = {"keep": True}
    home.settings.write_text(json.dumps(s))
    (home.path / "logs").mkdir(exist_ok=True)
    (home.path / "logs" / "x.log").write_text("keep")
    r = home.run("auth", "logout", "--yes")
    assert r.returncode == 0, r.stderr
    assert not home.access_key.exists()
    s2 = home.settings_json()
    assert "machineId" not in s2 and s2["custom"] == {"keep": True} and s2["schemaVersion"] == 2
    assert (home.path / "logs" / "x.log").read_text() == "keep"
    r, j = home.run_json("auth", "status", "--offline")
    assert j["authenticated"] is False and j["machineId"] is None


def test_logout_without_yes_and_no_tty_refuses(home, emu):
    home.login_secret(os.urandom(32))
    r = home.run("auth", "logout")
    assert r.returncode == 1 and "--yes" in r.stderr
    assert home.access_key.exists()


def test_logout_stops_the_daemon(home, emu):
    home.login_secret(os.urandom(32))
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "daemon", "start-sync"])
    try:
        (home.path / "daemon.state.json").write_text(json.dumps({"pid": fake.pid, "httpPort": closed_port(), "controlToken": "x" * 64}))
        r = home.run("auth", "logout", "--yes")
        assert r.returncode == 0, r.stderr
        assert fake.wait(10) is not None
        assert str(fake.pid) in r.stdout
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()


def test_logout_leaves_unrelated_process_alone(home, emu):
    home.login_secret(os.urandom(32))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (home.path / "daemon.state.json").write_text(json.dumps({"pid": other.pid, "httpPort": closed_port(), "controlToken": "x" * 64}))
        r = home.run("auth", "logout", "--yes")
        assert r.returncode == 0
        time.sleep(0.2)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_waiting_indicator_on_a_terminal(home, emu):
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([HAPPY, "auth", "login"], env=home.env(),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    link = None
    while True:
        line = p.stdout.readline()
        assert line, "no link"
        if line.startswith("Mobile link: "):
            link = line.split(": ", 1)[1].strip()
            break
    time.sleep(2.5)
    Phone(emu.url).approve(Phone.public_key_from_link(link), 1)
    p.wait(20)
    data = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    text = data.decode("utf-8", "replace")
    assert p.returncode == 0
    assert text.count("Waiting for approval") >= 2 and "\r" in text


def test_ctrl_c_while_reading_secret_exits_130(home, emu):
    p = subprocess.Popen([HAPPY, "auth", "login", "--secret-stdin"], env=home.env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until the login's interrupt guard is installed (SIGINT ignored or caught),
    # not a fixed delay: bounded to 10 s.
    deadline = time.time() + 10
    while time.time() < deadline and not sigint_ignored(p.pid):
        time.sleep(0.02)
    time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    # Keep stdin open until the process is gone: closing it first would race an EOF
    # ("nothing was read", exit 1) against the Ctrl-C.
    p.wait(timeout=10)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 130, err
    assert not home.access_key.exists() and emu.requests() == []


def sigint_ignored(pid: int) -> bool:
    """True once SIGINT is ignored or caught (libdispatch catches it for a signal source)."""
    bit = 1 << (signal.SIGINT - 1)
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(("SigIgn:", "SigCgt:")) and int(line.split()[1], 16) & bit:
                return True
    except OSError:
        pass
    return False


def test_login_moves_an_unreadable_access_key_aside(home, emu):
    home.write_credentials({"nonsense": True})
    secret = os.urandom(32)
    r = home.run("auth", "login", "--secret-stdin", input=b64(secret))
    assert r.returncode == 0, r.stderr
    assert unb64(home.credentials()["secret"]) == secret
    moved = [f for f in os.listdir(home.path) if f.startswith("access.key.corrupt-")]
    assert len(moved) == 1 and "moved" in r.stderr
