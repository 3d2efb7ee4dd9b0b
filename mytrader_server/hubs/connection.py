"""One hub connection over an accepted WebSocket: a reader, a writer task, a bounded queue.

The reader (the ASGI coroutine) feeds received text to the sans-I/O ``HubProtocol`` and hands the
messages to the dispatcher. Everything sent goes through ``push``: a bounded deque drained by
the connection's writer task, which coalesces queued records into one WebSocket frame (SignalR
allows several records per frame). The writer runs only while there is something to send (an
idle connection holds no task or future). Ticks take a shorter path, ``push_frame``: with
nothing queued and no writer running, the pre-framed bytes go straight to the transport. Fan-out
therefore never awaits a socket: a consumer that stops reading pauses its transport, then fills
its own queue and is closed, and nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from starlette.types import Receive, Send
from websockets.protocol import State

from mytrader_server.auth.tokens import Principal
from mytrader_server.hubs.protocol import (
    ERROR_CLOSED,
    ConnectionState,
    HandshakeError,
    HubMessage,
    HubProtocol,
    HubProtocolError,
    MessageTooLarge,
    encode_close,
)
from mytrader_server.serving import ListEvent

if TYPE_CHECKING:
    from mytrader_server.hubs.streams import PriceStream

log = logging.getLogger(__name__)

MAX_FRAME_CHARS: Final = 16_384  # coalesce queued records up to this size per frame
CLOSE_SEND_TIMEOUT_S: Final = 1.0
WS_OPEN: Final = State.OPEN

# WebSocket close codes (RFC 6455 section 7.4.1)
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_POLICY: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL: Final = 1011


@dataclass(frozen=True, slots=True)
class CloseRequest:
    code: int
    reason: str
    record: str | None  # the SignalR Close message sent before the close frame, if any


@dataclass(slots=True)
class HubCounters:
    """Message counts of one hub as plain ints: the fan-out path never takes a metrics lock.

    ``HubServer`` adds them to the Prometheus counters when ``/metrics`` is scraped.
    """

    received: int = 0
    sent: int = 0
    dropped: int = 0
    direct: int = 0  # of ``sent``: written straight to the socket by ``push_frame``


Dispatcher = Callable[["HubConnection", HubMessage], Awaitable[None]]


class HubConnection:
    """State of one accepted connection. ``push`` (and ``push_frame``) never block."""

    __slots__ = (
        "__weakref__",
        "_close",
        "_counts",
        "_direct",
        "_direct_batch",
        "_max_queue",
        "_phase",
        "_queue",
        "_send",
        "_writer",
        "connection_id",
        "finished",
        "hub",
        "last_received",
        "last_sent",
        "opened_at",
        "principal",
        "protocol",
        "streams",
        "symbols",
    )

    def __init__(
        self,
        *,
        hub: str,
        connection_id: str,
        principal: Principal | None,
        send: Send,
        max_queue: int,
        max_record_chars: int,
        counts: HubCounters,
    ) -> None:
        self.hub = hub
        self.connection_id = connection_id
        self.principal = principal
        self.protocol = HubProtocol(max_record_chars)
        self.symbols: set[str] = set()
        self.streams: dict[str, PriceStream] = {}
        now = time.monotonic()
        self.opened_at = now
        self.last_received = now
        self.last_sent = now
        self._send = send
        self._max_queue = max_queue
        # a list, not a deque: an empty deque is 624 bytes, and the queue is short (bounded)
        self._queue: list[str] = []
        # 0 before ``run``; 1 while serving (a writer task runs only while there is something
        # to send); 2 once the close went out (no writer is ever started again)
        self._phase = 0
        self._close: CloseRequest | None = None
        self._counts = counts
        self._direct = DirectWriter.of(send)
        self._direct_batch = -1  # the fan-out batch of this connection's last direct write
        self.finished: asyncio.Event = ListEvent()  # a list of waiters, not a 624-byte deque
        self._writer: asyncio.Task[None] | None = None

    @property
    def state(self) -> ConnectionState:
        return self.protocol.state

    @property
    def user_id(self) -> str | None:
        return self.principal.user_id if self.principal else None

    @property
    def queued(self) -> int:
        return len(self._queue)

    # ---- sending ---------------------------------------------------------------------------

    def push(self, record: str) -> bool:
        """Queue one record for the writer; on overflow close this connection, return False."""
        if self._close is not None:
            return False
        if len(self._queue) >= self._max_queue:
            self._counts.dropped += 1
            self.overflow()
            return False
        self._queue.append(record)
        self._wake()
        return True

    def push_frame(self, record: str, frame: bytes, now: float, batch: int) -> bool:
        """Send ``record``, already framed as ``frame`` (the same bytes for every subscriber),
        straight to the socket when nothing is queued before it and the writer is idle; else
        queue it like ``push``. No future, task or ASGI message per connection and tick.

        ``batch`` numbers the event-loop iteration the tick came in (``FanOut``): only the first
        record of a batch goes direct; further ones (a burst of ticks, even when the sliced
        fan-out writes them in later iterations) queue behind it, and the writer coalesces what
        is queued when it runs into one frame."""
        direct = self._direct
        if (
            direct is not None
            and self._writer is None  # no writer: nothing of ours is queued or mid-send
            and self._direct_batch != batch
            and not self._queue
            and self._close is None
            and direct.ready()
        ):
            direct.transport.write(frame)
            self._direct_batch = batch
            self._counts.sent += 1
            self._counts.direct += 1
            self.last_sent = now
            return True
        return self.push(record)

    def _wake(self) -> None:
        """Start the writer if none runs: it drains the queue (and a close) and then ends, so
        an idle connection holds no task and no future."""
        if self._writer is None and self._phase == 1:
            self._writer = asyncio.get_running_loop().create_task(self._guard_writer())

    def close(self, code: int, reason: str, record: str | None = None) -> None:
        """Ask the writer to flush, send ``record`` (a Close message) and close with ``code``."""
        if self._close is not None:
            return
        self._close = CloseRequest(code, reason, record)
        self.protocol.closing()
        self._wake()

    def overflow(self) -> None:
        """The client does not read fast enough: drop what is queued and close it with an error.

        The writer may be stuck in ``send`` behind a full socket buffer; it is cancelled and the
        transport aborted when the server exposes it (uvicorn does), so the connection's memory
        is released at once instead of waiting for a peer that never reads.
        """
        if self._close is not None:
            return
        log.info("hub client too slow; closing", extra={"hub": self.hub})
        self._counts.dropped += len(self._queue)
        self._queue.clear()
        self._close = CloseRequest(
            CLOSE_POLICY, "send queue full", encode_close(ERROR_CLOSED, allow_reconnect=True)
        )
        self.protocol.closing()
        self._phase = 2  # _close_congested sends the close; no writer starts again
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        asyncio.get_running_loop().create_task(self._close_congested())

    async def _close_congested(self) -> None:
        assert self._close is not None
        try:
            async with asyncio.timeout(CLOSE_SEND_TIMEOUT_S):
                await self._send_close(self._close)
        except (TimeoutError, Exception):
            _abort_transport(self._send)

    async def _send_close(self, request: CloseRequest) -> None:
        if request.record is not None:
            await self._send({"type": "websocket.send", "text": request.record})
        await self._send(
            {"type": "websocket.close", "code": request.code, "reason": request.reason}
        )

    async def _write_loop(self) -> None:
        queue = self._queue
        counts = self._counts
        while True:
            while queue:
                if len(queue) == 1:
                    text = queue.pop()
                    count = 1
                else:
                    size = len(queue[0])
                    count = 1
                    while count < len(queue) and size + len(queue[count]) <= MAX_FRAME_CHARS:
                        size += len(queue[count])
                        count += 1
                    text = "".join(queue[:count])
                    del queue[:count]
                await self._send({"type": "websocket.send", "text": text})
                self.last_sent = time.monotonic()
                counts.sent += count
            if self._close is not None:
                request = self._close
                self._phase = 2
                try:
                    async with asyncio.timeout(CLOSE_SEND_TIMEOUT_S * 2):
                        await self._send_close(request)
                except TimeoutError:
                    _abort_transport(self._send)
                return
            if not queue:
                return  # idle: the next push starts a writer again

    # ---- receiving -------------------------------------------------------------------------

    async def run(
        self, receive: Receive, dispatch: Dispatcher, on_open: Callable[[], None]
    ) -> None:
        """Serve the connection until either side closes; the caller has accepted the socket."""
        self._phase = 1
        if self._queue:
            self._wake()
        # the read loop runs here, not in a coroutine of its own: one frame less per connection
        try:
            counts = self._counts
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.disconnect":
                    return
                if kind != "websocket.receive":
                    continue
                text = message.get("text")
                if text is None:
                    raw = message.get("bytes") or b""
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        self.close(CLOSE_PROTOCOL_ERROR, "invalid utf-8", _error_close())
                        continue
                self.last_received = time.monotonic()
                was_handshake = self.protocol.state is ConnectionState.HANDSHAKE
                try:
                    messages = self.protocol.receive_data(text)
                except MessageTooLarge:
                    self.close(CLOSE_TOO_BIG, "message too big", _error_close())
                    continue
                except HandshakeError:
                    self._flush_protocol()
                    self.close(CLOSE_PROTOCOL_ERROR, "handshake failed")
                    continue
                except HubProtocolError:
                    self.close(CLOSE_PROTOCOL_ERROR, "protocol error", _error_close())
                    continue
                self._flush_protocol()
                if was_handshake and self.protocol.state is ConnectionState.OPEN:
                    on_open()
                for hub_message in messages:
                    counts.received += 1
                    await dispatch(self, hub_message)
        finally:
            self.protocol.closed()
            for stream in list(self.streams.values()):
                stream.stop()
            self.streams.clear()
            if self._close is None:
                self._close = CloseRequest(CLOSE_NORMAL, "", None)
                self._wake()
            writer = self._writer
            if writer is not None and not writer.done():
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    async with asyncio.timeout(CLOSE_SEND_TIMEOUT_S * 3):
                        await asyncio.shield(writer)
                writer.cancel()
            self.finished.set()

    async def _guard_writer(self) -> None:
        try:
            await self._write_loop()
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away mid-send: the reader sees the disconnect
            self._close = self._close or CloseRequest(CLOSE_NORMAL, "", None)
            self._phase = 2
        finally:
            self._writer = None

    def _flush_protocol(self) -> None:
        for record in self.protocol.data_to_send():
            self._queue.append(record)  # handshake replies bypass the limit: they come first
            self._wake()

    def fail_handshake(self, message: str) -> None:
        self.protocol.fail_handshake(message)
        self._flush_protocol()
        self.close(CLOSE_PROTOCOL_ERROR, "handshake timeout")


class DirectWriter:
    """Write pre-framed WebSocket messages to uvicorn's websockets-sansio transport directly.

    ``send`` is a bound method of uvicorn's protocol (the hub middleware passes it unwrapped).
    Only used while the WebSocket is open, uncompressed and the transport is not paused (a full
    socket buffer pauses it: records then queue as usual, and a client that stops reading
    overflows its queue and is closed exactly as before).
    """

    __slots__ = ("owner", "transport", "writable", "ws")

    def __init__(self, owner: object, transport: asyncio.WriteTransport, writable: asyncio.Event):
        self.owner = owner
        self.transport = transport
        self.writable = writable
        self.ws = owner.conn  # type: ignore[attr-defined]  # websockets' ServerProtocol

    @classmethod
    def of(cls, send: Send) -> DirectWriter | None:
        owner = getattr(send, "__self__", None)
        transport = getattr(owner, "transport", None)
        writable = getattr(owner, "writable", None)
        ws = getattr(owner, "conn", None)
        if not (
            # duck-typed: uvloop's transports are not asyncio.Transport subclasses
            callable(getattr(transport, "write", None))
            and callable(getattr(transport, "is_closing", None))
            and isinstance(writable, asyncio.Event)
            and ws is not None
            and hasattr(owner, "close_sent")
            and not getattr(ws, "extensions", None)  # permessage-deflate: frames differ
        ):
            return None
        assert transport is not None
        return cls(owner, transport, writable)

    def ready(self) -> bool:
        owner = self.owner
        return (
            self.writable.is_set()
            and not owner.close_sent  # type: ignore[attr-defined]
            and not owner.disconnected  # type: ignore[attr-defined]
            and self.ws.state is WS_OPEN
            and not self.transport.is_closing()
        )


def text_frame(payload: str) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 section 5.2), as a server sends it."""
    data = payload.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65_536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + data
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + data


def _error_close() -> str:
    return encode_close(ERROR_CLOSED, allow_reconnect=False)


def _abort_transport(send: Send) -> None:
    """Drop a congested connection now. uvicorn's ``send`` is a bound method of its protocol."""
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
