"""In-memory state of the Happy Server emulator, shared by the REST routes
(rest.py) and the Socket.IO side. Plain Python objects; everything runs on
the aiohttp event loop, so no locking is needed."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Account:
    id: str
    public_key: bytes  # Ed25519 public key (challenge login) or b"" for test accounts
    seq: int = 0


@dataclass
class Machine:
    id: str
    account_id: str
    metadata: str
    metadata_version: int
    daemon_state: Optional[str]
    daemon_state_version: int
    data_encryption_key: Optional[str]
    seq: int = 0
    active: bool = False
    active_at: int = field(default_factory=now_ms)
    created_at: int = field(default_factory=now_ms)
    updated_at: int = field(default_factory=now_ms)

    def to_json(self, with_seq: bool = True) -> dict:
        d = {
            "id": self.id,
            "metadata": self.metadata,
            "metadataVersion": self.metadata_version,
            "daemonState": self.daemon_state,
            "daemonStateVersion": self.daemon_state_version,
            "dataEncryptionKey": self.data_encryption_key,
            "active": self.active,
            "activeAt": self.active_at,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if with_seq:
            d["seq"] = self.seq
        return d


def new_cuid() -> str:
    """An id shaped like Prisma's cuid(): "c" + 24 lowercase base-36 characters."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "c" + "".join(secrets.choice(alphabet) for _ in range(24))


@dataclass
class Session:
    """A server session (SESSIONS.md §2; Prisma model Session)."""
    id: str
    account_id: str
    tag: str
    metadata: str
    metadata_version: int = 0
    agent_state: Optional[str] = None
    agent_state_version: int = 0
    data_encryption_key: Optional[str] = None  # base64 as received
    seq: int = 0  # last allocated message seq
    active: bool = True
    active_at: int = field(default_factory=now_ms)
    created_at: int = field(default_factory=now_ms)
    updated_at: int = field(default_factory=now_ms)
    thinking: bool = False  # last session-alive value (not part of the wire record)

    def to_json(self) -> dict:
        """The wire record of POST /v1/sessions and GET /v1/sessions."""
        return {
            "id": self.id,
            "seq": self.seq,
            "metadata": self.metadata,
            "metadataVersion": self.metadata_version,
            "agentState": self.agent_state,
            "agentStateVersion": self.agent_state_version,
            "dataEncryptionKey": self.data_encryption_key,
            "active": self.active,
            "activeAt": self.active_at,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "lastMessage": None,
        }

    def to_store(self) -> dict:
        return dict(self.to_json(), accountId=self.account_id, tag=self.tag, thinking=self.thinking)

    @staticmethod
    def from_store(d: dict) -> "Session":
        return Session(id=d["id"], account_id=d["accountId"], tag=d["tag"], metadata=d["metadata"],
                       metadata_version=d.get("metadataVersion", 0), agent_state=d.get("agentState"),
                       agent_state_version=d.get("agentStateVersion", 0),
                       data_encryption_key=d.get("dataEncryptionKey"), seq=d.get("seq", 0),
                       active=d.get("active", True), active_at=d.get("activeAt", now_ms()),
                       created_at=d.get("createdAt", now_ms()), updated_at=d.get("updatedAt", now_ms()),
                       thinking=d.get("thinking", False))


@dataclass
class SessionMessage:
    """A stored session message (Prisma model SessionMessage); content is {"t":"encrypted","c":b64}."""
    id: str
    session_id: str
    seq: int
    local_id: Optional[str]
    content: Any
    created_at: int = field(default_factory=now_ms)
    updated_at: int = field(default_factory=now_ms)

    def to_json(self, with_content: bool = True) -> dict:
        d = {"id": self.id, "seq": self.seq}
        if with_content:
            d["content"] = self.content
        d.update({"localId": self.local_id, "createdAt": self.created_at, "updatedAt": self.updated_at})
        return d

    def to_store(self) -> dict:
        return dict(self.to_json(), sessionId=self.session_id)

    @staticmethod
    def from_store(d: dict) -> "SessionMessage":
        return SessionMessage(id=d["id"], session_id=d["sessionId"], seq=d["seq"], local_id=d.get("localId"),
                              content=d.get("content"), created_at=d.get("createdAt", now_ms()),
                              updated_at=d.get("updatedAt", now_ms()))


@dataclass
class AuthRequest:
    public_key: bytes
    supports_v2: bool
    response: Optional[str] = None  # b64 bundle from the approving app
    response_account_id: Optional[str] = None


