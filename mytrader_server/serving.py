"""uvicorn pieces shared by the API server and the web front, importing neither app.

- ``header_deadline_protocol``: h11 that closes a connection whose request headers are not
  complete in time. uvicorn's keep-alive timer restarts on every byte, so a slowloris client
  dripping one byte at a time would otherwise stay forever (reliability checklist S13). h11
  (not httptools) also caps the request head (``h11_max_incomplete_event_size``, S14).
- ``RedactQuery``: browsers send the hub token as ``access_token`` in the URL, which uvicorn logs.
- ``ReadyFileServer``: writes its base URL to a file once listening (scripts and tests poll it).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from pathlib import Path

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

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
