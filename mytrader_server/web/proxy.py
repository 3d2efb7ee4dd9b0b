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

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import httpx
import websockets
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection

from mytrader_server.web import STATIC_DIR

log = logging.getLogger(__name__)

# RFC 9110 section 7.6.1: never forwarded by a proxy (plus Host, which names the backend).
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by this proxy only: whatever the client sent under these names is dropped.
FORWARDING: Final = frozenset(
    {"forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip"}
)
# Headers a WebSocket upgrade carries on to the API; the handshake headers are the client's own.
WS_FORWARD: Final = frozenset(
    {"authorization", "cookie", "user-agent", "origin", "accept-language", "x-request-id"}
)
# Content Security Policy for the app: nothing but this origin (its ws:// included).
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
STATIC_HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
# Close codes that may not be sent in a Close frame (RFC 6455 section 7.4.1), and what to send.
_UNSENDABLE_CLOSE: Final = {1005: 1000, 1006: 1011, 1015: 1011}


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


def error_response(status: int, message: str) -> JSONResponse:
    """The API's error shape, so the app shows proxy failures like any other error."""
    return JSONResponse({"code": status * 100_000, "message": message}, status_code=status)


def forwarding_headers(client_host: str | None, scheme: str, host: str | None) -> dict[str, str]:
    """The headers this edge proxy adds: who connected, over what, to which name."""
    headers = {"x-forwarded-proto": "https" if scheme in ("https", "wss") else "http"}
    if client_host:
        headers["x-forwarded-for"] = client_host
    if host:
        headers["x-forwarded-host"] = host
    return headers


def upstream_request_headers(
    incoming: Iterable[tuple[str, str]], forwarded: dict[str, str]
) -> list[tuple[str, str]]:
    """The client's end-to-end headers (no hop-by-hop, Host or spoofable forwarding) + ours."""
    pairs = list(incoming)
    named_in_connection = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    drop = HOP_BY_HOP | FORWARDING | named_in_connection | {"host", "content-length"}
    kept = [(name, value) for name, value in pairs if name.lower() not in drop]
    return kept + list(forwarded.items())


def downstream_response_headers(headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
    """The API's response headers minus hop-by-hop ones; repeated headers stay repeated."""
    named_in_connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    drop = HOP_BY_HOP | named_in_connection | {"date", "server"}  # uvicorn sets its own Date
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.multi_items()
        if name.lower() not in drop
    ]


def sendable_close_code(code: int | None) -> int:
    if code is None:
        return 1000
    return _UNSENDABLE_CLOSE.get(code, code)


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _BodyTooLarge
    return bytes(body)


def _target(scope: Scope) -> str:
    """The path and query exactly as the client sent them (no re-encoding)."""
    path: bytes = scope.get("raw_path") or str(scope["path"]).encode()
    query: bytes = scope.get("query_string", b"")
    return (path + (b"?" + query if query else b"")).decode("latin-1")


