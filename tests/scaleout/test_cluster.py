"""Three processes, one PostgreSQL database, Redis, nginx: what a user sees is one server.

These tests share one cluster (they only place orders and connect clients, each as its own users);
tests that kill or partition processes build their own (see test_failover.py, test_redis_cut.py).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from mytrader_server.db.migrate import head_revision
from tests.scaleout.harness import (
    Cluster,
    fresh_source_address,
    hub,
    request,
    ws_base,
)
from tests.support.live import scaled, until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.nginx]


def _user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _order_events(h: Any, order_id: str) -> list[str]:
    return [u["event"] for u in h.pushes("OrderUpdate") if u["order"]["id"] == order_id]


async def test_three_processes_started_together_on_an_empty_database(
    shared_cluster: Cluster,
) -> None:
    """Defect 1 (fixed): the cluster fixtures start all three at the same moment on a brand new
    database; each migrates under the advisory lock and all come up."""
    cluster = shared_cluster
    for node in cluster.nodes:
        status, body = await asyncio.to_thread(request, node.url, "GET", "/health/ready")
        assert status == 200, body
        assert "Traceback" not in node.log(), node.log()[-3000:]
    rows = await cluster.sql("SELECT version_num FROM alembic_version")
    assert [r["version_num"] for r in rows] == [head_revision()]
    roles = await cluster.wait_for_roles()
    assert sorted(roles) == ["follower", "follower", "leader"]


async def test_orders_placed_on_one_process_reach_hubs_on_the_others(
    shared_cluster: Cluster,
) -> None:
    c = shared_cluster
    token = c.register(_user("events"))
    q = f"?access_token={token}"
    latencies: list[float] = []
    portfolio_latencies: list[float] = []
    async with (
        hub(c.nodes[1].url, "/hubs/trading" + q) as trading,
        hub(c.nodes[2].url, "/hubs/portfolio" + q) as portfolio,
    ):
        for i in range(10):
            base = c.nodes[0].url if i % 2 == 0 else c.front.url  # direct, then through nginx
            body = {"symbol": "AAPL", "qty": "1", "side": "buy"}
            before = len(portfolio.pushes("PortfolioUpdate"))
            sent = time.monotonic()
            status, order = await asyncio.to_thread(
                request, base, "POST", "/api/orders", body, token
            )
            assert status == 201, order
            await until(lambda o=order: "fill" in _order_events(trading, o["id"]), what="fill")
            arrivals = [
                at for at, u in trading.timed("OrderUpdate") if u["order"]["id"] == order["id"]
            ]
            latencies.append(arrivals[0] - sent)
            await until(
                lambda b=before: len(portfolio.pushes("PortfolioUpdate")) > b, what="portfolio"
            )
            portfolio_latencies.append(portfolio.timed("PortfolioUpdate")[-1][0] - sent)
            assert _order_events(trading, order["id"]) == ["new", "fill"]
    last = portfolio.pushes("PortfolioUpdate")[-1]
    assert [(p["symbol"], Decimal(p["qty"])) for p in last["positions"]] == [("AAPL", 10)]
    print(
        f"\n[events] POST on one process -> OrderUpdate on another: median "
        f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
        f"PortfolioUpdate on a third: median {statistics.median(portfolio_latencies) * 1000:.1f}"
        f" ms, max {max(portfolio_latencies) * 1000:.1f} ms (10 orders, half through nginx)"
    )


async def test_negotiate_and_connect_through_nginx_without_stickiness(
    shared_cluster: Cluster,
) -> None:
    """Round robin sends the negotiate and the upgrade to different processes; it still works."""
    from websockets.asyncio.client import connect

    from tests.hubs.wsclient import RS

    c = shared_cluster
    token = c.register(_user("roamer"))
    front = c.front.url
    sockets = []
    try:
        for _ in range(4):
            status, body = await asyncio.to_thread(
                request, front, "POST", "/hubs/trading/negotiate?negotiateVersion=1", None, token
            )
            assert status == 200, body
            ws = await connect(f"{ws_base(front)}/hubs/trading?id={body['connectionToken']}")
            await ws.send('{"protocol":"json","version":1}' + RS)
            assert await asyncio.wait_for(ws.recv(), scaled(5)) == "{}" + RS
            sockets.append(ws)
        status, order = await asyncio.to_thread(
            request,
            front,
            "POST",
            "/api/orders",
            {"symbol": "SPY", "qty": "1", "side": "buy"},
            token,
        )
        assert status == 201, order
        for ws in sockets:  # every connection, wherever it landed, gets the order's events
            events: list[str] = []
            while "fill" not in events:
                text = await asyncio.wait_for(ws.recv(), scaled(10))
                assert isinstance(text, str)
                for raw in text.split(RS)[:-1]:
                    msg = json.loads(raw)
                    if msg.get("target") == "OrderUpdate":
                        assert msg["arguments"][0]["order"]["id"] == order["id"]
                        events.append(msg["arguments"][0]["event"])
            assert events == ["new", "fill"]
    finally:
        for ws in sockets:
            await ws.close()


async def _burst(
    urls: list[str], n: int, body: dict[str, Any], token: str
) -> list[tuple[int, dict[str, Any]]]:
    """``n`` concurrent identical POSTs, request i to ``urls[i % len(urls)]``, released at once."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=scaled(30), limits=limits) as client:
        go = asyncio.Event()

        async def one(i: int) -> tuple[int, dict[str, Any]]:
            await go.wait()
            resp = await client.post(
                urls[i % len(urls)] + "/api/orders",
                json=body,
                headers={"authorization": f"Bearer {token}"},
            )
            return resp.status_code, resp.json()

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await asyncio.sleep(0.05)
        go.set()
        return await asyncio.gather(*tasks)


