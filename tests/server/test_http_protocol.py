"""The request-head limits (S13 deadline, S14 cap) on a real server, for both HTTP protocols:
httptools (the default, ``serving.limited_httptools_protocol``) and h11 (``MYTRADER_HTTP=h11``).

Raw sockets with TCP_NODELAY and pauses, so that a head really arrives in many reads.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import LiveServer, scaled, server_env, start_server

pytestmark = pytest.mark.slow

MAX_HEAD = 8192
DEADLINE_S = 1.0
GET = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp(f"http-{request.param}")
    env = server_env(
        tmp / "data",
        MYTRADER_HTTP=request.param,
        MYTRADER_MAX_HEADER_BYTES=str(MAX_HEAD),
        MYTRADER_HEADER_TIMEOUT_S=str(DEADLINE_S),
    )
    live = start_server(tmp, env)
    try:
        yield live
    finally:
        live.stop()


def _connect(server: LiveServer) -> socket.socket:
    parsed = urllib.parse.urlsplit(server.url)
    assert parsed.hostname is not None
    assert parsed.port is not None
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=scaled(10))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Reader:
    """Reads whole responses (head + Content-Length body) off one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.head = b""

    def response(self) -> tuple[bytes, bytes]:
        """(status line, body); raises EOFError if the server closes first."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        match = re.search(rb"content-length: (\d+)", head, re.I)
        length = int(match.group(1)) if match else 0
        while len(rest) < length:
            self.buf = head + b"\r\n\r\n" + rest
            self._fill()
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest[length:]
        self.head = head
        return head.split(b"\r\n", 1)[0], rest[:length]

    def closed_within(self, seconds: float) -> bool:
        """True if the server closes the connection (EOF or reset) within ``seconds``."""
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except OSError:
            return True
        return True

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(self.buf)
        self.buf += data


def _drip(sock: socket.socket, payload: bytes, piece: int, pause: float) -> float | None:
    """Send ``payload`` ``piece`` bytes at a time; the seconds until the send failed, if it did."""
    started = time.monotonic()
    try:
        for i in range(0, len(payload), piece):
            sock.sendall(payload[i : i + piece])
            time.sleep(pause)
    except OSError:
        return time.monotonic() - started
    return None


def _vm_hwm_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1))


def test_head_over_the_cap_in_many_packets_is_400_and_closed(server: LiveServer) -> None:
    head = (
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 2 * MAX_HEAD + b"\r\n\r\n"
    )
    with _connect(server) as sock:
        _drip(sock, head, 512, 0.002)
        reader = Reader(sock)
        status, _ = reader.response()
        assert status == b"HTTP/1.1 400 Bad Request"
        assert reader.closed_within(scaled(5))
    assert server.request("GET", "/health/live")[0] == 200


def test_many_headers_each_under_the_cap_but_over_it_together_are_400(server: LiveServer) -> None:
    """A whole over-cap head in one read: httptools measures every complete head."""
    if server.env["MYTRADER_HTTP"] == "h11":
        pytest.skip(
            "h11 caps only a head still incomplete after a read (one read of up to 256 KiB passes)"
        )
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(2 * MAX_HEAD // 100))
    with _connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        status, _ = Reader(sock).response()
    assert status == b"HTTP/1.1 400 Bad Request"


def test_head_under_the_cap_in_many_packets_is_served(server: LiveServer) -> None:
    head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (MAX_HEAD // 2) + b"\r\n\r\n"
    with _connect(server) as sock:
        assert _drip(sock, head, 256, 0.002) is None
        status, body = Reader(sock).response()
    assert status == b"HTTP/1.1 200 OK", body


def test_head_dripped_past_the_deadline_is_closed(server: LiveServer) -> None:
    head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    with _connect(server) as sock:
        started = time.monotonic()
        failed_after = _drip(sock, head, 1, 0.1)  # 14 s if it were never closed
        reader = Reader(sock)
        assert failed_after is not None or reader.closed_within(scaled(5))
        assert time.monotonic() - started < scaled(DEADLINE_S + 6)


def test_a_silent_connection_is_closed_by_the_deadline(server: LiveServer) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        assert Reader(sock).closed_within(scaled(DEADLINE_S + 4))
        assert time.monotonic() - started >= DEADLINE_S * 0.9


def test_keep_alive_rearms_the_deadline_after_each_response(server: LiveServer) -> None:
    """Requests spread over 3x the deadline on one connection are all served, each head split
    in two packets; then a dripped head is still closed: the deadline re-arms, it does not
    expire for good nor run from the connection's start."""
    with _connect(server) as sock:
        reader = Reader(sock)
        for _ in range(6):
            sock.sendall(GET[:10])
            time.sleep(DEADLINE_S / 4)
            sock.sendall(GET[10:])
            assert reader.response()[0] == b"HTTP/1.1 200 OK"
            time.sleep(DEADLINE_S / 4)
        started = time.monotonic()
        failed_after = _drip(sock, GET, 1, DEADLINE_S / 5)  # about 7 deadlines if never closed
        assert failed_after is not None or reader.closed_within(scaled(5))
        assert time.monotonic() - started < scaled(DEADLINE_S * 4)
        with contextlib.suppress(EOFError, OSError):
            status, _ = reader.response()
            pytest.fail(f"the dripped request was answered: {status!r}")


