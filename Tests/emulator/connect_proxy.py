"""A tiny HTTP CONNECT proxy for tests. Prints its port on the first stdout line.

- `CONNECT host:port` opens a tunnel (counted; the target name is resolved here).
- `--auth user:pass` requires `Proxy-Authorization: Basic ...` (else 407).
- `--refuse` answers every CONNECT with 403.
- `--forward host:port` sends every tunnel there, whatever the CONNECT target (the
  target is still recorded): reaches a local test server under any name or address.
- `GET /__count` (origin form, sent directly to the proxy) returns
  {"tunnels": n, "targets": [...], "auth": [...]}.
"""
import asyncio
import base64
import json

from happy_emulator.helper_process import helper_arguments, nodelay, read_request_head, serve_tcp

STATE = {"tunnels": 0, "targets": [], "auth": []}
ARGS = None


async def pipe(r, w):
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        try:
            w.close()
        except Exception:
            pass


async def handle(reader, writer):
    req = await read_request_head(reader, writer)
    if req is None:
        return
    (method, target, _), headers = req
    if method != "CONNECT":
        body = json.dumps(STATE).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        writer.close()
        return
    STATE["auth"].append(headers.get("proxy-authorization"))
    if ARGS.refuse:
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    if ARGS.auth:
        want = "Basic " + base64.b64encode(ARGS.auth.encode()).decode()
        if headers.get("proxy-authorization") != want:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n"
                         b"Content-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
    host, port = target.rsplit(":", 1)
    host = host.strip("[]")
    if ARGS.forward:
        host, port = ARGS.forward.rsplit(":", 1)
    try:
        ur, uw = await asyncio.open_connection(host, int(port))
    except Exception:
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    nodelay(uw)
    STATE["tunnels"] += 1
    STATE["targets"].append(target)
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(pipe(reader, uw), pipe(ur, writer))


if __name__ == "__main__":
    parser = helper_arguments()
    parser.add_argument("--auth")
    parser.add_argument("--refuse", action="store_true")
    parser.add_argument("--forward", help="host:port every tunnel goes to")
    ARGS = parser.parse_args()
    serve_tcp(handle, ARGS)
