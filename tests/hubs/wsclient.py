"""A SignalR JSON client by hand on ``websockets``, for tests that must see exact frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.live import LiveServer, scaled

RS = "\x1e"


def ws_url(server: LiveServer, path: str) -> str:
    return "ws://" + urlsplit(server.url).netloc + path


async def open_hub(
    server: LiveServer, path: str = "/hubs/market-data", **kwargs: Any
) -> ClientConnection:
    ws = await connect(ws_url(server, path), **kwargs)
    await ws.send('{"protocol":"json","version":1}' + RS)
    assert await asyncio.wait_for(ws.recv(), scaled(5)) == "{}" + RS
    return ws


async def records(ws: ClientConnection) -> list[dict[str, Any]]:
    text = await asyncio.wait_for(ws.recv(), scaled(10))
    assert isinstance(text, str)
    return [json.loads(r) for r in text.split(RS)[:-1]]


async def drain(ws: ClientConnection) -> tuple[list[dict[str, Any]], ConnectionClosed]:
    """Read until the server closes; return what arrived and how it closed."""
    got: list[dict[str, Any]] = []
    while True:
        try:
            got += await records(ws)
        except ConnectionClosed as closed:
            return got, closed