def test_an_upgraded_websocket_outlives_the_head_deadline(server: LiveServer) -> None:
    """The head deadline is the HTTP request's: once the connection is a WebSocket (a hub
    client), it must not close it header_timeout_s after the connection began."""
    request = urllib.request.Request(
        server.url + "/hubs/market-data/negotiate?negotiateVersion=1", data=b"", method="POST"
    )
    with urllib.request.urlopen(request, timeout=scaled(10)) as response:
        token = json.loads(response.read())["connectionToken"]
    with _connect(server) as sock:
        sock.sendall(
            f"GET /hubs/market-data?id={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        reader = Reader(sock)
        while b"\r\n\r\n" not in reader.buf:
            reader._fill()
        assert reader.buf.startswith(b"HTTP/1.1 101")
        assert not reader.closed_within(DEADLINE_S * 3)


def test_pipelined_requests_are_answered_in_order(server: LiveServer) -> None:
    requests = [
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-%d\r\n\r\n" % i
        for i in range(5)
    ]
    with _connect(server) as sock:
        reader = Reader(sock)
        sock.sendall(b"".join(requests[:3]) + requests[3][:20])  # the 4th head split
        time.sleep(0.2)
        sock.sendall(requests[3][20:] + requests[4])
        for i in range(5):
            assert reader.response()[0] == b"HTTP/1.1 200 OK"
            assert b"x-request-id: pipe-%d\r\n" % i in reader.head.lower() + b"\r\n"
        assert reader.buf == b""
        sock.sendall(requests[0])  # the connection is still usable
        assert reader.response()[0] == b"HTTP/1.1 200 OK"


def test_fifty_megabyte_header_is_refused_without_buffering_it(server: LiveServer) -> None:
    assert server.request("GET", "/health/live")[0] == 200
    before = _vm_hwm_kb(server.process.pid)
    chunk = b"a" * 1_048_576
    with _connect(server) as sock:
        sock.settimeout(scaled(20))
        answer: list[bytes] = []

        def read() -> None:
            with contextlib.suppress(OSError):
                while data := sock.recv(65536):
                    answer.append(data)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        sent = 0
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(50):
                sock.sendall(chunk)
                sent += len(chunk)
        reader.join(scaled(10))
    assert sent < 50 * len(chunk), "the server read all 50 MB"
    assert b"".join(answer).startswith(b"HTTP/1.1 400 Bad Request")
    grown_kb = _vm_hwm_kb(server.process.pid) - before
    assert grown_kb < 8 * 1024, f"peak RSS grew by {grown_kb} kB"
    assert server.request("GET", "/health/live")[0] == 200
