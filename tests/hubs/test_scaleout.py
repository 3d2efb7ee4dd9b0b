"""Scale-out: two real API processes, one SQLite data directory, the machine's Redis.

Each test uses its own Redis key/channel prefix, so tests (and CI runs) never see each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mytrader_server.events import Event, Tick, UserEvent
from mytrader_server.hubs.scaleout import decode_batch, encode_batch
from tests.hubs.wsclient import RS, open_hub, records, ws_url
from tests.support.live import LiveServer, scaled, server_env, start_server, until

# ---- the wire format, no Redis needed --------------------------------------------------------

TICK = Tick("AAPL", "189.50", "189.48", "189.52", 1000, 10, "2026-01-02T15:00:00Z", 42)
ORDER = UserEvent("u1", "OrderUpdate", {"event": "fill", "order": {"id": "o1", "qty": "1"}})
PORTFOLIO = UserEvent("u2", "PortfolioUpdate", {"account": {}, "positions": []})


@pytest.mark.parametrize("events", [[], [TICK], [ORDER, TICK, PORTFOLIO]])
def test_event_batches_round_trip(events: list[Event]) -> None:
    assert decode_batch(encode_batch("me", events)) == ("me", events)


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        "[]",
        '{"origin":"x"}',
        '{"origin":"x","events":[{"k":"what"}]}',
        '{"origin":"x","events":[{"k":"user","user_id":"u","target":"Evil","payload":{}}]}',
        '{"origin":"x","events":[{"k":"tick","symbol":"A"}]}',
        '{"origin":"x","events":[5]}',
        '{"origin":"x","events":[{"k":"tick","symbol":"A","price":"1","bid":"1","ask":"1",'
        '"volume":"many","trade_count":1,"timestamp":"t","seq":1}]}',
    ],
)
def test_malformed_batches_are_refused(raw: str) -> None:
    """Only ValueError: the subscriber drops a bad batch on it and stays subscribed (any other
    error used to end the subscription and mark Redis unreachable for a second)."""
    with pytest.raises(ValueError):  # noqa: PT011 - the one error the subscriber catches
        decode_batch(raw)


# ---- two processes ---------------------------------------------------------------------------


@dataclass
class Cluster:
    a: LiveServer
    b: LiveServer
    data_dir: Path


@pytest.fixture
def cluster(redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    data_dir = tmp_path / "shared-data"
    env = server_env(
        data_dir,
        MYTRADER_REDIS_URL=redis_url,
        MYTRADER_REDIS_PREFIX=f"mytrader-test-{uuid.uuid4().hex[:12]}",
        MYTRADER_FEED_INTERVAL_S="0.1",
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_server(tmp_path / "a", env)  # A migrates the database first
    try:
        b = start_server(tmp_path / "b", env)
    except Exception:
        a.stop()
        raise
    try:
        yield Cluster(a, b, data_dir)
    finally:
        b.stop()
        a.stop()


@dataclass
class Collector:
    """Reads one hub socket in the background and keeps every record."""

    ws: ClientConnection
    got: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                self.got += await records(self.ws)

    def pushes(self, target: str) -> list[dict[str, Any]]:
        return [r["arguments"][0] for r in self.got if r.get("target") == target]


@contextlib.asynccontextmanager
async def collect(server: LiveServer, path: str, *invocation: Any) -> AsyncIterator[Collector]:
    ws = await open_hub(server, path)
    if invocation:
        target, *args = invocation
        await ws.send(json.dumps({"type": 1, "target": target, "arguments": args}) + RS)
    c = Collector(ws)
    c.task = asyncio.create_task(c._run())
    try:
        yield c
    finally:
        await ws.close()
        await c.task


def role(server: LiveServer) -> str:
    _, body = server.request("GET", "/health")
    assert isinstance(body, dict)
    entry = body["checks"]["redis:connection"][0]
    assert entry["status"] == "pass", entry
    return str(entry["output"])


@pytest.mark.redis
@pytest.mark.slow
async def test_two_processes_share_one_feed_and_every_event(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    assert sorted([role(a), role(b)]) == ["follower", "leader"]
    token = a.register("spread")
    other = b.register("bystander")
    async with (
        collect(a, f"/hubs/trading?access_token={token}") as a_trading,
        collect(b, f"/hubs/trading?access_token={token}") as b_trading,
        collect(a, f"/hubs/trading?access_token={other}") as a_other,
        collect(a, "/hubs/market-data", "SubscribeToSymbols", ["BTCUSD"]) as a_prices,
        collect(b, "/hubs/market-data", "SubscribeToSymbols", ["BTCUSD"]) as b_prices,
    ):
        # 1. an order placed through B reaches the owner's client on A (and on B)
        status, order = await asyncio.to_thread(
            b.request, "POST", "/api/orders", {"symbol": "AAPL", "qty": "1", "side": "buy"}, token
        )
        assert status == 201, order
        assert isinstance(order, dict)

        def events_for(c: Collector, order_id: str) -> list[str]:
            return [u["event"] for u in c.pushes("OrderUpdate") if u["order"]["id"] == order_id]

        await until(lambda: events_for(a_trading, order["id"]) == ["new", "fill"], what="A")
        await until(lambda: events_for(b_trading, order["id"]) == ["new", "fill"], what="B")

        # 2. both processes push the same prices: one feed, not two
        await until(
            lambda: (
                len(a_prices.pushes("ReceiveMarketData")) >= 15
                and len(b_prices.pushes("ReceiveMarketData")) >= 15
            ),
            what="prices",
        )
        seen_a = {t["timestamp"]: t["price"] for t in a_prices.pushes("ReceiveMarketData")}
        seen_b = {t["timestamp"]: t["price"] for t in b_prices.pushes("ReceiveMarketData")}
        common = set(seen_a) & set(seen_b)
        assert len(common) >= 10
        assert all(seen_a[t] == seen_b[t] for t in common)

        # 3. a resting limit order fills exactly once although both processes sweep
        _, quotes = await asyncio.to_thread(
            b.request, "GET", "/api/market-data/quotes?symbols=BTCUSD"
        )
        assert isinstance(quotes, list)
        limit = (Decimal(quotes[0]["ask"]) - Decimal("1.00")).quantize(Decimal("0.01"))
        status, resting = await asyncio.to_thread(
            b.request,
            "POST",
            "/api/orders",
            {
                "symbol": "BTCUSD",
                "qty": "0.001",
                "side": "buy",
                "type": "limit",
                "limit_price": str(limit),
                "time_in_force": "gtc",
            },
            token,
        )
        assert status == 201, resting
        assert isinstance(resting, dict)
        assert resting["status"] == "new", "the limit order must rest first"
        await until(
            lambda: "fill" in events_for(a_trading, resting["id"]), timeout=45, what="the fill"
        )
        await until(lambda: "fill" in events_for(b_trading, resting["id"]), what="fill on B")
        await asyncio.sleep(scaled(1.0))  # room for a (wrong) second fill to show up
        assert events_for(a_trading, resting["id"]) == ["new", "fill"]
        assert events_for(b_trading, resting["id"]) == ["new", "fill"]
        # and nothing of this user's reached the other user's connection
        assert a_other.pushes("OrderUpdate") == []
    db = sqlite3.connect(cluster.data_dir / "mytrader.db")
    try:
        fills = db.execute("SELECT COUNT(*) FROM fills WHERE order_id = ?", (resting["id"],))
        assert fills.fetchone()[0] == 1
    finally:
        db.close()
    _, position = b.request("GET", "/api/positions/BTCUSD", token=token)
    assert isinstance(position, dict)
    assert Decimal(position["qty"]) == Decimal("0.001")


@pytest.mark.redis
@pytest.mark.slow
async def test_feed_moves_to_the_follower_when_the_leader_stops(cluster: Cluster) -> None:
    leader, follower = (
        (cluster.a, cluster.b) if role(cluster.a) == "leader" else (cluster.b, cluster.a)
    )
    async with collect(follower, "/hubs/market-data", "SubscribeToSymbols", ["ETHUSD"]) as c:
        await until(lambda: len(c.pushes("ReceiveMarketData")) >= 3, what="first ticks")
        # a clean exit: uvicorn re-raises the SIGTERM after its shutdown (see test_live.py)
        assert leader.stop() == -signal.SIGTERM, leader.log()[-2000:]
        assert "Application shutdown complete." in leader.log()
        stopped_at = len(c.pushes("ReceiveMarketData"))
        await until(
            lambda: len(c.pushes("ReceiveMarketData")) >= stopped_at + 10,
            timeout=20,
            what="ticks from the new leader",
        )
        stamps = [t["timestamp"] for t in c.pushes("ReceiveMarketData")[1:]]
        assert stamps == sorted(stamps)  # the new leader continues, it does not restart
    assert role(follower) == "leader"


@pytest.mark.slow
async def test_a_process_cut_off_from_redis_runs_no_private_feed(tmp_path: Path) -> None:
    """Issue 13, defect 3: a scale-out process that cannot reach Redis used to run its own
    feed and fill orders at its own prices while /health/ready said 200. Now it is cut off: no
    ticks, orders refused with 503, readiness 503; reading and logging in still work."""
    env = server_env(
        tmp_path / "data",
        MYTRADER_REDIS_URL="redis://127.0.0.1:1/0",  # nothing listens on port 1
        MYTRADER_REDIS_PREFIX=f"mytrader-test-{uuid.uuid4().hex[:12]}",
    )
    server = start_server(tmp_path, env)
    try:
        token = server.register("cutoff")
        async with collect(server, "/hubs/market-data", "SubscribeToSymbols", ["AAPL"]) as c:
            await asyncio.sleep(scaled(1.5))  # fifteen feed intervals
            # the subscription's snapshot of the start-up quote, and not one tick after it
            assert len(c.pushes("ReceiveMarketData")) == 1
        status, body = server.request("GET", "/health/ready")
        assert status == 503, body
        assert isinstance(body, dict)
        entry = body["checks"]["redis:connection"][0]
        assert entry["status"] == "fail"
        assert entry["output"].startswith("redis unreachable")
        order = {"symbol": "AAPL", "qty": "1", "side": "buy", "client_order_id": "c-1"}
        status, refused = server.request("POST", "/api/orders", order, token)
        assert status == 503, refused
        assert isinstance(refused, dict)
        assert refused["code"] == 50300002
        assert "paused" in refused["message"]
        status, orders = server.request("GET", "/api/orders?status=all", token=token)
        assert (status, orders) == (200, [])  # nothing was written
    finally:
        server.stop()


@pytest.mark.redis
@pytest.mark.slow
async def test_negotiate_on_one_process_connect_on_another(cluster: Cluster) -> None:
    """Behind a load balancer without sticky sessions the upgrade may reach another process."""
    a, b = cluster.a, cluster.b
    token = a.register("roamer")
    status, body = a.request("POST", "/hubs/trading/negotiate?negotiateVersion=1", token=token)
    assert status == 200, body
    assert isinstance(body, dict)
    # no credentials on the upgrade: B knows the user from A's negotiation
    ws = await open_hub(b, f"/hubs/trading?id={body['connectionToken']}")
    try:
        for server, id_ in ((a, body["connectionToken"]), (b, body["connectionId"])):
            with pytest.raises(InvalidStatus) as refused:
                await connect(ws_url(server, f"/hubs/trading?id={id_}"))
            assert refused.value.response.status_code == 409
        status, order = await asyncio.to_thread(
            a.request, "POST", "/api/orders", {"symbol": "SPY", "qty": "1", "side": "buy"}, token
        )
        assert status == 201, order
        got: list[dict[str, Any]] = []
        while not any(r.get("target") == "OrderUpdate" for r in got):
            got += await records(ws)
    finally:
        await ws.close()
    # once closed, the id is gone everywhere (B releases it right after the socket closes)
    for server in (a, b):
        deadline = time.monotonic() + scaled(10)
        while True:
            with pytest.raises(InvalidStatus) as refused:
                await connect(ws_url(server, f"/hubs/trading?id={body['connectionToken']}"))
            if refused.value.response.status_code == 404 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert refused.value.response.status_code == 404
