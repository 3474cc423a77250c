"""Tests of the Happy Server emulator's session side itself (no `happy` binary needed):
REST /v1 and /v3 session routes, session socket events, the legacy-server switch,
persistence across a restart, old-style token rejection, the app's machine rename,
the session phone and the app message-schema port (Tests/emulator/README.md)."""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from conftest import EMULATOR_DIR, start_helper, stop_process

sys.path.insert(0, str(EMULATOR_DIR))

from happy_emulator import app_schema  # noqa: E402
from happy_emulator.phone import (b64, decrypt_value, encrypt_value, http, unwrap_data_key,  # noqa: E402
                                  wrap_data_key)
from happy_emulator.phone_client import PhoneClient  # noqa: E402
from happy_emulator.session_phone import SessionPhone  # noqa: E402
from happy_emulator.sock_client import SockClient  # noqa: E402

SESSION_KEYS = ["id", "seq", "metadata", "metadataVersion", "agentState", "agentStateVersion",
                "dataEncryptionKey", "active", "activeAt", "createdAt", "updatedAt", "lastMessage"]


# ---------------------------------------------------------------- fixtures

class Emu:
    """The emulator with a state file; restartable on the same port, with extra flags."""

    def __init__(self, tmp, *flags):
        self.state_file = str(tmp / "emu-state.json")
        self.flags = list(flags)
        self.port = 0
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, *flags):
        if flags:
            self.flags = list(flags)
        env = dict(os.environ, HAPPY_EMULATOR_STATE_FILE=self.state_file)
        for _ in range(50):
            self.proc, port = start_helper(["-m", "happy_emulator", *self.flags], self.port, env)
            if port is not None:
                self.port = port
                return
            self.proc.wait(5)
            time.sleep(0.05)
        raise RuntimeError("emulator did not start")

    def stop(self, kill=False):
        if kill and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        stop_process(self.proc)

    def call(self, method, path, body=None, token=None):
        return http(method, self.url + path, body, token=token)

    def log(self, **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        return self.call("GET", "/__test/sessions/log" + (f"?{qs}" if qs else ""))[1]["events"]

    def config(self, **kw):
        st, b = self.call("POST", "/__test/sessions/config", kw)
        assert st == 200, b
        return b


class Acct:
    """An account of the emulator with a master secret (the app's view of it)."""

    def __init__(self, emu: Emu):
        st, b = emu.call("POST", "/__test/account", {})
        assert st == 200, b
        self.emu = emu
        self.token = b["token"]
        self.id = b["accountId"]
        self.secret = os.urandom(32)
        self._phones = []
        self._socks = []

    @property
    def content_public(self) -> bytes:
        from happy_emulator.phone import content_keypair
        return bytes(content_keypair(self.secret).public_key)

    def phone(self, **kw) -> SessionPhone:
        p = SessionPhone(self.emu.url, self.token, secret=self.secret, **kw)
        self._phones.append(p)
        return p

    def sock(self, **auth) -> SockClient:
        a = {"token": self.token, "clientType": "user-scoped"}
        a.update(auth)
        c = SockClient(self.emu.url, a)
        self._socks.append(c)
        return c

    def session_sock(self, sid) -> SockClient:
        return self.sock(clientType="session-scoped", sessionId=sid, happyClient="cli-coding-session/1.0.0")

    def create(self, tag=None, meta=None, variant="dataKey", expect=200):
        """POST /v1/sessions like the daemon; returns (status, body, key)."""
        tag = tag or str(uuid.uuid4())
        meta = meta if meta is not None else {"path": "/tmp/proj", "host": "box"}
        if variant == "dataKey":
            key = os.urandom(32)
            dek = b64(wrap_data_key(key, self.content_public))
        else:
            key, dek = self.secret, None
        body = {"tag": tag, "metadata": encrypt_value(meta, key, variant), "agentState": None,
                "dataEncryptionKey": dek}
        st, b = self.emu.call("POST", "/v1/sessions", body, token=self.token)
        assert st == expect, (st, b)
        return st, b, key

    def new_session(self, variant="dataKey", **kw) -> tuple[str, bytes]:
        _, b, key = self.create(variant=variant, **kw)
        return b["session"]["id"], key

    def close(self):
        for p in self._phones:
            p.close()
        for c in self._socks:
            c.close()


@pytest.fixture
def emu(tmp_path):
    e = Emu(tmp_path)
    yield e
    e.stop()


@pytest.fixture
def acct(emu):
    a = Acct(emu)
    yield a
    a.close()


def enc(key, value, variant="dataKey"):
    return encrypt_value(value, key, variant)


def post_v3(emu, acct, sid, msgs):
    return emu.call("POST", f"/v3/sessions/{sid}/messages",
                    {"messages": [{"content": c, "localId": l} for c, l in msgs]}, token=acct.token)


def until(pred, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# ---------------------------------------------------------------- create, list, delete

def test_create_is_idempotent_by_tag_and_listed_newest_first(emu, acct):
    phone = acct.phone()
    other_app = acct.sock()
    _, b1, key = acct.create(tag="tag-1", meta={"path": "/a", "host": "h"})
    s1 = b1["session"]
    assert list(s1) == SESSION_KEYS
    assert (s1["seq"], s1["metadataVersion"], s1["agentState"], s1["agentStateVersion"], s1["active"],
            s1["lastMessage"]) == (0, 0, None, 0, True, None)
    assert s1["createdAt"] == s1["updatedAt"] == s1["activeAt"]
    # Same tag, other content: the stored session comes back unchanged.
    _, again, _ = acct.create(tag="tag-1", meta={"path": "/other", "host": "x"})
    assert again["session"] == s1
    time.sleep(0.01)
    _, b2, _ = acct.create(tag="tag-2", variant="legacy")
    assert b2["session"]["dataEncryptionKey"] is None
    views = phone.list_sessions()
    assert [v["id"] for v in views] == [b2["session"]["id"], s1["id"]]
    assert views[1]["metadata"] == {"path": "/a", "host": "h"} and views[1]["variant"] == "dataKey"
    assert views[0]["variant"] == "legacy" and views[0]["metadata"] == {"path": "/tmp/proj", "host": "box"}
    assert views[0]["metadataErrors"] == [] and views[0]["agentStateErrors"] == []
    assert unwrap_data_key(base64.b64decode(s1["dataEncryptionKey"]), phone.content) == key
    # new-session went to user-scoped sockets once per created session (not for the repeat).
    news = lambda: other_app.received("update", lambda u: u["body"]["t"] == "new-session")  # noqa: E731
    assert until(lambda: len(news()) == 2)
    body = news()[0]["body"]
    assert body["id"] == s1["id"] and body["metadata"] == s1["metadata"] and "lastMessage" not in body
    assert body["dataEncryptionKey"] == s1["dataEncryptionKey"]
    # ... and not to a session-scoped socket of the account.
    ss = acct.session_sock(s1["id"])
    acct.create(tag="tag-3")
    time.sleep(0.2)
    assert not ss.received("update", lambda u: u["body"]["t"] == "new-session")
    # Another account sees none of them; a bad token is 401.
    other = Acct(emu)
    assert emu.call("GET", "/v1/sessions", token=other.token)[1] == {"sessions": []}
    assert emu.call("GET", "/v1/sessions", token="nope")[0] == 401


def test_create_validation_is_stricter_than_production(emu, acct):
    meta = enc(os.urandom(32), {"path": "/p", "host": "h"})
    good_dek = b64(wrap_data_key(os.urandom(32), acct.content_public))
    bad = [
        {"tag": "", "metadata": meta},
        {"tag": 5, "metadata": meta},
        {"metadata": meta},
        {"tag": "t", "metadata": "not base64!"},
        {"tag": "t", "metadata": meta, "dataEncryptionKey": b64(b"\x01" + base64.b64decode(good_dek)[1:])},
        {"tag": "t", "metadata": meta, "dataEncryptionKey": good_dek[:40]},
        {"tag": "t", "metadata": meta, "dataEncryptionKey": "%%%"},
        {"tag": "t", "metadata": meta, "agentState": 7},
    ]
    for body in bad:
        st, b = emu.call("POST", "/v1/sessions", body, token=acct.token)
        assert st == 400, (body, st, b)
        assert b["statusCode"] == 400
    assert [e["event"] for e in emu.log()] == ["create-rejected"] * len(bad)
    # agentState is accepted but not stored.
    st, b = emu.call("POST", "/v1/sessions", {"tag": "t", "metadata": meta, "agentState": enc(os.urandom(32), {}),
                                              "dataEncryptionKey": good_dek}, token=acct.token)
    assert st == 200 and b["session"]["agentState"] is None and b["session"]["agentStateVersion"] == 0
    assert emu.call("POST", "/v1/sessions", {"tag": "u", "metadata": meta}, token="bad")[0] == 401


def test_delete_session(emu, acct):
    phone = acct.phone()
    sid, key = acct.new_session()
    post_v3(emu, acct, sid, [(enc(key, {"role": "user"}), "l1")])
    assert emu.call("DELETE", f"/v1/sessions/{sid}", token=acct.token) == (200, {"success": True})
    assert phone.wait_update(lambda u: u["body"] == {"t": "delete-session", "sid": sid})
    assert emu.call("GET", "/v1/sessions", token=acct.token)[1] == {"sessions": []}
    assert emu.call("DELETE", f"/v1/sessions/{sid}", token=acct.token)[0] == 404
    assert emu.call("GET", f"/v3/sessions/{sid}/messages", token=acct.token) == (404, {"error": "Session not found"})


# ---------------------------------------------------------------- messages

def test_v3_post_dedupes_by_local_id_and_numbers_per_session(emu, acct):
    sid, key = acct.new_session()
    sid2, key2 = acct.new_session()
    c = [enc(key, {"n": i}) for i in range(4)]
    st, b = post_v3(emu, acct, sid, [(c[0], "a"), (c[1], "b"), (c[2], "a")])  # "a" twice: the first wins
    assert st == 200
    assert [(m["seq"], m["localId"]) for m in b["messages"]] == [(1, "a"), (2, "b")]
    assert all(set(m) == {"id", "seq", "localId", "createdAt", "updatedAt"} for m in b["messages"])
    ids = {m["localId"]: m["id"] for m in b["messages"]}
    # A resend of "b" with "c": existing + new, sorted by seq; the stored content of "b" is unchanged.
    st, b = post_v3(emu, acct, sid, [(c[3], "c"), (c[3], "b")])
    assert [(m["seq"], m["localId"]) for m in b["messages"]] == [(2, "b"), (3, "c")]
    assert b["messages"][0]["id"] == ids["b"]
    st, got = emu.call("GET", f"/v3/sessions/{sid}/messages", token=acct.token)
    assert [decrypt_value(m["content"]["c"], key, "dataKey") for m in got["messages"]] == [{"n": 0}, {"n": 1}, {"n": 3}]
    assert got["messages"][0]["content"]["t"] == "encrypted" and got["hasMore"] is False
    # Seq is per session.
    assert post_v3(emu, acct, sid2, [(enc(key2, 1), "a")])[1]["messages"][0]["seq"] == 1
    assert emu.call("GET", "/v1/sessions", token=acct.token)[1]["sessions"][-1]["seq"] == 3
    # Validation and ownership.
    for body in ({"messages": []}, {"messages": [{"content": c[0], "localId": ""}]},
                 {"messages": [{"content": c[0]}]}, {"messages": [{"content": 1, "localId": "x"}]},
                 {"messages": [{"content": "@@", "localId": "x"}]},
                 {"messages": [{"content": c[0], "localId": str(i)} for i in range(101)]}, {}):
        st, b = emu.call("POST", f"/v3/sessions/{sid}/messages", body, token=acct.token)
        assert st == 400, body
    assert post_v3(emu, acct, "nope", [(c[0], "x")]) == (404, {"error": "Session not found"})
    other = Acct(emu)
    assert post_v3(emu, other, sid, [(c[0], "x")]) == (404, {"error": "Session not found"})
    assert emu.call("GET", f"/v3/sessions/{sid}/messages", token=other.token)[0] == 404


def test_v3_get_paging(emu, acct):
    sid, key = acct.new_session()
    post_v3(emu, acct, sid, [(enc(key, i), f"l{i}") for i in range(1, 8)])
    g = lambda q: emu.call("GET", f"/v3/sessions/{sid}/messages?{q}", token=acct.token)  # noqa: E731
    st, b = g("after_seq=2&limit=3")
    assert [m["seq"] for m in b["messages"]] == [3, 4, 5] and b["hasMore"] is True
    st, b = g("after_seq=5&limit=3")
    assert [m["seq"] for m in b["messages"]] == [6, 7] and b["hasMore"] is False
    st, b = g("before_seq=4&limit=2")
    assert [m["seq"] for m in b["messages"]] == [3, 2] and b["hasMore"] is True
    assert [m["seq"] for m in g("")[1]["messages"]] == list(range(1, 8))
    for q in ("limit=0", "limit=501", "after_seq=-1", "before_seq=0", "after_seq=1&before_seq=3", "limit=x",
              "after_seq=1.5"):
        assert g(q)[0] == 400, q
    assert g("limit=500")[0] == 200
    # The phone pages through everything.
    phone = acct.phone()
    raw, legacy = phone.fetch_raw(sid, 0, limit=2)
    assert [m["seq"] for m in raw] == list(range(1, 8)) and legacy is False


def test_v1_messages_last_150_newest_first(emu, acct):
    sid, key = acct.new_session()
    for start in range(0, 160, 80):
        post_v3(emu, acct, sid, [(enc(key, i), f"l{i}") for i in range(start, start + 80)][:100])
    st, b = emu.call("GET", f"/v1/sessions/{sid}/messages", token=acct.token)
    assert st == 200 and len(b["messages"]) == 150
    seqs = [m["seq"] for m in b["messages"]]
    assert seqs == sorted(seqs, reverse=True) and seqs[0] == 160 and seqs[-1] == 11
    assert set(b["messages"][0]) == {"id", "seq", "content", "localId", "createdAt", "updatedAt"}
    assert emu.call("GET", "/v1/sessions/nope/messages", token=acct.token) == (404, {"error": "Session not found"})


def test_new_message_fan_out(emu, acct):
    sid, key = acct.new_session()
    sid_other, _ = acct.new_session()
    a, b = acct.session_sock(sid), acct.session_sock(sid)
    stranger = acct.session_sock(sid_other)
    machine = acct.sock(clientType="machine-scoped", machineId="m1")
    phone = acct.phone()
    is_msg = lambda u: u["body"]["t"] == "new-message"  # noqa: E731
    # /v3: everyone interested, the poster's own socket included.
    lid = phone.send_text(sid, "hi", permission_mode="default")
    for c in (a, b):
        u = c.wait_event("update", is_msg)
        assert u["body"]["sid"] == sid and u["body"]["message"]["localId"] == lid
        assert set(u) == {"id", "seq", "body", "createdAt"}
        assert set(u["body"]["message"]) == {"id", "seq", "content", "localId", "createdAt", "updatedAt"}
        assert decrypt_value(u["body"]["message"]["content"]["c"], key, "dataKey")["content"]["text"] == "hi"
    assert phone.wait_update(lambda u: is_msg(u) and u["body"]["message"]["localId"] == lid)
    # Socket `message` from a: everyone interested except a.
    a.emit("message", {"sid": sid, "message": enc(key, {"role": "agent", "content": {"type": "event", "id": "e",
                                                                                     "data": {"type": "ready"}}}),
                       "localId": "sock-1"})
    u = b.wait_event("update", lambda u: is_msg(u) and u["body"]["message"]["localId"] == "sock-1")
    assert u["body"]["message"]["seq"] == 2
    assert phone.wait_update(lambda u: is_msg(u) and u["body"]["message"]["localId"] == "sock-1")
    time.sleep(0.2)
    assert not a.received("update", lambda u: is_msg(u) and u["body"]["message"]["localId"] == "sock-1")
    assert not stranger.received("update", is_msg) and not machine.received("update", is_msg)
    # A duplicate localId is dropped, but its seq was taken (gaps are normal); no localId: always stored.
    a.emit("message", {"sid": sid, "message": enc(key, 2), "localId": "sock-1"})
    a.emit("message", {"sid": sid, "message": enc(key, 3)})
    u = b.wait_event("update", lambda u: is_msg(u) and u["body"]["message"]["localId"] is None)
    assert u["body"]["message"]["seq"] == 4
    ev = [e for e in emu.log(event="message") if e["payload"]["localId"] == "sock-1"]
    assert ev[1]["dropped"] == "duplicate localId" and ev[1]["seqSkipped"] == 3
    assert [m["seq"] for m in phone.messages(sid)] == [1, 2, 4]
    # Unknown session / not a string / not base64: dropped.
    a.emit("message", {"sid": "nope", "message": enc(key, 1)})
    a.emit("message", {"sid": sid, "message": 5})
    a.emit("message", {"sid": sid, "message": "%%"})
    assert until(lambda: len([e for e in emu.log(event="message") if e.get("dropped")]) == 4)
    assert [m["seq"] for m in phone.messages(sid)] == [1, 2, 4]


# ---------------------------------------------------------------- versioned writes

def test_update_state_and_metadata_acks_broadcast_and_bump(emu, acct):
    sid, key = acct.new_session()
    d = acct.session_sock(sid)
    phone = acct.phone()
    st1 = enc(key, {"controlledByUser": False})
    ack = d.call("update-state", {"sid": sid, "expectedVersion": 0, "agentState": st1})
    assert ack == {"result": "success", "version": 1, "agentState": st1}
    u = d.wait_event("update", lambda u: u["body"]["t"] == "update-session")  # the sender gets it too
    assert u["body"] == {"t": "update-session", "id": sid, "agentState": {"value": st1, "version": 1}}
    assert phone.wait_update(lambda u: u["body"].get("agentState", {}).get("version") == 1)
    # Another client writes: version-mismatch with the server's value.
    other = enc(key, {"controlledByUser": True})
    st, b = emu.call("POST", "/__test/sessions/bump", {"sid": sid, "field": "agentState", "value": other})
    assert b["version"] == 2
    d.wait_event("update", lambda u: u["body"].get("agentState", {}).get("version") == 2)
    ack = d.call("update-state", {"sid": sid, "expectedVersion": 1, "agentState": st1})
    assert ack == {"result": "version-mismatch", "version": 2, "agentState": other}
    assert d.call("update-state", {"sid": sid, "expectedVersion": 2, "agentState": None}) == \
        {"result": "success", "version": 3, "agentState": None}
    # Metadata: the same, plus the app's merge-and-retry write through the phone.
    m1 = enc(key, {"path": "/tmp/proj", "host": "box", "summary": {"text": "t", "updatedAt": 1}})
    assert d.call("update-metadata", {"sid": sid, "expectedVersion": 0, "metadata": m1})["result"] == "success"
    emu.call("POST", "/__test/sessions/bump", {"sid": sid, "field": "metadata", "by": 2})
    assert d.call("update-metadata", {"sid": sid, "expectedVersion": 1, "metadata": m1}) == \
        {"result": "version-mismatch", "version": 3, "metadata": m1}
    phone.session(sid)
    assert phone.set_modes(sid, permission_mode="acceptEdits", model_mode="opus")["version"] == 4
    assert phone.metadata(sid) == {"path": "/tmp/proj", "host": "box", "summary": {"text": "t", "updatedAt": 1},
                                   "permissionMode": "acceptEdits", "modelMode": "opus"}
    # Errors: invalid → error; unknown session: update-state error, update-metadata never acks.
    assert d.call("update-state", {"sid": sid, "expectedVersion": "4", "agentState": st1}) == {"result": "error"}
    assert d.call("update-state", {"sid": sid, "expectedVersion": 4, "agentState": 3}) == {"result": "error"}
    assert d.call("update-state", {"sid": sid, "expectedVersion": 3, "agentState": "%%"}) == {"result": "error"}
    assert d.call("update-metadata", {"sid": sid, "expectedVersion": 4}) == {"result": "error"}
    assert d.call("update-state", {"sid": "nope", "expectedVersion": 0, "agentState": st1}) == {"result": "error"}
    with pytest.raises(Exception):
        d.call("update-metadata", {"sid": "nope", "expectedVersion": 0, "metadata": m1}, timeout=0.5)
    rec = emu.call("GET", f"/__test/sessions/{sid}")[1]
    assert (rec["metadataVersion"], rec["agentStateVersion"]) == (4, 3)


def test_dropped_and_ignored_acks(emu, acct):
    sid, key = acct.new_session()
    d = acct.session_sock(sid)
    v = enc(key, {"controlledByUser": False})
    assert emu.config(dropAcks={"update-state": 1})["dropAcks"] == {"update-state": 1}
    with pytest.raises(Exception):
        d.call("update-state", {"sid": sid, "expectedVersion": 0, "agentState": v}, timeout=0.5)
    # It was applied (and broadcast): the retry with the old version sees the daemon's own value.
    d.wait_event("update", lambda u: u["body"].get("agentState", {}).get("version") == 1)
    assert d.call("update-state", {"sid": sid, "expectedVersion": 0, "agentState": v}) == \
        {"result": "version-mismatch", "version": 1, "agentState": v}
    emu.config(ignoreEvents={"update-metadata": 2})
    m = enc(key, {"path": "/x", "host": "h"})
    for _ in range(2):
        with pytest.raises(Exception):
            d.call("update-metadata", {"sid": sid, "expectedVersion": 0, "metadata": m}, timeout=0.3)
    assert d.call("update-metadata", {"sid": sid, "expectedVersion": 0, "metadata": m})["result"] == "success"
    acks = [e.get("ack") for e in emu.log(sessionId=sid) if e["event"].startswith("update-")]
    assert acks[0] == "dropped by test config" and acks[2:4] == ["none (ignored by test config)"] * 2


# ---------------------------------------------------------------- keep-alive, end, archive, push

def test_session_alive_end_archive(emu, acct):
    phone = acct.phone()
    sid, key = acct.new_session(tag="t-alive")
    d = acct.session_sock(sid)
    now = int(time.time() * 1000)
    d.emit("session-alive", {"sid": sid, "time": now, "thinking": True, "mode": "remote"})
    e = phone.wait_ephemeral(lambda e: e["type"] == "activity" and e["thinking"])
    assert e == {"type": "activity", "id": sid, "active": True, "activeAt": now, "thinking": True}
    d.emit("session-alive", {"sid": sid, "time": now + 3_600_000})  # future: clamped to now
    d.emit("session-alive", {"sid": sid, "time": now - 11 * 60_000})  # too old: dropped
    d.emit("session-alive", {"sid": "nope", "time": now})
    d.emit("session-alive", {"sid": sid})
    alive = until(lambda: (lambda a: a if len(a) == 5 else None)(emu.log(sessionId=sid, event="session-alive")
                                                                 + emu.log(sessionId="nope", event="session-alive")))
    assert [a.get("dropped") for a in alive] == [None, None, "too old", "invalid", "unknown session"]
    assert all(abs(a["t"] - now) < 5000 for a in alive)
    assert alive[0]["payload"]["mode"] == "remote"
    assert not d.received("ephemeral")  # activity goes to user-scoped sockets only
    # session-end: inactive, and heartbeats are ignored for 60 s ...
    d.emit("session-end", {"sid": sid, "time": int(time.time() * 1000)})
    phone.wait_ephemeral(lambda e: e["type"] == "activity" and e["active"] is False)
    assert phone.session(sid)["active"] is False
    d.emit("session-alive", {"sid": sid, "time": int(time.time() * 1000), "thinking": False})
    assert until(lambda: emu.log(sessionId=sid, event="session-alive")[-1].get("dropped") == "stopped")
    # ... unless the session is created again with its tag.
    acct.create(tag="t-alive")
    d.emit("session-alive", {"sid": sid, "time": int(time.time() * 1000), "thinking": False})
    assert phone.wait_session(sid, lambda s: s["active"])
    # archive: {success:true}, inactive; unknown → 404.
    assert emu.call("POST", f"/v1/sessions/{sid}/archive", {}, token=acct.token) == (200, {"success": True})
    assert phone.session(sid)["active"] is False
    assert emu.call("POST", "/v1/sessions/nope/archive", {}, token=acct.token) == (404, {"error": "Session not found"})
    assert [e["status"] for e in emu.log(event="archive")] == [200, 404]


def test_push_event_and_usage_report(emu, acct):
    sid, key = acct.new_session()
    d = acct.session_sock(sid)
    app = acct.sock(appState="background")
    body = {"kind": "done", "title": "It's ready!", "body": "proj",
            "data": {"sessionId": sid, "type": "ready", "provider": "claude"}}
    st, b = emu.call("POST", f"/v1/sessions/{sid}/push-event", body, token=acct.token)
    assert (st, b) == (200, {"success": True, "result": "no_tokens"})
    for c in (d, app):
        e = c.wait_event("ephemeral", lambda e: e["type"] == "session-event")
        assert (e["sessionId"], e["kind"], e["title"], e["body"]) == (sid, "done", "It's ready!", "proj")
    app.emit("app-state", {"state": "active"})
    time.sleep(0.1)
    assert emu.call("POST", f"/v1/sessions/{sid}/push-event", body, token=acct.token)[1] == \
        {"success": True, "result": "suppressed", "reason": "active-ui-client"}
    for bad in ({**body, "kind": "nope"}, {**body, "title": ""}, {**body, "body": "x" * 501}, {**body, "data": 3}):
        assert emu.call("POST", f"/v1/sessions/{sid}/push-event", bad, token=acct.token)[0] == 400
    assert emu.call("POST", "/v1/sessions/nope/push-event", body, token=acct.token) == \
        (404, {"error": "Session not found"})
    log = emu.call("GET", "/__test/sessions/log")[1]
    assert [p["outcome"]["result"] for p in log["pushEvents"]] == ["no_tokens", "suppressed"]
    # usage-report: acked when asked, ephemeral usage to the app.
    rep = {"key": "claude-session", "sessionId": sid, "tokens": {"total": 10, "input": 4, "output": 6},
           "cost": {"total": 0.1}}
    ack = d.call("usage-report", rep)
    assert ack["success"] is True and "reportId" in ack
    assert app.wait_event("ephemeral", lambda e: e["type"] == "usage")["tokens"]["total"] == 10
    assert d.call("usage-report", {**rep, "tokens": {}}) == \
        {"success": False, "error": "Invalid tokens object - must include total"}
    assert emu.call("GET", "/__test/sessions/usage")[1]["reports"][0]["data"]["cost"] == {"total": 0.1}


# ---------------------------------------------------------------- session RPC

def test_session_scoped_rpc(emu, acct):
    sid, key = acct.new_session()
    phone = acct.phone()
    d = acct.session_sock(sid)

    def handler(method, params):
        p = decrypt_value(params, key, "dataKey")
        if method == f"{sid}:permission":
            return enc(key, None)
        if method == f"{sid}:bash":
            return enc(key, {"success": True, "stdout": p["command"], "stderr": "", "exitCode": 0})
        return b64(b"")  # an empty result
    d.on_rpc(handler)
    for m in ("permission", "bash", "switch"):
        d.emit("rpc-register", {"method": f"{sid}:{m}"})
    d.wait_event("rpc-registered", lambda x: x["method"] == f"{sid}:switch")
    assert phone.permission(sid, "toolu_1", approved=True) is None
    assert phone.bash(sid, "echo hi")["stdout"] == "echo hi"
    assert phone.switch(sid) is None
    req = d.rpc_requests[0]
    assert req["method"] == f"{sid}:permission"
    assert decrypt_value(req["params"], key, "dataKey") == {"id": "toolu_1", "approved": True}
    regs = [e for e in emu.log(sessionId=sid) if e["event"] == "rpc-register"]
    assert [r["payload"]["method"] for r in regs] == [f"{sid}:permission", f"{sid}:bash", f"{sid}:switch"]
    assert [e["ack"]["ok"] for e in emu.log(sessionId=sid, event="rpc-call")] == [True, True, True]
    # Server-side disconnect; a call made meanwhile waits for the re-registration.
    assert emu.call("POST", "/__test/sessions/disconnect", {"sid": sid})[1] == {"disconnected": 1}
    assert until(lambda: not d.connected)
    d2 = acct.session_sock(sid)
    d2.on_rpc(handler)
    import threading
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", phone.bash(sid, "late")))
    t.start()
    time.sleep(0.6)
    d2.emit("rpc-register", {"method": f"{sid}:bash"})
    t.join(10)
    assert out["r"]["stdout"] == "late"
    # Target gone mid-call: "RPC target disconnected" after two missed presence polls.
    emu.call("POST", "/__test/sync/config", {"rpcPresencePoll": 0.2, "rpcWait": 0.3})

    async def never(method, params):
        import asyncio
        await asyncio.sleep(30)
    d2.on_rpc(never)
    threading.Timer(0.3, lambda: emu.call("POST", "/__test/sessions/disconnect", {"sid": sid})).start()
    assert phone.rpc_raw(sid, "bash", enc(key, {"command": "x"})) == {"ok": False, "error": "RPC target disconnected"}
    assert phone.rpc_raw(sid, "bash", enc(key, {})) == {"ok": False, "error": "RPC method not available"}


# ---------------------------------------------------------------- legacy server

def test_legacy_server_switch(emu, acct):
    sid, key = acct.new_session()
    phone = acct.phone()
    d = acct.session_sock(sid)
    assert emu.config(legacyServer=True)["legacyServer"] is True
    for method, path, body in (("GET", f"/v3/sessions/{sid}/messages", None),
                               ("POST", f"/v3/sessions/{sid}/messages", {"messages": [{"content": "AA==", "localId": "l"}]}),
                               ("POST", f"/v1/sessions/{sid}/push-event", {"kind": "done", "title": "t", "body": "b"}),
                               ("POST", f"/v1/sessions/{sid}/archive", {})):
        st, b = emu.call(method, path, body, token=acct.token)
        assert st == 404 and b["error"] == "Not found" and b["method"] == method, (path, b)
    # The phone falls back: socket `message` out, GET /v1/sessions/<sid>/messages in.
    lid = phone.send_text(sid, "via socket")
    u = d.wait_event("update", lambda u: u["body"]["t"] == "new-message")
    assert u["body"]["message"]["localId"] == lid
    d.emit("message", {"sid": sid, "message": enc(key, {"role": "agent", "content": {"type": "event", "id": "x",
                                                                                     "data": {"type": "ready"}}}),
                       "localId": "d1"})
    msgs = until(lambda: (lambda m: m if len(m) == 2 else None)(phone.messages(sid)))
    assert [m["content"]["role"] for m in msgs] == ["user", "agent"]
    # Activity goes to every socket of the account (the session socket too); no RPC grace wait.
    d.emit("session-alive", {"sid": sid, "time": int(time.time() * 1000), "thinking": False})
    assert d.wait_event("ephemeral", lambda e: e["type"] == "activity")
    emu.call("POST", "/__test/sync/config", {"rpcWait": 5})
    t0 = time.monotonic()
    assert phone.rpc_raw(sid, "abort", enc(key, {})) == {"ok": False, "error": "RPC method not available"}
    assert time.monotonic() - t0 < 4  # answered at once, not after the 5 s grace
    emu.config(legacyServer=False)
    assert emu.call("GET", f"/v3/sessions/{sid}/messages", token=acct.token)[0] == 200


def test_legacy_server_start_flag(tmp_path):
    e = Emu(tmp_path, "--legacy-server")
    try:
        a = Acct(e)
        sid, _ = a.new_session()
        assert e.config()["legacyServer"] is True and e.config()["legacyAuth"] is False
        st, b = e.call("GET", f"/v3/sessions/{sid}/messages", token=a.token)
        assert st == 404 and b != {"error": "Session not found"}
        bad = SockClient(e.url, {"token": "wrong", "clientType": "session-scoped", "sessionId": sid})
        try:
            assert bad.wait_event("error") == {"message": "Invalid authentication token"}
        finally:
            bad.close()
    finally:
        e.stop()


# ---------------------------------------------------------------- token rejection

def test_token_rejection_current_and_old_style(emu, acct):
    c = SockClient(emu.url, {"token": "wrong", "clientType": "machine-scoped", "machineId": "m"})
    try:
        assert not c.connected and c.refused == {"message": "Invalid authentication token"}
        assert not c.received("error")
    finally:
        c.close()
    assert emu.config(legacyAuth=True)["legacyAuth"] is True
    for auth, msg in (({"token": "wrong", "clientType": "machine-scoped", "machineId": "m"}, "Invalid authentication token"),
                      ({"clientType": "user-scoped"}, "Missing authentication token"),
                      ({"token": acct.token, "clientType": "session-scoped"}, "Session ID required for session-scoped clients")):
        c = SockClient(emu.url, auth)
        try:
            assert c.refused is None  # the connect itself succeeds ...
            assert c.wait_event("error") == {"message": msg}  # ... then `error`, then a server disconnect
            c.wait_event("disconnect")
            names = [n for n, _ in c.events]
            assert names.index("error") < names.index("disconnect")
        finally:
            c.close()
    refused = [e for e in emu.call("GET", "/__test/sync/log")[1]["events"] if e["event"] == "connect-refused"]
    assert [r["payload"]["style"] for r in refused] == ["connect_error"] + ["error-event"] * 3
    # A good token still connects normally.
    ok = acct.sock()
    time.sleep(0.2)
    assert ok.connected and not ok.received("error")


def test_legacy_auth_start_flag(tmp_path):
    e = Emu(tmp_path, "--legacy-auth")
    try:
        assert e.config()["legacyAuth"] is True and e.config()["legacyServer"] is False
        c = SockClient(e.url, {"token": "wrong"})
        try:
            assert c.wait_event("error") == {"message": "Invalid authentication token"}
            c.wait_event("disconnect")
        finally:
            c.close()
    finally:
        e.stop()


# ---------------------------------------------------------------- persistence

@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_sessions_survive_a_restart(tmp_path, how):
    e = Emu(tmp_path)
    try:
        a = Acct(e)
        sid, key = a.new_session(tag="persist")
        d = a.session_sock(sid)
        post_v3(e, a, sid, [(enc(key, i), f"l{i}") for i in range(3)])
        d.emit("message", {"sid": sid, "message": enc(key, "s"), "localId": "sock"})
        assert d.call("update-state", {"sid": sid, "expectedVersion": 0, "agentState": enc(key, {})})["result"] == "success"
        assert until(lambda: len(e.call("GET", f"/__test/sessions/{sid}")[1]["messages"]) == 4)
        before = e.call("GET", f"/__test/sessions/{sid}")[1]
        a.close()
        e.stop(kill=how == "sigkill")
        e.start()
        after = e.call("GET", f"/__test/sessions/{sid}")[1]
        assert after["messages"] == before["messages"]
        assert after["agentStateVersion"] == 1 and after["session"]["seq"] == 4
        # The daemon's resend after the restart is deduplicated; new messages continue the seq.
        st, b = post_v3(e, a, sid, [(enc(key, 0), "l0"), (enc(key, 1), "l1"), (enc(key, 9), "l9")])
        assert [(m["seq"], m["localId"]) for m in b["messages"]] == [(1, "l0"), (2, "l1"), (5, "l9")]
        d2 = a.session_sock(sid)
        d2.emit("message", {"sid": sid, "message": enc(key, "s"), "localId": "sock"})
        assert until(lambda: e.log(event="message") and e.log(event="message")[-1].get("dropped") == "duplicate localId")
        # Same tag: the same session; the token still works.
        assert a.create(tag="persist")[1]["session"]["id"] == sid
        a.close()
    finally:
        e.stop()


# ---------------------------------------------------------------- machines: rename, seeded records

@pytest.mark.parametrize("variant", ["dataKey", "legacy"])
def test_app_renames_a_machine(emu, acct, variant):
    mkey = os.urandom(32) if variant == "dataKey" else acct.secret
    dek = b64(wrap_data_key(mkey, acct.content_public)) if variant == "dataKey" else None
    meta = {"host": "box", "platform": "linux", "happyCliVersion": "1.0.0"}
    st, b = emu.call("POST", "/v1/machines", {"id": "mach-1", "metadata": enc(mkey, meta, variant),
                                              "daemonState": None, "dataEncryptionKey": dek}, token=acct.token)
    assert st == 200
    daemon = acct.sock(clientType="machine-scoped", machineId="mach-1")
    phone = acct.phone()
    ack = phone.rename_machine("mach-1", "  Work box ")
    assert ack["result"] == "success" and ack["version"] == 2
    stored = emu.call("GET", "/__test/sync/machine/mach-1")[1]["machine"]
    assert decrypt_value(stored["metadata"], mkey, variant) == dict(meta, displayName="Work box")
    u = daemon.wait_event("update", lambda u: u["body"]["t"] == "update-machine" and u["body"]["metadata"]["version"] == 2)
    assert u["body"]["machineId"] == "mach-1"
    ev = [x for x in emu.call("GET", "/__test/sync/log")[1]["events"] if x["event"] == "machine-update-metadata"]
    assert ev[0]["payload"]["expectedVersion"] == 1
    # A conflicting write meanwhile: the app keeps the latest fields and its displayName.
    newer = dict(meta, happyCliVersion="2.0.0")
    emu.call("POST", "/__test/sync/bump", {"machineId": "mach-1", "field": "metadata",
                                            "value": enc(mkey, newer, variant)})
    # The phone read version 3 before the bump only if it raced; force the mismatch path with a stale read:
    from happy_emulator.phone import rename_machine
    calls = []

    def stale_call(event, data):
        calls.append(data["expectedVersion"])
        if len(calls) == 1:
            data = dict(data, expectedVersion=2)
        return phone.call(event, data)
    ack = rename_machine(emu.url, acct.token, stale_call, mkey, variant, "mach-1", "Other")
    assert ack["result"] == "success" and len(calls) == 2
    stored = emu.call("GET", "/__test/sync/machine/mach-1")[1]["machine"]
    assert decrypt_value(stored["metadata"], mkey, variant) == dict(newer, displayName="Other")
    # An empty name removes displayName; the machine-key PhoneClient does the same.
    pc = PhoneClient(emu.url, acct.token, mkey, variant)
    try:
        assert pc.rename_machine("mach-1", "")["result"] == "success"
    finally:
        pc.close()
    stored = emu.call("GET", "/__test/sync/machine/mach-1")[1]["machine"]
    assert "displayName" not in decrypt_value(stored["metadata"], mkey, variant)


def test_seeded_machine_from_an_older_login(emu, acct):
    old_key = os.urandom(32)  # another key: the current credentials cannot read it
    other_content = os.urandom(32)
    from nacl.public import PrivateKey
    rec = {"accountId": acct.id, "id": "old-machine", "metadata": enc(old_key, {"host": "old"}),
           "metadataVersion": 7, "daemonState": enc(old_key, {"status": "offline"}), "daemonStateVersion": 3,
           "dataEncryptionKey": b64(wrap_data_key(old_key, bytes(PrivateKey(other_content).public_key)))}
    st, b = emu.call("POST", "/__test/machine", rec)
    assert st == 200 and b["machine"]["metadataVersion"] == 7
    st, lst = emu.call("GET", "/v1/machines", token=acct.token)
    m = next(x for x in lst if x["id"] == "old-machine")
    assert (m["metadata"], m["daemonState"], m["dataEncryptionKey"]) == (rec["metadata"], rec["daemonState"],
                                                                         rec["dataEncryptionKey"])
    assert unwrap_data_key(base64.b64decode(m["dataEncryptionKey"]), acct.phone().content) is None
    emu.stop()
    emu.start()
    assert emu.call("GET", "/v1/machines/old-machine", token=acct.token)[1]["machine"]["daemonStateVersion"] == 3


# ---------------------------------------------------------------- faults, test routes

def test_generic_faults_hit_v3(emu, acct):
    sid, key = acct.new_session()
    emu.call("POST", "/__test/fault", {"method": "POST", "path": "/v3/*", "status": 503, "count": 2})
    for _ in range(2):
        st, b = post_v3(emu, acct, sid, [(enc(key, 1), "l")])
        assert st == 503 and b["statusCode"] == 503
    assert post_v3(emu, acct, sid, [(enc(key, 1), "l")])[0] == 200
    emu.call("POST", "/__test/fault", {"path": f"/v3/sessions/{sid}/messages", "status": 500, "count": 1})
    assert emu.call("GET", f"/v3/sessions/{sid}/messages", token=acct.token)[0] == 500


def test_session_test_routes(emu, acct):
    sid, key = acct.new_session()
    post_v3(emu, acct, sid, [(enc(key, 1), "a")])
    st, b = emu.call("GET", "/__test/sessions")
    s = b["sessions"][0]
    assert s["id"] == sid and s["accountId"] == acct.id and s["tag"] and s["messageCount"] == 1
    st, one = emu.call("GET", f"/__test/sessions/{sid}")
    assert one["messages"][0]["localId"] == "a" and one["messages"][0]["content"]["t"] == "encrypted"
    assert emu.call("GET", "/__test/sessions/nope")[0] == 404
    log = emu.call("GET", f"/__test/sessions/log?sessionId={sid}")[1]
    assert [e["event"] for e in log["events"]][:2] == ["create", "v3-post"] and sid in log["sessions"]
    emu.call("POST", "/__test/sessions/clear", {})
    assert emu.log() == [] and emu.call("GET", "/__test/sessions")[1]["sessions"]
    emu.call("POST", "/__test/sessions/clear", {"sessions": True})
    assert emu.call("GET", "/__test/sessions")[1]["sessions"] == []


# ---------------------------------------------------------------- the phone end to end (both variants)

@pytest.mark.parametrize("variant", ["dataKey", "legacy"])
def test_phone_plays_the_app(emu, acct, variant):
    sid, key = acct.new_session(variant=variant)
    phone = acct.phone()
    d = acct.session_sock(sid)
    d.emit("rpc-register", {"method": f"{sid}:permission"})
    d.on_rpc(lambda m, p: encrypt_value(None, key, variant) if m.endswith(":permission") else None)
    state = {"controlledByUser": False,
             "requests": {"toolu_1": {"tool": "Bash", "arguments": {"command": "ls"}, "createdAt": 1}}}
    assert d.call("update-state", {"sid": sid, "expectedVersion": 0,
                                   "agentState": encrypt_value(state, key, variant)})["result"] == "success"
    assert phone.wait_request(sid) == ("toolu_1", state["requests"]["toolu_1"])
    d.wait_event("rpc-registered")
    assert phone.permission(sid, "toolu_1", approved=False, reason="no") is None
    assert decrypt_value(d.rpc_requests[0]["params"], key, variant) == {"id": "toolu_1", "approved": False,
                                                                        "reason": "no"}
    lid = phone.send_text(sid, "hello", permission_mode="acceptEdits", model=None)
    got = decrypt_value(d.wait_event("update", lambda u: u["body"]["t"] == "new-message")["body"]["message"]["content"]["c"],
                        key, variant)
    assert got["role"] == "user" and got["content"] == {"type": "text", "text": "hello"}
    assert got["meta"]["sentFrom"] == "ios" and got["meta"]["permissionMode"] == "acceptEdits"
    assert got["meta"]["model"] is None and "appendSystemPrompt" in got["meta"]
    assert app_schema.validate_record(got) == []
    rec = {"role": "agent", "content": {"type": "output", "data": {"type": "assistant", "uuid": "u1",
           "message": {"role": "assistant", "model": "m", "content": [{"type": "text", "text": "done"}]}}},
           "meta": {"sentFrom": "cli"}}
    post_v3(emu, acct, sid, [(encrypt_value(rec, key, variant), "out-1")])
    m = phone.wait_message(sid, lambda c: c["role"] == "agent")
    assert m["content"] == rec and m["localId"] == "out-1" and m["seq"] == 2
    assert [x["localId"] for x in phone.messages(sid)] == [lid, "out-1"]
    assert phone.decrypt_update(phone.wait_update(lambda u: u["body"]["t"] == "new-message"
                                                  and u["body"]["message"]["localId"] == "out-1")) == rec


# ---------------------------------------------------------------- the app's message schema

ASSISTANT_TOOL_CALL = {"role": "agent", "meta": {"sentFrom": "cli"}, "content": {"type": "output", "data": {
    "type": "assistant", "uuid": "0f6a6b52-3f0e-4d7b-9a8e-4a1c3b2d1e00", "parentUuid": "a1e3", "isSidechain": False,
    "sessionId": "4d2c", "timestamp": "2026-08-07T10:00:03.000Z",
    "message": {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": "I'll delete it."},
                            {"type": "tool_use", "id": "toolu_01ABC", "name": "Bash",
                             "input": {"command": "rm -f x.txt", "description": "Remove file"}}],
                "usage": {"input_tokens": 10, "output_tokens": 12, "cache_read_input_tokens": 0,
                          "cache_creation_input_tokens": 0}},
    "parent_tool_use_id": None}}}
TOOL_RESULT = {"role": "agent", "meta": {"sentFrom": "cli"}, "content": {"type": "output", "data": {
    "type": "user", "uuid": "7c9d", "parentUuid": "0f6a6b52-3f0e-4d7b-9a8e-4a1c3b2d1e00", "isSidechain": False,
    "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01ABC", "content": "",
                                             "is_error": False,
                                             "permissions": {"date": 1754550004000, "result": "approved"}}]}}}}
