"""A test "phone": plays the Happy app side against the emulator with PyNaCl.

- logs in with POST /v1/auth (Ed25519 challenge signed with the account secret),
- approves a terminal auth request with a v1 (32-byte secret) or v2
  (0x00 + content public key) payload boxed to the CLI's ephemeral key,
- encrypts/decrypts machine values in both variants (protocol sheet §3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import urllib.request
from typing import Any, Optional

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.public import Box, PrivateKey, PublicKey
from nacl.secret import SecretBox
from nacl.signing import SigningKey


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def unb64(s: str) -> bytes:
    s = s.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4))


# ---------------------------------------------------------------- crypto (sheet §1.4, §3)

def derive_key(master: bytes, usage: str, path: list[str]) -> bytes:
    i = hmac.new((usage + " Master Seed").encode(), master, hashlib.sha512).digest()
    key, chain = i[:32], i[32:]
    for p in path:
        i = hmac.new(chain, b"\x00" + p.encode(), hashlib.sha512).digest()
        key, chain = i[:32], i[32:]
    return key


def content_keypair(master: bytes) -> PrivateKey:
    """crypto_box_seed_keypair(deriveKey(master, "Happy EnCoder", ["content"]))."""
    return PrivateKey.from_seed(derive_key(master, "Happy EnCoder", ["content"]))


def encrypt_legacy(value: Any, key: bytes) -> bytes:
    nonce = os.urandom(24)
    return bytes(SecretBox(key).encrypt(json.dumps(value).encode(), nonce))  # nonce | tag | ct


def decrypt_legacy(data: bytes, key: bytes) -> Optional[Any]:
    try:
        return json.loads(SecretBox(key).decrypt(data[24:], data[:24]))
    except Exception:
        return None


def encrypt_datakey(value: Any, key: bytes) -> bytes:
    nonce = os.urandom(12)
    return b"\x00" + nonce + AESGCM(key).encrypt(nonce, json.dumps(value).encode(), None)


def decrypt_datakey(data: bytes, key: bytes) -> Optional[Any]:
    if len(data) < 29 or data[0] != 0:
        return None
    try:
        return json.loads(AESGCM(key).decrypt(data[1:13], data[13:], None))
    except Exception:
        return None


def encrypt_value(value: Any, key: bytes, variant: str) -> str:
    return b64(encrypt_legacy(value, key) if variant == "legacy" else encrypt_datakey(value, key))


def decrypt_value(data_b64: str, key: bytes, variant: str) -> Optional[Any]:
    d = unb64(data_b64)
    return decrypt_legacy(d, key) if variant == "legacy" else decrypt_datakey(d, key)


def wrap_data_key(key: bytes, recipient_public: bytes) -> bytes:
    """0x00 | ephemeral public (32) | nonce (24) | box(key) — 105 bytes."""
    eph = PrivateKey.generate()
    nonce = os.urandom(24)
    ct = Box(eph, PublicKey(recipient_public)).encrypt(key, nonce).ciphertext
    return b"\x00" + bytes(eph.public_key) + nonce + ct


def unwrap_data_key(bundle: bytes, recipient: PrivateKey) -> Optional[bytes]:
    if len(bundle) != 105 or bundle[0] != 0:
        return None
    try:
        return Box(recipient, PublicKey(bundle[1:33])).decrypt(bundle[57:], bundle[33:57])
    except Exception:
        return None


def auth_response_bundle(plaintext: bytes, cli_public: bytes) -> bytes:
    """ephemeral public (32) | nonce (24) | box(plaintext) — no version byte."""
    eph = PrivateKey.generate()
    nonce = os.urandom(24)
    ct = Box(eph, PublicKey(cli_public)).encrypt(plaintext, nonce).ciphertext
    return bytes(eph.public_key) + nonce + ct


# ---------------------------------------------------------------- HTTP

def http(method: str, url: str, body: Any = None, token: Optional[str] = None, timeout: float = 10) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw)
    except Exception:
        return status, raw


class Phone:
    def __init__(self, server_url: str, secret: Optional[bytes] = None) -> None:
        self.server = server_url.rstrip("/")
        self.secret = secret or os.urandom(32)
        self.signing = SigningKey(self.secret)
        self.content = content_keypair(self.secret)
        self.token: Optional[str] = None

    @property
    def content_public(self) -> bytes:
        return bytes(self.content.public_key)

    def login(self) -> str:
        challenge = os.urandom(32)
        sig = self.signing.sign(challenge).signature
        st, body = http("POST", self.server + "/v1/auth", {
            "publicKey": b64(bytes(self.signing.verify_key)), "challenge": b64(challenge), "signature": b64(sig)})
        assert st == 200, (st, body)
        self.token = body["token"]
        return self.token

    def approve(self, cli_public: bytes, version: int = 1) -> tuple[int, Any]:
        """Answers a terminal auth request: v1 sends the master secret, v2 0x00 + content public key."""
        if self.token is None:
            self.login()
        plaintext = self.secret if version == 1 else b"\x00" + self.content_public
        bundle = auth_response_bundle(plaintext, cli_public)
        return http("POST", self.server + "/v1/auth/response",
                    {"response": b64(bundle), "publicKey": b64(cli_public)}, token=self.token)

    @staticmethod
    def public_key_from_link(link: str) -> bytes:
        """`happy://terminal?<b64url>` or `.../terminal/connect#key=<b64url>` → 32 bytes."""
        if "#key=" in link:
            return unb64(link.split("#key=", 1)[1].strip())
        return unb64(link.split("?", 1)[1].strip())


# ---------------------------------------------------------------- the app's machine rename

def rename_machine(server: str, token: str, call, key: bytes, variant: str, machine_id: str,
                   display_name: Optional[str], max_retries: int = 3) -> dict:
    """The app's "Rename Machine" (M:app/sources/app/(app)/machine/[id].tsx:210-222 and
    machineUpdateMetadata, M:app/sources/sync/ops.ts:557-617): read the machine record,
    decrypt its metadata, set `displayName` (an empty name removes it), write it back with
    `machine-update-metadata {machineId, metadata, expectedVersion}` from a user-scoped
    socket; on `version-mismatch` take the server's metadata, keep our displayName, retry
    (at most `max_retries` attempts). `call(event, data)` emits with ack and returns it.
    Returns the last ack; raises RuntimeError like the app throws."""
    st, body = http("GET", f"{server}/v1/machines/{machine_id}", token=token)
    if st != 200:
        raise RuntimeError(f"GET machine: {st} {body}")
    m = body["machine"]
    meta = decrypt_value(m["metadata"], key, variant)
    if not isinstance(meta, dict):
        raise RuntimeError("machine metadata does not decrypt")
    name = (display_name or "").strip() or None
    current = dict(meta)
    current.pop("displayName", None)
    if name is not None:
        current["displayName"] = name
    version = m["metadataVersion"]
    for attempt in range(max_retries):
        ack = call("machine-update-metadata", {"machineId": machine_id, "metadata": encrypt_value(current, key, variant),
                                               "expectedVersion": version})
        result = (ack or {}).get("result")
        if result == "success":
            return ack
        if result != "version-mismatch":
            raise RuntimeError((ack or {}).get("message") or "Failed to update machine metadata")
        version = ack["version"]
        latest = decrypt_value(ack["metadata"], key, variant) or {}
        current = dict(latest)
        current.pop("displayName", None)
        if name is not None:
            current["displayName"] = name
    raise RuntimeError(f"Failed to update after {max_retries} retries due to version conflicts")
