"""Running the web front under uvicorn: the same header limits as the API, a ready file."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import uvicorn

from mytrader_server.hubs.endpoint import install_log_redaction
from mytrader_server.logs import configure_logging
from mytrader_server.server import header_deadline_protocol
from mytrader_server.web.proxy import ProxyConfig, create_web_app

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 32_768
HEADER_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 5


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
    install_log_redaction()  # uvicorn logs WebSocket paths, and browsers send access_token there
    log.info("MyTrader web on http://%s:%d, API at %s", host, port, proxy.base)
    build_web_server(proxy, host, port, ready_file, access_log).run()
