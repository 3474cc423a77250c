"""Shared by the test helper servers (the emulator, raw_server.py, connect_proxy.py):
exit when the test process that started us is gone, and the small TCP-server main."""
import argparse
import asyncio
import os
import socket
import sys
import threading


def exit_when_parent_goes():
    """Exit as soon as stdin closes (the parent holds its write end open while it lives)."""
    def watch():
        try:
            while sys.stdin.buffer.read(1024):
                pass
        except Exception:
            pass
        os._exit(0)
    if not sys.stdin.isatty():
        threading.Thread(target=watch, daemon=True).start()


def helper_arguments() -> argparse.ArgumentParser:
    """`--port` (0: any free port) and `--watch-stdin`; callers add their own flags."""
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    return p


def serve_tcp(handle, args, ssl_context=None) -> None:
    """Serves `handle(reader, writer)` on 127.0.0.1:args.port (TLS with `ssl_context`)
    and prints the port on the first stdout line; runs until killed."""
    if args.watch_stdin:
        exit_when_parent_goes()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", args.port, ssl=ssl_context)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def nodelay(writer) -> None:
    """TCP_NODELAY on a stream's socket (small frames go out at once)."""
    s = writer.get_extra_info("socket")
    if s is not None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def read_request_head(reader, writer):
    """Reads an HTTP/1.1 request head: (request-line words, {lower-case name: value}), or
    None (the connection closed) when the peer sends no complete head."""
    nodelay(writer)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except Exception:
        writer.close()
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0].split(" ", 2), headers