@pytest.mark.parametrize("via", ["processes", "nginx"])
async def test_a_concurrent_burst_of_one_client_order_id_makes_one_order(
    shared_cluster: Cluster, via: str
) -> None:
    c = shared_cluster
    token = c.register(_user("burst"))
    urls = [n.url for n in c.nodes] if via == "processes" else [c.front.url]
    body = {"symbol": "MSFT", "qty": "2", "side": "buy", "client_order_id": "burst-1"}
    started = time.monotonic()
    answers = await _burst(urls, 50, body, token)
    took = time.monotonic() - started
    statuses = sorted(s for s, _ in answers)
    assert set(statuses) <= {200, 201}, answers
    assert statuses.count(201) == 1, statuses
    assert len({a["id"] for _, a in answers}) == 1
    rows = await c.sql(
        "SELECT o.id, o.status, (SELECT COUNT(*) FROM fills f WHERE f.order_id = o.id) AS fills "
        "FROM orders o JOIN users u ON u.id = o.user_id WHERE o.client_order_id = 'burst-1' "
        "AND u.username LIKE 'burst-%' AND o.id = $1",
        answers[0][1]["id"],
    )
    assert [(r["status"], r["fills"]) for r in rows] == [("filled", 1)]
    status, listed = await asyncio.to_thread(
        request, c.front.url, "GET", "/api/orders?status=all", None, token
    )
    assert status == 200
    assert len(listed) == 1
    print(f"\n[idempotency] 50 concurrent POSTs via {via}: 1x201 + 49x200 in {took:.2f} s")


async def test_concurrent_replays_of_a_whole_position_sell_are_one_order(
    shared_cluster: Cluster,
) -> None:
    """Defect 2 (fixed): a replay after the sell filled was refused for lack of shares."""
    c = shared_cluster
    token = c.register(_user("seller"))
    status, bought = await asyncio.to_thread(
        request,
        c.front.url,
        "POST",
        "/api/orders",
        {"symbol": "AAPL", "qty": "3", "side": "buy"},
        token,
    )
    assert status == 201, bought
    body = {"symbol": "AAPL", "qty": "3", "side": "sell", "client_order_id": "sell-all"}
    answers = await _burst([n.url for n in c.nodes], 20, body, token)
    assert sorted(s for s, _ in answers).count(201) == 1, answers
    assert {s for s, _ in answers} <= {200, 201}, answers
    assert len({a["id"] for _, a in answers}) == 1
    assert {a["status"] for _, a in answers} == {"filled"}
    status, _ = await asyncio.to_thread(
        request, c.front.url, "GET", "/api/positions/AAPL", None, token
    )
    assert status == 404  # the whole position was sold, once


async def _quote(c: Cluster, symbol: str) -> dict[str, Any]:
    status, quotes = await asyncio.to_thread(
        request, c.front.url, "GET", f"/api/market-data/quotes?symbols={symbol}"
    )
    assert status == 200, quotes
    return dict(quotes[0])


