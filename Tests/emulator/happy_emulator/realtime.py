"""Socket.IO endpoint (path /v1/updates) with the Happy Server's auth rules, plus
test events: `echo`, `ack-me`, `big-reply`."""
import asyncio
import socket

import socketio


def _nodelay(environ):
    # aiohttp sets TCP_NODELAY on accepted sockets; make sure anyway.
    req = environ.get("aiohttp.request")
    try:
        sock = req.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except Exception:
        pass


def register(app, ctx):
    cfg = ctx.config
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins="*",
        ping_interval=cfg.ping_interval,
        ping_timeout=cfg.ping_timeout,
        max_http_buffer_size=cfg.max_payload,
        transports=["websocket", "polling"],
    )
    sio.attach(app, socketio_path=cfg.path.strip("/"))
    ctx.sio = sio

    @sio.event
    async def connect(sid, environ, auth):
        _nodelay(environ)
        auth = auth if isinstance(auth, dict) else {}
        token = auth.get("token")
        if not token:
            raise socketio.exceptions.ConnectionRefusedError("Missing authentication token")
        ctype = auth.get("clientType")
        if ctype == "machine-scoped" and not auth.get("machineId"):
            raise socketio.exceptions.ConnectionRefusedError("Machine ID required for machine-scoped clients")
        if ctype == "session-scoped" and not auth.get("sessionId"):
            raise socketio.exceptions.ConnectionRefusedError("Session ID required for session-scoped clients")
        if token not in cfg.tokens:
            raise socketio.exceptions.ConnectionRefusedError("Invalid authentication token")
        ctx.clients[sid] = {k: v for k, v in auth.items() if k != "token"}
        ctx.connects += 1

    @sio.event
    async def disconnect(sid, *args):
        ctx.clients.pop(sid, None)

    @sio.on("*")
    async def any_event(event, sid, *args):
        ctx.events.append({"sid": sid, "event": event, "args": list(args)})
        if event == "echo":
            # Sends the same arguments back as an `echo` event, and as the ack.
            await sio.emit("echo", list(args) if len(args) != 1 else args[0], to=sid)
            return args[0] if len(args) == 1 else list(args)
        if event == "ack-me":
            return {"ok": True, "got": args[0] if args else None}
        if event == "ack-two":
            return ("first", {"second": 2})
        if event == "big-reply":
            size = int(args[0]) if args else 2_000_000
            await sio.emit("big", "x" * size, to=sid)
            return None
        if event == "slow-ack":
            await asyncio.sleep(float(args[0]) if args else 1.0)
            return "late"
        if event == "ping":
            return {}
        return None
