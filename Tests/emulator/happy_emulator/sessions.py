"""Session side of the Happy Server emulator: the shared core ("hub") used by
sessions_rest.py (REST + test routes) and session_socket.py (session socket events).

Behaviour follows the current server (tag M = slopus/happy packages/happy-server;
protocol sheet SESSIONS.md §2-§5) or, with `legacyServer`, the older standalone server
(tag S = slopus/happy-server): no /v3 routes, no push-event, no archive route,
session activity ephemerals to every connection of the account, old-style token
rejection and no RPC grace wait (the last two live in machine_socket.py).

Rooms (as upstream's eventRouter): `user:<aid>` (every socket), `user:<aid>:user-scoped`
(the app), `user:<aid>:session:<sid>` (session-scoped sockets of that session).
"all interested in session" = the session room + the user-scoped room.

Persistence: with HAPPY_EMULATOR_STATE_FILE, session records (with their seq counters)
are part of the state file (machine_socket.save_state) and every stored message is
appended to `<state file>.messages.jsonl` at once (one JSON object a line), so even a
SIGKILL loses nothing the server acknowledged. Both are read back at start.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from typing import Any, Optional

from .state import ServerState, Session, SessionMessage, new_cuid, now_ms

STOPPED_TTL_MS = 60_000  # heartbeats ignored after session-end/archive (M: sessionCache.ts STOPPED_TTL)
MAX_ALIVE_AGE_MS = 10 * 60 * 1000


def b64bytes(s) -> Optional[bytes]:
    """Standard base64 (padding optional) → bytes, or None."""
    if not isinstance(s, str):
        return None
    try:
        t = s.strip()
        t += "=" * (-len(t) % 4)
        return base64.b64decode(t, validate=True)
    except (binascii.Error, ValueError):
        return None


def is_number(v) -> bool:
    """JavaScript `typeof v === 'number'` for a JSON value."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def update_id() -> str:
    return secrets.token_urlsafe(9)[:12]


