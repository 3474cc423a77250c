"""python -m happy_emulator [--port 0] ...: prints the port on the first stdout line."""
import argparse
import asyncio
import os
import signal
import ssl
import sys

from aiohttp import web

from .app import Config, create_app, make_listen_socket
from .helper_process import exit_when_parent_goes


def parse_args(argv=None) -> Config:
    p = argparse.ArgumentParser(prog="happy_emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--path", default="/v1/updates")
    p.add_argument("--ping-interval", type=float, default=15.0, help="seconds")
    p.add_argument("--ping-timeout", type=float, default=45.0, help="seconds")
    p.add_argument("--max-payload", type=int, default=1_000_000, help="bytes per message")
    p.add_argument("--tokens", default="test-token", help="comma-separated accepted tokens")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--legacy-server", action="store_true",
                   help="behave like the older standalone server (no /v3, push-event, archive)")
    p.add_argument("--legacy-auth", action="store_true",
                   help="old-style token rejection: accept, emit `error`, disconnect")
    a = p.parse_args(argv)
    return Config(host=a.host, port=a.port, path=a.path, ping_interval=a.ping_interval,
                  ping_timeout=a.ping_timeout, max_payload=a.max_payload,
                  tokens=[t for t in a.tokens.split(",") if t],
                  tls_cert=a.tls_cert, tls_key=a.tls_key,
                  legacy_server=a.legacy_server, legacy_auth=a.legacy_auth)


async def serve(config: Config):
    app, ctx = create_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    sock = make_listen_socket(config.host, config.port)
    ssl_ctx = None
    if config.tls_cert:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(config.tls_cert, config.tls_key)
    site = web.SockSite(runner, sock, ssl_context=ssl_ctx)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Save the state and leave at once: a graceful aiohttp shutdown waits for open
    # WebSocket connections (a connected client kept SIGTERM from ever finishing), and
    # Socket.IO clients should see a dropped transport (they reconnect), as when the
    # real server's process goes away, not a server-side disconnect.
    persist = ctx.extra.get("persist")
    if persist is not None:
        persist()
    sys.stdout.flush()
    os._exit(0)


def main(argv=None):
    # --watch-stdin: exit when stdin reaches EOF (the parent test process died).
    if "--watch-stdin" in (argv or []):
        exit_when_parent_goes()
    argv = [a for a in (argv or []) if a != "--watch-stdin"]
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
