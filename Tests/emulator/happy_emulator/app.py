"""Builds the one aiohttp application that every route module registers onto."""
import importlib
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from aiohttp import web

# Modules attached in this order; a missing optional module is skipped.
ROUTE_MODULES = ["realtime", "testroutes", "rest", "machine_socket", "sessions_rest", "session_socket"]
OPTIONAL_MODULES = {"rest", "machine_socket", "sessions_rest", "session_socket"}


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/v1/updates"
    ping_interval: float = 15.0
    ping_timeout: float = 45.0
    max_payload: int = 1_000_000
    tokens: List[str] = field(default_factory=lambda: ["test-token"])
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    # The older standalone server (slopus/happy-server): no /v3 message routes, no
    # push-event, no archive route, old-style token rejection, no RPC grace wait.
    legacy_server: bool = False
    # Only the old-style token rejection (`error` event + disconnect instead of connect_error).
    legacy_auth: bool = False


@dataclass
class Context:
    """Shared state between route modules (socket server, recorded traffic)."""
    config: Config
    sio: Any = None
    # Every event a client sent: {"sid", "event", "args"}.
    events: List[Dict[str, Any]] = field(default_factory=list)
    # Acks the clients returned to server-initiated emits: {"event", "ack"}.
    acks: List[Dict[str, Any]] = field(default_factory=list)
    # sid -> auth object of connected clients.
    clients: Dict[str, Any] = field(default_factory=dict)
    connects: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)


def create_app(config: Config):
    app = web.Application(client_max_size=64 * 1024 * 1024)
    ctx = Context(config=config)
    app["ctx"] = ctx
    for name in ROUTE_MODULES:
        try:
            mod = importlib.import_module(f"happy_emulator.{name}")
        except ModuleNotFoundError as e:
            if name in OPTIONAL_MODULES and e.name == f"happy_emulator.{name}":
                continue
            raise
        mod.register(app, ctx)
    return app, ctx


def make_listen_socket(host: str, port: int) -> socket.socket:
    """A bound listening socket (lets `--port 0` report the real port)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    s.setblocking(False)
    return s
