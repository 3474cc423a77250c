"""Standalone runner of the REST part of the emulator (until/besides the full
app): python3 -m happy_emulator.rest_main [--port N]. Prints `LISTENING <port>`."""

import argparse
import asyncio
import socket
import sys

from aiohttp import web

from .rest import register_rest
from .state import ServerState


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    app = web.Application()
    register_rest(app, ServerState())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((a.host, a.port))
    site = web.SockSite(runner, sock)
    await site.start()
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)
    while True:
        await asyncio.sleep(3600)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
