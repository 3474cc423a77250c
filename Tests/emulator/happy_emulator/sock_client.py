"""A synchronous Socket.IO test client (python-socketio AsyncClient on its own event-loop
thread) for tests that play a daemon/session process or a second app against the
emulator:

    c = SockClient(url, {"token": t, "clientType": "session-scoped", "sessionId": sid})
    c.connected, c.refused          # after the constructor: connected, or the connect_error data
    c.call("update-state", {...})   # emit with ack → the ack (TimeoutError when none comes)
    c.emit("session-alive", {...})
    c.wait_event("update", lambda d: d["body"]["t"] == "new-message")
    c.events                        # [(event, data)] of every event received, in order
    c.on_rpc(lambda method, params: ...)   # answers `rpc-request` with the returned value
    c.close()

Every wait is bounded.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Optional

import socketio


class SockClient:
    def __init__(self, url: str, auth: dict, timeout: float = 5.0, connect: bool = True):
        self.url = url
        self.auth = auth
        self.timeout = timeout
        self.events: list[tuple[str, Any]] = []
        self.refused: Any = None
        self.disconnects = 0
        self.rpc_handler: Optional[Callable[[str, Any], Any]] = None
        self.rpc_requests: list = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sio = socketio.AsyncClient(reconnection=False)

        @self.sio.on("*")
        async def _any(event, *args):
            self.events.append((event, args[0] if len(args) == 1 else list(args)))

        @self.sio.on("connect_error")
        async def _refused(data):
            self.refused = data
            self.events.append(("connect_error", data))

        @self.sio.on("disconnect")
        async def _gone(*args):
            self.disconnects += 1
            self.events.append(("disconnect", list(args)))

        @self.sio.on("rpc-request")
        async def _rpc(data):
            self.rpc_requests.append(data)
            self.events.append(("rpc-request", data))
            if self.rpc_handler is None:
                return None
            r = self.rpc_handler(data.get("method"), data.get("params"))
            if asyncio.iscoroutine(r):
                r = await r
            return r

        if connect:
            self.connect()

    def _run(self, coro, timeout: Optional[float] = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout or self.timeout + 5)

    def connect(self) -> bool:
        try:
            self._run(self.sio.connect(self.url, socketio_path="/v1/updates", transports=["websocket"],
                                       auth=self.auth, wait_timeout=self.timeout))
        except socketio.exceptions.ConnectionError as e:
            if self.refused is None:
                self.refused = e.args[0] if e.args else str(e)
            return False
        return True

    @property
    def connected(self) -> bool:
        return self.sio.connected

    @property
    def sid(self) -> Optional[str]:
        return self.sio.get_sid()

    def on_rpc(self, fn: Callable[[str, Any], Any]) -> None:
        self.rpc_handler = fn

    def emit(self, event: str, data: Any = None) -> None:
        self._run(self.sio.emit(event, data))

    def call(self, event: str, data: Any = None, timeout: Optional[float] = None) -> Any:
        t = timeout or self.timeout
        return self._run(self.sio.call(event, data, timeout=t), t + 5)

    def received(self, name: str, pred: Callable[[Any], bool] = lambda d: True) -> list:
        out = []
        for e, d in list(self.events):
            if e == name:
                try:
                    if pred(d):
                        out.append(d)
                except Exception:
                    pass
        return out

    def wait_event(self, name: str, pred: Callable[[Any], bool] = lambda d: True, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(name, pred)
            if got:
                return got[0]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {name!r} event within {timeout} s; got {[e for e, _ in self.events]}")
            time.sleep(0.02)

    def disconnect(self) -> None:
        if not self.thread.is_alive():
            return
        try:
            self._run(self.sio.disconnect(), 5)
        except Exception:
            pass

    def close(self) -> None:
        """Disconnects and stops the loop thread; a second call does nothing."""
        if self.loop.is_closed() or not self.thread.is_alive():
            return
        self.disconnect()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()
