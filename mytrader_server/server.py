"""Running the app under uvicorn with the limits the defaults lack.

- h11 (not httptools) so that request headers are capped (``h11_max_incomplete_event_size``):
  httptools accepted a 50 MB header (reliability checklist S14).
- A header deadline: a connection that has not sent complete request headers within
  ``header_timeout_s`` is closed. uvicorn's keep-alive timer restarts on every byte, so a
  slowloris client dripping one byte at a time would otherwise stay forever (S13).
- A bounded graceful shutdown (S12), and hub connections told to close before the drain.
- Forwarded headers trusted only from the configured proxies (S9).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from mytrader_server.app import create_app
from mytrader_server.logs import configure_logging
from mytrader_server.settings import Settings

log = logging.getLogger(__name__)


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


class MyTraderServer(uvicorn.Server):
    """Tells hub clients to close (SignalR Close message) before uvicorn drains connections."""

    def __init__(self, config: uvicorn.Config, app: Any, ready_file: Path | None = None) -> None:
        super().__init__(config)
        self._app = app
        self._ready_file = ready_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._ready_file is not None:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            tmp = self._ready_file.with_suffix(".tmp")
            tmp.write_text(f"http://{shown}:{port}\n")
            tmp.replace(self._ready_file)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for hook in reversed(self._app.state.ctx.shutdown_hooks):
            try:
                await asyncio.wait_for(hook(), timeout=5)
            except Exception:
                log.exception("shutdown hook failed")
        await super().shutdown(sockets)


def build_server(
    settings: Settings, ready_file: Path | None = None, access_log: bool = False
) -> MyTraderServer:
    app = create_app(settings)
    trusted = settings.forwarded_allow_ips.strip()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=header_deadline_protocol(settings.header_timeout_s),
        ws="websockets-sansio",
        lifespan="on",
        access_log=access_log,
        log_config=None,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or "",
        server_header=False,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=int(max(1, settings.shutdown_timeout_s)),
        ws_max_size=settings.hub_max_message_bytes,
        ws_per_message_deflate=False,
    )
    return MyTraderServer(config, app, ready_file)


def serve(settings: Settings, ready_file: Path | None = None, access_log: bool = False) -> None:
    configure_logging(settings.log_level)
    server = build_server(settings, ready_file, access_log)
    server.run()
