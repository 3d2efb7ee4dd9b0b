"""The WebSocket client pieces the benchmarks' raw clients share (RFC 6455): the upgrade
request, the server's 101 head, a client's masked frame, and the server's unmasked frames.

Hand-written instead of a ``websockets`` client on purpose: one client process reads thousands
of sockets at up to ~10^5 messages per second, and a full client per socket (its own parser
objects, futures and tasks) would make the instrument slower than the servers it measures.
"""

from __future__ import annotations

import base64
import os

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def upgrade_request(path: str, host: str = "127.0.0.1") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def take_upgrade(buf: bytearray) -> bool:
    """Consume the server's response head from ``buf``: False while it is incomplete; raises
    AssertionError if it is not ``101 Switching Protocols``."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    status_line = bytes(buf[: end + 4].split(b"\r\n", 1)[0])
    assert b" 101 " in status_line, bytes(buf[:200])
    del buf[: end + 4]
    return True


def client_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """One final, masked frame (clients must mask; RFC 6455 5.3). Payloads under 64 KiB."""
    mask = os.urandom(4)
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    masked = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    else:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + masked


def take_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """The complete server frames at the start of ``buf`` as (opcode, payload), removed from it;
    an incomplete frame stays for the next read. Server frames are unmasked. FIN and
    continuation frames are not handled: the servers measured send every message as one
    final frame (a continuation would come out as its own opcode-0 frame)."""
    frames: list[tuple[int, bytes]] = []
    pos, size = 0, len(buf)
    while size - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        length, head = b1 & 0x7F, 2
        if length == 126:
            if size - pos < 4:
                break
            length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if size - pos < 10:
                break
            length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
        if size - pos < head + length:
            break
        start = pos + head
        frames.append((b0 & 0x0F, bytes(buf[start : start + length])))
        pos = start + length
    if pos:
        del buf[:pos]
    return frames
