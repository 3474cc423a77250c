#!/usr/bin/env python3
"""Writes the seed corpora under Fuzz/corpus/<target>/ (checked in; rerun to refresh).
Byte 0 of many inputs is a mode byte (see each Fuzz/Targets/*.swift)."""
import json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def frame(op, payload, fin=True):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126: h = bytes([b0, n])
    elif n < 65536: h = bytes([b0, 126]) + struct.pack(">H", n)
    else: h = bytes([b0, 127]) + struct.pack(">Q", n)
    return h + payload

# HTTP (byte 0: piece-size seed; < 16 → one piece)
put("http-request", "get", b"\x00GET /list HTTP/1.1\r\nHost: 127.0.0.1:1234\r\nAuthorization: Bearer abc\r\n\r\n")
put("http-request", "post-length", b"\x2aPOST /spawn-session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{\"directory\":\"/tmp\"}\n")
put("http-request", "chunked-pipelined", b"\x00POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
put("http-request", "bad", b"\x00GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
put("http-response", "ok", b"\x00HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
put("http-response", "chunked", b"\x20HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n")
put("http-response", "until-close", b"\x00HTTP/1.0 200 OK\r\n\r\nbody until close")
put("http-response", "upgrade", b"\x01HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi")
put("http-response", "head-204", b"\x02HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n")

# JSON
put("json", "object", '{"a":[1,2.5,-3e10,true,false,null],"b":{"c":"\\u00e9\\ud83d\\ude00\\n"}}')
put("json", "deep", "[" * 40 + "]" * 40)
put("json", "numbers", "[0,-0,1e308,-1e-308,123456789012345678901234567890,0.1]")
put("json", "string", '"tab\\tquote\\"slash\\/"')

# WebSocket (byte 0: bit0 frames inline with the 101 answer, bit1 64-byte message limit)
put("websocket", "text", b"\x00" + frame(1, b"hello"))
put("websocket", "fragmented", b"\x01" + frame(1, b"hel", fin=False) + frame(9, b"p") + frame(0, b"lo"))
put("websocket", "binary-16", b"\x00" + frame(2, bytes(200)))
put("websocket", "close", b"\x00" + frame(8, struct.pack(">H", 1000) + b"bye"))
put("websocket", "too-big", b"\x02" + frame(1, b"x" * 100))

# Engine.IO: newline-separated text messages, first = open packet
open_pkt = '0' + json.dumps({"sid": "abc", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000})
put("engineio", "session", "\n".join([open_pkt, "40" + json.dumps({"sid": "s1"}), "2", '42["update",{"id":"x"}]', '431[{"ok":true}]', "1"]))
put("engineio", "open-only", open_pkt)
put("engineio", "connect-error", "\n".join([open_pkt, '44{"message":"Invalid token"}']))

# Socket.IO packets
for n, p in [("connect", '0{"token":"t"}'), ("event", '2["rpc-request",{"method":"m","params":"x"}]'),
             ("ack", '317[{"result":"ok"}]'), ("nsp", '2/admin,5["e"]'), ("binary", '51-["b",{"_placeholder":true,"num":0}]'),
             ("error", '4{"message":"no"}')]:
    put("socketio", n, p)

# YAML profiles
put("yaml", "profile", "description: dev box\nserver_url: https://api.example.com\nheartbeat_seconds: 20\nenv:\n  FOO: bar\n  N: 1\nallowed_dirs:\n  - ~/src\n  - /tmp\n")
put("yaml", "anchors", "base: &b\n  a: 1\nother: *b\nlist: [1, 2, {x: y}]\n")
put("yaml", "flow", "{a: [1, 2.5, true, null, ~], 'b': \"quoted\\n\"}\n")
put("yaml", "multi-doc", "a: 1\n---\nb: 2\n")

# stream-json lines (byte 0: piece-size seed)
lines = [{"type": "system", "subtype": "init", "session_id": "s", "model": "m"},
         {"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}},
         {"type": "result", "num_turns": 3, "total_cost_usd": 0.01, "is_error": False},
         {"type": "happy", "rotated": True}]
put("stream-json", "session", b"\x30" + "\n".join(json.dumps(l) for l in lines).encode() + b"\n")
put("stream-json", "crlf-blank", b"\x00" + b'{"type":"user"}\r\n   \n\nnot json\n{"type":')

# state files
put("settings", "v2", json.dumps({"schemaVersion": 2, "machineId": "3b0f3c1e-1111-4222-8333-444455556666", "onboardingCompleted": True}, indent=2))
put("settings", "empty-object", "{}")
put("settings", "wrong", "[1,2]")
put("daemon-state", "state", json.dumps({"pid": 4242, "httpPort": 40123, "controlToken": "ab" * 32, "startTime": "2025-01-01T00:00:00.000Z",
    "startedWithCliVersion": "0.1.0", "lastHeartbeat": "2025-01-01T00:01:00.000Z", "daemonLogPath": "/home/u/.happy/logs/x.log", "profile": "default"}, indent=2))
put("daemon-state", "bad-pid", '{"pid": -1, "httpPort": 1, "controlToken": "x"}')
put("session-record", "running", json.dumps({"id": "sess1", "pid": 999, "directory": "/tmp", "status": "running", "startedBy": "daemon",
    "startedAt": 1735689600000, "stdoutPath": "/x/stdout.jsonl", "stderrPath": "/x/stderr.log", "exitCode": None,
    "processStartTime": 123456, "malformedLines": 0}))
put("session-record", "ended", json.dumps({"id": "s2", "pid": 5, "directory": "/", "status": "exited", "startedAt": 1, "endedAt": 2,
    "stdoutPath": "a", "stderrPath": "b", "exitCode": 0, "numTurns": 2, "costUsd": 0.5, "stopReason": "exited", "isError": False,
    "claudeSessionId": "c", "model": "m", "lastEventType": "result", "lastEventAt": 3}))

# crypto (byte 0 = mode; see FuzzCrypto.swift)
put("value-cipher", "legacy-raw", b"\x00" + bytes(range(60)))
put("value-cipher", "datakey-raw", b"\x04\x00" + bytes(range(40)))
put("value-cipher", "roundtrip", b"\x01" + b'{"a":[1,2,"x"]}')
put("value-cipher", "tamper", b"\x06" + b'"secret"')
put("datakey-unwrap", "raw", b"\x00\x00" + bytes(range(104)))
put("datakey-unwrap", "roundtrip", b"\x01" + bytes(range(64)))
put("datakey-unwrap", "tamper", b"\x02" + bytes(range(64, 128)))
# mode 3: wrap to a server-chosen public key (low-order points must throw, not trap)
put("datakey-unwrap", "wrap-zero-key", b"\x03" + bytes(32))
put("datakey-unwrap", "wrap-order8-key", b"\x03" + bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"))
put("datakey-unwrap", "wrap-base-point", b"\x03\x09" + bytes(31))
put("terminal-auth", "raw", b"\x00" + bytes(range(90)))
put("terminal-auth", "legacy", b"\x01" + bytes(range(32)))
put("terminal-auth", "datakey", b"\x01\x00" + bytes(range(32)))
put("terminal-auth", "tamper", b"\x02\x00" + bytes(range(32)))
put("base64", "std", "aGVsbG8gd29ybGQ=")
put("base64", "url", "aGVsbG8_d29ybGQ-")
put("base64", "backup", "ABCDE-FGHIJ-KLMNO-PQRST-UVWXY-Z2345-67ABC-DEFGH-IJKLM-NOPQR-STUVW-XYZ23")