async def test_three_processes_sweeping_fill_each_resting_order_exactly_once(
    shared_cluster: Cluster,
) -> None:
    """Every process sweeps its book on every tick; the conditional UPDATE lets one win."""
    c = shared_cluster
    token = c.register(_user("sweeper"))
    ticks = {
        "DOGEUSD": Decimal("0.000001"),
        "ADAUSD": Decimal("0.000002"),
        "SOLUSD": Decimal("0.01"),
    }
    qty = {"DOGEUSD": "100", "ADAUSD": "20", "SOLUSD": "0.1"}
    # something to sell: a market buy of each symbol first
    for symbol in ticks:
        body = {"symbol": symbol, "qty": str(Decimal(qty[symbol]) * 6), "side": "buy"}
        status, placed = await asyncio.to_thread(
            request, c.front.url, "POST", "/api/orders", body, token
        )
        assert status == 201, placed
    resting: list[str] = []
    q = f"?access_token={token}"
    async with hub(c.nodes[2].url, "/hubs/trading" + q) as trading:
        for symbol, tick in ticks.items():
            quote = await _quote(c, symbol)
            for k in range(1, 7):
                for side, price in (
                    ("buy", Decimal(quote["ask"]) - k * tick),
                    ("sell", Decimal(quote["bid"]) + k * tick),
                ):
                    body = {
                        "symbol": symbol,
                        "qty": qty[symbol],
                        "side": side,
                        "type": "limit",
                        "limit_price": str(price),
                        "time_in_force": "gtc",
                    }
                    status, placed = await asyncio.to_thread(
                        request, c.front.url, "POST", "/api/orders", body, token
                    )
                    assert status == 201, placed
                    if placed["status"] == "new":
                        resting.append(placed["id"])
        assert len(resting) >= 20, "most limit orders must rest first"
        started = time.monotonic()

        def filled() -> int:
            return len(
                {
                    u["order"]["id"]
                    for u in trading.pushes("OrderUpdate")
                    if u["event"] == "fill" and u["order"]["id"] in resting
                }
            )

        deadline = started + scaled(12)
        while filled() < len(resting) * 0.5 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        took = time.monotonic() - started
        # stop the market from filling more: cancel what still rests (a cancel that loses to a
        # fill gets 422), so that the database and the events describe the same set of fills
        for order_id in resting:
            status, body = await asyncio.to_thread(
                request, c.front.url, "DELETE", f"/api/orders/{order_id}", None, token
            )
            assert status in (204, 422), (status, body)
        await asyncio.sleep(scaled(0.5))  # room for a (wrong) second fill to show up
        fill_events = [
            u["order"]["id"] for u in trading.pushes("OrderUpdate") if u["event"] == "fill"
        ]
    swept = [i for i in resting if i in fill_events]
    assert len(swept) >= 10, f"only {len(swept)} of {len(resting)} resting orders filled"
    assert all(fill_events.count(i) == 1 for i in swept), "an order filled twice (events)"
    rows = await c.sql(
        "SELECT o.id, o.status, COUNT(f.id) AS fills FROM orders o "
        "LEFT JOIN fills f ON f.order_id = o.id WHERE o.id = ANY($1::text[]) GROUP BY o.id",
        resting,
    )
    for r in rows:
        assert r["fills"] == (1 if r["status"] == "filled" else 0), r
    assert {r["id"] for r in rows if r["status"] == "filled"} == set(swept)
    problems = await c.ledger_problems()
    assert problems == []
    print(
        f"\n[sweeps] {len(swept)} of {len(resting)} resting limit orders filled by 3 sweeping "
        f"processes in {took:.1f} s, each exactly once; ledger reconciles"
    )


async def test_the_login_rate_limit_is_shared_across_processes(shared_cluster: Cluster) -> None:
    c = shared_cluster
    username = _user("victim")
    c.register(username)
    wrong = {"username": username, "password": "not-the-password"}
    limit = int(c.nodes[0].env["MYTRADER_LOGIN_RATE_PER_MINUTE"])
    source = fresh_source_address()
    # the account's bucket (not this address's) runs out on process 0: register() already
    # spent one token and a slow machine may refill one, so count the 401s up to the first 429
    answers = []
    for _ in range(limit + 3):
        status, body = await asyncio.to_thread(
            request, c.nodes[0].url, "POST", "/api/auth/login", wrong, None, 10, source
        )
        answers.append(status)
        if status == 429:
            break
        assert status == 401, body
    assert answers[-1] == 429, answers
    assert limit - 2 <= len(answers) - 1 <= limit, answers
    # ... and on every other process too: a guesser cannot multiply the limit by the replicas
    for node in c.nodes[1:]:
        status, _ = await asyncio.to_thread(
            request, node.url, "POST", "/api/auth/login", wrong, None, 10, fresh_source_address()
        )
        assert status == 429, f"process {node.index} let a bad login through: {status}"