class SessionHub:
    def __init__(self, ctx):
        self.ctx = ctx
        self.sio = ctx.sio
        state = ctx.extra.get("server_state")
        if state is None:
            state = ServerState()
            ctx.extra["server_state"] = state
        self.state: ServerState = state
        cfg = ctx.config
        self.mode = ctx.extra.setdefault("server_mode", {})
        self.mode.setdefault("legacyServer", bool(getattr(cfg, "legacy_server", False)))
        # event name -> how many of the next such events get no ack (applied) / are ignored entirely
        self.drop_acks: dict[str, int] = {}
        self.ignore_events: dict[str, int] = {}
        self.push_result: Optional[dict] = None  # overrides the push-event outcome
        self.log_events: list[dict] = []
        self.stopped: dict[str, int] = {}  # session id -> ms until which heartbeats are ignored
        self.usage: dict[tuple, dict] = {}  # (account, session, key) -> report
        self.push_events: list[dict] = []
        self.app_state: dict[str, str] = {}  # socket sid -> "active"|"background"
        self._journal = None
        state_file = os.environ.get("HAPPY_EMULATOR_STATE_FILE")
        self.journal_path = state_file + ".messages.jsonl" if state_file else None
        if self.journal_path:
            self._load_journal()

    # ------------------------------------------------------------ mode

    @property
    def legacy(self) -> bool:
        return bool(self.mode.get("legacyServer"))

    # ------------------------------------------------------------ persistence

    def persist(self) -> None:
        self.state.persist()

    def _load_journal(self) -> None:
        if not os.path.exists(self.journal_path):
            return
        with open(self.journal_path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    d = json.loads(line)
                except ValueError:
                    continue  # a torn last line
                if d.get("deleted"):
                    self.state.messages.pop(d["deleted"], None)
                    self.state.local_ids.pop(d["deleted"], None)
                    continue
                m = SessionMessage.from_store(d)
                if m.local_id is not None and m.local_id in self.state.local_ids.get(m.session_id, {}):
                    continue
                self.state.add_message(m)
        for sid, msgs in self.state.messages.items():
            s = self.state.sessions.get(sid)
            if s is not None and msgs:
                s.seq = max(s.seq, msgs[-1].seq)

    def _journal_write(self, obj: dict) -> None:
        if not self.journal_path:
            return
        if self._journal is None:
            self._journal = open(self.journal_path, "a")
        self._journal.write(json.dumps(obj) + "\n")
        self._journal.flush()

    def reset_journal(self) -> None:
        if not self.journal_path:
            return
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        with open(self.journal_path, "w"):
            pass

    # ------------------------------------------------------------ log

    def log(self, session_id: Optional[str], event: str, payload: Any = None, **extra) -> dict:
        rec = {"t": time.time() * 1000, "sessionId": session_id, "event": event, "payload": payload}
        rec.update({k: v for k, v in extra.items() if v is not None})
        self.log_events.append(rec)
        return rec

    # ------------------------------------------------------------ rooms and emits

    @staticmethod
    def user_room(aid: str) -> str:
        return f"user:{aid}:user-scoped"

    @staticmethod
    def session_room(aid: str, sid: str) -> str:
        return f"user:{aid}:session:{sid}"

    def interested(self, aid: str, sid: str) -> list[str]:
        return [self.session_room(aid, sid), self.user_room(aid)]

    async def emit_update(self, aid: str, body: dict, rooms: list[str], skip_sid: Optional[str] = None) -> dict:
        seq = self.state.next_seq(aid) if aid in self.state.accounts else 0
        env = {"id": update_id(), "seq": seq, "body": body, "createdAt": now_ms()}
        await self.sio.emit("update", env, to=rooms, skip_sid=skip_sid)
        return env

    async def emit_activity(self, s: Session, active: bool, at: int, thinking: bool) -> None:
        payload = {"type": "activity", "id": s.id, "active": active, "activeAt": at, "thinking": bool(thinking)}
        # M: user-scoped only; S: every connection of the account.
        room = f"user:{s.account_id}" if self.legacy else self.user_room(s.account_id)
        await self.sio.emit("ephemeral", payload, to=room)

    # ------------------------------------------------------------ sessions

    def create_session(self, aid: str, tag: str, metadata: str, dek: Optional[str]) -> tuple[Session, bool]:
        existing = self.state.session_by_tag(aid, tag)
        if existing is not None:
            self.stopped.pop(existing.id, None)  # resumeSessionUpdates
            return existing, False
        t = now_ms()
        s = Session(id=new_cuid(), account_id=aid, tag=tag, metadata=metadata, data_encryption_key=dek,
                    active_at=t, created_at=t, updated_at=t)
        self.state.sessions[s.id] = s
        self.persist()
        return s, True

    def new_session_body(self, s: Session) -> dict:
        body = {"t": "new-session"}
        body.update({k: v for k, v in s.to_json().items() if k != "lastMessage"})
        return body

    def delete_session(self, s: Session) -> None:
        self.state.sessions.pop(s.id, None)
        self.state.messages.pop(s.id, None)
        self.state.local_ids.pop(s.id, None)
        self.stopped[s.id] = now_ms() + STOPPED_TTL_MS
        self._journal_write({"deleted": s.id})
        self.persist()

    def is_stopped(self, sid: str) -> bool:
        until = self.stopped.get(sid)
        if until is None:
            return False
        if until <= now_ms():
            del self.stopped[sid]
            return False
        return True

    def stop_heartbeats(self, sid: str) -> None:
        self.stopped[sid] = now_ms() + STOPPED_TTL_MS

    # ------------------------------------------------------------ messages

    def messages(self, sid: str) -> list[SessionMessage]:
        return self.state.messages.get(sid, [])

    def find_local(self, sid: str, local_id: str) -> Optional[SessionMessage]:
        return self.state.local_ids.get(sid, {}).get(local_id)

    def allocate_seq(self, s: Session, n: int = 1) -> list[int]:
        start = s.seq + 1
        s.seq += n
        s.updated_at = now_ms()
        return list(range(start, start + n))

    def store_message(self, s: Session, seq: int, content_b64: str, local_id: Optional[str]) -> SessionMessage:
        t = now_ms()
        m = SessionMessage(id=new_cuid(), session_id=s.id, seq=seq, local_id=local_id,
                           content={"t": "encrypted", "c": content_b64}, created_at=t, updated_at=t)
        self.state.add_message(m)
        self._journal_write(m.to_store())
        return m

    def new_message_body(self, sid: str, m: SessionMessage) -> dict:
        return {"t": "new-message", "sid": sid, "message": m.to_json()}

    # ------------------------------------------------------------ test-route views

    def session_view(self, s: Session) -> dict:
        return dict(s.to_store(), stoppedUntil=self.stopped.get(s.id),
                    messageCount=len(self.messages(s.id)))


def get_hub(ctx) -> SessionHub:
    hub = ctx.extra.get("sessions")
    if hub is None:
        hub = SessionHub(ctx)
        ctx.extra["sessions"] = hub
    return hub
