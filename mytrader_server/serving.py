"""uvicorn pieces shared by the API server and the web front, importing neither app.

- ``http_protocol``: the HTTP/1.1 protocol class both servers run, with the two limits uvicorn
  lacks: a header deadline (a connection whose request head is not complete in time is closed;
  uvicorn's keep-alive timer restarts on every byte, so a slowloris client dripping one byte at a
  time would otherwise stay forever, reliability checklist S13) and a cap on the request head
  (plain httptools accepted a 50 MB header, S14). The default is ``limited_httptools_protocol``
  (httptools, run on uvloop: about twice h11's throughput); ``header_deadline_protocol`` (h11,
  which caps the head itself with ``h11_max_incomplete_event_size``) stays selectable.
- ``RedactQuery``: browsers send the hub token as ``access_token`` in the URL, which uvicorn logs.
- ``ReadyFileServer``: writes its base URL to a file once listening (scripts and tests poll it).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from pathlib import Path
from typing import Literal

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HttpImpl = Literal["httptools", "h11"]

_SECRET_QUERY = re.compile(r"((?:access_token|id)=)[^&\s\"]*")


def header_deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    class DeadlineH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(timeout_s, self._header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return DeadlineH11Protocol


class _HeadTooLarge(Exception):
    pass


def limited_httptools_protocol(timeout_s: float, max_head_bytes: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a head cap and a head deadline, both per request.

    A request head is what precedes the body: request line and headers. Bytes are counted while
    a head is incomplete, chunk by chunk as they arrive (``data_received``); once more than
    ``max_head_bytes`` are buffered without a complete head the connection gets the 400 h11
    gives (``Invalid HTTP request received.``) and is closed, so httptools never holds more than
    the cap plus one read (a head that begins mid-read is counted from the next read). Every
    complete head is also measured (URL, header names and values) and refused alike. The fast
    path, a whole head in one read, costs a sum over the headers: no timer is armed unless a
    head stays incomplete after a read.

    The deadline runs from the connection's start, then from the end of each response (when the
    next request may begin), to the end of the next head; a head still incomplete then closes
    the connection. Idle keep-alive connections are closed by uvicorn's keep-alive timeout.
    """

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _head_deadline = 0.0
        _awaiting_head = True  # no complete head for the next message yet
        _head_bytes = 0  # bytes read while awaiting that head (never more than it holds)

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_at(self._head_deadline, self._header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _upgraded(self) -> bool:
            """The transport now belongs to a WebSocket protocol: no HTTP head is awaited."""
            return self.transport.get_protocol() is not self

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self._awaiting_head and not self.transport.is_closing() and not self._upgraded():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_deadline = self.loop.time() + timeout_s
            self._arm()  # a connection that sends nothing at all is closed too

        def data_received(self, data: bytes) -> None:
            if not self._awaiting_head:  # a body, or a head that begins inside this read
                super().data_received(data)
                return
            self._head_bytes += len(data)
            super().data_received(data)
            if self._upgraded():
                # a WebSocket upgrade (cycle is None): never re-arm, or the deadline would
                # close the WebSocket's transport header_timeout_s after the connection began
                self._disarm()
                return
            if self._awaiting_head and not self.transport.is_closing():
                if self._head_bytes > max_head_bytes:
                    self._refuse()
                elif self.cycle is None or self.cycle.response_complete:
                    self._arm()  # a partial head: from here on the deadline matters

        def _refuse(self) -> None:
            msg = "Invalid HTTP request received."
            self.logger.warning("%s (request head over %d bytes)", msg, max_head_bytes)
            self._disarm()
            self.send_400_response(msg)

        def on_headers_complete(self) -> None:
            self._awaiting_head = False
            self._disarm()
            size = len(self.url)
            for name, value in self.headers:
                size += len(name) + len(value)
            if size > max_head_bytes:
                # httptools turns this into HttpParserCallbackError: uvicorn answers 400
                raise _HeadTooLarge
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_head = True
            self._head_bytes = 0

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._awaiting_head and not self.transport.is_closing():
                self._head_deadline = self.loop.time() + timeout_s
                if self._head_bytes:  # part of the next head arrived during the response
                    self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return LimitedHttpToolsProtocol


def http_protocol(
    impl: HttpImpl, timeout_s: float, max_head_bytes: int
) -> type[HttpToolsProtocol] | type[H11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)``. With h11, also pass
    ``h11_max_incomplete_event_size=max_head_bytes`` (h11 enforces that cap itself)."""
    if impl == "h11":
        return header_deadline_protocol(timeout_s)
    return limited_httptools_protocol(timeout_s, max_head_bytes)


def event_loop(impl: HttpImpl) -> Literal["uvloop", "asyncio"]:
    """uvloop with httptools (the fast path), asyncio with h11 (the previous default)."""
    return "uvloop" if impl == "httptools" else "asyncio"


class RedactQuery(logging.Filter):
    """Scrubs ``access_token`` and connection ids from log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _SECRET_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuery) for f in logger.filters):
            logger.addFilter(RedactQuery())


class ReadyFileServer(uvicorn.Server):
    """Writes ``http://host:port`` to ``ready_file`` (atomically) once it listens."""

    def __init__(self, config: uvicorn.Config, ready_file: Path | None = None) -> None:
        super().__init__(config)
        self._ready_file = ready_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._ready_file is not None:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            tmp = self._ready_file.with_suffix(".tmp")
            tmp.write_text(f"http://{shown}:{port}\n")
            tmp.replace(self._ready_file)
