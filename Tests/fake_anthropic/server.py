#!/usr/bin/env python3
"""A fake Anthropic Messages API on 127.0.0.1, for running the real Claude Code CLI
offline (tests only; needs aiohttp).

    python3 Tests/fake_anthropic/server.py --port 0 [--watch-stdin]

prints the port on the first stdout line (`--port 0`: any free port) and serves until
killed, or until its stdin closes with `--watch-stdin` (the test that started it died).
Point claude at it with `ANTHROPIC_BASE_URL=http://127.0.0.1:<port>` (see
Tests/real_claude/locate.py).

Routes
  POST /v1/messages               streaming (SSE, `"stream": true`) or not; every call
                                  takes the next scripted turn, or the default turn
  POST /v1/messages/count_tokens  {"input_tokens": N}
  POST /__script                  body: a list of turns (or {"turns": [...]}), appended
                                  to the queue; answers {"queued": N}
  DELETE /__script                empties the queue
  GET  /__requests                every request received so far (method, path, query,
                                  selected headers, JSON body), oldest first;
                                  `?path=/v1/messages` filters, `?since=N` skips N
  DELETE /__requests              forgets them
  anything else                   logged, then 404 with an Anthropic-style error body

A turn (one /v1/messages answer) is a JSON object:
  {"text": "hi"}                          one text block
  {"thinking": "hmm", "text": "hi"}       a thinking block, then a text block
  {"tool_use": {"name": "Bash", "input": {...}, "id"?: "toolu_…"}, "text"?: "…"}
                                          optional text, then a tool_use block
                                          (stop_reason "tool_use")
  {"tool_uses": [{"name", "input"}, …]}   several tool_use blocks in one answer
  {"blocks": [{"type": "text"|"thinking"|"tool_use", …}, …]}   the general form
  {"error": 500, "type"?: "api_error", "message"?: "…", "times"?: N}
                                          an HTTP error (529 → overloaded_error); with
                                          "times" it answers the next N calls (retries)
  "delay": seconds (any turn)             wait before answering
  "chunk": N (any turn)                   split text / JSON deltas into N-char pieces
The default turn (empty queue) echoes the text of the last user message: "echo: <text>"
(several queued prompts arrive as one message: their texts joined by blank lines); after
tool results and no text it answers "done: <the tool_result texts>" (first 200
characters). The queue is consumed per main-loop API call: a tool turn makes (at least)
two calls, the tool_use answer and the one after the tool result.
A request whose system prompt or messages do not look like a conversation turn (e.g.
a title or topic side query, recognised by having no `tools`) gets the default turn
and does not consume the queue, so scripts stay aligned with the main loop.
"""
import argparse
import asyncio
import json
import os
import sys
import threading
import time
import uuid

from aiohttp import web

LOGGED_HEADERS = ("x-api-key", "authorization", "anthropic-version", "anthropic-beta",
                  "user-agent", "x-app", "content-type", "accept")


class State:
    def __init__(self):
        self.queue: list[dict] = []
        self.requests: list[dict] = []
        self.sticky_error: dict | None = None
        self.sticky_left = 0


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def last_user_text(body: dict) -> tuple[str, bool]:
    """(text, is_tool_result) of the last user message."""
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content, False
        texts, results = [], []
        for block in content or []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                t = block.get("text", "")
                if not t.startswith("<system-reminder>") and not t.startswith("[Request interrupted"):
                    texts.append(t)
            elif block.get("type") == "tool_result":
                c = block.get("content")
                if isinstance(c, list):
                    c = "".join(x.get("text", "") for x in c if isinstance(x, dict))
                results.append(str(c or ""))
        if texts:  # a new prompt (possibly after interrupted tool results)
            return "\n".join(texts), False
        return "\n".join(results), bool(results)
    return "", False


def default_turn(body: dict) -> dict:
    text, tool = last_user_text(body)
    if tool:
        return {"text": "done: " + text[:200]}
    return {"text": "echo: " + text}


def turn_blocks(turn: dict) -> list[dict]:
    if "blocks" in turn:
        out = []
        for b in turn["blocks"]:
            b = dict(b)
            if b.get("type") == "tool_use":
                b.setdefault("id", new_id("toolu_"))
                b.setdefault("input", {})
            out.append(b)
        return out
    blocks = []
    if "thinking" in turn:
        blocks.append({"type": "thinking", "thinking": turn["thinking"]})
    if "text" in turn:
        blocks.append({"type": "text", "text": turn["text"]})
    uses = list(turn.get("tool_uses") or [])
    if "tool_use" in turn:
        uses.append(turn["tool_use"])
    for u in uses:
        blocks.append({"type": "tool_use", "id": u.get("id") or new_id("toolu_"),
                       "name": u["name"], "input": u.get("input", {})})
    if not blocks:
        blocks.append({"type": "text", "text": ""})
    return blocks


def pieces(s: str, n: int) -> list[str]:
    if n <= 0 or len(s) <= n:
        return [s]
    return [s[i:i + n] for i in range(0, len(s), n)]


