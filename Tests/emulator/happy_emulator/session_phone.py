"""A synchronous test "phone" that plays the Happy app for sessions (SESSIONS.md §1, §4-§8).

    phone = SessionPhone(url, token, secret=master_secret)          # or content=PrivateKey (dataKey only)
    for s in phone.list_sessions(): print(s["id"], s["variant"], s["metadata"])
    phone.send_text(sid, "delete x.txt please", permission_mode="default")
    msg = phone.wait_message(sid, lambda c: c.get("role") == "agent")
    rid, req = phone.wait_request(sid)                               # agentState.requests
    phone.permission(sid, rid, approved=True)                        # rpc <sid>:permission
    phone.update_metadata(sid, {"permissionMode": "acceptEdits"})    # versioned, merged, retried
    phone.close()

Keys, as the app derives them (M:app/sources/sync/encryption/encryption.ts):
- a session with `dataEncryptionKey` (variant "dataKey"): the key is
  crypto_box_open(bundle[57:], nonce=bundle[33:57], ephemeral pk=bundle[1:33]) with the account
  content secret key = crypto_box_seed_keypair(deriveKey(master, "Happy EnCoder", ["content"]));
  content is AES-256-GCM `0x00 || nonce12 || ct || tag16`;
- a session without it (variant "legacy"): NaCl secretbox with the account master secret,
  `nonce24 || box`.

Messages go out like the app's (`{role:"user", content:{type:"text", text}, meta:{sentFrom,
appendSystemPrompt, permissionMode?, model?, effort?, displayText?}}`, M:app/sources/sync/sync.ts:716-731)
with POST /v3 and a fresh localId, or with the socket `message` event against the older
server (no /v3 routes). RPC params are encrypted and results decrypted with the session
key; an empty plaintext, an encrypted `null` or an undecryptable result all read as None,
as in the app (`decryptRaw`).
"""
from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from typing import Any, Callable, Optional

import socketio
from nacl.public import PrivateKey

from . import app_schema
from .phone import content_keypair, decrypt_value, encrypt_value, http, rename_machine, unb64, unwrap_data_key

DEFAULT_SYSTEM_PROMPT = "# Options\n\n(the app's options prompt)"