@dataclass
class Fault:
    """Makes the next `count` matching requests fail in a chosen way."""
    method: str  # "GET", "POST", ... or "*"
    path: str  # exact path, or a prefix ending in "*"
    count: int
    status: int = 500
    body: Optional[str] = None  # raw body; default: the server's error shape
    garbage: bool = False  # 200 with a body that is not JSON
    delay: float = 0.0  # seconds to wait before answering

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


class ServerState:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}  # id -> account
        self.accounts_by_key: dict[str, str] = {}  # hex(public key) -> id
        self.tokens: dict[str, str] = {}  # token -> account id
        self.machines: dict[str, Machine] = {}  # machine id (globally unique) -> machine
        self.sessions: dict[str, Session] = {}  # session id -> session
        self.messages: dict[str, list[SessionMessage]] = {}  # session id -> messages in seq order
        self.local_ids: dict[str, dict[str, SessionMessage]] = {}  # session id -> localId -> message
        self.auth_requests: dict[str, AuthRequest] = {}  # hex(public key) -> request
        self.faults: list[Fault] = []
        self.request_log: list[dict] = []
        # Hooks for the socket side: fn(account_id, event_name, payload, machine_id|None)
        self.listeners: list[Callable[[str, str, Any, Optional[str]], None]] = []
        # Saves the state file when one is configured (set by machine_socket.py).
        self.persist: Callable[[], None] = lambda: None

    # accounts and tokens
    def upsert_account(self, public_key: bytes) -> Account:
        k = public_key.hex()
        if k in self.accounts_by_key:
            return self.accounts[self.accounts_by_key[k]]
        acc = Account(id="acc_" + secrets.token_hex(8), public_key=public_key)
        self.accounts[acc.id] = acc
        if public_key:
            self.accounts_by_key[k] = acc.id
        return acc

    def create_account(self) -> Account:
        acc = Account(id="acc_" + secrets.token_hex(8), public_key=b"")
        self.accounts[acc.id] = acc
        return acc

    def mint_token(self, account_id: str) -> str:
        tok = "tok_" + secrets.token_urlsafe(24)
        self.tokens[tok] = account_id
        return tok

    def account_for_token(self, token: str) -> Optional[Account]:
        aid = self.tokens.get(token)
        return self.accounts.get(aid) if aid else None

    def revoke(self, token: Optional[str] = None, account_id: Optional[str] = None) -> int:
        gone = [t for t, a in self.tokens.items() if t == token or (account_id is not None and a == account_id)]
        for t in gone:
            del self.tokens[t]
        return len(gone)

    def next_seq(self, account_id: str) -> int:
        acc = self.accounts[account_id]
        acc.seq += 1
        return acc.seq

    # machines
    def machines_of(self, account_id: str) -> list[Machine]:
        ms = [m for m in self.machines.values() if m.account_id == account_id]
        ms.sort(key=lambda m: m.active_at, reverse=True)
        return ms

    def machine_of(self, account_id: str, machine_id: str) -> Optional[Machine]:
        m = self.machines.get(machine_id)
        return m if m and m.account_id == account_id else None

    # sessions
    def sessions_of(self, account_id: str) -> list[Session]:
        ss = [s for s in self.sessions.values() if s.account_id == account_id]
        ss.sort(key=lambda s: s.updated_at, reverse=True)
        return ss

    def session_of(self, account_id: str, session_id: str) -> Optional[Session]:
        s = self.sessions.get(session_id)
        return s if s and s.account_id == account_id else None

    def session_by_tag(self, account_id: str, tag: str) -> Optional[Session]:
        for s in self.sessions.values():
            if s.account_id == account_id and s.tag == tag:
                return s
        return None

    def add_message(self, m: SessionMessage) -> None:
        msgs = self.messages.setdefault(m.session_id, [])
        if msgs and msgs[-1].seq > m.seq:  # keep seq order (loading a journal)
            msgs.append(m)
            msgs.sort(key=lambda x: x.seq)
        else:
            msgs.append(m)
        if m.local_id is not None:
            self.local_ids.setdefault(m.session_id, {})[m.local_id] = m

    def emit(self, account_id: str, event: str, payload: Any, machine_id: Optional[str] = None) -> None:
        for fn in list(self.listeners):
            try:
                fn(account_id, event, payload, machine_id)
            except Exception:  # a listener never breaks a REST answer
                pass

    # faults
    def take_fault(self, method: str, path: str) -> Optional[Fault]:
        for f in self.faults:
            if f.count > 0 and f.matches(method, path):
                f.count -= 1
                if f.count == 0:
                    self.faults.remove(f)
                return f
        return None
