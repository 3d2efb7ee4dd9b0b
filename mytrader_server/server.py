"""Running the app under uvicorn with the limits the defaults lack.

- httptools on uvloop by default (``MYTRADER_HTTP=h11`` for h11 on asyncio), with request heads
  capped at ``max_header_bytes`` either way: plain httptools accepted a 50 MB header
  (reliability checklist S14), so ``serving.limited_httptools_protocol`` counts them.
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

import uvicorn

from mytrader_server.app import create_app
from mytrader_server.hubs.endpoint import HubMiddleware
from mytrader_server.logs import configure_logging
from mytrader_server.serving import (
    LeanWebSocketProtocol,
    ReadyFileServer,
    event_loop,
    http_protocol,
)
from mytrader_server.settings import Settings

log = logging.getLogger(__name__)


class MyTraderServer(ReadyFileServer):
    """Tells hub clients to close (SignalR Close message) before uvicorn drains connections."""

    def __init__(self, config: uvicorn.Config, app: Any, ready_file: Path | None = None) -> None:
        super().__init__(config, ready_file)
        self._app = app

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
    app = create_app(settings, route_hub_sockets=False)
    trusted = settings.forwarded_allow_ips.strip()
    # Hub WebSockets go straight to the hub server, outside FastAPI's middleware stack: each
    # connection's task then holds no middleware coroutine frames (see docs/hubs.md).
    front = HubMiddleware(app, app.state.hubs)
    config = uvicorn.Config(
        front,
        host=settings.host,
        port=settings.port,
        http=http_protocol(settings.http, settings.header_timeout_s, settings.max_header_bytes),
        loop=event_loop(settings.http),
        ws=LeanWebSocketProtocol,  # uvicorn's "websockets-sansio", holding less per connection
        interface="asgi3",  # the front is a plain callable returning an awaitable
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