class SessionPhone:
    def __init__(self, server_url: str, token: str, secret: Optional[bytes] = None,
                 content: Optional[PrivateKey] = None, connect: bool = True, timeout: float = 10.0,
                 sent_from: str = "ios", append_system_prompt: Optional[str] = DEFAULT_SYSTEM_PROMPT):
        self.server = server_url.rstrip("/")
        self.token = token
        self.secret = secret
        self.content = content if content is not None else (content_keypair(secret) if secret else None)
        self.timeout = timeout
        self.sent_from = sent_from
        self.append_system_prompt = append_system_prompt
        self.keys: dict[str, tuple[Optional[bytes], str]] = {}  # session id -> (key, variant)
        self.records: dict[str, dict] = {}  # session id -> last raw record from GET /v1/sessions
        self.updates: list = []
        self.ephemeral: list = []
        self.sent_local_ids: list[str] = []
        self.loop = None
        self.sio = None
        if connect:
            self.connect()

    # ------------------------------------------------------------ socket

    def connect(self) -> None:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self.thread.start()
        self.sio = socketio.AsyncClient(reconnection=False)

        @self.sio.on("update")
        async def _update(data):
            self.updates.append(data)

        @self.sio.on("ephemeral")
        async def _eph(data):
            self.ephemeral.append(data)

        self._run(self.sio.connect(self.server, socketio_path="/v1/updates", transports=["websocket"],
                                   auth={"token": self.token, "clientType": "user-scoped"},
                                   wait_timeout=self.timeout))

    def _run(self, coro, timeout: Optional[float] = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout or self.timeout + 5)

    def call(self, event: str, data: Any, timeout: Optional[float] = None) -> Any:
        """Emits on the user-scoped socket and returns the ack (TimeoutError when none comes)."""
        t = timeout or self.timeout
        return self._run(self.sio.call(event, data, timeout=t), t + 5)

    def emit(self, event: str, data: Any) -> None:
        self._run(self.sio.emit(event, data))

    def close(self) -> None:
        """Disconnects and stops the loop thread; a second call does nothing."""
        if self.sio is not None and self.loop is not None:
            try:
                self._run(self.sio.disconnect(), 5)
            except Exception:
                pass
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop = None

    # ------------------------------------------------------------ keys and crypto

    def _learn(self, rec: dict) -> None:
        sid = rec["id"]
        self.records[sid] = rec
        if sid in self.keys:
            return
        dek = rec.get("dataEncryptionKey")
        if dek:
            key = unwrap_data_key(base64.b64decode(dek), self.content) if self.content is not None else None
            self.keys[sid] = (key, "dataKey")
        else:
            self.keys[sid] = (self.secret, "legacy")

    def key(self, sid: str) -> tuple[Optional[bytes], str]:
        """(key, variant) of a session; key None when it cannot be unwrapped."""
        if sid not in self.keys:
            self.refresh()
        return self.keys.get(sid, (None, "dataKey"))

    def encrypt(self, sid: str, value: Any) -> str:
        key, variant = self.key(sid)
        if key is None:
            raise RuntimeError(f"no key for session {sid}")
        return encrypt_value(value, key, variant)

    def decrypt(self, sid: str, data: Optional[str]) -> Any:
        """Decrypted JSON value, or None (missing, empty, undecryptable — as the app)."""
        if not data or not isinstance(data, str):
            return None
        key, variant = self.key(sid)
        if key is None:
            return None
        try:
            return decrypt_value(data, key, variant)
        except Exception:
            return None

    # ------------------------------------------------------------ sessions

    def refresh(self) -> list[dict]:
        """GET /v1/sessions; returns the raw records (newest first) and learns their keys."""
        st, body = http("GET", self.server + "/v1/sessions", token=self.token)
        if st != 200:
            raise RuntimeError(f"GET /v1/sessions: {st} {body}")
        for rec in body["sessions"]:
            self._learn(rec)
        return body["sessions"]

    def _view(self, rec: dict) -> dict:
        key, variant = self.keys[rec["id"]]
        meta = self.decrypt(rec["id"], rec.get("metadata"))
        st = self.decrypt(rec["id"], rec.get("agentState"))
        return dict(rec, variant=variant, keyOk=key is not None, metadata=meta, agentState=st,
                    metadataErrors=app_schema.metadata_errors(meta),
                    agentStateErrors=app_schema.agent_state_errors(st) if st is not None else [],
                    raw=rec)

    def list_sessions(self) -> list[dict]:
        """Every session as the app sees it: the record with `metadata`/`agentState` decrypted
        (None when they do not decrypt), `variant`, `keyOk`, `metadataErrors`/`agentStateErrors`
        (the app's schema issues: non-empty means the app drops that value) and the untouched
        `raw` record."""
        return [self._view(r) for r in self.refresh()]

    def session(self, sid: str) -> Optional[dict]:
        for r in self.refresh():
            if r["id"] == sid:
                return self._view(r)
        return None

    def metadata(self, sid: str) -> Any:
        s = self.session(sid)
        return s["metadata"] if s else None

    def agent_state(self, sid: str) -> Any:
        s = self.session(sid)
        return s["agentState"] if s else None

    # ------------------------------------------------------------ messages

    def fetch_raw(self, sid: str, after_seq: int = 0, limit: int = 100) -> tuple[list[dict], bool]:
        """All stored messages with seq > after_seq, ascending: /v3 with paging; on the older
        server (a 404 that is not "Session not found") GET /v1/sessions/<sid>/messages
        (last 150). Returns (messages, legacy_server)."""
        out: list[dict] = []
        cursor = after_seq
        while True:
            st, body = http("GET", f"{self.server}/v3/sessions/{sid}/messages?after_seq={cursor}&limit={limit}",
                            token=self.token)
            if st == 404 and not (isinstance(body, dict) and body.get("error") == "Session not found"):
                st, body = http("GET", f"{self.server}/v1/sessions/{sid}/messages", token=self.token)
                if st != 200:
                    raise RuntimeError(f"GET /v1/sessions/{sid}/messages: {st} {body}")
                msgs = sorted(body["messages"], key=lambda m: m["seq"])
                return [m for m in msgs if m["seq"] > after_seq], True
            if st != 200:
                raise RuntimeError(f"GET /v3/sessions/{sid}/messages: {st} {body}")
            out.extend(body["messages"])
            if not body["hasMore"] or not body["messages"]:
                return out, False
            cursor = body["messages"][-1]["seq"]

    def messages(self, sid: str, after_seq: int = 0) -> list[dict]:
        """Messages with `content` decrypted (None when it does not decrypt) and the stored
        envelope under `raw`."""
        raw, _ = self.fetch_raw(sid, after_seq)
        out = []
        for m in raw:
            c = m.get("content") or {}
            out.append(dict(m, content=self.decrypt(sid, c.get("c")) if c.get("t") == "encrypted" else None, raw=m))
        return out

    def contents(self, sid: str) -> list[Any]:
        return [m["content"] for m in self.messages(sid)]

    def send_record(self, sid: str, record: Any, via: str = "auto", local_id: Optional[str] = None) -> str:
        """Encrypts and sends one record; `via` "v3" (POST /v3), "socket" (`message`) or
        "auto" (/v3, the socket when the server has no /v3 routes). Returns the localId."""
        local_id = local_id or str(uuid.uuid4())
        content = self.encrypt(sid, record)
        if via in ("auto", "v3"):
            st, body = http("POST", f"{self.server}/v3/sessions/{sid}/messages",
                            {"messages": [{"content": content, "localId": local_id}]}, token=self.token)
            if st == 200:
                self.sent_local_ids.append(local_id)
                return local_id
            legacy = st == 404 and not (isinstance(body, dict) and body.get("error") == "Session not found")
            if via == "v3" or not legacy:
                raise RuntimeError(f"POST /v3/sessions/{sid}/messages: {st} {body}")
        self.emit("message", {"sid": sid, "message": content, "localId": local_id})
        self.sent_local_ids.append(local_id)
        return local_id

    def user_record(self, text: str, permission_mode: Optional[str] = None, model: Any = ...,
                    effort: Any = ..., display_text: Optional[str] = None, **meta) -> dict:
        m: dict = {"sentFrom": self.sent_from}
        if self.append_system_prompt is not None:
            m["appendSystemPrompt"] = self.append_system_prompt
        if permission_mode is not None:
            m["permissionMode"] = permission_mode
        if model is not ...:
            m["model"] = model
        if effort is not ...:
            m["effort"] = effort
        if display_text:
            m["displayText"] = display_text
        m.update(meta)
        return {"role": "user", "content": {"type": "text", "text": text}, "meta": m}

    def send_text(self, sid: str, text: str, permission_mode: Optional[str] = None, model: Any = ...,
                  effort: Any = ..., display_text: Optional[str] = None, via: str = "auto",
                  local_id: Optional[str] = None, **meta) -> str:
        """Sends a user text message like the app; returns its localId."""
        rec = self.user_record(text, permission_mode, model, effort, display_text, **meta)
        return self.send_record(sid, rec, via, local_id)

    # ------------------------------------------------------------ RPC

    def rpc_raw(self, sid: str, method: str, params: Any, timeout: Optional[float] = None) -> dict:
        """`rpc-call {method: "<sid>:<method>", params}` with params as given; the server's ack."""
        return self.call("rpc-call", {"method": f"{sid}:{method}", "params": params}, timeout)

    def rpc(self, sid: str, method: str, params: Any = None, timeout: Optional[float] = None) -> Any:
        """Encrypts params with the session key, calls, decrypts the result (None for an empty
        or null result); raises RuntimeError on `ok: false`."""
        ack = self.rpc_raw(sid, method, self.encrypt(sid, params if params is not None else {}), timeout)
        if not ack.get("ok"):
            raise RuntimeError(f"rpc-call failed: {ack.get('error')}")
        return self.decrypt(sid, ack.get("result"))

    def permission(self, sid: str, request_id: str, approved: bool = True, **extra) -> Any:
        """`<sid>:permission {id, approved, mode?, allowTools?, updatedInput?, reason?, decision?}`."""
        return self.rpc(sid, "permission", dict({"id": request_id, "approved": approved}, **extra))

    def abort(self, sid: str) -> Any:
        return self.rpc(sid, "abort", {"reason": "The user doesn't want to proceed with this tool use. "
                                                 "The tool use was rejected (eg. if it was a file edit, the "
                                                 "new_string was NOT written to the file). STOP what you are "
                                                 "doing and wait for the user to tell you how to proceed."})

    def kill(self, sid: str) -> Any:
        return self.rpc(sid, "killSession", {})

    def switch(self, sid: str, to: str = "remote") -> Any:
        return self.rpc(sid, "switch", {"to": to})

    def bash(self, sid: str, command: str, cwd: Optional[str] = None, timeout_ms: Optional[int] = None) -> Any:
        p: dict = {"command": command}
        if cwd is not None:
            p["cwd"] = cwd
        if timeout_ms is not None:
            p["timeout"] = timeout_ms
        return self.rpc(sid, "bash", p)

    # ------------------------------------------------------------ metadata writes

    def update_metadata(self, sid: str, patch: dict, max_retries: int = 3) -> dict:
        """The app's metadata write (M:app/sources/sync/ops.ts:625-681): latest decrypted
        metadata + patch, `update-metadata` with expectedVersion; on version-mismatch take the
        server's value and version, re-apply the patch, retry. Returns the last ack."""
        s = self.session(sid)
        if s is None or not isinstance(s["metadata"], dict):
            raise RuntimeError(f"session {sid} is not ready for metadata updates")
        version = s["metadataVersion"]
        current = dict(s["metadata"], **patch)
        for _ in range(max_retries):
            ack = self.call("update-metadata", {"sid": sid, "metadata": self.encrypt(sid, current),
                                                "expectedVersion": version})
            if ack.get("result") == "success":
                return ack
            if ack.get("result") != "version-mismatch":
                raise RuntimeError("Failed to update session metadata")
            version = ack["version"]
            latest = self.decrypt(sid, ack.get("metadata"))
            if not isinstance(latest, dict):
                raise RuntimeError("Failed to decrypt latest session metadata")
            current = dict(latest, **patch)
        raise RuntimeError(f"Failed to update session metadata after {max_retries} retries due to version conflicts")

    def set_modes(self, sid: str, permission_mode: Optional[str] = None, model_mode: Optional[str] = None,
                  effort_level: Optional[str] = None) -> dict:
        patch = {k: v for k, v in (("permissionMode", permission_mode), ("modelMode", model_mode),
                                   ("effortLevel", effort_level)) if v is not None}
        return self.update_metadata(sid, patch)

    # ------------------------------------------------------------ machines

    def machine_key(self, machine_id: str) -> tuple[bytes, str]:
        st, body = http("GET", f"{self.server}/v1/machines/{machine_id}", token=self.token)
        if st != 200:
            raise RuntimeError(f"GET machine: {st} {body}")
        dek = body["machine"].get("dataEncryptionKey")
        if dek:
            key = unwrap_data_key(unb64(dek), self.content) if self.content is not None else None
            if key is None:
                raise RuntimeError("machine dataEncryptionKey does not unwrap")
            return key, "dataKey"
        return self.secret, "legacy"

    def rename_machine(self, machine_id: str, display_name: Optional[str], max_retries: int = 3) -> dict:
        """The app's machine rename: displayName set in the metadata, versioned write from
        this user-scoped socket (phone.rename_machine)."""
        key, variant = self.machine_key(machine_id)
        return rename_machine(self.server, self.token, self.call, key, variant, machine_id, display_name, max_retries)

    # ------------------------------------------------------------ waits (all bounded)

    @staticmethod
    def _until(fn: Callable[[], Any], timeout: float, step: float = 0.05, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(step)

    def wait_message(self, sid: str, pred: Callable[[Any], bool] = lambda c: True, timeout: float = 10.0,
                     after_seq: int = 0) -> dict:
        """The first message (seq > after_seq) whose decrypted content satisfies pred."""
        def find():
            for m in self.messages(sid, after_seq):
                try:
                    if pred(m["content"]):
                        return m
                except Exception:
                    pass
            return None
        return self._until(find, timeout, 0.1, "a matching message")

    def wait_messages(self, sid: str, pred: Callable[[Any], bool], count: int, timeout: float = 10.0,
                      after_seq: int = 0) -> list[dict]:
        def find():
            got = []
            for m in self.messages(sid, after_seq):
                try:
                    if pred(m["content"]):
                        got.append(m)
                except Exception:
                    pass
            return got if len(got) >= count else None
        return self._until(find, timeout, 0.1, f"{count} matching messages")

    def wait_session(self, sid: str, pred: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        def find():
            s = self.session(sid)
            try:
                return s if s is not None and pred(s) else None
            except Exception:
                return None
        return self._until(find, timeout, 0.1, "the session condition")

    def wait_agent_state(self, sid: str, pred: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        return self.wait_session(sid, lambda s: pred(s["agentState"]), timeout)["agentState"]

    def wait_metadata(self, sid: str, pred: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        return self.wait_session(sid, lambda s: pred(s["metadata"]), timeout)["metadata"]

    def wait_request(self, sid: str, timeout: float = 10.0,
                     pred: Callable[[str, dict], bool] = lambda rid, r: True) -> tuple[str, dict]:
        """The first pending permission request in agentState.requests: (id, request)."""
        def find():
            st = self.agent_state(sid)
            reqs = (st or {}).get("requests") or {}
            for rid, r in reqs.items():
                if pred(rid, r):
                    return (rid, r)
            return None
        return self._until(find, timeout, 0.1, "a permission request")

    def wait_update(self, pred: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        """The first received `update` envelope satisfying pred (already received ones count)."""
        def find():
            for u in list(self.updates):
                try:
                    if pred(u):
                        return u
                except Exception:
                    pass
            return None
        return self._until(find, timeout, 0.02, "an update")

    def wait_ephemeral(self, pred: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        def find():
            for e in list(self.ephemeral):
                try:
                    if pred(e):
                        return e
                except Exception:
                    pass
            return None
        return self._until(find, timeout, 0.02, "an ephemeral event")

    def decrypt_update(self, update: dict) -> Any:
        """The decrypted content of a new-message update (None otherwise)."""
        body = update.get("body") or {}
        if body.get("t") != "new-message":
            return None
        c = body["message"].get("content") or {}
        return self.decrypt(body["sid"], c.get("c"))
