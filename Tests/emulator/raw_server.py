"""A raw TCP server that misbehaves on purpose (HTTP and WebSocket), for client
robustness tests. Prints its port on the first stdout line.

HTTP paths:  /until-close (body ends at close), /hang (never answers),
             /garbage (not HTTP), /abort-until-close (an until-close body, then the
             connection is cut: with TLS, without close_notify), /big-length/<n> and
             /big-chunked/<n> (an n-byte body, Content-Length or 64 KiB chunks).
WebSocket paths (/ws/<mode>): badaccept, badopcode, masked, bigcontrol,
             fragcontrol, badutf8, fragmented, echo, big, closecode, wsping,
             reserved, eio-noping (Engine.IO open packet, then silence),
             eio-flood (Engine.IO open, CONNECT answered, then 20,000 `flood` events
             of 1 KiB as fast as the socket takes them).
`--tls-cert FILE --tls-key FILE` serves TLS.
"""
import asyncio
import base64
import hashlib
import json
import os
import ssl
import struct

from happy_emulator.helper_process import helper_arguments, read_request_head, serve_tcp

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload=b"", fin=True, mask=False, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        head += key
    return head + payload


async def read_frame(reader):
    h = await reader.readexactly(2)
    fin, opcode = h[0] & 0x80, h[0] & 0x0F
    masked, n = h[1] & 0x80, h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4) if masked else None
    data = await reader.readexactly(n)
    if key:
        data = bytes(c ^ key[i % 4] for i, c in enumerate(data))
    return bool(fin), opcode, bool(masked), data


async def handle(reader, writer):
    req = await read_request_head(reader, writer)
    if req is None:
        return
    words, headers = req
    path = words[1]
    try:
        if path.startswith("/ws/"):
            await websocket(path[4:].split("?")[0].strip("/"), headers, reader, writer)
        elif path.startswith("/until-close"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close-body")
            await writer.drain()
        elif path.startswith("/abort-until-close"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close-body")
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.transport.abort()  # no close_notify, no FIN handshake of TLS
        elif path.startswith("/big-length/"):
            n = int(path.rsplit("/", 1)[1])
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(n).encode() + b"\r\n\r\n")
            block = b"x" * 65536
            while n > 0:
                writer.write(block[:min(n, len(block))])
                n -= min(n, len(block))
                await writer.drain()
        elif path.startswith("/big-chunked/"):
            n = int(path.rsplit("/", 1)[1])
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            block = b"x" * 65536
            while n > 0:
                k = min(n, len(block))
                writer.write(b"%x\r\n" % k + block[:k] + b"\r\n")
                n -= k
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        elif path.startswith("/hang"):
            await asyncio.sleep(60)
        elif path.startswith("/garbage"):
            writer.write(b"\x00\x01\x02 this is not http\r\n\r\n")
            await writer.drain()
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def websocket(mode, headers, reader, writer):
    key = headers.get("sec-websocket-key", "")
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if mode == "badaccept":
        accept = base64.b64encode(b"0" * 20).decode()
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    await writer.drain()
    w = writer.write
    if mode == "badopcode":
        w(frame(3, b"x"))
    elif mode == "masked":
        w(frame(1, b"hello", mask=True))
    elif mode == "bigcontrol":
        w(frame(9, b"p" * 126))
    elif mode == "fragcontrol":
        w(frame(9, b"p", fin=False))
    elif mode == "reserved":
        w(frame(1, b"x", rsv=4))
    elif mode == "badutf8":
        w(frame(1, b"ok\xff\xfe"))
    elif mode == "fragmented":
        w(frame(1, b"hel", fin=False))
        w(frame(9, b"mid"))
        w(frame(0, b"lo", fin=True))
        w(frame(2, bytes([1, 2, 3])))
        w(frame(8, struct.pack(">H", 1000) + b"bye"))
    elif mode == "big":
        w(frame(1, b"x" * 2_000_000))
    elif mode == "closecode":
        w(frame(8, struct.pack(">H", 4001) + b"custom"))
    elif mode == "wsping":
        w(frame(9, b"abc"))
        await writer.drain()
        fin, op, masked, data = await read_frame(reader)
        ok = op == 10 and masked and data == b"abc"
        w(frame(1, b"pong-ok" if ok else b"pong-bad"))
    elif mode == "echo":
        while True:
            fin, op, masked, data = await read_frame(reader)
            if not masked:
                w(frame(8, struct.pack(">H", 1002) + b"unmasked"))
                break
            if op == 8:
                w(frame(8, data))
                break
            if op in (1, 2):
                w(frame(op, data))
            await writer.drain()
    elif mode == "eio-flood":
        w(frame(1, b'0' + json.dumps({"sid": "s1", "upgrades": [], "pingInterval": 25000,
                                       "pingTimeout": 20000, "maxPayload": 1000000}).encode()))
        await writer.drain()
        try:
            await read_frame(reader)
            w(frame(1, b'40{"sid":"x"}'))
            await writer.drain()
            pad = "p" * 1000
            for i in range(20000):
                w(frame(1, ('42' + json.dumps(["flood", {"i": i, "pad": pad}])).encode()))
                if i % 64 == 0:
                    await writer.drain()
            await writer.drain()
        except Exception:
            pass
        await asyncio.sleep(10)
    elif mode == "eio-noping":
        w(frame(1, b'0' + json.dumps({"sid": "s1", "upgrades": [], "pingInterval": 300,
                                       "pingTimeout": 200, "maxPayload": 1000000}).encode()))
        await writer.drain()
        # Answer the Socket.IO CONNECT, then never ping.
        try:
            await read_frame(reader)
            w(frame(1, b'40{"sid":"x"}'))
            await writer.drain()
        except Exception:
            pass
        await asyncio.sleep(30)
    await writer.drain()
    # Drain whatever the client sends (its close frame) for a moment.
    try:
        await asyncio.wait_for(reader.read(1 << 16), 2)
    except Exception:
        pass


if __name__ == "__main__":
    parser = helper_arguments()
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    serve_tcp(handle, args, ctx)
