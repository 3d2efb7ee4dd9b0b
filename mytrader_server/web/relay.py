"""Relaying one request or one WebSocket to the API, and answering for it when it cannot.

- HTTP: the body is read up to the limit (413 beyond), sent with the forwarding headers, and
  the answer streamed back; refused or dropped connections are 502, timeouts 504, both as the
  API's ``{"code","message"}``.
- WebSocket: the API is connected *before* the browser is accepted, so the API's refusal (401,
  404, 409, 429) becomes the browser's HTTP answer; then frames are pumped both ways and the
  first side to close closes the other with its code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import websockets
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection

from mytrader_server.web.headers import (
    WS_FORWARD,
    downstream_response_headers,
    forwarding_headers,
    request_target,
    sendable_close_code,
    upstream_request_headers,
)

if TYPE_CHECKING:
    from mytrader_server.web.proxy import ProxyConfig

log = logging.getLogger(__name__)


def error_response(status: int, message: str) -> JSONResponse:
    """The API's error shape, so the app shows proxy failures like any other error."""
    return JSONResponse({"code": status * 100_000, "message": message}, status_code=status)


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _BodyTooLarge
    return bytes(body)


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
            request.method,
            self.config.base + request_target(request.scope),
            headers=headers,
            content=body,
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
        url = self.config.ws_base + request_target(websocket.scope)
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
