"""The web front: static files plus a reverse proxy for ``/api/*`` and ``/hubs/*``.

The browser only ever talks to this origin, so the app needs no CORS and the API's address stays
private. What the proxy guarantees:

- Every failure to reach the API is a JSON ``{"code","message"}`` answer, never a hang: 502 when
  the API refuses or drops the connection, 504 when it does not answer in time (bounded connect,
  read and WebSocket-open timeouts).
- Request bodies are capped (413) before anything is sent upstream.
- The client's address and scheme travel in ``X-Forwarded-For`` / ``X-Forwarded-Proto`` /
  ``X-Forwarded-Host``. This proxy is the edge: it replaces, never appends to, what the client
  sent, so a client cannot pose as another address. The API believes these headers only when
  ``MYTRADER_FORWARDED_ALLOW_IPS`` names this proxy (see ``mytrader_server.server``).
- WebSocket upgrades are relayed frame by frame (text stays text). A refusal by the API (401, 404,
  409, 429 before accepting) reaches the browser as the same HTTP status, and a close code
  travels both ways, so SignalR clients see what they would see talking to the API directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mytrader_server.web import STATIC_DIR
from mytrader_server.web.headers import STATIC_HEADERS
from mytrader_server.web.relay import HttpRelay, WebSocketRelay


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Where the API is and how long to wait for it."""

    backend: str = "http://127.0.0.1:5002"
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 30.0
    ws_open_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_body_bytes: int = 1_048_576
    max_ws_message_bytes: int = 4_194_304

    def __post_init__(self) -> None:
        if not 0 < self.read_timeout_s <= 3600:
            raise ValueError(f"the backend timeout must be 0-3600 s, got {self.read_timeout_s}")
        try:
            url = httpx.URL(self.backend)
        except httpx.InvalidURL:
            url = httpx.URL()
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"backend must be an http:// or https:// URL, got {self.backend!r}")

    @property
    def base(self) -> str:
        return self.backend.rstrip("/")

    @property
    def ws_base(self) -> str:
        scheme, _, rest = self.base.partition("://")
        return ("wss" if scheme == "https" else "ws") + "://" + rest


class StaticHeaders:
    """Adds the app's security headers (CSP: this origin only) to static responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in STATIC_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_web_app(
    config: ProxyConfig, client: httpx.AsyncClient | None = None, static_dir: str | None = None
) -> Starlette:
    """The web front as an ASGI app; tests pass an ``httpx.AsyncClient`` with a mock transport."""
    own_client = client is None
    http_client = client or httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=config.connect_timeout_s,
            read=config.read_timeout_s,
            write=config.read_timeout_s,
            pool=config.connect_timeout_s,
        ),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        follow_redirects=False,
        trust_env=False,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if own_client:
                await http_client.aclose()

    relay = HttpRelay(config, http_client)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    static = StaticFiles(directory=static_dir or STATIC_DIR, html=True)
    return Starlette(
        routes=[
            Route("/api/{path:path}", relay.handle, methods=methods),
            Route("/hubs/{path:path}", relay.handle, methods=methods),
            WebSocketRoute("/hubs/{path:path}", WebSocketRelay(config).handle),
            Mount("/", app=StaticHeaders(static)),
        ],
        lifespan=lifespan,
    )
