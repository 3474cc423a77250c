"""Session events on the shared Socket.IO server (SESSIONS.md §3-§5; upstream
M:srv/sources/app/api/socket/sessionUpdateHandler.ts and usageHandler.ts). Like
upstream, the handlers are attached to every socket (not only session-scoped ones);
authentication, rooms and RPC routing are machine_socket.py's.

- `session-alive {sid, time, thinking?, mode?}` (no ack): dropped when `time` is not a
  number or older than 10 min (a future time is clamped), when the session is unknown
  or (M) was ended/archived less than 60 s ago; else sets active/activeAt and emits
  `ephemeral {type:"activity", id, active:true, activeAt, thinking}` to the user-scoped
  sockets (S: to every socket of the account). Logged with the server receive time.
- `session-end {sid, time}` (no ack): active=false, activeAt=time, activity ephemeral.
- `message {sid, message, localId?}` (no ack): stored with the next session seq (the seq
  is taken before the duplicate check, so gaps are normal), a duplicate localId is
  dropped, `update` new-message to every interested socket except the sender.
- `update-metadata {sid, expectedVersion, metadata}` / `update-state {sid,
  expectedVersion, agentState}` (ack): `{result:"success", version, <field>}` |
  `{result:"version-mismatch", version, <field>}` | `{result:"error"}`; update-metadata
  for an unknown session never acks. On success `update` update-session to every
  interested socket including the sender. Stricter than production: a value that is
  not base64 gets `{result:"error"}`.
- `usage-report {key, sessionId?, tokens, cost}` (ack when asked), `app-state {state}`.

Test control (POST /__test/sessions/config): `dropAcks {event: N}` applies the next N
events but sends no ack; `ignoreEvents {event: N}` neither applies nor acks them.
"""
from __future__ import annotations

import time

from .sessions import MAX_ALIVE_AGE_MS, b64bytes, get_hub, is_number
from .state import now_ms


