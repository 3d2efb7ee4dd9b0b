"""Running the web front under uvicorn: the same header limits as the API, a ready file.

The shared pieces come from ``mytrader_server.serving``, which imports neither app, so the front
starts in a fraction of a second.
"""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from mytrader_server.logs import configure_logging
from mytrader_server.serving import (
    HttpImpl,
    ReadyFileServer,
    event_loop,
    http_protocol,
    install_log_redaction,
)
from mytrader_server.web.proxy import ProxyConfig, create_web_app

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 32_768
HEADER_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 5
HTTP: HttpImpl = "httptools"  # on uvloop; the same limits as h11 (serving.http_protocol)


def build_web_server(
    proxy: ProxyConfig,
    host: str = "127.0.0.1",
    port: int = 3000,
    ready_file: Path | None = None,
    access_log: bool = False,
) -> ReadyFileServer:
    config = uvicorn.Config(
        create_web_app(proxy),
        host=host,
        port=port,
        http=http_protocol(HTTP, HEADER_TIMEOUT_S, MAX_HEADER_BYTES),
        loop=event_loop(HTTP),
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
    return ReadyFileServer(config, ready_file)


def serve_web(
    proxy: ProxyConfig,
    host: str = "127.0.0.1",
    port: int = 3000,
    ready_file: Path | None = None,
    access_log: bool = False,
) -> None:
    configure_logging("info")
    install_log_redaction()
    log.info("MyTrader web on http://%s:%d, API at %s", host, port, proxy.base)
    build_web_server(proxy, host, port, ready_file, access_log).run()
