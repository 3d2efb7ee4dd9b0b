"""The HTTP and WebSocket side of the hubs: negotiate, connect, keep-alive, shutdown, health.

- ``POST /hubs/{hub}/negotiate[?negotiateVersion=N]`` registers a connection id (and, for v1, a
  secret connection token) that a WebSocket may claim within ``PENDING_TTL_S``.
- ``GET /hubs/{hub}?id=...`` (WebSocket) claims it; no ``id`` means skipNegotiation. Refusals
  (404 unknown id, 409 id already connected, 401, 403, 429 per-user cap, 503) are HTTP responses
  to the upgrade, sent before accepting, as ASP.NET Core does.
- WebSocket scopes are taken by ``HubMiddleware`` in front of the router so that each connection
  talks to the server's own ``send`` (nothing wraps it per message).
- One sweeper task per process does handshake deadlines, keep-alive pings and client timeouts
  for every connection; connections have no timers of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mytrader_server.auth.tokens import Principal
from mytrader_server.context import ComponentHealth, ServerContext
from mytrader_server.errors import TradingError
from mytrader_server.events import JSONValue
from mytrader_server.hubs.connection import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    HubConnection,
    HubCounters,
)
from mytrader_server.hubs.fanout import FanOut
from mytrader_server.hubs.methods import HUBS, Dispatcher, HubServices
from mytrader_server.hubs.protocol import (
    ERROR_CLOSED,
    ERROR_HANDSHAKE_CANCELED,
    PING,
    ConnectionState,
    encode_close,
)
from mytrader_server.hubs.scaleout import shared_negotiations
from mytrader_server.trading.engine import OrderEngine

log = logging.getLogger(__name__)

PENDING_TTL_S: Final = 60.0
CLAIM_TTL_S: Final = 2 * PENDING_TTL_S  # outlives the negotiation it guards
MAX_PENDING: Final = 10_000
SHUTDOWN_WAIT_S: Final = 3.0
SHUTDOWN_MESSAGE: Final = "Server is shutting down."
TRANSPORTS: Final = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
_HUB_PATH = re.compile(r"^/hubs/([a-z-]+)/?$")


@dataclass(slots=True)
class Pending:
    """A negotiated connection id, waiting for (or claimed by) its WebSocket."""

    hub: str
    connection_id: str
    token: str | None
    principal: Principal | None
    created: float
    active: bool = False


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _new_id() -> str:
    return secrets.token_urlsafe(16)


class HubServer:
    """Every hub connection of this process and the machinery around them."""

    def __init__(self, ctx: ServerContext, engine: OrderEngine) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.fanout = FanOut()
        self.dispatch = Dispatcher(HubServices(self.fanout, ctx.market, engine))
        self.pending: OrderedDict[str, Pending] = OrderedDict()
        self.connections: set[HubConnection] = set()
        self.per_user: Counter[str] = Counter()
        self.shutting_down = False
        self._sweeper: asyncio.Task[None] | None = None
        self._counts = {hub: HubCounters() for hub in HUBS}
        ctx.metrics.before_scrape(self._flush_counts)
        for hub in HUBS:
            ctx.metrics.hub_connections.labels(hub).set(0)
        ctx.bus.subscribe(self.fanout.on_event)
        ctx.health_probes.append(self.health)
        ctx.shutdown_hooks.append(self.shutdown)

    # ---- authentication --------------------------------------------------------------------

    def _principal(self, authorization: str | None, query_token: str | None) -> Principal | None:
        """The caller from ``Authorization: Bearer`` or ``access_token``; raises 401 if invalid."""
        token = None
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        token = token or query_token
        if not token:
            return None
        return self.ctx.tokens.verify(token)

    def _resolve(
        self, hub: str, authorization: str | None, query_token: str | None
    ) -> Principal | None:
        requires_auth = HUBS[hub].requires_auth
        try:
            return self._principal(authorization, query_token)
        except TradingError:
            if requires_auth:
                raise Refused(401, "invalid token") from None
            return None  # anonymous hubs treat a bad token like none, as [AllowAnonymous] does

    def _check_capacity(self, principal: Principal | None) -> None:
        if self.shutting_down or self.ctx.faults.hubs_down:
            raise Refused(503, "hubs unavailable")
        limit = self.settings.hub_max_connections_per_user
        if principal is not None and self.per_user[principal.user_id] >= limit:
            raise Refused(429, f"too many hub connections for this user (limit {limit})")

    # ---- negotiate -------------------------------------------------------------------------

    async def negotiate(self, request: Request) -> JSONResponse:
        hub = request.path_params.get("hub", "")
        try:
            if hub not in HUBS:
                raise Refused(404, "hub not found")
            principal = self._resolve(
                hub, request.headers.get("authorization"), request.query_params.get("access_token")
            )
            if HUBS[hub].requires_auth and principal is None:
                raise Refused(401, "missing bearer token")
            self._check_capacity(principal)
        except Refused as exc:
            return _refusal(exc)
        try:
            version = min(max(int(request.query_params.get("negotiateVersion", "0")), 0), 1)
        except ValueError:
            version = 0
        connection_id = _new_id()
        token = _new_id() if version >= 1 else None
        pending = Pending(hub, connection_id, token, principal, time.monotonic())
        self._remember(pending)
        await self._share(pending)
        body: dict[str, object] = {"connectionId": connection_id, "negotiateVersion": version}
        if token is not None:
            body["connectionToken"] = token
        body["availableTransports"] = TRANSPORTS
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _remember(self, pending: Pending) -> None:
        while len(self.pending) >= MAX_PENDING * 2:
            self.pending.popitem(last=False)
        self.pending[pending.connection_id] = pending
        if pending.token is not None:
            self.pending[pending.token] = pending

    def _forget(self, pending: Pending) -> None:
        self.pending.pop(pending.connection_id, None)
        if pending.token is not None:
            self.pending.pop(pending.token, None)

    # ---- negotiations shared through Redis (scale-out) ----------------------------------------

    def _ids(self, pending: Pending) -> list[str]:
        return [pending.connection_id] + ([pending.token] if pending.token else [])

    async def _share(self, pending: Pending) -> None:
        store = shared_negotiations(self.ctx.bus)
        if store is None:
            return
        p = pending.principal
        record: dict[str, JSONValue] = {
            "hub": pending.hub,
            "connectionId": pending.connection_id,
            "token": pending.token,
            "user": None if p is None else [p.user_id, p.username, p.is_admin],
        }
        try:
            await store.put(self._ids(pending), record, int(PENDING_TTL_S * 1000))
        except Exception as exc:  # this process can still take the connection itself
            log.warning("could not share a negotiation: %s", type(exc).__name__)

    async def _fetch_shared(self, id_: str) -> Pending | None:
        store = shared_negotiations(self.ctx.bus)
        if store is None:
            return None
        try:
            record = await store.get(id_)
        except Exception as exc:
            log.warning("could not look a negotiation up: %s", type(exc).__name__)
            return None
        if record is None or self.pending.get(id_) is not None:
            return self.pending.get(id_)
        user = record.get("user")
        principal = None
        if isinstance(user, list) and len(user) == 3:
            principal = Principal(str(user[0]), str(user[1]), user[2] is True)
        token = record.get("token")
        pending = Pending(
            str(record.get("hub")),
            str(record.get("connectionId")),
            token if isinstance(token, str) else None,
            principal,
            time.monotonic(),
        )
        self._remember(pending)
        return pending

    async def _claim_shared(self, pending: Pending) -> bool:
        store = shared_negotiations(self.ctx.bus)
        if store is None:
            return True
        try:
            return await store.claim(pending.connection_id, int(CLAIM_TTL_S * 1000))
        except Exception:
            return True  # Redis down: the local claim is all there is

    async def _release_shared(self, pending: Pending) -> None:
        store = shared_negotiations(self.ctx.bus)
        if store is not None:
            with contextlib.suppress(Exception):
                await store.release(pending.connection_id, self._ids(pending))

    # ---- WebSocket ---------------------------------------------------------------------------

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        self._start_sweeper()
        try:
            conn, pending = await self._admit(scope, send)
        except Refused as exc:
            await _deny(scope, send, exc)
            return
        await send({"type": "websocket.accept"})
        self._opened(conn)
        try:
            await conn.run(receive, self.dispatch, lambda: self.fanout.add_user(conn))
        except Exception as exc:  # never let one connection's failure reach the server log raw
            log.warning("hub connection failed: %s", type(exc).__name__, extra={"hub": conn.hub})
        finally:
            self._closed(conn, pending)
            if pending is not None:
                await self._release_shared(pending)

    async def _admit(self, scope: Scope, send: Send) -> tuple[HubConnection, Pending | None]:
        match = _HUB_PATH.match(scope["path"])
        hub = match.group(1) if match else ""
        if hub not in HUBS:
            raise Refused(404, "hub not found")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        query_token = query.get("access_token", [None])[0]
        principal = self._resolve(hub, authorization, query_token)
        pending: Pending | None = None
        connection_id = query.get("id", [None])[0]
        if connection_id:
            pending = self.pending.get(connection_id) or await self._fetch_shared(connection_id)
            if pending is None or pending.hub != hub:
                raise Refused(404, "no connection with this id")
            if pending.active:
                raise Refused(409, "a transport is already connected for this id")
            if principal is None:
                principal = pending.principal  # the negotiate request carried the credentials
            elif pending.principal is not None and pending.principal.user_id != principal.user_id:
                raise Refused(403, "the connection was negotiated by another user")
        if HUBS[hub].requires_auth and principal is None:
            raise Refused(401, "missing bearer token")
        self._check_capacity(principal)
        if pending is not None:
            pending.active = True
            if not await self._claim_shared(pending):  # another process has this id's socket
                self._forget(pending)  # that process owns it now; ask Redis next time
                raise Refused(409, "a transport is already connected for this id")
        conn = HubConnection(
            hub=hub,
            connection_id=pending.connection_id if pending else _new_id(),
            principal=principal,
            send=send,
            max_queue=self.settings.hub_send_queue,
            max_record_chars=self.settings.hub_max_message_bytes,
            counts=self._counts[hub],
        )
        return conn, pending

    def _opened(self, conn: HubConnection) -> None:
        self.connections.add(conn)
        if conn.user_id is not None:
            self.per_user[conn.user_id] += 1
        self.ctx.metrics.hub_connections.labels(conn.hub).inc()

    def _closed(self, conn: HubConnection, pending: Pending | None) -> None:
        self.fanout.remove(conn)
        self.connections.discard(conn)
        if conn.user_id is not None:
            self.per_user[conn.user_id] -= 1
            if self.per_user[conn.user_id] <= 0:
                del self.per_user[conn.user_id]
        if pending is not None:
            self._forget(pending)
        self.ctx.metrics.hub_connections.labels(conn.hub).dec()

    def _flush_counts(self) -> None:
        """Add the messages counted since the last scrape to the Prometheus counters."""
        messages = self.ctx.metrics.hub_messages
        for hub, counts in self._counts.items():
            for direction, value in (
                ("in", counts.received),
                ("out", counts.sent),
                ("dropped", counts.dropped),
            ):
                if value:
                    messages.labels(hub, direction).inc(value)
            counts.received = counts.sent = counts.dropped = 0

    # ---- keep-alive --------------------------------------------------------------------------

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        s = self.settings
        period = min(1.0, max(0.02, min(s.hub_keepalive_s, s.hub_client_timeout_s) / 5))
        period = min(period, max(0.02, s.hub_handshake_timeout_s / 5))
        while True:
            await asyncio.sleep(period)
            try:
                self.sweep(time.monotonic())
            except Exception:  # pragma: no cover - a bug here must not stop keep-alive
                log.exception("hub sweep failed")

    def sweep(self, now: float) -> None:
        """Handshake deadlines, keep-alive pings, client timeouts; expire unclaimed ids."""
        s = self.settings
        for conn in list(self.connections):
            state = conn.state
            if state is ConnectionState.HANDSHAKE:
                if now - conn.opened_at >= s.hub_handshake_timeout_s:
                    conn.fail_handshake(ERROR_HANDSHAKE_CANCELED)
            elif state is ConnectionState.OPEN:
                if now - conn.last_received >= s.hub_client_timeout_s:
                    conn.close(
                        CLOSE_INTERNAL,
                        "client timeout",
                        encode_close(ERROR_CLOSED, allow_reconnect=True),
                    )
                elif now - conn.last_sent >= s.hub_keepalive_s and conn.queued == 0:
                    conn.push(PING)
                    conn.last_sent = now  # the writer updates it again when the ping leaves
        expired = [
            key
            for key, p in self.pending.items()
            if not p.active and now - p.created >= PENDING_TTL_S
        ]
        for key in expired:
            del self.pending[key]

    # ---- health and shutdown -----------------------------------------------------------------

    async def health(self) -> ComponentHealth:
        count = len(self.connections)
        if self.ctx.faults.hubs_down:
            return ComponentHealth(
                "hubs:connections", "component", "fail", count, "connections", "hubs unavailable"
            )
        return ComponentHealth("hubs:connections", "component", "pass", count, "connections")

    async def shutdown(self) -> None:
        """Send every client a Close message, then close 1001; idempotent (called twice)."""
        self.shutting_down = True
        record = encode_close(SHUTDOWN_MESSAGE, allow_reconnect=True)
        conns = list(self.connections)
        for conn in conns:
            conn.close(CLOSE_GOING_AWAY, "server shutting down", record)
        if conns:
            waiters = [asyncio.ensure_future(c.finished.wait()) for c in conns]
            _, late = await asyncio.wait(waiters, timeout=SHUTDOWN_WAIT_S)
            for waiter in late:
                waiter.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None


def _refusal(exc: Refused) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(
        {"code": exc.status * 100_000 + 1, "message": exc.message},
        status_code=exc.status,
        headers=headers,
    )


async def _deny(scope: Scope, send: Send, exc: Refused) -> None:
    """Refuse the upgrade with an HTTP status (needs the ASGI websocket.http.response extension)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"code": exc.status * 100_000 + 1, "message": exc.message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "websocket.http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


class HubMiddleware:
    """Routes WebSocket requests under /hubs/ straight to the hub server."""

    def __init__(self, app: ASGIApp, server: HubServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"].startswith("/hubs/"):
            await self.server.websocket(scope, receive, send)
            return
        await self.app(scope, receive, send)


_SECRET_QUERY = re.compile(r"((?:access_token|id)=)[^&\s\"]*")


class RedactQuery(logging.Filter):
    """Scrubs ``access_token`` and connection ids from server log lines (uvicorn logs the path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "=" in a for a in record.args
        ):
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and ("access_token=" in record.msg or "id=" in record.msg):
            record.msg = _SECRET_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuery) for f in logger.filters):
            logger.addFilter(RedactQuery())


def install(app: FastAPI, ctx: ServerContext) -> HubServer:
    engine: OrderEngine = app.state.engine
    server = HubServer(ctx, engine)
    app.state.hubs = server
    app.add_api_route(
        "/hubs/{hub}/negotiate", server.negotiate, methods=["POST"], include_in_schema=False
    )
    app.add_middleware(HubMiddleware, server=server)
    install_log_redaction()
    return server
