"""A minimal SignalR JSON-protocol client session over `websockets`, for probing.

negotiate (v1, v0 fallback by the server) -> WebSocket connect -> handshake -> invoke /
receive pushes -> ping -> close. Limits: open timeout, max message size, no compression
(no decompression bombs), no proxy from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from mytrader_ops import signalr
from mytrader_ops.observation import StepLog
from mytrader_ops.probes.context import ProbeContext


class HubError(Exception):
    """A hub session step failed; `step` names it for the evidence."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


@dataclass(frozen=True, slots=True)
class HubAuth:
    token: str | None = None
    in_query: bool = False  # browser/mobile style: access_token query instead of a header
    headers: tuple[tuple[str, str], ...] = ()  # other credentials (an API key header)

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.token is not None and not self.in_query:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


async def hub_auth(ctx: ProbeContext, in_query: bool = False) -> tuple[HubAuth | None, str, bool]:
    """The run's credential as a hub carries it: a bearer token in the Authorization header,
    or as `access_token` in the negotiate and upgrade query (browsers, mobile apps); other
    credentials (an API key) as their own headers. (None, reason, failed) without one."""
    cred, reason, failed = await ctx.credential()
    if cred is None:
        return None, reason, failed
    if cred.token is not None:
        return HubAuth(cred.token, in_query), "", False
    return HubAuth(headers=tuple(cred.headers.items())), "", False


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


async def negotiate_status(
    ctx: ProbeContext, base: str, path: str, auth: HubAuth
) -> tuple[int, bytes, float]:
    url = f"{base}{path}/negotiate?negotiateVersion=1"
    if auth.token is not None and auth.in_query:
        url += f"&access_token={auth.token}"
    got = await ctx.fetch("POST", url, headers=auth.request_headers(), max_bytes=64 * 1024)
    return got.status, got.body, got.elapsed_ms


