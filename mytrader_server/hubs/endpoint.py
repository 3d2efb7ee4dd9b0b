"""The HTTP and WebSocket side of the hubs: negotiate, connect, keep-alive, shutdown, health.

- ``POST /hubs/{hub}/negotiate[?negotiateVersion=N]`` registers a connection id (and, for v1, a
  secret connection token) that a WebSocket may claim (``negotiation``).
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
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Final
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mytrader_server.auth.tokens import LEEWAY_S, Principal
from mytrader_server.context import ComponentHealth, ServerContext
from mytrader_server.errors import TradingError
from mytrader_server.hubs.connection import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    HubConnection,
    HubCounters,
)
from mytrader_server.hubs.fanout import FanOut
from mytrader_server.hubs.methods import HUBS, Dispatcher, HubServices
from mytrader_server.hubs.negotiation import Negotiations, Pending, new_id
from mytrader_server.hubs.protocol import (
    ERROR_CLOSED,
    ERROR_HANDSHAKE_CANCELED,
    PING,
    ConnectionState,
    encode_close,
)
from mytrader_server.market.service import MAX_CATCH_UP_S
from mytrader_server.serving import install_log_redaction
from mytrader_server.trading.engine import OrderEngine

log = logging.getLogger(__name__)

SHUTDOWN_WAIT_S: Final = 3.0
SHUTDOWN_MESSAGE: Final = "Server is shutting down."
HUBS_DOWN_MESSAGE: Final = "Hubs are unavailable."
EXPIRED_MESSAGE: Final = "Connection closed because the access token expired."
CLOSE_TRY_AGAIN_LATER: Final = 1013
TRANSPORTS: Final = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
_HUB_PATH = re.compile(r"^/hubs/([a-z-]+)/?$")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HubServer:
    """Every hub connection of this process and the machinery around them."""

    def __init__(self, ctx: ServerContext, engine: OrderEngine) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.fanout = FanOut()
        self._slices_counted = 0  # fan-out resumptions already added to the metric
        self.dispatch = Dispatcher(HubServices(self.fanout, ctx.market, engine))
        self.negotiations = Negotiations(ctx.bus)
        self.connections: set[HubConnection] = set()
        self.per_user: Counter[str] = Counter()  # open and admitting connections per user
        self._admitting = 0  # admitted upgrades not yet open: they hold their slots already
        self.shutting_down = False
        self._sweeper: asyncio.Task[None] | None = None
        self._counts = {hub: HubCounters() for hub in HUBS}
        ctx.metrics.before_scrape(self._flush_counts)
        for hub in HUBS:
            ctx.metrics.hub_connections.labels(hub).set(0)
        ctx.bus.subscribe(self.fanout.on_event)
        ctx.health_probes.append(self.health)
        ctx.health_probes.append(self.feed_schedule_health)
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
        if len(self.connections) + self._admitting >= self.settings.hub_max_connections:
            # anonymous market-data connections have no user to cap; this bounds them all
            raise Refused(503, "the server is at its hub connection limit")
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
        pending = await self.negotiations.create(hub, principal, version)
        connection_id, token = pending.connection_id, pending.token
        body: dict[str, object] = {"connectionId": connection_id, "negotiateVersion": version}
        if token is not None:
            body["connectionToken"] = token
        body["availableTransports"] = TRANSPORTS
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

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
        del scope  # not needed from here on: the connection's frame does not keep it alive
        try:
            await send({"type": "websocket.accept"})
        except BaseException:  # the client left before the accept went out
            self._unreserve(conn.principal)
            if pending is not None:
                await self.negotiations.release(pending)
            raise
        self._opened(conn)
        try:
            await conn.run(receive, self.dispatch, lambda: self.fanout.add_user(conn))
        except Exception as exc:  # never let one connection's failure reach the server log raw
            log.warning("hub connection failed: %s", type(exc).__name__, extra={"hub": conn.hub})
        finally:
            self._closed(conn, pending)
            if pending is not None:
                await self.negotiations.release(pending)

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
            pending = await self.negotiations.find(connection_id)
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
        # Take the slots now, before any await: simultaneous upgrades cannot all pass the check.
        self._reserve(principal)
        try:
            if pending is not None and not await self.negotiations.claim(pending):
                raise Refused(409, "a transport is already connected for this id")
            conn = HubConnection(
                hub=hub,
                connection_id=pending.connection_id if pending else new_id(),
                principal=principal,
                send=send,
                max_queue=self.settings.hub_send_queue,
                max_record_chars=self.settings.hub_max_message_bytes,
                counts=self._counts[hub],
            )
        except BaseException:
            self._unreserve(principal)
            raise
        return conn, pending

    def _reserve(self, principal: Principal | None) -> None:
        self._admitting += 1
        if principal is not None:
            self.per_user[principal.user_id] += 1

    def _unreserve(self, principal: Principal | None) -> None:
        self._admitting -= 1
        if principal is not None:
            self._forget_user(principal.user_id)

    def _forget_user(self, user_id: str) -> None:
        self.per_user[user_id] -= 1
        if self.per_user[user_id] <= 0:
            del self.per_user[user_id]

    def _opened(self, conn: HubConnection) -> None:
        """The admitted connection is open: its reserved slots become a connection."""
        self._admitting -= 1
        self.connections.add(conn)
        self.ctx.metrics.hub_connections.labels(conn.hub).inc()

    def _closed(self, conn: HubConnection, pending: Pending | None) -> None:
        self.fanout.remove(conn)
        self.connections.discard(conn)
        if conn.user_id is not None:
            self._forget_user(conn.user_id)
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
            if counts.direct:
                self.ctx.metrics.hub_direct_writes.labels(hub).inc(counts.direct)
            counts.received = counts.sent = counts.dropped = counts.direct = 0
        resumed = self.fanout.slices - self._slices_counted
        if resumed:
            self.ctx.metrics.hub_fanout_resumed.inc(resumed)
            self._slices_counted = self.fanout.slices

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
        if self.ctx.faults.hubs_down and self.connections:
            # the injected outage looks like a real one: everyone is told to go (and to retry,
            # which gets 503 until the fault is cleared)
            record = encode_close(HUBS_DOWN_MESSAGE, allow_reconnect=True)
            for conn in list(self.connections):
                conn.close(CLOSE_TRY_AGAIN_LATER, "hubs unavailable", record)
            return
        wall = time.time()
        for conn in list(self.connections):
            state = conn.state
            if state is ConnectionState.OPEN and self._token_expired(conn, wall):
                # As ASP.NET Core's CloseOnAuthenticationExpiration: a user whose token ran out
                # stops receiving their events; a client with automatic reconnect comes back
                # with a fresh token from its access token factory, or gets 401.
                conn.close(
                    CLOSE_POLICY,
                    "access token expired",
                    encode_close(EXPIRED_MESSAGE, allow_reconnect=True),
                )
            elif state is ConnectionState.HANDSHAKE:
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
        self.negotiations.expire(now)

    def _token_expired(self, conn: HubConnection, wall: float) -> bool:
        p = conn.principal
        return (
            self.settings.hub_close_on_token_expiry
            and p is not None
            and p.expires_at is not None
            and HUBS[conn.hub].requires_auth
            and wall >= p.expires_at + LEEWAY_S  # the leeway the token was accepted with
        )

    # ---- health and shutdown -----------------------------------------------------------------

    async def health(self) -> ComponentHealth:
        count = len(self.connections)
        if self.ctx.faults.hubs_down:
            return ComponentHealth(
                "hubs:connections", "component", "fail", count, "connections", "hubs unavailable"
            )
        return ComponentHealth("hubs:connections", "component", "pass", count, "connections")

    async def feed_schedule_health(self) -> ComponentHealth:
        """The market-data hub's view of the feed: how far behind its fixed-rate schedule it
        runs. Up to ``MAX_CATCH_UP_S`` no step is lost; from half of it on this warns (beyond
        it steps are skipped). A dead feed fails ``market-data:freshness`` instead."""
        market = self.ctx.market
        key = "market-data:scheduleLag"
        lag = market.schedule_lag_s()
        if lag is None:
            return ComponentHealth(key, "component", "pass", None, "s", "feed runs elsewhere")
        skipped = market.counts.skipped
        status = "warn" if lag >= MAX_CATCH_UP_S / 2 else "pass"
        output = f"{skipped} step(s) skipped since start" if skipped else ""
        return ComponentHealth(key, "component", status, round(lag, 4), "s", output)

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
    """Routes WebSocket requests under /hubs/ straight to the hub server.

    Not a coroutine function: it returns the awaitable it chose, so it adds no frame to each
    connection's stack. ``build_server`` also puts one in front of the whole FastAPI app, so
    that a hub connection's task holds no middleware frames at all (nor their scope refs)."""

    def __init__(self, app: ASGIApp, server: HubServer) -> None:
        self.app = app
        self.server = server

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket" and scope["path"].startswith("/hubs/"):
            return self.server.websocket(scope, receive, send)
        return self.app(scope, receive, send)


def install(app: FastAPI, ctx: ServerContext, route_sockets: bool = True) -> HubServer:
    engine: OrderEngine = app.state.engine
    server = HubServer(ctx, engine)
    app.state.hubs = server
    app.add_api_route(
        "/hubs/{hub}/negotiate", server.negotiate, methods=["POST"], include_in_schema=False
    )
    if route_sockets:
        app.add_middleware(HubMiddleware, server=server)
    install_log_redaction()
    return server
