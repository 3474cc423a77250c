"""Shared by the test helper servers (the emulator, raw_server.py, connect_proxy.py):
exit when the test process that started us is gone, and the small TCP-server main."""
import argparse
import asyncio
import os
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


def serve_tcp(handle, args) -> None:
    """Serves `handle(reader, writer)` on 127.0.0.1:args.port and prints the port on the
    first stdout line; runs until killed."""
    if args.watch_stdin:
        exit_when_parent_goes()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", args.port)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
