"""Interop with the two PyPI SignalR clients, pysignalr 1.3.3 and signalrcore 1.0.2, live.

Both negotiate v0 (no negotiateVersion: the connectionId is the id), copy headers into every
message, and signalrcore sends handshake version 0 and ``streamIds: []``. Every exchange goes
through a real server process over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pysignalr.client import SignalRClient
from pysignalr.exceptions import AuthorizationError
from pysignalr.messages import CancelInvocationMessage, CompletionMessage, Message, PingMessage
from signalrcore.hub import base_hub_connection as core_hub
from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.messages.cancel_invocation_message import CancelInvocationMessage as CoreCancel

from tests.support.live import LiveServer, scaled

pytestmark = pytest.mark.slow


def hub_connections(server: LiveServer) -> int:
    _, body = server.request("GET", "/health")
    assert isinstance(body, dict)
    return int(body["checks"]["hubs:connections"][0]["observedValue"])


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---- pysignalr ---------------------------------------------------------------------------


class RecordingClient(SignalRClient):
    """pysignalr's client, counting the server's keep-alive pings."""

    pings = 0

    async def _on_message(self, message: Message) -> None:
        if isinstance(message, PingMessage):
            self.pings += 1
        await super()._on_message(message)


async def _open(client: SignalRClient) -> asyncio.Task[None]:
    opened = asyncio.Event()

    async def on_open() -> None:
        opened.set()

    client.on_open(on_open)
    task = asyncio.create_task(client.run())
    await asyncio.wait_for(opened.wait(), scaled(10))
    return task


async def _invoke(client: SignalRClient, method: str, args: list[Any]) -> CompletionMessage:
    done: asyncio.Future[CompletionMessage] = asyncio.get_running_loop().create_future()

    async def on_invocation(message: Any) -> None:
        if not done.done():
            done.set_result(message)

    await client.send(method, args, on_invocation=on_invocation)
    return await asyncio.wait_for(done, scaled(10))


async def _close(client: SignalRClient, task: asyncio.Task[None]) -> None:
    """Stop pysignalr's run task and close the socket it leaves behind: it has no stop API, and
    a cancelled ``async for conn in connect(...)`` loop never closes its connection."""
    ws = client._transport._ws
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if ws is not None:
        await ws.close()


async def test_pysignalr_market_data(hub_server: LiveServer) -> None:
    baseline = hub_connections(hub_server)
    client = RecordingClient(f"{hub_server.url}/hubs/market-data", signalr_ping_interval=1)
    ticks: list[dict[str, Any]] = []
    errors: list[str] = []

    async def on_tick(args: list[dict[str, Any]]) -> None:
        ticks.extend(args)

    async def on_error(message: CompletionMessage) -> None:
        errors.append(str(message.error))

    client.on("ReceiveMarketData", on_tick)
    client.on_error(on_error)
    task = await _open(client)
    try:
        assert hub_connections(hub_server) == baseline + 1
        # invoke with result, then server pushes
        reply = await _invoke(client, "SubscribeToSymbols", [["AAPL"]])
        assert reply.result == ["AAPL"]
        await until(lambda: len(ticks) >= 3)
        assert {t["symbol"] for t in ticks} == {"AAPL"}
        # invoke with error (pysignalr routes it to on_error)
        reply = await _invoke(client, "SubscribeToSymbols", [["NOPE"]])
        assert (
            reply.error
            == errors[-1]
            == (
                "An unexpected error occurred invoking 'SubscribeToSymbols' on the server. "
                "HubException: Unknown symbol 'NOPE'."
            )
        )
        await _invoke(client, "UnsubscribeFromSymbols", [["AAPL"]])
        # stream with completion
        items: list[dict[str, Any]] = []
        completed = asyncio.Event()

        async def on_next(item: Any) -> None:
            items.append(item)

        async def on_complete(_: Any) -> None:
            completed.set()

        await client.stream("StreamPrices", ["MSFT", 3], on_next, on_complete, on_error)  # type: ignore[list-item]
        await asyncio.wait_for(completed.wait(), scaled(10))
        assert [i["symbol"] for i in items] == ["MSFT"] * 3
        # stream cancelled: pysignalr has no cancel API, so send its CancelInvocation message
        items.clear()
        completed.clear()
        await client.stream("StreamPrices", ["AAPL"], on_next, on_complete, on_error)
        stream_id = next(iter(client._stream_handlers))
        await until(lambda: len(items) >= 2)
        await client._transport.send(CancelInvocationMessage(stream_id))
        await asyncio.wait_for(completed.wait(), scaled(10))
        settled = len(items)
        # ping: the socket is idle now; the server's keep-alive pings arrive every 0.5 s
        pings = client.pings
        await until(lambda: client.pings >= pings + 2)
        assert len(items) == settled
    finally:
        await _close(client, task)
    await until(lambda: hub_connections(hub_server) == baseline)


@pytest.mark.parametrize("auth", ["header", "query"])
async def test_pysignalr_trading_auth(hub_server: LiveServer, auth: str) -> None:
    token = hub_server.register(f"py-{auth}")
    if auth == "header":  # pysignalr needs the header for negotiate and the upgrade alike
        client = SignalRClient(
            f"{hub_server.url}/hubs/trading", headers={"Authorization": f"Bearer {token}"}
        )
    else:
        client = SignalRClient(f"{hub_server.url}/hubs/trading?access_token={token}")
    updates: list[dict[str, Any]] = []

    async def on_update(args: list[dict[str, Any]]) -> None:
        updates.extend(args)

    client.on("OrderUpdate", on_update)
    task = await _open(client)
    try:
        reply = await _invoke(client, "getopenorders", [])
        assert reply.result == []
        status, order = await asyncio.to_thread(
            hub_server.request,
            "POST",
            "/api/orders",
            {"symbol": "MSFT", "qty": "1", "side": "buy"},
            token,
        )
        assert status == 201, order
        assert isinstance(order, dict)
        await until(lambda: len(updates) >= 2)
        assert [(u["event"], u["order"]["id"]) for u in updates] == [
            ("new", order["id"]),
            ("fill", order["id"]),
        ]
    finally:
        await _close(client, task)


async def test_pysignalr_without_token_gets_401(hub_server: LiveServer) -> None:
    client = SignalRClient(f"{hub_server.url}/hubs/portfolio", retry_count=1)
    with pytest.raises(AuthorizationError):  # pysignalr's exception for a 401 on negotiate
        await asyncio.wait_for(client.run(), scaled(10))


# ---- signalrcore -------------------------------------------------------------------------


def _core(url: str, token: str | None = None, skip: bool = False) -> Any:
    options: dict[str, Any] = {"skip_negotiation": skip}
    if token is not None:
        options["access_token_factory"] = lambda: token
    return HubConnectionBuilder().with_url(url, options=options).build()


def _core_start(conn: Any) -> None:
    opened = threading.Event()
    conn.on_open(opened.set)
    conn.start()
    assert opened.wait(scaled(10)), "signalrcore did not open"


def _core_stream(conn: Any, method: str, args: list[Any], callbacks: dict[str, Any]) -> Any:
    """``conn.stream(...).subscribe(...)`` without its race: signalrcore sends the invocation
    before ``subscribe`` can run, so an item the server sends at once goes to the default
    callback, which only logs. The handler is subscribed before the invocation leaves."""
    original = core_hub.StreamHandler

    def subscribed(event: str, invocation_id: str) -> Any:
        handler = original(event, invocation_id)
        handler.subscribe(callbacks)
        return handler

    core_hub.StreamHandler = subscribed
    try:
        return conn.stream(method, args)
    finally:
        core_hub.StreamHandler = original


def _core_invoke(conn: Any, method: str, args: list[Any]) -> Any:
    done = threading.Event()
    box: list[Any] = []

    def on_invocation(message: Any) -> None:
        box.append(message)
        done.set()

    conn.send(method, args, on_invocation=on_invocation)
    assert done.wait(scaled(10)), f"no completion for {method}"
    return box[0]


@pytest.mark.parametrize("skip", [False, True], ids=["negotiate-v0", "skip"])
def test_signalrcore_market_data(hub_server: LiveServer, skip: bool) -> None:
    baseline = hub_connections(hub_server)
    conn = _core(f"{hub_server.url}/hubs/market-data", skip=skip)
    ticks: list[dict[str, Any]] = []
    errors: list[str] = []
    closed = threading.Event()
    conn.on("ReceiveMarketData", ticks.extend)
    conn.on_error(lambda message: errors.append(str(message.error)))
    conn.on_close(closed.set)
    pings: list[int] = []
    dispatch = conn.on_message

    def counting(messages: list[Any]) -> None:  # sees every message before signalrcore does
        pings.extend(1 for m in messages if m.type.value == 6)
        dispatch(messages)

    conn.on_message = counting
    _core_start(conn)
    try:
        assert _core_invoke(conn, "SubscribeToSymbols", [["ETHUSD"]]).result == ["ETHUSD"]
        wait_until(lambda: len(ticks) >= 3)
        conn.send("SubscribeToSymbols", [["NOPE"]])
        wait_until(lambda: bool(errors))
        assert errors == [
            "An unexpected error occurred invoking 'SubscribeToSymbols' on the server. "
            "HubException: Unknown symbol 'NOPE'."
        ]
        _core_invoke(conn, "UnsubscribeFromSymbols", [["ETHUSD"]])
        # stream with completion (signalrcore sends "streamIds": [])
        items: list[Any] = []
        complete = threading.Event()
        callbacks = {
            "next": items.append,
            "complete": lambda _: complete.set(),
            "error": errors.append,
        }
        _core_stream(conn, "StreamPrices", ["MSFT", 3], callbacks)
        assert complete.wait(scaled(10))
        assert [i["symbol"] for i in items] == ["MSFT"] * 3
        # stream cancelled
        items.clear()
        complete.clear()
        handler = _core_stream(conn, "StreamPrices", ["AAPL"], callbacks)
        wait_until(lambda: len(items) >= 2)
        conn.transport.send(CoreCancel(handler.invocation_id))
        assert complete.wait(scaled(10))
        # ping: the idle socket gets the server's keep-alive pings and stays usable
        seen = len(pings)
        wait_until(lambda: len(pings) >= seen + 2)
        assert _core_invoke(conn, "SubscribeToSymbols", [[]]).result == []
        assert len(errors) == 1
    finally:
        conn.stop()
    assert closed.wait(scaled(10))
    wait_until(lambda: hub_connections(hub_server) == baseline)


def test_signalrcore_portfolio_with_auth(hub_server: LiveServer) -> None:
    token = hub_server.register("core-user")
    conn = _core(f"{hub_server.url}/hubs/portfolio", token=token)
    updates: list[dict[str, Any]] = []
    conn.on("PortfolioUpdate", updates.extend)
    _core_start(conn)
    try:
        snapshot = _core_invoke(conn, "GetPortfolio", []).result
        assert snapshot["positions"] == []
        status, _ = hub_server.request(
            "POST", "/api/orders", {"symbol": "NVDA", "qty": "2", "side": "buy"}, token
        )
        assert status == 201
        wait_until(lambda: bool(updates))
        assert [(p["symbol"], p["qty"]) for p in updates[-1]["positions"]] == [("NVDA", "2")]
    finally:
        conn.stop()


async def test_pysignalr_skip_negotiation(hub_server: LiveServer) -> None:
    """pysignalr's transport can skip negotiate (its client class does not expose the flag);
    without negotiate it needs the ws:// form of the URL."""
    client = SignalRClient(hub_server.url.replace("http://", "ws://") + "/hubs/market-data")
    client._transport._skip_negotiation = True
    task = await _open(client)
    try:
        reply = await _invoke(client, "SubscribeToSymbols", [["SOLUSD"]])
        assert reply.result == ["SOLUSD"]
    finally:
        await _close(client, task)


def test_signalrcore_access_token_query(hub_server: LiveServer) -> None:
    """signalrcore keeps a query string on the hub URL: the browser-style access_token works."""
    token = hub_server.register("core-query")
    conn = _core(f"{hub_server.url}/hubs/trading?access_token={token}")
    _core_start(conn)
    try:
        assert _core_invoke(conn, "GetOpenOrders", []).result == []
    finally:
        conn.stop()
