"""A lean HTTP/1.1 keep-alive client on raw asyncio streams, for the SLA sampler only.

httpx adds 0.6-0.85 ms at p50 and saturates at a few hundred requests per second
(performance-anchors.md); this client adds ~0.02 ms and tens of microseconds of CPU per
request, so the sampler measures the target rather than itself. It speaks only what the
sampler needs: GET, Content-Length or chunked bodies (read and discarded up to a cap),
`Connection: close`. No proxies, no .netrc, no redirects; TLS verified via the given context.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024


class WireError(Exception):
    """The response could not be read (malformed, oversized, closed early)."""


class StaleConnection(WireError):
    """A reused keep-alive connection was closed by the server before answering.

    The usual keep-alive race (the server's idle timeout fired as we sent): safe to retry a GET
    once on a fresh connection.
    """


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port)

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def build_request(origin: Origin, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {origin.host_header}",
        "User-Agent: mytrader-ops-sampler",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Connection:
    """One keep-alive connection. Not safe for concurrent requests: pool it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True
        self.requests = 0
        self.idle_since = 0.0

    @classmethod
    async def open(cls, origin: Origin, ssl_context: ssl.SSLContext | None) -> Connection:
        reader, writer = await asyncio.open_connection(
            origin.host,
            origin.port,
            ssl=ssl_context if origin.scheme == "https" else None,
            limit=MAX_HEADER_BYTES,
        )
        return cls(reader, writer)

    def close(self) -> None:
        self.reusable = False
        self.writer.close()

    async def request(self, raw: bytes, max_body: int = MAX_BODY_BYTES) -> tuple[int, int]:
        """Send a prepared request; returns (status, body bytes). Raises WireError/OSError."""
        self.requests += 1
        try:
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            self.close()
            if not exc.partial and self.requests > 1:
                raise StaleConnection("kept-alive connection closed by the server") from None
            raise WireError("connection closed before a response") from None
        except (ConnectionResetError, BrokenPipeError):
            self.close()
            if self.requests > 1:
                raise StaleConnection("kept-alive connection reset by the server") from None
            raise
        except asyncio.LimitOverrunError:
            raise WireError(f"response headers exceed {MAX_HEADER_BYTES} bytes") from None
        status, length, chunked, close = parse_head(head)
        if chunked:
            size = await self._read_chunked(max_body)
        elif length is not None:
            if length > max_body:
                raise WireError(f"response body of {length} bytes exceeds {max_body}")
            await self.reader.readexactly(length)
            size = length
        else:
            size = await self._read_to_eof(max_body)
            close = True
        if close:
            self.close()
        return status, size

    async def _read_chunked(self, max_body: int) -> int:
        total = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise WireError("malformed chunk size") from None
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return total
            total += size
            if total > max_body:
                raise WireError(f"chunked body exceeds {max_body} bytes")
            await self.reader.readexactly(size + 2)

    async def _read_to_eof(self, max_body: int) -> int:
        total = 0
        while chunk := await self.reader.read(_CHUNK):
            total += len(chunk)
            if total > max_body:
                raise WireError(f"body exceeds {max_body} bytes")
        return total


def parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, content-length, chunked, connection-close) from a response head.

    Byte-level on purpose: this runs once per sampled request.
    """
    lines = head.lower().split(b"\r\n")
    status_line = lines[0]
    if not status_line.startswith(b"http/1.") or len(status_line) < 12:
        raise WireError(f"malformed status line: {status_line[:60]!r}")
    code = status_line[9:12]
    if not code.isdigit():
        raise WireError(f"malformed status line: {status_line[:60]!r}")
    status = int(code)
    length: int | None = None
    chunked = False
    close = status_line.startswith(b"http/1.0")
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise WireError(f"malformed header line: {line[:60]!r}")
        name = name.strip()
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit():
                raise WireError("malformed Content-Length")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            value = value.strip()
            close = value == b"close" or (close and value != b"keep-alive")
    if status in (204, 304) or 100 <= status < 200:
        length = 0
    return status, length, chunked, close
