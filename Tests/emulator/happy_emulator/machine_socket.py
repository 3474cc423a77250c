"""Server side of machine sync (protocol sheet §5–§6, §10) on the shared Socket.IO
server: token-store auth with the exact refusal messages, rooms, `machine-alive` log,
compare-and-swap `machine-update-metadata` / `machine-update-state` with the acks of
§6.2 and `update` broadcasts (§6.3), RPC registration and routing (§6.4).

Registered after `realtime` and `rest` (app.ROUTE_MODULES): it replaces the
`connect`/`disconnect` handlers of realtime.py with a superset (the static
`--tokens` still work, with an account of their own) and shares rest.py's
ServerState (ctx.extra["server_state"]).

Test routes (all JSON):
- GET  /__test/sync/log            {"events": [{t, sid, event, payload, ack?}], "alive": [...], "sockets": {sid: info}}
- POST /__test/sync/clear          empties the logs
- POST /__test/sync/bump           {machineId, field: "daemonState"|"metadata", value?: b64, by?: 1}: bumps the stored
                                   version (and value) as another client would, broadcasts the `update`
- POST /__test/sync/revoke         {token}: revokes the token and disconnects its sockets
- POST /__test/sync/config         {rpcWait?: s, rpcTimeout?: s, rpcPresencePoll?: s, silentUpdates?: bool,
                                   legacyAuth?: bool}
                                   legacyAuth: the older standalone server's token rejection (the connection is
                                   accepted, then an `error` event {message} and a server disconnect)
- POST /__test/sync/disconnect     {machineId?}: server-side disconnect of machine sockets
- GET  /__test/sync/machine/{id}   the stored record (encrypted fields as stored)

State file: with HAPPY_EMULATOR_STATE_FILE set, accounts, tokens, machines and
sessions (records with their seq counters) are loaded at start and saved at shutdown
(SIGTERM) and after every socket mutation, so a test can stop the emulator and start it
again on the same port ("server restart"). Session messages go to an append-only
journal next to it (sessions.py).

Hooks: `ctx.extra["sync_hooks"]` is a list of fn(sid, event, payload, ack, info) called
for every logged event (the session modules use it for rpc-register/-call and
connect/disconnect of session-scoped sockets); `ctx.extra["persist"]()` saves the state.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import socketio
from aiohttp import web

from .state import Account, Machine, ServerState, Session, now_ms


def _nodelay(environ):
    req = environ.get("aiohttp.request")
    try:
        sock = req.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except Exception:
        pass


# ---------------------------------------------------------------- persistence

def save_state(state: ServerState, path: str) -> None:
    data = {
        "accounts": [{"id": a.id, "publicKey": a.public_key.hex(), "seq": a.seq} for a in state.accounts.values()],
        "tokens": state.tokens,
        "machines": [dict(m.to_json(), accountId=m.account_id) for m in state.machines.values()],
        "sessions": [s.to_store() for s in state.sessions.values()],
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def load_state(state: ServerState, path: str) -> None:
    if not os.path.exists(path):
        return
    with open(path) as f:
        data = json.load(f)
    for a in data.get("accounts", []):
        pk = bytes.fromhex(a["publicKey"])
        state.accounts[a["id"]] = Account(id=a["id"], public_key=pk, seq=a.get("seq", 0))
        if pk:
            state.accounts_by_key[pk.hex()] = a["id"]
    state.tokens.update(data.get("tokens", {}))
    for m in data.get("machines", []):
        state.machines[m["id"]] = Machine(
            id=m["id"], account_id=m["accountId"], metadata=m["metadata"], metadata_version=m["metadataVersion"],
            daemon_state=m.get("daemonState"), daemon_state_version=m.get("daemonStateVersion", 0),
            data_encryption_key=m.get("dataEncryptionKey"), seq=m.get("seq", 0), active=m.get("active", False),
            active_at=m.get("activeAt", now_ms()), created_at=m.get("createdAt", now_ms()),
            updated_at=m.get("updatedAt", now_ms()))
    for s in data.get("sessions", []):
        state.sessions[s["id"]] = Session.from_store(s)


# ---------------------------------------------------------------- the module

def register(app, ctx):
    sio: socketio.AsyncServer = ctx.sio
    cfg = ctx.config
    state: ServerState = ctx.extra.get("server_state")
    if state is None:
        state = ServerState()
        ctx.extra["server_state"] = state
    state_file = os.environ.get("HAPPY_EMULATOR_STATE_FILE")
    if state_file:
        load_state(state, state_file)

    def persist():
        if state_file:
            try:
                save_state(state, state_file)
            except Exception:
                pass

    async def on_cleanup(_app):
        persist()
    app.on_cleanup.append(on_cleanup)
    app.on_shutdown.append(on_cleanup)
    ctx.extra["persist"] = persist
    state.persist = persist
    hooks = ctx.extra.setdefault("sync_hooks", [])

    sync = {
        "events": [],      # every machine-sync event: {t, sid, event, payload, ack?}
        "alive": [],       # machine-alive: {t, machineId, time, sid}
        "sockets": {},     # sid -> {accountId, clientType, machineId, token, happyClient}
        "rpcWait": 15.0,
        "rpcTimeout": 30.0,
        "rpcPresencePoll": 2.0,
        "silentUpdates": False,
        "legacyAuth": bool(getattr(cfg, "legacy_auth", False)),
    }
    ctx.extra["machine_sync"] = sync
    static_accounts = {}

    def account_for(token):
        acc = state.account_for_token(token)
        if acc is not None:
            return acc.id
        if token in cfg.tokens:  # realtime tests' static tokens
            if token not in static_accounts:
                static_accounts[token] = state.create_account().id
            return static_accounts[token]
        return None

    def log(sid, event, payload, ack=None, info=None):
        rec = {"t": time.time() * 1000, "sid": sid, "event": event, "payload": payload}
        if ack is not None:
            rec["ack"] = ack
        sync["events"].append(rec)
        ctx.events.append({"sid": sid, "event": event, "args": [payload]})
        for fn in list(hooks):
            try:
                fn(sid, event, payload, ack, info if info is not None else sync["sockets"].get(sid))
            except Exception:
                pass

    def legacy_server():
        return bool((ctx.extra.get("server_mode") or {}).get("legacyServer"))

    def old_style_auth():
        """The older standalone server (S:sources/app/api/socket.ts) authenticates in the
        `connection` handler: the Socket.IO connect succeeds, then it emits `error`
        {message} and disconnects. The current server refuses in a middleware
        (connect_error)."""
        return sync["legacyAuth"] or legacy_server()

    async def refuse(sid, message, auth):
        log(sid, "connect-refused", {"message": message, "style": "error-event" if old_style_auth() else "connect_error",
                                     **{k: v for k, v in auth.items() if k != "token"}})
        if not old_style_auth():
            raise socketio.exceptions.ConnectionRefusedError(message)

        async def later():
            await asyncio.sleep(0.05)  # after the CONNECT packet went out
            try:
                await sio.emit("error", {"message": message}, to=sid)
                await sio.disconnect(sid)
            except Exception:
                pass
        asyncio.ensure_future(later())
        return True

    def user_room(aid):
        return f"user:{aid}:user-scoped"

    def machine_room(aid, mid):
        return f"user:{aid}:machine:{mid}"

    async def broadcast_update(aid, body, machine_id):
        seq = state.next_seq(aid) if aid in state.accounts else 0
        env = {"id": f"u{seq}x{int(time.time() * 1000) % 100000}", "seq": seq, "body": body, "createdAt": now_ms()}
        rooms = [user_room(aid)]
        if machine_id:
            rooms.append(machine_room(aid, machine_id))
        await sio.emit("update", env, to=rooms)

    # rest.py's hook: (account_id, event, payload, machine_id)
    def rest_listener(aid, event, payload, machine_id):
        if event != "update":
            return
        env = payload if isinstance(payload, dict) and "body" in payload else {
            "id": "r", "seq": 0, "body": payload, "createdAt": now_ms()}
        rooms = [user_room(aid)]
        if machine_id:
            rooms.append(machine_room(aid, machine_id))
        asyncio.ensure_future(sio.emit("update", env, to=rooms))
    state.listeners.append(rest_listener)

    # ------------------------------------------------------------ connect

    @sio.on("connect")
    async def connect(sid, environ, auth):
        _nodelay(environ)
        auth = auth if isinstance(auth, dict) else {}
        token = auth.get("token")
        if not token:
            return await refuse(sid, "Missing authentication token", auth)
        ctype = auth.get("clientType")
        if ctype not in ("machine-scoped", "session-scoped", "user-scoped"):
            ctype = "user-scoped"
        if ctype == "session-scoped" and not auth.get("sessionId"):
            return await refuse(sid, "Session ID required for session-scoped clients", auth)
        if ctype == "machine-scoped" and not auth.get("machineId"):
            return await refuse(sid, "Machine ID required for machine-scoped clients", auth)
        aid = account_for(token)
        if aid is None:
            return await refuse(sid, "Invalid authentication token", auth)
        ctx.clients[sid] = {k: v for k, v in auth.items() if k != "token"}
        ctx.connects += 1
        info = {"accountId": aid, "clientType": ctype, "machineId": auth.get("machineId"),
                "sessionId": auth.get("sessionId"), "token": token,
                "happyClient": auth.get("happyClient"), "connectedAt": time.time() * 1000}
        sync["sockets"][sid] = info
        await sio.enter_room(sid, f"user:{aid}")
        if ctype == "machine-scoped":
            await sio.enter_room(sid, machine_room(aid, auth["machineId"]))
            await sio.emit("ephemeral", {"type": "machine-activity", "id": auth["machineId"], "active": True,
                                         "activeAt": now_ms()}, to=user_room(aid))
        elif ctype == "session-scoped":
            await sio.enter_room(sid, f"user:{aid}:session:{auth['sessionId']}")
        else:
            await sio.enter_room(sid, user_room(aid))
        log(sid, "connect", {k: v for k, v in auth.items() if k != "token"})

    @sio.on("disconnect")
    async def disconnect(sid, *args):
        ctx.clients.pop(sid, None)
        info = sync["sockets"].pop(sid, None)
        log(sid, "disconnect", {}, info=info or {})
        if info and info["clientType"] == "machine-scoped":
            await sio.emit("ephemeral", {"type": "machine-activity", "id": info["machineId"], "active": False,
                                         "activeAt": now_ms()}, to=user_room(info["accountId"]))

    # ------------------------------------------------------------ machine events

    @sio.on("machine-alive")
    async def machine_alive(sid, data=None, *rest):
        info = sync["sockets"].get(sid)
        log(sid, "machine-alive", data)
        if not info or not isinstance(data, dict):
            return
        t, mid = data.get("time"), data.get("machineId")
        if not isinstance(t, (int, float)) or not mid:
            return
        sync["alive"].append({"t": time.time() * 1000, "machineId": mid, "time": t, "sid": sid})
        t = min(t, now_ms())
        if t < now_ms() - 10 * 60 * 1000:
            return
        m = state.machine_of(info["accountId"], mid)
        if m is None:
            return
        m.active = True
        m.active_at = int(t)
        await sio.emit("ephemeral", {"type": "machine-activity", "id": mid, "active": True, "activeAt": int(t)},
                       to=user_room(info["accountId"]))

    async def versioned(sid, data, field, event):
        info = sync["sockets"].get(sid)
        if not info or not isinstance(data, dict):
            ack = {"result": "error", "message": "Invalid parameters"}
            log(sid, event, data, ack)
            return ack
        mid, value, expected = data.get("machineId"), data.get(field), data.get("expectedVersion")
        if not mid or not isinstance(value, str) or not isinstance(expected, (int, float)) or isinstance(expected, bool):
            ack = {"result": "error", "message": "Invalid parameters"}
            log(sid, event, data, ack)
            return ack
        m = state.machine_of(info["accountId"], mid)
        if m is None:
            ack = {"result": "error", "message": "Machine not found"}
            log(sid, event, data, ack)
            return ack
        if field == "metadata":
            cur_v, cur = m.metadata_version, m.metadata
        else:
            cur_v, cur = m.daemon_state_version, m.daemon_state
        if cur_v != expected:
            ack = {"result": "version-mismatch", "version": cur_v, field: cur}
            log(sid, event, data, ack)
            return ack
        new_v = int(expected) + 1
        if field == "metadata":
            m.metadata, m.metadata_version = value, new_v
        else:
            m.daemon_state, m.daemon_state_version = value, new_v
            m.active = True
            m.active_at = now_ms()
        m.updated_at = now_ms()
        ack = {"result": "success", "version": new_v, field: value}
        log(sid, event, data, ack)
        persist()
        await broadcast_update(info["accountId"], {"t": "update-machine", "machineId": mid,
                                                   field: {"value": value, "version": new_v}}, mid)
        if sync["silentUpdates"]:
            await asyncio.sleep(3600)  # never ack (a server that does not answer)
        return ack

    @sio.on("machine-update-metadata")
    async def update_metadata(sid, data=None, *rest):
        return await versioned(sid, data, "metadata", "machine-update-metadata")

    @sio.on("machine-update-state")
    async def update_state(sid, data=None, *rest):
        return await versioned(sid, data, "daemonState", "machine-update-state")

    # ------------------------------------------------------------ RPC

    def rpc_room(aid, method):
        return f"rpc:{aid}:{method}"

    def room_members(room):
        try:
            return [s for s, _ in sio.manager.get_participants("/", room)]
        except Exception:
            return []

    @sio.on("rpc-register")
    async def rpc_register(sid, data=None, *rest):
        info = sync["sockets"].get(sid)
        log(sid, "rpc-register", data)
        method = data.get("method") if isinstance(data, dict) else None
        if not info or not isinstance(method, str) or not method:
            await sio.emit("rpc-error", {"type": "register", "error": "Invalid method name"}, to=sid)
            return
        await sio.enter_room(sid, rpc_room(info["accountId"], method))
        await sio.emit("rpc-registered", {"method": method}, to=sid)

    @sio.on("rpc-unregister")
    async def rpc_unregister(sid, data=None, *rest):
        info = sync["sockets"].get(sid)
        log(sid, "rpc-unregister", data)
        method = data.get("method") if isinstance(data, dict) else None
        if not info or not isinstance(method, str) or not method:
            await sio.emit("rpc-error", {"type": "unregister", "error": "Invalid method name"}, to=sid)
            return
        await sio.leave_room(sid, rpc_room(info["accountId"], method))
        await sio.emit("rpc-unregistered", {"method": method}, to=sid)

    @sio.on("rpc-call")
    async def rpc_call(sid, data=None, *rest):
        info = sync["sockets"].get(sid)
        method = data.get("method") if isinstance(data, dict) else None
        if not info or not isinstance(method, str):
            ack = {"ok": False, "error": "Invalid parameters: method is required"}
            log(sid, "rpc-call", data, ack)
            return ack
        room = rpc_room(info["accountId"], method)
        # The older server (S) answers at once; the current one waits up to 15 s
        # for a registration (M:srv/sources/app/api/socket/rpcHandler.ts:160-256).
        deadline = time.monotonic() + (0.0 if legacy_server() else sync["rpcWait"])
        members = room_members(room)
        while not members and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            members = room_members(room)
        if not members:
            ack = {"ok": False, "error": "RPC method not available"}
        elif members[0] == sid:
            ack = {"ok": False, "error": "Cannot call RPC on the same socket"}
        else:
            target = members[0]
            call = asyncio.ensure_future(sio.call("rpc-request", {"method": method, "params": data.get("params")},
                                                  to=target, timeout=sync["rpcTimeout"]))
            # Like upstream: poll the room while waiting; two consecutive misses of the
            # target abort the call with "RPC target disconnected".
            misses = 0
            while not call.done():
                await asyncio.wait([call], timeout=sync["rpcPresencePoll"])
                if call.done():
                    break
                if target in room_members(room):
                    misses = 0
                else:
                    misses += 1
                    if misses >= 2:
                        call.cancel()
                        break
            try:
                result = call.result()
                ack = {"ok": True, "result": result}
            except asyncio.CancelledError:
                ack = {"ok": False, "error": "RPC target disconnected"}
            except socketio.exceptions.TimeoutError:
                ack = {"ok": False, "error": "operation has timed out"}
            except Exception:
                ack = {"ok": False, "error": "RPC target disconnected" if target not in sync["sockets"] else "Internal error"}
        log(sid, "rpc-call", data, ack)
        return ack

    # ------------------------------------------------------------ test routes

    async def t_log(request):
        return web.json_response({"events": sync["events"], "alive": sync["alive"],
                                  "sockets": {s: {k: v for k, v in i.items() if k != "token"} for s, i in sync["sockets"].items()}})

    async def t_clear(request):
        sync["events"].clear()
        sync["alive"].clear()
        return web.json_response({"ok": True})

    async def t_bump(request):
        b = await request.json()
        m = state.machines.get(b.get("machineId"))
        if m is None:
            return web.json_response({"error": "Machine not found"}, status=404)
        field = b.get("field", "daemonState")
        by = int(b.get("by", 1))
        if field == "metadata":
            m.metadata_version += by
            if b.get("value"):
                m.metadata = b["value"]
            value, version = m.metadata, m.metadata_version
        else:
            m.daemon_state_version += by
            if b.get("value"):
                m.daemon_state = b["value"]
            value, version = m.daemon_state, m.daemon_state_version
        persist()
        if b.get("broadcast", True):
            await broadcast_update(m.account_id, {"t": "update-machine", "machineId": m.id,
                                                  field: {"value": value, "version": version}}, m.id)
        return web.json_response({"version": version})

    async def t_revoke(request):
        b = await request.json()
        token = b.get("token")
        n = state.revoke(token=token)
        sids = [s for s, i in list(sync["sockets"].items()) if i["token"] == token]
        for s in sids:
            await sio.disconnect(s)
        persist()
        return web.json_response({"revoked": n, "disconnected": len(sids)})

    async def t_config(request):
        b = await request.json()
        for k in ("rpcWait", "rpcTimeout", "rpcPresencePoll"):
            if k in b:
                sync[k] = float(b[k])
        for k in ("silentUpdates", "legacyAuth"):
            if k in b:
                sync[k] = bool(b[k])
        return web.json_response({k: sync[k] for k in ("rpcWait", "rpcTimeout", "rpcPresencePoll", "silentUpdates",
                                                       "legacyAuth")})

    async def t_disconnect(request):
        b = await request.json() if request.can_read_body else {}
        mid = (b or {}).get("machineId")
        sids = [s for s, i in list(sync["sockets"].items())
                if i["clientType"] == "machine-scoped" and (mid is None or i["machineId"] == mid)]
        for s in sids:
            await sio.disconnect(s)
        return web.json_response({"disconnected": len(sids)})

    async def t_machine(request):
        m = state.machines.get(request.match_info["id"])
        if m is None:
            return web.json_response({"error": "Machine not found"}, status=404)
        return web.json_response({"machine": dict(m.to_json(), accountId=m.account_id)})

    app.router.add_get("/__test/sync/log", t_log)
    app.router.add_post("/__test/sync/clear", t_clear)
    app.router.add_post("/__test/sync/bump", t_bump)
    app.router.add_post("/__test/sync/revoke", t_revoke)
    app.router.add_post("/__test/sync/config", t_config)
    app.router.add_post("/__test/sync/disconnect", t_disconnect)
    app.router.add_get("/__test/sync/machine/{id}", t_machine)
