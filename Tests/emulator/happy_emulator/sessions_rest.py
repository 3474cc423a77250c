"""REST routes of the session side (SESSIONS.md §2, §3.3, §4.1 B, §5.3, §9.3) and the
session test routes. The hub (sessions.py) holds the state; session_socket.py the
socket events.

Routes (Bearer token as for machines; validation runs before authentication, as in
Fastify where `app.authenticate` is a preHandler):
- POST   /v1/sessions {tag, metadata, agentState?, dataEncryptionKey?} → {"session": {...}}
         idempotent by (account, tag); stricter than production: `tag` a non-empty string,
         `metadata` base64, `dataEncryptionKey` null or base64 with byte 0 == 0x00 and at
         least 1+32+24+16+32 bytes; `agentState` is ignored. Emits `update` new-session to
         the user-scoped sockets.
- GET    /v1/sessions → {"sessions": [...]} newest `updatedAt` first, at most 150
- DELETE /v1/sessions/<sid> → {"success": true} (+ `update` delete-session)
- GET    /v1/sessions/<sid>/messages → {"messages": [...]} the last 150, newest first (S and M)
- POST   /v1/sessions/<sid>/archive → {"success": true} (M only)
- POST   /v1/sessions/<sid>/push-event {kind, title, body, data?} → {"success": true, "result", ...} (M only)
- GET    /v3/sessions/<sid>/messages?after_seq=N|before_seq=N&limit=L → {"messages", "hasMore"} (M only)
- POST   /v3/sessions/<sid>/messages {"messages": [{content, localId}]} → {"messages": [...]} (M only)

With `legacyServer` the M-only routes answer the older server's not-found shape
`404 {"error": "Not found", "path", "method"}` (S:sources/app/api/utils/enableErrorHandlers.ts).
"""
from __future__ import annotations

from aiohttp import web

from .rest import authenticate, bad_request, err, read_json
from .sessions import b64bytes, get_hub
from .state import now_ms

MIN_DEK_LEN = 1 + 32 + 24 + 16 + 32
NOT_FOUND = {"error": "Session not found"}


def not_found_route(request: web.Request) -> web.Response:
    return err(404, {"error": "Not found", "path": request.path_qs, "method": request.method})


