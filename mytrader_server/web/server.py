"""Running the web front under uvicorn: the same header limits as the API, a ready file.

The API's own versions of the header deadline and the log redaction live in modules that import
the whole API (``mytrader_server.server``, ``mytrader_server.hubs.endpoint``); importing them made
the front start in seconds instead of a fraction of one, so the two small pieces are here too.
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

from mytrader_server.logs import configure_logging
from mytrader_server.web.proxy import ProxyConfig, create_web_app

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 32_768
HEADER_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 5


_TOKEN_QUERY = re.compile(r"((?:access_token|id)=)[^&\s\"]*")


class RedactTokens(logging.Filter):
    """Browsers send the hub token as ``access_token`` in the URL, which uvicorn logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def header_deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    """h11 that closes a connection whose request headers are not complete in ``timeout_s``
    (uvicorn restarts its keep-alive timer on every byte, so a slowloris client would stay)."""

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


class WebServer(uvicorn.Server):
    """Writes its base URL to ``ready_file`` once listening (scripts and tests poll it)."""

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


def build_web_server(
    proxy: ProxyConfig,
    host: str = "127.0.0.1",
    port: int = 3000,
    ready_file: Path | None = None,
    access_log: bool = False,
) -> WebServer:
    config = uvicorn.Config(
        create_web_app(proxy),
        host=host,
        port=port,
        http=header_deadline_protocol(HEADER_TIMEOUT_S),
        ws="websockets-sansio",
        lifespan="on",
        access_log=access_log,
        log_config=None,
        proxy_headers=False,  # this is the edge: the peer address is the client's
        server_header=False,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_S,
        ws_max_size=proxy.max_ws_message_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=None,  # SignalR pings end to end; the API times idle clients out
    )
    return WebServer(config, ready_file)


def serve_web(
    proxy: ProxyConfig,
    host: str = "127.0.0.1",
    port: int = 3000,
    ready_file: Path | None = None,
    access_log: bool = False,
) -> None:
    configure_logging("info")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactTokens())
    log.info("MyTrader web on http://%s:%d, API at %s", host, port, proxy.base)
    build_web_server(proxy, host, port, ready_file, access_log).run()