class HttpRelay:
    """Relays one HTTP request to the API and streams the answer back."""

    def __init__(self, config: ProxyConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self.client = client

    async def handle(self, request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > self.config.max_body_bytes
        ):
            return error_response(413, "request body too large")
        try:
            async with asyncio.timeout(self.config.body_timeout_s):
                body = await _read_body(request, self.config.max_body_bytes)
        except _BodyTooLarge:
            return error_response(413, "request body too large")
        except TimeoutError:
            return error_response(408, "request body not received in time")
        client_host = request.client.host if request.client else None
        headers = upstream_request_headers(
            request.headers.items(),
            forwarding_headers(client_host, request.url.scheme, request.headers.get("host")),
        )
        upstream = self.client.build_request(
            request.method, self.config.base + _target(request.scope), headers=headers, content=body
        )
        try:
            answer = await self.client.send(upstream, stream=True)
        except httpx.TimeoutException:
            return error_response(504, "the API did not answer in time")
        except httpx.HTTPError as exc:
            log.warning("API unreachable: %s", type(exc).__name__)
            return error_response(502, "the API is unreachable")
        response = StreamingResponse(
            _relay_body(answer),
            status_code=answer.status_code,
            background=BackgroundTask(answer.aclose),
        )
        response.raw_headers = downstream_response_headers(answer.headers)
        return response


async def _relay_body(answer: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:  # the API went away mid-body: the client sees a short body
        log.warning("API response cut short: %s", type(exc).__name__)
    finally:  # also when the browser goes away mid-body: the pooled connection is released
        await answer.aclose()


class WebSocketRelay:
    """Relays one WebSocket (a hub connection) to the API, both directions, close codes too."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config

    async def handle(self, websocket: WebSocket) -> None:
        upstream = await self._open_upstream(websocket)
        if upstream is None:
            return
        try:
            await websocket.accept()
        except (OSError, RuntimeError, WebSocketDisconnect):
            await upstream.close()
            return
        to_api = asyncio.create_task(self._client_to_api(websocket, upstream))
        to_client = asyncio.create_task(self._api_to_client(upstream, websocket))
        try:
            await asyncio.wait({to_api, to_client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_api, to_client):
                task.cancel()
            await asyncio.gather(to_api, to_client, return_exceptions=True)
            await upstream.close()

    async def _open_upstream(self, websocket: WebSocket) -> ClientConnection | None:
        """Connect to the API before accepting, so its refusal becomes the browser's answer."""
        client_host = websocket.client.host if websocket.client else None
        headers = [(k, v) for k, v in websocket.headers.items() if k.lower() in WS_FORWARD]
        headers += forwarding_headers(
            client_host, websocket.url.scheme, websocket.headers.get("host")
        ).items()
        url = self.config.ws_base + _target(websocket.scope)
        try:
            return await websockets.connect(
                url,
                additional_headers=headers,
                user_agent_header=None,
                open_timeout=self.config.ws_open_timeout_s,
                max_size=self.config.max_ws_message_bytes,
                compression=None,
                proxy=None,
                ping_interval=20,
                ping_timeout=20,
                close_timeout=5,
            )
        except websockets.InvalidStatus as exc:
            refusal = exc.response
            await _deny(
                websocket,
                Response(
                    bytes(refusal.body or b""),
                    status_code=refusal.status_code,
                    media_type=refusal.headers.get("content-type", "application/json"),
                ),
            )
        except TimeoutError:
            await _deny(websocket, error_response(504, "the API did not answer in time"))
        except (OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            log.warning("API hub unreachable: %s", type(exc).__name__)
            await _deny(websocket, error_response(502, "the API is unreachable"))
        return None

    async def _client_to_api(self, websocket: WebSocket, upstream: ClientConnection) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                code = sendable_close_code(message.get("code"))
                with contextlib.suppress(websockets.ConnectionClosed):
                    await upstream.close(code, message.get("reason") or "")
                return
            text = message.get("text")
            data = message.get("bytes")
            try:
                await upstream.send(text if text is not None else (data or b""))
            except websockets.ConnectionClosed:
                return

    async def _api_to_client(self, upstream: ClientConnection, websocket: WebSocket) -> None:
        try:
            async for frame in upstream:
                if isinstance(frame, str):
                    await websocket.send_text(frame)
                else:
                    await websocket.send_bytes(frame)
        except websockets.ConnectionClosed:
            pass
        except (OSError, RuntimeError, WebSocketDisconnect):
            return  # the browser is gone; the other direction ends too
        code = sendable_close_code(upstream.close_code if upstream.close_code else 1006)
        with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
            await websocket.close(code, upstream.close_reason or "")


async def _deny(websocket: WebSocket, response: Response) -> None:
    """Answer the upgrade with an HTTP response (ASGI denial extension), else close 1008."""
    with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(response)
        else:
            await websocket.close(1008)


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