def usage(body: dict, out_tokens: int) -> dict:
    approx_in = max(1, len(json.dumps(body.get("messages", []))) // 4)
    return {"input_tokens": approx_in, "output_tokens": out_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def message_json(body: dict, blocks: list[dict]) -> dict:
    content = []
    for b in blocks:
        if b["type"] == "thinking":
            content.append({"type": "thinking", "thinking": b["thinking"],
                            "signature": b.get("signature", "sig-fake")})
        else:
            content.append(b)
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {"id": new_id("msg_fake_"), "type": "message", "role": "assistant",
            "model": body.get("model", "claude-fake"), "content": content,
            "stop_reason": stop, "stop_sequence": None, "usage": usage(body, 10)}


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def stream_answer(request: web.Request, body: dict, blocks: list[dict], chunk: int):
    resp = web.StreamResponse(status=200, headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "request-id": new_id("req_fake_")})
    await resp.prepare(request)
    msg = message_json(body, blocks)
    start = dict(msg, content=[], stop_reason=None, usage=usage(body, 1))
    await resp.write(sse("message_start", {"type": "message_start", "message": start}))
    await resp.write(sse("ping", {"type": "ping"}))
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            await resp.write(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                         "content_block": {"type": "text", "text": ""}}))
            for p in pieces(b["text"], chunk):
                await resp.write(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                             "delta": {"type": "text_delta", "text": p}}))
        elif b["type"] == "thinking":
            await resp.write(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                         "content_block": {"type": "thinking", "thinking": "",
                                                                           "signature": ""}}))
            for p in pieces(b["thinking"], chunk):
                await resp.write(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                             "delta": {"type": "thinking_delta", "thinking": p}}))
            await resp.write(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                         "delta": {"type": "signature_delta",
                                                                   "signature": b.get("signature", "sig-fake")}}))
        elif b["type"] == "tool_use":
            await resp.write(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                         "content_block": {"type": "tool_use", "id": b["id"],
                                                                           "name": b["name"], "input": {}}}))
            for p in pieces(json.dumps(b["input"]), chunk):
                await resp.write(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                             "delta": {"type": "input_json_delta",
                                                                       "partial_json": p}}))
        await resp.write(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    await resp.write(sse("message_delta", {"type": "message_delta",
                                           "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                                           "usage": {"output_tokens": 10}}))
    await resp.write(sse("message_stop", {"type": "message_stop"}))
    await resp.write_eof()
    return resp


def error_response(turn: dict) -> web.Response:
    status = int(turn["error"])
    etype = turn.get("type") or {400: "invalid_request_error", 401: "authentication_error",
                                 403: "permission_error", 404: "not_found_error",
                                 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
    message = turn.get("message") or {529: "Overloaded"}.get(status, "Internal server error")
    return web.json_response({"type": "error", "error": {"type": etype, "message": message},
                              "request_id": new_id("req_fake_")}, status=status,
                             headers={"request-id": new_id("req_fake_")})


def make_app() -> web.Application:
    state = State()
    app = web.Application(client_max_size=64 * 1024 * 1024)

    @web.middleware
    async def log_requests(request: web.Request, handler):
        if not request.path.startswith("/__"):
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            state.requests.append({
                "t": time.time(), "method": request.method, "path": request.path,
                "query": request.query_string,
                "headers": {k: request.headers[k] for k in LOGGED_HEADERS if k in request.headers},
                "body": body})
        return await handler(request)

    app.middlewares.append(log_requests)

    async def messages(request: web.Request):
        try:
            body = json.loads(await request.read())
        except ValueError:
            return error_response({"error": 400, "message": "body is not JSON"})
        main_loop = bool(body.get("tools"))
        turn = None
        if main_loop:
            if state.sticky_left > 0:
                state.sticky_left -= 1
                turn = state.sticky_error
            elif state.queue:
                turn = state.queue.pop(0)
                if "error" in turn and int(turn.get("times", 1)) > 1:
                    state.sticky_error = turn
                    state.sticky_left = int(turn["times"]) - 1
        if turn is None:
            turn = default_turn(body)
        if turn.get("delay"):
            await asyncio.sleep(float(turn["delay"]))
        if "error" in turn:
            return error_response(turn)
        blocks = turn_blocks(turn)
        if body.get("stream"):
            try:
                return await stream_answer(request, body, blocks, int(turn.get("chunk", 0)))
            except ConnectionError:  # the client went away (an interrupt): nothing to answer
                return web.Response(status=499)
        return web.json_response(message_json(body, blocks), headers={"request-id": new_id("req_fake_")})

    async def count_tokens(request: web.Request):
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = {}
        return web.json_response({"input_tokens": max(1, len(json.dumps(body)) // 4)})

    async def script_post(request: web.Request):
        data = json.loads(await request.read() or b"[]")
        turns = data.get("turns", []) if isinstance(data, dict) else data
        state.queue.extend(turns)
        return web.json_response({"queued": len(state.queue)})

    async def script_delete(request: web.Request):
        state.queue.clear()
        state.sticky_left = 0
        return web.json_response({"queued": 0})

    async def requests_get(request: web.Request):
        items = state.requests
        path = request.query.get("path")
        if path:
            items = [r for r in items if r["path"] == path]
        since = int(request.query.get("since", "0"))
        return web.json_response({"requests": items[since:], "count": len(items)})

    async def requests_delete(request: web.Request):
        state.requests.clear()
        return web.json_response({"count": 0})

    async def fallback(request: web.Request):
        return web.json_response({"type": "error", "error": {"type": "not_found_error",
                                                             "message": f"fake: no route {request.path}"}},
                                 status=404)

    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_post("/__script", script_post)
    app.router.add_delete("/__script", script_delete)
    app.router.add_get("/__requests", requests_get)
    app.router.add_delete("/__requests", requests_delete)
    app.router.add_route("*", "/{tail:.*}", fallback)
    return app


def watch_stdin():
    def run():
        try:
            while sys.stdin.buffer.read(1024):
                pass
        except Exception:
            pass
        os._exit(0)
    threading.Thread(target=run, daemon=True).start()


async def serve(port: int):
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def main(argv=None):
    p = argparse.ArgumentParser(prog="fake_anthropic")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    a = p.parse_args(argv)
    if a.watch_stdin:
        watch_stdin()
    try:
        asyncio.run(serve(a.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