class HubSession:
    def __init__(self, ws: ClientConnection, max_chars: int) -> None:
        self.ws = ws
        self._buffer = signalr.RecordBuffer(max_chars)
        self._pending: dict[str, asyncio.Future[signalr.HubMessage]] = {}
        self._pushes: asyncio.Queue[signalr.HubMessage] = asyncio.Queue(maxsize=10_000)
        self._next_id = 0
        self.pings = 0
        self.ping_event = asyncio.Event()
        self.close_message: signalr.HubMessage | None = None
        self.failure: str | None = None
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        ctx: ProbeContext,
        path: str,
        auth: HubAuth,
        *,
        log: StepLog | None = None,
        base: str | None = None,
        max_message_bytes: int = 1024 * 1024,
        open_timeout_s: float = 10.0,
    ) -> HubSession:
        base = base or ctx.backend
        t0 = time.perf_counter()
        status, body, took = await negotiate_status(ctx, base, path, auth)
        if status != 200:
            raise HubError("negotiate", f"HTTP {status}")
        try:
            parsed = signalr.parse_negotiate(json.loads(body))
        except ValueError:
            raise HubError("negotiate", "response is not JSON") from None
        if isinstance(parsed, str):
            raise HubError("negotiate", parsed)
        if log is not None:
            log.ok("negotiate", f"HTTP 200, v{parsed.version}, {'/'.join(parsed.transports)}", took)
        url = signalr.ws_url(
            f"{base}{path}", parsed.connection_id, auth.token if auth.in_query else None
        )
        headers = auth.request_headers()
        t1 = time.perf_counter()
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                open_timeout=open_timeout_s,
                max_size=max_message_bytes,
                compression=None,
                proxy=None,
                ping_interval=None,
                close_timeout=2,
                ssl=ctx.ssl_context if url.startswith("wss") else None,
                user_agent_header="mytrader-ops/0.1",
            )
        except InvalidStatus as exc:
            raise HubError("connect", f"HTTP {exc.response.status_code}") from None
        except (WebSocketException, OSError, TimeoutError) as exc:
            raise HubError("connect", f"{type(exc).__name__}: {exc}") from None
        if log is not None:
            log.ok("connect", "WebSocket open", _ms(t1))
        session = cls(ws, max_message_bytes)
        t2 = time.perf_counter()
        try:
            await ws.send(signalr.handshake_request(1))
            reply = await session._read_handshake()
        except (ConnectionClosed, OSError) as exc:
            await session.abort()
            raise HubError("handshake", f"connection closed: {exc}") from None
        except BaseException:
            await session.abort()
            raise
        error = signalr.handshake_error(reply)
        if error is not None:
            await session.abort()
            raise HubError("handshake", error)
        if log is not None:
            log.ok("handshake", "{} received", _ms(t2))
            log.values["connect_ms"] = _ms(t0)
        session._reader = asyncio.create_task(session._read_loop())
        return session

    async def _read_handshake(self) -> str:
        while True:
            frame = await self.ws.recv()
            if isinstance(frame, bytes):
                raise HubError("handshake", "binary frame during JSON handshake")
            records = self._buffer.feed(frame)
            if records:
                first, *rest = records
                for r in rest:
                    self._dispatch(r)
                return first

    def _dispatch(self, record: str) -> None:
        try:
            msg = signalr.parse_record(record)
        except ValueError:
            self.failure = f"malformed record: {record[:60]!r}"
            return
        kind = msg.get("type")
        if kind == signalr.COMPLETION:
            fut = self._pending.pop(str(msg.get("invocationId")), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif kind == signalr.INVOCATION:
            with contextlib.suppress(asyncio.QueueFull):
                self._pushes.put_nowait(msg)
        elif kind == signalr.PING_TYPE:
            self.pings += 1
            self.ping_event.set()
        elif kind == signalr.CLOSE_TYPE:
            self.close_message = msg

    async def _read_loop(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self.failure = "unexpected binary frame"
                    continue
                for record in self._buffer.feed(frame):
                    self._dispatch(record)
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code not in (1000, 1001):
                self.failure = self.failure or f"connection closed: {exc}"
        except ValueError as exc:
            self.failure = str(exc)
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(HubError("receive", self.failure or "connection closed"))
            self._pending.clear()

    async def invoke(self, target: str, arguments: list[object]) -> signalr.HubMessage:
        """Invoke and wait for the Completion (callers bound the wait with a timeout)."""
        self._next_id += 1
        inv_id = str(self._next_id)
        fut: asyncio.Future[signalr.HubMessage] = asyncio.get_running_loop().create_future()
        self._pending[inv_id] = fut
        try:
            await self.ws.send(signalr.invocation(target, arguments, inv_id))
        except ConnectionClosed as exc:
            self._pending.pop(inv_id, None)
            raise HubError("invoke", f"connection closed: {exc}") from None
        return await fut

    async def next_push(self, target: str | None) -> signalr.HubMessage:
        """The next server push (optionally for one target, matched case-insensitively)."""
        while True:
            if self._reader is not None and self._reader.done() and self._pushes.empty():
                raise HubError("receive", self.failure or "connection closed")
            try:
                msg = await asyncio.wait_for(self._pushes.get(), timeout=0.5)
            except TimeoutError:
                continue
            name = msg.get("target")
            if target is None or (isinstance(name, str) and name.lower() == target.lower()):
                return msg

    @property
    def is_open(self) -> bool:
        """Still reading: the connection has not been closed or dropped."""
        return self._reader is not None and not self._reader.done()

    def end_description(self) -> str:
        """How the connection ended: the close code and reason, and a SignalR Close error."""
        code = self.ws.close_code
        text = "no close frame (1006)" if code in (None, 1006) else f"close {code}"
        if self.ws.close_reason:
            text += f" ({self.ws.close_reason[:60]})"
        if self.close_message is not None and self.close_message.get("error"):
            text += f", SignalR Close: {str(self.close_message['error'])[:60]}"
        return text

    async def ping(self) -> None:
        await self.ws.send(signalr.PING)

    async def close(self) -> int | None:
        """Send a Close message, then a WebSocket close 1000; returns the close code seen."""
        with contextlib.suppress(ConnectionClosed, OSError):
            await self.ws.send(signalr.CLOSE)
        await self.ws.close(1000)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._reader, timeout=2)
        return self.ws.close_code

    async def abort(self) -> None:
        """Drop the connection without a close handshake (a lost mobile network)."""
        if self._reader is not None:
            self._reader.cancel()
        transport = self.ws.transport
        if transport is not None:
            transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.wait_closed(), timeout=1)