def register(app, ctx):
    hub = get_hub(ctx)
    state = hub.state

    def owned_session(request, log_kind=None, log_body=None):
        """Authentication, then the account's session `sid`: (account, session, None), or
        (account or None, None, the error response); a 404 is logged under `log_kind`."""
        acc, denied = authenticate(request)
        if denied:
            return None, None, denied
        sid = request.match_info["sid"]
        s = state.session_of(acc.id, sid)
        if s is None:
            if log_kind:
                hub.log(sid, log_kind, log_body, status=404)
            return acc, None, err(404, NOT_FOUND)
        return acc, s, None

    def m_only(handler):
        async def wrapped(request):
            if hub.legacy:
                return not_found_route(request)
            return await handler(request)
        return wrapped

    # ------------------------------------------------------------ create / list / delete

    async def create(request):
        body = await read_json(request)
        problem = None
        if not isinstance(body, dict):
            problem = "body must be a JSON object"
        elif not isinstance(body.get("tag"), str) or not body["tag"]:
            problem = "tag must be a non-empty string"
        elif not isinstance(body.get("metadata"), str) or not body["metadata"] or b64bytes(body["metadata"]) is None:
            problem = "metadata must be a base64 string"
        elif body.get("agentState") is not None and not isinstance(body["agentState"], str):
            problem = "agentState must be a string or null"
        elif body.get("dataEncryptionKey") is not None:
            dek = b64bytes(body["dataEncryptionKey"])
            if dek is None:
                problem = "dataEncryptionKey must be base64"
            elif len(dek) < MIN_DEK_LEN or dek[0] != 0:
                problem = f"dataEncryptionKey must be 0x00 || ephemeral public key || nonce || box ({len(dek)} bytes, first byte {dek[0] if dek else None})"
        if problem:
            hub.log(None, "create-rejected", body if isinstance(body, dict) else None, error=problem)
            return bad_request(problem)
        acc, denied = authenticate(request)
        if denied:
            return denied
        s, created = hub.create_session(acc.id, body["tag"], body["metadata"], body.get("dataEncryptionKey"))
        hub.log(s.id, "create", {k: body.get(k) for k in ("tag", "metadata", "agentState", "dataEncryptionKey")},
                created=created, client=request.headers.get("X-Happy-Client"))
        if created:
            await hub.emit_update(acc.id, hub.new_session_body(s), [hub.user_room(acc.id)])
        return web.json_response({"session": s.to_json()})

    async def list_sessions(request):
        acc, denied = authenticate(request)
        if denied:
            return denied
        return web.json_response({"sessions": [s.to_json() for s in state.sessions_of(acc.id)[:150]]})

    async def delete(request):
        acc, denied = authenticate(request)
        if denied:
            return denied
        s = state.session_of(acc.id, request.match_info["sid"])
        if s is None:
            return err(404, {"error": "Session not found or not owned by user"})
        hub.delete_session(s)
        hub.log(s.id, "delete", None)
        await hub.emit_update(acc.id, {"t": "delete-session", "sid": s.id}, [hub.user_room(acc.id)])
        return web.json_response({"success": True})

    async def v1_messages(request):
        acc, s, refused = owned_session(request)
        if refused:
            return refused
        msgs = sorted(hub.messages(s.id), key=lambda m: (m.created_at, m.seq), reverse=True)[:150]
        return web.json_response({"messages": [m.to_json() for m in msgs]})

    async def archive(request):
        acc, denied = authenticate(request)
        if denied:
            return denied
        sid = request.match_info["sid"]
        hub.stop_heartbeats(sid)  # upstream clears before the lookup
        s = state.session_of(acc.id, sid)
        if s is None:
            hub.log(sid, "archive", None, status=404)
            return err(404, NOT_FOUND)
        t = now_ms()
        s.active, s.active_at, s.updated_at, s.thinking = False, t, t, False
        hub.persist()
        hub.log(s.id, "archive", await read_json(request) if request.can_read_body else None, status=200)
        await hub.emit_activity(s, False, t, False)
        return web.json_response({"success": True})

    async def push_event(request):
        body = await read_json(request)
        problem = None
        if not isinstance(body, dict):
            problem = "body must be a JSON object"
        elif body.get("kind") not in ("done", "permission", "question"):
            problem = "kind must be done|permission|question"
        elif not isinstance(body.get("title"), str) or not 1 <= len(body["title"]) <= 200:
            problem = "title must be a string of 1..200 characters"
        elif not isinstance(body.get("body"), str) or not 1 <= len(body["body"]) <= 500:
            problem = "body must be a string of 1..500 characters"
        elif "data" in body and body["data"] is not None and not isinstance(body["data"], dict):
            problem = "data must be an object"
        elif "data" in body and body["data"] is None:
            problem = "data must be an object"  # z.record(...).optional() rejects null
        if problem:
            hub.log(request.match_info["sid"], "push-event", body, status=400, error=problem)
            return bad_request(problem)
        acc, s, refused = owned_session(request, "push-event", body)
        if refused:
            return refused
        await hub.sio.emit("ephemeral", {"type": "session-event", "sessionId": s.id, "kind": body["kind"],
                                         "title": body["title"], "body": body["body"], "timestamp": now_ms()},
                           to=hub.interested(acc.id, s.id))
        if hub.push_result is not None:
            outcome = dict(hub.push_result)
        elif any(st == "active" for sk, st in hub.app_state.items()
                 if (ctx.extra.get("machine_sync", {}).get("sockets", {}).get(sk) or {}).get("accountId") == acc.id):
            outcome = {"result": "suppressed", "reason": "active-ui-client"}
        else:
            outcome = {"result": "no_tokens"}
        rec = {"sessionId": s.id, "t": now_ms(), **body, "outcome": outcome}
        hub.push_events.append(rec)
        hub.log(s.id, "push-event", body, status=200, outcome=outcome)
        return web.json_response({"success": True, **outcome})

    # ------------------------------------------------------------ /v3 messages

    async def v3_get(request):
        q = request.query
        problem = None
        vals = {}
        for name, lo in (("after_seq", 0), ("before_seq", 1), ("limit", 1)):
            if name in q:
                try:
                    v = float(q[name])
                    if v != int(v):
                        raise ValueError
                    v = int(v)
                except (ValueError, OverflowError):
                    problem = f"{name} must be an integer"
                    break
                if v < lo or (name == "limit" and v > 500):
                    problem = f"{name} out of range"
                    break
                vals[name] = v
        if problem is None and "after_seq" in vals and "before_seq" in vals:
            problem = "after_seq and before_seq are mutually exclusive"
        if problem:
            return bad_request(problem)
        acc, s, refused = owned_session(request)
        if refused:
            return refused
        limit = vals.get("limit", 100)
        msgs = hub.messages(s.id)
        if "before_seq" in vals:
            sel = [m for m in reversed(msgs) if m.seq < vals["before_seq"]]
        else:
            after = vals.get("after_seq", 0)
            sel = [m for m in msgs if m.seq > after]
        page = sel[:limit]
        hub.log(s.id, "v3-get", dict(vals), count=len(page), hasMore=len(sel) > limit)
        return web.json_response({"messages": [m.to_json() for m in page], "hasMore": len(sel) > limit})

    async def v3_post(request):
        body = await read_json(request)
        problem = None
        msgs = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(msgs, list) or not 1 <= len(msgs) <= 100:
            problem = "messages must be an array of 1..100 items"
        else:
            for i, m in enumerate(msgs):
                if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                    problem = f"messages[{i}].content must be a string"
                elif b64bytes(m["content"]) is None:
                    problem = f"messages[{i}].content must be base64"
                elif not isinstance(m.get("localId"), str) or not m["localId"]:
                    problem = f"messages[{i}].localId must be a non-empty string"
                if problem:
                    break
        if problem:
            hub.log(request.match_info["sid"], "v3-post", None, status=400, error=problem)
            return bad_request(problem)
        acc, s, refused = owned_session(request, "v3-post")
        if refused:
            return refused
        first: dict[str, str] = {}
        for m in msgs:
            first.setdefault(m["localId"], m["content"])
        existing = [hub.find_local(s.id, lid) for lid in first]
        existing = [m for m in existing if m is not None]
        have = {m.local_id for m in existing}
        new = [(lid, c) for lid, c in first.items() if lid not in have]
        seqs = hub.allocate_seq(s, len(new)) if new else []
        created = [hub.store_message(s, seq, c, lid) for seq, (lid, c) in zip(seqs, new)]
        hub.log(s.id, "v3-post", {"localIds": [m["localId"] for m in msgs]}, status=200,
                created=[{"seq": m.seq, "localId": m.local_id} for m in created],
                duplicates=sorted(have), client=request.headers.get("X-Happy-Client"))
        for m in created:
            await hub.emit_update(acc.id, hub.new_message_body(s.id, m), hub.interested(acc.id, s.id))
        out = sorted(existing + created, key=lambda m: m.seq)
        return web.json_response({"messages": [m.to_json(with_content=False) for m in out]})

    r = app.router
    r.add_post("/v1/sessions", create)
    r.add_get("/v1/sessions", list_sessions)
    r.add_delete("/v1/sessions/{sid}", delete)
    r.add_get("/v1/sessions/{sid}/messages", v1_messages)
    r.add_post("/v1/sessions/{sid}/archive", m_only(archive))
    r.add_post("/v1/sessions/{sid}/push-event", m_only(push_event))
    r.add_get("/v3/sessions/{sid}/messages", m_only(v3_get))
    r.add_post("/v3/sessions/{sid}/messages", m_only(v3_post))

    # ------------------------------------------------------------ test routes

    def socket_infos():
        return ctx.extra.get("machine_sync", {}).get("sockets", {})

    async def t_sessions(request):
        return web.json_response({"sessions": [hub.session_view(s) for s in state.sessions.values()]})

    async def t_log(request):
        want = request.query.get("sessionId") or request.query.get("sid")
        events = [e for e in hub.log_events if not want or e["sessionId"] == want]
        name = request.query.get("event")
        if name:
            events = [e for e in events if e["event"] == name]
        by: dict = {}
        for e in events:
            by.setdefault(e["sessionId"], []).append(e)
        return web.json_response({"events": events, "sessions": by, "pushEvents": hub.push_events})

    async def t_clear(request):
        b = (await read_json(request) if request.can_read_body else None) or {}
        hub.log_events.clear()
        hub.push_events.clear()
        if b.get("sessions"):
            state.sessions.clear()
            state.messages.clear()
            state.local_ids.clear()
            hub.stopped.clear()
            hub.reset_journal()
            hub.persist()
        return web.json_response({"ok": True})

    async def t_session(request):
        s = state.sessions.get(request.match_info["sid"])
        if s is None:
            return err(404, NOT_FOUND)
        return web.json_response({"session": hub.session_view(s),
                                  "metadataVersion": s.metadata_version,
                                  "agentStateVersion": s.agent_state_version,
                                  "messages": [m.to_json() for m in hub.messages(s.id)]})

    async def t_bump(request):
        b = await read_json(request) or {}
        s = state.sessions.get(b.get("sid") or b.get("sessionId"))
        if s is None:
            return err(404, NOT_FOUND)
        field = b.get("field", "agentState")
        if field not in ("metadata", "agentState"):
            return bad_request("field must be metadata or agentState")
        by = int(b.get("by", 1))
        if field == "metadata":
            s.metadata_version += by
            if b.get("value") is not None:
                s.metadata = b["value"]
            value, version = s.metadata, s.metadata_version
        else:
            s.agent_state_version += by
            if "value" in b:
                s.agent_state = b["value"]
            value, version = s.agent_state, s.agent_state_version
        s.updated_at = now_ms()
        hub.persist()
        hub.log(s.id, "bump", {"field": field, "by": by}, version=version)
        if b.get("broadcast", True):
            await hub.emit_update(s.account_id, {"t": "update-session", "id": s.id,
                                                 field: {"value": value, "version": version}},
                                  hub.interested(s.account_id, s.id))
        return web.json_response({"version": version, "value": value})

    async def t_config(request):
        b = await read_json(request) or {}
        if "dropAcks" in b:
            hub.drop_acks = {k: int(v) for k, v in (b["dropAcks"] or {}).items()}
        if "ignoreEvents" in b:
            hub.ignore_events = {k: int(v) for k, v in (b["ignoreEvents"] or {}).items()}
        if "legacyServer" in b:
            hub.mode["legacyServer"] = bool(b["legacyServer"])
        if "legacyAuth" in b and "machine_sync" in ctx.extra:
            ctx.extra["machine_sync"]["legacyAuth"] = bool(b["legacyAuth"])
        if "pushResult" in b:
            hub.push_result = b["pushResult"]
        return web.json_response({"dropAcks": hub.drop_acks, "ignoreEvents": hub.ignore_events,
                                  "legacyServer": hub.legacy,
                                  "legacyAuth": bool(ctx.extra.get("machine_sync", {}).get("legacyAuth")),
                                  "pushResult": hub.push_result})

    async def t_disconnect(request):
        b = (await read_json(request) if request.can_read_body else None) or {}
        want = b.get("sid") or b.get("sessionId")
        sids = [sk for sk, i in list(socket_infos().items())
                if i.get("clientType") == "session-scoped" and (want is None or i.get("sessionId") == want)]
        for sk in sids:
            await hub.sio.disconnect(sk)
        return web.json_response({"disconnected": len(sids)})

    async def t_usage(request):
        return web.json_response({"reports": list(hub.usage.values())})

    r.add_get("/__test/sessions", t_sessions)
    r.add_get("/__test/sessions/log", t_log)
    r.add_get("/__test/sessions/usage", t_usage)
    r.add_post("/__test/sessions/clear", t_clear)
    r.add_post("/__test/sessions/bump", t_bump)
    r.add_post("/__test/sessions/config", t_config)
    r.add_post("/__test/sessions/disconnect", t_disconnect)
    r.add_get("/__test/sessions/{sid}", t_session)
