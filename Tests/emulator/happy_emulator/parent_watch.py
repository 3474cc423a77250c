"""Shared by the test servers: exit when the test process that started us is gone."""
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