def register(app, ctx):
    hub = get_hub(ctx)
    sio = hub.sio
    state = hub.state
    sync = ctx.extra.get("machine_sync") or {"sockets": {}}
    no_ack = sio.not_handled

    def info_of(sid):
        return sync["sockets"].get(sid)

    def take(counter: dict, event: str) -> bool:
        n = counter.get(event, 0)
        if n > 0:
            counter[event] = n - 1
            return True
        return False

    # ------------------------------------------------------------ hooks from machine_socket's log

    def hook(sid, event, payload, ack, info):
        info = info or {}
        if event == "connect" and isinstance(payload, dict) and payload.get("appState"):
            hub.app_state[sid] = "active" if payload.get("appState") == "active" else "background"
        if event == "disconnect":
            hub.app_state.pop(sid, None)
        if event in ("connect", "disconnect"):
            if info.get("clientType") == "session-scoped":
                hub.log(info.get("sessionId"), event, payload, socket=sid, happyClient=info.get("happyClient"))
            return
        if event in ("rpc-register", "rpc-unregister", "rpc-call"):
            method = payload.get("method") if isinstance(payload, dict) else None
            target = None
            if isinstance(method, str) and ":" in method:
                prefix = method.split(":", 1)[0]
                if prefix in state.sessions:
                    target = prefix
            if target is None and info.get("clientType") == "session-scoped" and event != "rpc-call":
                target = info.get("sessionId")
            if target is None:
                return
            if event == "rpc-call":
                hub.log(target, event, {"method": method}, socket=sid, ack=ack)
            else:
                hub.log(target, event, payload, socket=sid, clientType=info.get("clientType"))
    ctx.extra.setdefault("sync_hooks", []).append(hook)

    # ------------------------------------------------------------ keep-alive and end

    @sio.on("session-alive")
    async def session_alive(sid, data=None, *rest):
        received = time.time() * 1000
        info = info_of(sid)
        d = data if isinstance(data, dict) else {}
        rec = hub.log(d.get("sid"), "session-alive", data, socket=sid)
        rec["t"] = received
        if not info:
            rec["dropped"] = "unauthenticated"
            return no_ack
        t = d.get("time")
        if not is_number(t) or not d.get("sid"):
            rec["dropped"] = "invalid"
            return no_ack
        now = now_ms()
        t = min(t, now)
        if t < now - MAX_ALIVE_AGE_MS:
            rec["dropped"] = "too old"
            return no_ack
        s = state.session_of(info["accountId"], d["sid"]) if isinstance(d["sid"], str) else None
        if s is None:
            rec["dropped"] = "unknown session"
            return no_ack
        if not hub.legacy and hub.is_stopped(s.id):
            rec["dropped"] = "stopped"
            return no_ack
        t = int(t)
        thinking = bool(d.get("thinking") or False)
        was_active = s.active
        s.active, s.active_at, s.thinking = True, t, thinking
        if not was_active:
            s.updated_at = now
            hub.persist()
        await hub.emit_activity(s, True, t, thinking)
        return no_ack

    @sio.on("session-end")
    async def session_end(sid, data=None, *rest):
        info = info_of(sid)
        d = data if isinstance(data, dict) else {}
        rec = hub.log(d.get("sid"), "session-end", data, socket=sid)
        if not info:
            rec["dropped"] = "unauthenticated"
            return no_ack
        t = d.get("time")
        if not is_number(t):
            rec["dropped"] = "invalid"
            return no_ack
        now = now_ms()
        t = min(t, now)
        if t < now - MAX_ALIVE_AGE_MS:
            rec["dropped"] = "too old"
            return no_ack
        s = state.session_of(info["accountId"], d.get("sid")) if isinstance(d.get("sid"), str) else None
        if s is None:
            rec["dropped"] = "unknown session"
            return no_ack
        if not hub.legacy:
            hub.stop_heartbeats(s.id)
        s.active, s.active_at, s.thinking, s.updated_at = False, int(t), False, now
        hub.persist()
        await hub.emit_activity(s, False, int(t), False)
        return no_ack

    # ------------------------------------------------------------ messages

    @sio.on("message")
    async def message(sid, data=None, *rest):
        info = info_of(sid)
        d = data if isinstance(data, dict) else {}
        local_id = d.get("localId") if isinstance(d.get("localId"), str) else None
        rec = hub.log(d.get("sid"), "message", {"sid": d.get("sid"), "localId": d.get("localId"),
                                                "size": len(d["message"]) if isinstance(d.get("message"), str) else None},
                      socket=sid)
        if not info:
            rec["dropped"] = "unauthenticated"
            return no_ack
        if not isinstance(d.get("message"), str):
            rec["dropped"] = "message is not a string"
            return no_ack
        s = state.session_of(info["accountId"], d.get("sid")) if isinstance(d.get("sid"), str) else None
        if s is None:
            rec["dropped"] = "unknown session"
            return no_ack
        if b64bytes(d["message"]) is None:  # stricter than production
            rec["dropped"] = "message is not base64"
            return no_ack
        seq = hub.allocate_seq(s)[0]  # allocated before the duplicate check, as upstream
        if local_id is not None and hub.find_local(s.id, local_id) is not None:
            rec["dropped"] = "duplicate localId"
            rec["seqSkipped"] = seq
            return no_ack
        m = hub.store_message(s, seq, d["message"], local_id)
        rec["seq"] = m.seq
        await hub.emit_update(info["accountId"], hub.new_message_body(s.id, m),
                              hub.interested(info["accountId"], s.id), skip_sid=sid)
        return no_ack

    # ------------------------------------------------------------ versioned writes

    async def versioned(sid, data, field, event):
        info = info_of(sid)
        d = data if isinstance(data, dict) else {}
        rec = hub.log(d.get("sid"), event, data, socket=sid)
        if not info:
            rec["ack"] = "none (unauthenticated)"
            return no_ack
        value = d.get(field)
        value_ok = isinstance(value, str) or (field == "agentState" and value is None)
        if not d.get("sid") or not value_ok or not is_number(d.get("expectedVersion")):
            rec["ack"] = ack = {"result": "error"}
            return ack
        if isinstance(value, str) and b64bytes(value) is None:  # stricter than production
            rec["ack"] = ack = {"result": "error"}
            rec["error"] = f"{field} is not base64"
            return ack
        s = state.session_of(info["accountId"], d["sid"]) if isinstance(d["sid"], str) else None
        if s is None:
            if field == "metadata":
                rec["ack"] = "none (unknown session)"  # upstream returns without calling back
                return no_ack
            rec["ack"] = ack = {"result": "error"}
            return ack
        if take(hub.ignore_events, event):
            rec["ack"] = "none (ignored by test config)"
            return no_ack
        expected = d["expectedVersion"]
        cur_v, cur = (s.metadata_version, s.metadata) if field == "metadata" else (s.agent_state_version, s.agent_state)
        if cur_v != expected:
            rec["ack"] = ack = {"result": "version-mismatch", "version": cur_v, field: cur}
            return ack
        new_v = int(expected) + 1
        if field == "metadata":
            s.metadata, s.metadata_version = value, new_v
        else:
            s.agent_state, s.agent_state_version = value, new_v
        s.updated_at = now_ms()
        hub.persist()
        await hub.emit_update(info["accountId"], {"t": "update-session", "id": s.id,
                                                  field: {"value": value, "version": new_v}},
                              hub.interested(info["accountId"], s.id))
        ack = {"result": "success", "version": new_v, field: value}
        if take(hub.drop_acks, event):
            rec["ack"] = "dropped by test config"
            rec["wouldAck"] = ack
            return no_ack
        rec["ack"] = ack
        return ack

    @sio.on("update-metadata")
    async def update_metadata(sid, data=None, *rest):
        return await versioned(sid, data, "metadata", "update-metadata")

    @sio.on("update-state")
    async def update_state(sid, data=None, *rest):
        return await versioned(sid, data, "agentState", "update-state")

    # ------------------------------------------------------------ usage, app state

    @sio.on("usage-report")
    async def usage_report(sid, data=None, *rest):
        info = info_of(sid)
        d = data if isinstance(data, dict) else {}
        rec = hub.log(d.get("sessionId"), "usage-report", data, socket=sid)
        if not info:
            return no_ack
        key, tokens, cost, ssid = d.get("key"), d.get("tokens"), d.get("cost"), d.get("sessionId")
        if not key or not isinstance(key, str):
            ack = {"success": False, "error": "Invalid key"}
        elif not isinstance(tokens, dict) or not is_number(tokens.get("total")):
            ack = {"success": False, "error": "Invalid tokens object - must include total"}
        elif not isinstance(cost, dict) or not is_number(cost.get("total")):
            ack = {"success": False, "error": "Invalid cost object - must include total"}
        elif ssid and not isinstance(ssid, str):
            ack = {"success": False, "error": "Invalid sessionId"}
        elif ssid and state.session_of(info["accountId"], ssid) is None:
            ack = {"success": False, "error": "Session not found"}
        else:
            k = (info["accountId"], ssid or None, key)
            t = now_ms()
            old = hub.usage.get(k)
            report = {"id": old["id"] if old else f"usage{len(hub.usage) + 1}", "accountId": info["accountId"],
                      "sessionId": ssid or None, "key": key, "data": {"tokens": tokens, "cost": cost},
                      "createdAt": old["createdAt"] if old else t, "updatedAt": t}
            hub.usage[k] = report
            if ssid:
                await sio.emit("ephemeral", {"type": "usage", "id": ssid, "key": key, "tokens": tokens,
                                             "cost": cost, "timestamp": t}, to=hub.user_room(info["accountId"]))
            ack = {"success": True, "reportId": report["id"], "createdAt": report["createdAt"],
                   "updatedAt": report["updatedAt"]}
        rec["ack"] = ack
        return ack

    @sio.on("app-state")
    async def app_state(sid, data=None, *rest):
        hub.app_state[sid] = "active" if isinstance(data, dict) and data.get("state") == "active" else "background"
        return no_ack
