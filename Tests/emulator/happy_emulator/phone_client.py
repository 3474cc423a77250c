"""A user-scoped Socket.IO "phone" for the machine-sync tests: python-socketio
AsyncClient on its own event-loop thread, with a synchronous facade.

    phone = PhoneClient(url, token, key, variant)      # variant "legacy" | "dataKey"
    phone.rpc(machine_id, "spawn-happy-session", {"directory": "/tmp"})  # → decrypted result
    phone.rpc_raw(machine_id, "stop-session", "not-base64-ciphertext")    # → server ack as is
    phone.updates                                       # `update` envelopes received
    phone.rename_machine(machine_id, "Work laptop")     # the app's rename (machine-update-metadata)
    phone.close()

Params are encrypted and results decrypted with the machine's key and variant
(legacy: NaCl secretbox with the account secret; dataKey: AES-256-GCM with the
machineKey), exactly as the Happy app does (protocol sheet §3.5).
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Optional

import socketio

from .phone import decrypt_value, encrypt_value, rename_machine


class PhoneClient:
    def __init__(self, url: str, token: str, key: bytes, variant: str, timeout: float = 10.0):
        self.url = url
        self.token = token
        self.key = key
        self.variant = variant
        self.timeout = timeout
        self.updates: list = []
        self.ephemeral: list = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sio = socketio.AsyncClient(reconnection=False)

        @self.sio.on("update")
        async def _update(data):
            self.updates.append(data)

        @self.sio.on("ephemeral")
        async def _eph(data):
            self.ephemeral.append(data)

        self._run(self.sio.connect(url, socketio_path="/v1/updates", transports=["websocket"],
                                   auth={"token": token, "clientType": "user-scoped"}, wait_timeout=timeout))

    def _run(self, coro, timeout: Optional[float] = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout or self.timeout + 5)

    def enc(self, value: Any) -> str:
        return encrypt_value(value, self.key, self.variant)

    def dec(self, b64: str) -> Any:
        return decrypt_value(b64, self.key, self.variant)

    def rpc_raw(self, machine_id: str, name: str, params: Any, timeout: Optional[float] = None) -> dict:
        """Sends `params` as given (a string); returns the server's ack `{ok, result|error}`."""
        t = timeout or self.timeout
        return self._run(self.sio.call("rpc-call", {"method": f"{machine_id}:{name}", "params": params}, timeout=t), t + 5)

    def rpc(self, machine_id: str, name: str, params: Any = None, timeout: Optional[float] = None) -> Any:
        """Encrypts params, calls, decrypts the result (raises on `ok: false`)."""
        ack = self.rpc_raw(machine_id, name, self.enc(params if params is not None else {}), timeout)
        if not ack.get("ok"):
            raise RuntimeError(f"rpc-call failed: {ack.get('error')}")
        return self.dec(ack["result"])

    def call(self, event: str, data: Any, timeout: Optional[float] = None) -> Any:
        """Emits with ack and returns the ack."""
        t = timeout or self.timeout
        return self._run(self.sio.call(event, data, timeout=t), t + 5)

    def rename_machine(self, machine_id: str, display_name: Optional[str], max_retries: int = 3) -> dict:
        """Sets (or, with an empty name, removes) `displayName` in the machine's metadata
        the way the app does; returns the server's ack."""
        return rename_machine(self.url, self.token, self.call, self.key, self.variant, machine_id,
                              display_name, max_retries)

    def close(self) -> None:
        try:
            self._run(self.sio.disconnect(), 5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