EVENTS = [{"role": "agent", "content": {"id": "e1", "type": "event", "data": d}} for d in (
    {"type": "ready"}, {"type": "message", "message": "Aborted by user"}, {"type": "switch", "mode": "remote"},
    {"type": "limit-reached", "endsAt": 1754560000})]


def _with(rec, path, value):
    import copy
    r = copy.deepcopy(rec)
    o = r
    for k in path[:-1]:
        o = o[k]
    if value is KeyError:
        del o[path[-1]]
    else:
        o[path[-1]] = value
    return r


def test_schema_validator_accepts_the_sheet_examples():
    for rec in [ASSISTANT_TOOL_CALL, TOOL_RESULT, *EVENTS,
                {"role": "user", "content": {"type": "text", "text": "hi"}, "meta": {"sentFrom": "ios", "model": None}},
                {"role": "session", "content": {"id": "x", "time": 1, "role": "agent", "turn": "t1",
                                                "ev": {"t": "text", "text": "hi"}}},
                _with(TOOL_RESULT, ["content", "data", "message", "content", 0, "content"],
                      [{"type": "text", "text": "out"}]),
                _with(ASSISTANT_TOOL_CALL, ["content", "data", "message", "content"],
                      [{"type": "thinking", "thinking": "hmm", "signature": "s"}]),
                {"role": "agent", "content": {"type": "output", "data": {"type": "result", "result": "Unknown skill"}}}]:
        assert app_schema.validate_record(rec) == [], rec
    n = app_schema.normalize(ASSISTANT_TOOL_CALL, "m1")
    assert [c["type"] for c in n["content"]] == ["text", "tool-call"]
    assert n["content"][1]["description"] == "Remove file" and n["usage"]["input_tokens"] == 10
    n = app_schema.normalize(_with(TOOL_RESULT, ["content", "data", "message", "content", 0, "content"],
                                   [{"type": "text", "text": "out"}]))
    assert n["content"][0]["content"] == "out" and n["content"][0]["permissions"]["result"] == "approved"
    # A Codex-style hyphenated tool call is normalised to tool_use before validation.
    hy = _with(ASSISTANT_TOOL_CALL, ["content", "data", "message", "content"],
               [{"type": "tool-call", "callId": "c1", "name": "Bash", "input": {}}])
    assert app_schema.validate_record(hy) == []


