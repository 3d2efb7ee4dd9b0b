"""The per-connection memory cuts in ``serving``: list-based queue and event, parser swap."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from mytrader_server.app import create_app
from mytrader_server.hubs.endpoint import HubMiddleware
from mytrader_server.server import build_server
from mytrader_server.serving import ListEvent, ReceiveQueue, _restart_frame_parser
from mytrader_server.settings import Settings

UPGRADE = (
    b"GET /hubs/market-data HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


def _masked_text(payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload  # mask key 0


def _accepted(first: bytes) -> ServerProtocol:
    conn = ServerProtocol()
    conn.receive_data(first)
    events = conn.events_received()
    assert isinstance(events[0], Request)
    conn.send_response(conn.accept(events[0]))
    conn.data_to_send()
    return conn


def test_receive_queue_hands_items_over_in_order() -> None:
    async def main() -> None:
        queue = ReceiveQueue()
        queue.put_nowait(1)
        assert await queue.get() == 1
        assert queue.empty()
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait(2)
        queue.put_nowait(3)
        assert await getter == 2
        assert queue.qsize() == 1
        assert queue.get_nowait() == 3
        cancelled = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        queue.put_nowait(4)  # not lost to the cancelled getter
        assert await queue.get() == 4

    asyncio.run(main())


def test_list_event_waits_and_wakes() -> None:
    async def main() -> None:
        event = ListEvent()
        assert isinstance(event._waiters, list)
        waiter = asyncio.ensure_future(event.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        event.set()
        assert await waiter is True
        event.clear()
        assert not event.is_set()
        assert not event._waiters

    asyncio.run(main())


def test_the_frame_parser_is_swapped_after_the_handshake_and_still_parses() -> None:
    conn = _accepted(UPGRADE)
    old = conn.parser
    _restart_frame_parser(conn)
    assert conn.parser is not old  # the generator holding the parsed request is dropped
    conn.receive_data(_masked_text(b"hello")[:3])  # a frame split over two reads
    conn.receive_data(_masked_text(b"hello")[3:])
    (frame,) = conn.events_received()
    assert isinstance(frame, Frame)
    assert frame.opcode is Opcode.TEXT
    assert frame.data == b"hello"


def test_the_parser_is_kept_when_a_frame_arrived_with_the_handshake() -> None:
    conn = _accepted(UPGRADE + _masked_text(b"early")[:4])  # mid-frame: no swap
    old = conn.parser
    _restart_frame_parser(conn)
    assert conn.parser is old
    conn.receive_data(_masked_text(b"early")[4:])
    (frame,) = conn.events_received()
    assert isinstance(frame, Frame)
    assert frame.data == b"early"


def test_a_built_server_routes_hub_sockets_in_front_only(settings: Settings) -> None:
    """``build_server`` puts one HubMiddleware in front of the app; the app then has none of
    its own, so an HTTP request passes one scope check, not two. ``create_app`` alone (tests,
    any other ASGI server) keeps its own."""
    front = build_server(settings).config.app
    assert isinstance(front, HubMiddleware)
    assert isinstance(front.app, FastAPI)
    assert not [m for m in front.app.user_middleware if m.cls is HubMiddleware]
    assert [m for m in create_app(settings).user_middleware if m.cls is HubMiddleware]
