"""One pure-ASGI middleware for every HTTP request: request id, metrics, body limit, faults.

Pure ASGI rather than ``BaseHTTPMiddleware``: it costs a fraction of the throughput and never
buffers bodies. Logging carries the request id and the route template, never a header value.

``static`` responses (``GET /health/live``: probes call it many times a second) are sent from
here without routing, with the request id and the metrics every request gets.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mytrader_server.faults import FaultInjector
from mytrader_server.metrics import Metrics

log = logging.getLogger("mytrader_server.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
# Generated request ids: a random per-process prefix and a counter (unique, and cheaper than a
# uuid4 per request, which reads the OS random source every time).
_RID_PREFIX = secrets.token_hex(10)
_RID_COUNTER = itertools.count()


class _BodyTooLarge(Exception):
    pass


def _json_response(
    status: int, code: int, message: str, extra: list[tuple[bytes, bytes]]
) -> tuple[Message, Message]:
    body = json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


StaticResponse = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        faults: FaultInjector,
        max_body_bytes: int,
        static: dict[str, StaticResponse] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.faults = faults
        self.max_body = max_body_bytes
        self.static = static or {}  # GET path -> response, answered without routing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        length, incoming_id = _scan_headers(scope)
        request_id = incoming_id or f"{_RID_PREFIX}{next(_RID_COUNTER):012x}"
        rid_header = (b"x-request-id", request_id.encode())
        path: str = scope["path"]
        static = self.static.get(path)
        if static is not None and scope["method"] == "GET" and not length:
            status, headers, body = static
            self.metrics.requests_in_flight += 1
            try:
                start: Message = {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*headers, rid_header],
                }
                await send(start)
                await send({"type": "http.response.body", "body": body})
            finally:
                self.metrics.requests_in_flight -= 1
                self.metrics.observe_request("GET", path, status, time.perf_counter() - started)
            return
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder = [500]
        self.metrics.requests_in_flight += 1
        try:
            if length is not None and length > self.max_body:
                await _send_error(send, 413, 41300001, "request body too large", rid_header)
                status_holder[0] = 413
                return
            delay = self.faults.latency_s(path)
            if delay:
                await asyncio.sleep(delay)
            if self.faults.should_fail(path):
                status = self.faults.profile.error_status
                await _send_error(send, status, status * 100_000 + 99, "injected fault", rid_header)
                status_holder[0] = status
                return

            received = 0
            response_started = False
            too_large = False  # the app may catch our exception (FastAPI turns it into a 400)

            async def limited_receive() -> Message:
                nonlocal received, too_large
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        too_large = True
                        raise _BodyTooLarge
                return message

            async def tracking_send(message: Message) -> None:
                nonlocal response_started
                if too_large:
                    if not response_started:
                        response_started = True
                        status_holder[0] = 413
                        await _send_error(send, 413, 41300001, "request body too large", rid_header)
                    return  # drop whatever the app made of the truncated body
                if message["type"] == "http.response.start":
                    response_started = True
                    status_holder[0] = message["status"]
                    message["headers"] = [*message.get("headers", []), rid_header]
                await send(message)

            try:
                await self.app(scope, limited_receive, tracking_send)
            except _BodyTooLarge:
                if not response_started:
                    status_holder[0] = 413
                    await _send_error(send, 413, 41300001, "request body too large", rid_header)
        finally:
            self.metrics.requests_in_flight -= 1
            route = _route_template(scope)
            self.metrics.observe_request(
                scope["method"], route, status_holder[0], time.perf_counter() - started
            )
            if status_holder[0] >= 500:
                log.warning(
                    "request failed",
                    extra={"request_id": request_id, "route": route, "status": status_holder[0]},
                )


async def _send_error(
    send: Send, status: int, code: int, message: str, rid: tuple[bytes, bytes]
) -> None:
    start, body = _json_response(status, code, message, [rid])
    await send(start)
    await send(body)


def _scan_headers(scope: Scope) -> tuple[int | None, str | None]:
    """Content-Length (None if absent or unreadable) and a sane incoming X-Request-ID."""
    length = request_id = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"x-request-id":
            text = value.decode("latin-1")
            request_id = text if _REQUEST_ID.match(text) else None
    return length, request_id


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