def test_schema_validator_rejects_what_the_app_drops():
    data = ["content", "data"]
    cases = {
        "no uuid": _with(ASSISTANT_TOOL_CALL, data + ["uuid"], KeyError),
        "null uuid": _with(ASSISTANT_TOOL_CALL, data + ["uuid"], None),
        "user without uuid": _with(TOOL_RESULT, data + ["uuid"], KeyError),
        "redacted_thinking": _with(ASSISTANT_TOOL_CALL, data + ["message", "content"],
                                   [{"type": "redacted_thinking", "data": "xx"}]),
        "server_tool_use": _with(ASSISTANT_TOOL_CALL, data + ["message", "content", 1, "type"], "server_tool_use"),
        "image tool_result": _with(TOOL_RESULT, data + ["message", "content", 0, "content"],
                                   [{"type": "image", "source": {"type": "base64", "data": "x"}}]),
        "no model": _with(ASSISTANT_TOOL_CALL, data + ["message", "model"], KeyError),
        "null usage": _with(ASSISTANT_TOOL_CALL, data + ["message", "usage"], None),
        "null service_tier": _with(ASSISTANT_TOOL_CALL, data + ["message", "usage", "service_tier"], None),
        "is_error null": _with(TOOL_RESULT, data + ["message", "content", 0, "is_error"], None),
        "bad permission result": _with(TOOL_RESULT, data + ["message", "content", 0, "permissions", "result"], "ok"),
        "isMeta": _with(ASSISTANT_TOOL_CALL, data + ["isMeta"], True),
        "system": {"role": "agent", "content": {"type": "output", "data": {"type": "system", "subtype": "init"}}},
        "empty result": {"role": "agent", "content": {"type": "output", "data": {"type": "result", "result": ""}}},
        "stream_event": {"role": "agent", "content": {"type": "output", "data": {"type": "stream_event"}}},
        "bad event": {"role": "agent", "content": {"id": "e", "type": "event", "data": {"type": "nope"}}},
        "event without id": {"role": "agent", "content": {"type": "event", "data": {"type": "ready"}}},
        "no turn": {"role": "session", "content": {"id": "x", "time": 1, "role": "agent",
                                                   "ev": {"t": "text", "text": "hi"}}},
        "bad subagent": {"role": "session", "content": {"id": "x", "time": 1, "role": "agent", "turn": "t",
                                                        "subagent": "Not-A-Cuid", "ev": {"t": "text", "text": "h"}}},
        "bad meta": {"role": "user", "content": {"type": "text", "text": "hi"}, "meta": {"sentFrom": 3}},
        "unknown role": {"role": "system", "content": {}},
        "not an object": "hello",
    }
    for name, rec in cases.items():
        errs = app_schema.validate_record(rec)
        assert errs, name
    assert app_schema.drop_reason(cases["no uuid"]) == "assistant record without uuid"
    assert "redacted_thinking" in app_schema.schema_errors(cases["redacted_thinking"])[0]
    assert app_schema.normalize(cases["system"]) is None


