"""REST routes of the Happy Server emulator (protocol sheet §1, §4, §10).

`register_rest(app, state)` adds the routes, the error shapes of the real
server (unknown route → 404 {"error":"Not found","path","method"}, 5xx →
{"error":"Internal Server Error","message","statusCode"}), a fault injector
and the test-control routes under /__test/ to an aiohttp Application."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
from typing import Optional

from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .state import AuthRequest, Fault, Machine, ServerState, now_ms

STATE_KEY = web.AppKey("happy_rest_state", ServerState) if hasattr(web, "AppKey") else "happy_rest_state"


def b64decode(s) -> Optional[bytes]:
    if not isinstance(s, str):
        return None
    try:
        t = s.strip().replace("-", "+").replace("_", "/")
        t += "=" * (-len(t) % 4)
        return base64.b64decode(t, validate=True)
    except (binascii.Error, ValueError):
        return None


def err(status: int, body: dict) -> web.Response:
    return web.json_response(body, status=status)


def internal_error(status: int = 500) -> web.Response:
    return err(status, {"error": "Internal Server Error", "message": "An unexpected error occurred", "statusCode": status})


def bad_request(message: str) -> web.Response:
    return err(400, {"error": "Bad Request", "message": message, "statusCode": 400})


async def read_json(request: web.Request):
    try:
        return await request.json()
    except Exception:
        return None


def authenticate(request: web.Request):
    """Returns (account, None) or (None, 401 response)."""
    state: ServerState = request.app[STATE_KEY]
    h = request.headers.get("Authorization", "")
    if not h.startswith("Bearer "):
        return None, err(401, {"error": "Missing authorization header"})
    acc = state.account_for_token(h[len("Bearer "):].strip())
    if acc is None:
        return None, err(401, {"error": "Invalid token"})
    return acc, None


# ---------------------------------------------------------------- middleware

@web.middleware
async def rest_middleware(request: web.Request, handler):
    state: ServerState = request.app[STATE_KEY]
    path = request.path
    if not path.startswith("/__test/") and not path.startswith("/v1/updates") and not path.startswith("/socket.io"):
        state.request_log.append({
            "method": request.method,
            "path": path,
            "client": request.headers.get("X-Happy-Client"),
            "authorization": request.headers.get("Authorization", "")[:7] or None,
            "time": now_ms(),
        })
        fault = state.take_fault(request.method, path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.garbage:
                return web.Response(status=200, body=b"<html>this is not json", content_type="application/json")
            if fault.body is not None:
                return web.Response(status=fault.status, text=fault.body, content_type="application/json")
            if fault.status >= 500:
                return internal_error(fault.status)
            if fault.status == 401:
                return err(401, {"error": "Invalid token"})
            if fault.status == 404:
                return err(404, {"error": "Not found", "path": path, "method": request.method})
            return err(fault.status, {"error": "Error", "message": "injected", "statusCode": fault.status})
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return err(404, {"error": "Not found", "path": request.path_qs, "method": request.method})
    except web.HTTPMethodNotAllowed:
        return err(404, {"error": "Not found", "path": request.path_qs, "method": request.method})
    except web.HTTPException:
        raise
    except Exception:  # like the real server's global handler
        return internal_error(500)


# ---------------------------------------------------------------- routes

async def health(request: web.Request):
    return web.json_response({
        "status": "ok",
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "service": "happy-server",
    })


async def auth_challenge(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    body = await read_json(request)
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("publicKey", "challenge", "signature")):
        return bad_request("publicKey, challenge and signature are required strings")
    pk, ch, sig = (b64decode(body[k]) for k in ("publicKey", "challenge", "signature"))
    if pk is None or ch is None or sig is None or len(pk) != 32 or len(sig) != 64:
        return internal_error(500)  # tweetnacl throws on bad lengths (sheet §1.2)
    try:
        VerifyKey(pk).verify(ch, sig)
    except BadSignatureError:
        return err(401, {"error": "Invalid signature"})
    acc = state.upsert_account(pk)
    return web.json_response({"success": True, "token": state.mint_token(acc.id)})


async def auth_request(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("publicKey"), str):
        return bad_request("publicKey is required")
    pk = b64decode(body["publicKey"])
    if pk is None or len(pk) != 32:
        return err(401, {"error": "Invalid public key"})
    k = pk.hex()
    req = state.auth_requests.get(k)
    if req is None:
        req = AuthRequest(public_key=pk, supports_v2=bool(body.get("supportsV2") or False))
        state.auth_requests[k] = req
    if req.response is not None and req.response_account_id is not None:
        return web.json_response({
            "state": "authorized",
            "token": state.mint_token(req.response_account_id),
            "response": req.response,
        })
    return web.json_response({"state": "requested"})


async def auth_request_status(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    pk = b64decode(request.query.get("publicKey", ""))
    req = state.auth_requests.get(pk.hex()) if pk else None
    if req is None:
        return web.json_response({"status": "not_found", "supportsV2": False})
    if req.response is not None:
        return web.json_response({"status": "authorized", "supportsV2": False})
    return web.json_response({"status": "pending", "supportsV2": req.supports_v2})


async def auth_response(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    acc, denied = authenticate(request)
    if denied:
        return denied
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("publicKey"), str) or not isinstance(body.get("response"), str):
        return bad_request("response and publicKey are required")
    pk = b64decode(body["publicKey"])
    if pk is None or len(pk) != 32:
        return err(401, {"error": "Invalid public key"})
    req = state.auth_requests.get(pk.hex())
    if req is None:
        return err(404, {"error": "Request not found"})
    if req.response is None:
        req.response = body["response"]
        req.response_account_id = acc.id
    return web.json_response({"success": True})


async def machines_list(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    acc, denied = authenticate(request)
    if denied:
        return denied
    return web.json_response([m.to_json() for m in state.machines_of(acc.id)])


async def machine_get(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    acc, denied = authenticate(request)
    if denied:
        return denied
    m = state.machine_of(acc.id, request.match_info["id"])
    if m is None:
        return err(404, {"error": "Machine not found"})
    return web.json_response({"machine": m.to_json()})


async def machine_delete(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    acc, denied = authenticate(request)
    if denied:
        return denied
    mid = request.match_info["id"]
    m = state.machine_of(acc.id, mid)
    if m is None:
        return err(404, {"error": "Machine not found"})
    del state.machines[mid]
    state.persist()
    state.emit(acc.id, "update", {"t": "delete-machine", "machineId": mid}, None)
    return web.json_response({"success": True})


async def machine_create(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    acc, denied = authenticate(request)
    if denied:
        return denied
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("metadata"), str):
        return bad_request("id and metadata are required strings")
    ds = body.get("daemonState")
    dek = body.get("dataEncryptionKey")
    if (ds is not None and not isinstance(ds, str)) or (dek is not None and not isinstance(dek, str)):
        return bad_request("daemonState and dataEncryptionKey must be strings")
    mid = body["id"]
    existing = state.machines.get(mid)
    if existing is not None:
        if existing.account_id != acc.id:
            return internal_error(500)  # global primary key violation (sheet §4.2)
        return web.json_response({"machine": existing.to_json(with_seq=False)})
    t = now_ms()
    m = Machine(id=mid, account_id=acc.id, metadata=body["metadata"], metadata_version=1,
                daemon_state=ds, daemon_state_version=1 if ds else 0, data_encryption_key=dek,
                active=False, active_at=t, created_at=t, updated_at=t)
    state.machines[mid] = m
    state.persist()
    s1 = state.next_seq(acc.id)
    state.emit(acc.id, "update", {"id": f"u{s1}", "seq": s1, "body": dict(m.to_json(), t="new-machine", machineId=mid), "createdAt": t}, None)
    s2 = state.next_seq(acc.id)
    state.emit(acc.id, "update", {"id": f"u{s2}", "seq": s2, "body": {"t": "update-machine", "machineId": mid, "metadata": {"value": m.metadata, "version": 1}}, "createdAt": t}, mid)
    return web.json_response({"machine": m.to_json(with_seq=False)})


# ---------------------------------------------------------------- test control

async def t_fault(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    b = await read_json(request) or {}
    f = Fault(method=b.get("method", "*"), path=b["path"], count=int(b.get("count", 1)), status=int(b.get("status", 500)),
              body=b.get("body"), garbage=bool(b.get("garbage", False)), delay=float(b.get("delay", 0)))
    state.faults.append(f)
    return web.json_response({"ok": True})


async def t_reset_faults(request: web.Request):
    request.app[STATE_KEY].faults.clear()
    return web.json_response({"ok": True})


async def t_account(request: web.Request):
    """Create an account (optionally keyed by an Ed25519 public key) + a token."""
    state: ServerState = request.app[STATE_KEY]
    b = await read_json(request) or {}
    pk = b64decode(b["publicKey"]) if b.get("publicKey") else None
    acc = state.upsert_account(pk) if pk else state.create_account()
    return web.json_response({"accountId": acc.id, "token": state.mint_token(acc.id)})


async def t_token(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    b = await read_json(request) or {}
    if b.get("accountId") not in state.accounts:
        return err(404, {"error": "no such account"})
    return web.json_response({"token": state.mint_token(b["accountId"])})


async def t_revoke(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    b = await read_json(request) or {}
    n = state.revoke(token=b.get("token"), account_id=b.get("accountId"))
    return web.json_response({"revoked": n})


async def t_seed_machine(request: web.Request):
    """Seed a machine record with given (already encrypted) fields."""
    state: ServerState = request.app[STATE_KEY]
    b = await read_json(request) or {}
    aid = b.get("accountId") or state.tokens.get(b.get("token", ""))
    if aid not in state.accounts:
        return err(404, {"error": "no such account"})
    t = now_ms()
    m = Machine(id=b["id"], account_id=aid, metadata=b["metadata"], metadata_version=int(b.get("metadataVersion", 1)),
                daemon_state=b.get("daemonState"), daemon_state_version=int(b.get("daemonStateVersion", 1 if b.get("daemonState") else 0)),
                data_encryption_key=b.get("dataEncryptionKey"), seq=int(b.get("seq", 0)), active=bool(b.get("active", False)),
                active_at=int(b.get("activeAt", t)), created_at=int(b.get("createdAt", t)), updated_at=int(b.get("updatedAt", t)))
    state.machines[m.id] = m
    state.persist()
    return web.json_response({"machine": m.to_json()})


async def t_machines(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    return web.json_response({"machines": [dict(m.to_json(), accountId=m.account_id) for m in state.machines.values()]})


async def t_requests(request: web.Request):
    return web.json_response({"requests": request.app[STATE_KEY].request_log})


async def t_clear_requests(request: web.Request):
    request.app[STATE_KEY].request_log.clear()
    return web.json_response({"ok": True})


async def t_auth_requests(request: web.Request):
    state: ServerState = request.app[STATE_KEY]
    return web.json_response({"requests": [
        {"publicKey": base64.b64encode(r.public_key).decode(), "supportsV2": r.supports_v2, "answered": r.response is not None}
        for r in state.auth_requests.values()
    ]})


def register_rest(app: web.Application, state: ServerState) -> None:
    app[STATE_KEY] = state
    app.middlewares.append(rest_middleware)
    r = app.router
    r.add_get("/health", health)
    r.add_post("/v1/auth", auth_challenge)
    r.add_post("/v1/auth/request", auth_request)
    r.add_get("/v1/auth/request/status", auth_request_status)
    r.add_post("/v1/auth/response", auth_response)
    r.add_get("/v1/machines", machines_list)
    r.add_post("/v1/machines", machine_create)
    r.add_get("/v1/machines/{id}", machine_get)
    r.add_delete("/v1/machines/{id}", machine_delete)
    r.add_post("/__test/fault", t_fault)
    r.add_post("/__test/reset_faults", t_reset_faults)
    r.add_post("/__test/account", t_account)
    r.add_post("/__test/token", t_token)
    r.add_post("/__test/revoke", t_revoke)
    r.add_post("/__test/machine", t_seed_machine)
    r.add_get("/__test/machines", t_machines)
    r.add_get("/__test/requests", t_requests)
    r.add_post("/__test/clear_requests", t_clear_requests)
    r.add_get("/__test/auth_requests", t_auth_requests)


def register(app: web.Application, ctx) -> None:
    """Hook for the combined emulator app (app.py): one ServerState per app,
    shared with the socket side through `ctx.extra["server_state"]`."""
    state = ctx.extra.get("server_state") if hasattr(ctx, "extra") else None
    if state is None:
        state = ServerState()
        if hasattr(ctx, "extra"):
            ctx.extra["server_state"] = state
    register_rest(app, state)
