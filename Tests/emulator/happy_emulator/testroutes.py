"""Test control routes (`/__test/*`): make the server emit (with or without ack),
disconnect clients, send large messages, inspect recorded traffic; plus plain HTTP
routes for the HTTP client tests."""
import asyncio

from aiohttp import web


def register(app, ctx):
    sio = ctx.sio

    async def emit(request):
        body = await request.json()
        event = body["event"]
        data = body.get("data")
        to = body.get("sid")
        sids = [to] if to else list(ctx.clients.keys())
        if body.get("ack"):
            results = []
            for sid in sids:
                try:
                    r = await sio.call(event, data, to=sid, timeout=float(body.get("timeout", 5)))
                    rec = {"event": event, "ack": list(r) if isinstance(r, tuple) else [r] if r is not None else []}
                except Exception as e:  # timeout
                    rec = {"event": event, "error": type(e).__name__}
                ctx.acks.append(rec)
                results.append(rec)
            return web.json_response({"results": results})
        for sid in sids:
            await sio.emit(event, data, to=sid)
        return web.json_response({"sent": len(sids)})

    async def disconnect(request):
        sids = list(ctx.clients.keys())
        for sid in sids:
            await sio.disconnect(sid)
        return web.json_response({"disconnected": len(sids)})

    async def large(request):
        body = await request.json()
        size = int(body.get("size", 2_000_000))
        for sid in list(ctx.clients.keys()):
            await sio.emit(body.get("event", "big"), "x" * size, to=sid)
        return web.json_response({"size": size})

    async def state(request):
        return web.json_response({"clients": ctx.clients, "events": ctx.events,
                                  "acks": ctx.acks, "connects": ctx.connects})

    # Plain HTTP routes for the HTTP client tests.
    async def echo(request):
        body = await request.read()
        return web.json_response({"method": request.method, "path": request.path_qs,
                                  "headers": dict(request.headers), "body": body.decode("utf-8", "replace")})

    async def chunked(request):
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(5):
            await resp.write(f"part{i};".encode())
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    async def slow(request):
        await asyncio.sleep(float(request.query.get("s", "5")))
        return web.Response(text="late")

    async def status(request):
        return web.json_response({"error": "teapot"}, status=int(request.match_info["code"]))

    app.router.add_post("/__test/emit", emit)
    app.router.add_post("/__test/disconnect", disconnect)
    app.router.add_post("/__test/large", large)
    app.router.add_get("/__test/state", state)
    app.router.add_route("*", "/__test/echo", echo)
    app.router.add_get("/__test/chunked", chunked)
    app.router.add_get("/__test/slow", slow)
    app.router.add_get("/__test/status/{code}", status)