def test_metadata_and_agent_state_schemas():
    meta = {"path": "/Users/me/src/project", "host": "my-mac.local", "version": "1.2.1", "os": "darwin",
            "machineId": "8d1c", "homeDir": "/Users/me", "happyHomeDir": "/Users/me/.happy",
            "startedFromDaemon": True, "hostPid": 43121, "startedBy": "daemon", "lifecycleState": "running",
            "lifecycleStateSince": 1754550000000, "flavor": "claude", "sandbox": None,
            "dangerouslySkipPermissions": False, "summary": {"text": "t", "updatedAt": 1},
            "mcpServers": [{"name": "happy", "status": "connected"}], "unknownKey": {"kept": True}}
    assert app_schema.metadata_errors(meta) == [] and not app_schema.cli_outdated(meta)
    assert app_schema.cli_outdated(dict(meta, version="0.9.9"))
    for bad in ({k: v for k, v in meta.items() if k != "path"}, dict(meta, startedBy="mobile-app"),
                dict(meta, hostPid="1"), dict(meta, summary={"text": "t"}), dict(meta, permissionMode=3)):
        assert app_schema.metadata_errors(bad), bad
    state = {"controlledByUser": False,
             "requests": {"toolu_01ABC": {"tool": "Bash", "arguments": {"command": "rm -f x.txt"}, "createdAt": 1}},
             "completedRequests": {"toolu_0": {"tool": "Bash", "arguments": {}, "createdAt": 1, "completedAt": 2,
                                               "status": "approved", "mode": "acceptEdits",
                                               "allowedTools": ["Bash(ls)"]}}}
    assert app_schema.agent_state_errors(state) == []
    bad = {"completedRequests": {"t": {"tool": "Bash", "arguments": {}, "status": "done"}}}
    assert app_schema.agent_state_errors(bad)
    assert app_schema.agent_state_errors({"requests": {"t": {"arguments": {}}}})
