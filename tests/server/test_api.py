"""The REST API in process, on SQLite and on PostgreSQL (the same tests on both back ends)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from tests.server.helpers import login, wait_for


def test_register_login_me(client: TestClient) -> None:
    c = client
    r = c.post("/api/auth/register", json={"username": "alice", "password": "password-123"})
    assert r.status_code == 201
    assert set(r.json()) == {"id", "username"}  # never a hash
    assert (
        c.post("/api/auth/register", json={"username": "alice", "password": "x" * 9}).status_code
        == 409
    )
    r = c.post("/api/auth/login", json={"username": "alice", "password": "password-123"})
    body = r.json()
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 3600  # token_ttl_s, whose default the test settings keep
    me = c.get("/api/auth/me", headers={"authorization": f"Bearer {body['accessToken']}"})
    assert me.json()["username"] == "alice"
    bad = c.post("/api/auth/login", json={"username": "alice", "password": "wrong-password"})
    assert bad.status_code == 401
    assert bad.json()["message"] == "invalid username or password"
    nobody = c.post("/api/auth/login", json={"username": "nobody", "password": "wrong-password"})
    assert nobody.status_code == 401
    assert nobody.json() == bad.json()  # no user enumeration


def test_market_order_fills_and_updates_account_and_positions(client: TestClient) -> None:
    c = client
    h = login(c, "trader")
    quote = c.get("/api/market-data/quotes/AAPL").json()
    r = c.post("/api/orders", headers=h, json={"symbol": "AAPL", "qty": "3", "side": "buy"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "filled"
    assert order["filled_qty"] == "3"
    assert isinstance(order["filled_avg_price"], str)
    price = Decimal(order["filled_avg_price"])
    assert abs(price - Decimal(quote["ask"])) / price < Decimal("0.05")
    account = c.get("/api/account", headers=h).json()
    assert Decimal(account["cash"]) == Decimal("100000") - 3 * price
    positions = c.get("/api/positions", headers=h).json()
    assert [p["symbol"] for p in positions] == ["AAPL"]
    assert positions[0]["qty"] == "3"
    assert "unrealized_pl" in positions[0]
    assert c.get("/api/positions/AAPL", headers=h).json()["qty"] == "3"
    sell = c.post("/api/orders", headers=h, json={"symbol": "AAPL", "qty": "3", "side": "sell"})
    assert sell.json()["status"] == "filled"
    assert c.get("/api/positions", headers=h).json() == []
    assert c.get("/api/positions/AAPL", headers=h).status_code == 404


def test_limit_order_rests_then_cancels(client: TestClient) -> None:
    c = client
    h = login(c, "limit")
    body = {
        "symbol": "MSFT",
        "qty": "1",
        "side": "buy",
        "type": "limit",
        "limit_price": "1.00",
        "time_in_force": "gtc",
    }
    order = c.post("/api/orders", headers=h, json=body).json()
    assert order["status"] == "new"
    account = c.get("/api/account", headers=h).json()
    assert Decimal(account["buying_power"]) == Decimal(account["cash"]) - Decimal("1.00")
    assert [o["id"] for o in c.get("/api/orders?status=open", headers=h).json()] == [order["id"]]
    assert c.delete(f"/api/orders/{order['id']}", headers=h).status_code == 204
    again = c.delete(f"/api/orders/{order['id']}", headers=h)
    assert again.status_code == 422
    assert c.get(f"/api/orders/{order['id']}", headers=h).json()["status"] == "canceled"
    assert c.get("/api/orders?status=open", headers=h).json() == []
    assert len(c.get("/api/orders?status=closed", headers=h).json()) == 1


def test_marketable_limit_fills_at_placement_and_ioc_cancels(client: TestClient) -> None:
    c = client
    h = login(c, "ioc")
    ask = Decimal(c.get("/api/market-data/quotes/KO").json()["ask"])
    high = str((ask * 2).quantize(Decimal("0.01")))
    filled = c.post(
        "/api/orders",
        headers=h,
        json={"symbol": "KO", "qty": "1", "side": "buy", "type": "limit", "limit_price": high},
    ).json()
    assert filled["status"] == "filled"
    # a marketable limit fills at the touch (the ask), not at its limit of twice the ask
    price = Decimal(filled["filled_avg_price"])
    assert abs(price - ask) / ask < Decimal("0.05"), (price, ask)
    ioc = c.post(
        "/api/orders",
        headers=h,
        json={
            "symbol": "KO",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "limit_price": "0.01",
            "time_in_force": "ioc",
        },
    ).json()
    assert ioc["status"] == "canceled"


def test_resting_limit_order_fills_when_price_crosses(client: TestClient) -> None:
    c = client
    h = login(c, "rester")
    bid = Decimal(c.get("/api/market-data/quotes/DOGEUSD").json()["bid"])
    # a sell needs a position first
    c.post("/api/orders", headers=h, json={"symbol": "DOGEUSD", "qty": "100", "side": "buy"})
    # a sell limit just under the bid crosses on the next tick at the latest
    limit = str((bid * Decimal("0.5")).quantize(Decimal("0.000001")))
    order = c.post(
        "/api/orders",
        headers=h,
        json={
            "symbol": "DOGEUSD",
            "qty": "100",
            "side": "sell",
            "type": "limit",
            "limit_price": limit,
            "time_in_force": "gtc",
        },
    ).json()
    assert wait_for(
        lambda: c.get(f"/api/orders/{order['id']}", headers=h).json()["status"] == "filled"
    )


def test_insufficient_buying_power_and_qty_are_403(client: TestClient) -> None:
    c = client
    h = login(c, "poor")
    r = c.post("/api/orders", headers=h, json={"symbol": "BTCUSD", "qty": "100", "side": "buy"})
    assert r.status_code == 403
    assert r.json()["message"] == "insufficient buying power"
    r = c.post("/api/orders", headers=h, json={"symbol": "AAPL", "qty": "1", "side": "sell"})
    assert r.status_code == 403
    fractional = c.post(
        "/api/orders", headers=h, json={"symbol": "AAPL", "qty": "0.5", "side": "buy"}
    )
    assert fractional.status_code == 422
    crypto = c.post(
        "/api/orders", headers=h, json={"symbol": "ETHUSD", "qty": "0.5", "side": "buy"}
    )
    assert crypto.status_code == 201


def test_users_never_see_each_others_orders(client: TestClient) -> None:
    """S1: another user's order, position or cancel is a 404, never the object."""
    c = client
    a, b = login(c, "usera"), login(c, "userb")
    order = c.post(
        "/api/orders",
        headers=a,
        json={
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "limit_price": "1",
            "client_order_id": "mine-1",
            "time_in_force": "gtc",
        },
    ).json()
    assert c.get(f"/api/orders/{order['id']}", headers=b).status_code == 404
    assert c.delete(f"/api/orders/{order['id']}", headers=b).status_code == 404
    assert c.get("/api/orders/by-client-id/mine-1", headers=b).status_code == 404
    assert c.get("/api/orders?status=all", headers=b).json() == []
    assert c.get(f"/api/orders/{order['id']}", headers=a).json()["status"] == "new"
    # b may reuse a's client_order_id: ids are unique per account
    mine = c.post(
        "/api/orders",
        headers=b,
        json={"symbol": "AAPL", "qty": "1", "side": "buy", "client_order_id": "mine-1"},
    )
    assert mine.status_code == 201


def test_client_order_id_is_idempotent(client: TestClient) -> None:
    """S10: same body -> the existing order (200); a different body -> 422."""
    c = client
    h = login(c, "retry")
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", "client_order_id": "retry-1"}
    first = c.post("/api/orders", headers=h, json=body)
    second = c.post("/api/orders", headers=h, json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    different = c.post("/api/orders", headers=h, json={**body, "qty": "2"})
    assert different.status_code == 422
    by_client = c.get("/api/orders/by-client-id/retry-1", headers=h).json()
    assert by_client["id"] == first.json()["id"]


def test_concurrent_duplicate_orders_create_one_row(client: TestClient) -> None:
    """S10: twenty identical POSTs at once plus one mismatched: exactly one order exists."""
    c = client
    h = login(c, "racer")
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", "client_order_id": "race-1"}
    bodies = [body] * 20 + [{**body, "qty": "5"}]
    with ThreadPoolExecutor(max_workers=21) as pool:
        results = list(pool.map(lambda b: c.post("/api/orders", headers=h, json=b), bodies))
    twins = sorted(r.status_code for r in results[:20])
    odd = results[20].status_code
    # Whichever request commits first owns the client_order_id; both races are correct, and
    # each has exactly one shape: a twin first -> one 201, nineteen 200 replays, the odd one
    # 422; the odd one first -> its 201, and all twenty twins 422 (their body differs).
    assert (twins, odd) in (([200] * 19 + [201], 422), ([422] * 20, 201)), (twins, odd)
    ids = {r.json()["id"] for r in results if r.status_code in (200, 201)}
    assert len(ids) == 1
    every = c.get("/api/orders?status=all&limit=500", headers=h).json()
    assert [o["id"] for o in every] == list(ids)
    assert every[0]["qty"] == ("5" if odd == 201 else "1")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/account"),
        ("GET", "/api/positions"),
        ("GET", "/api/orders"),
        ("POST", "/api/orders"),
        ("GET", "/api/auth/me"),
    ],
)
def test_protected_routes_need_a_token(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert set(r.json()) == {"code", "message"}


def test_errors_have_one_shape(client: TestClient) -> None:
    h = login(client, "shape")
    for response, status in (
        (client.get("/api/nothing-here"), 404),
        (client.get("/api/symbols/NOPE"), 404),
        (client.get("/api/market-data/volume-leaders?top=0"), 422),
        (client.get("/api/market-data/volume-leaders?top=101"), 422),
        (client.get("/api/market-data/volume-leaders?by=price"), 422),
        (client.post("/api/orders", headers=h, content=b"{not json"), 422),
        (client.post("/api/orders", headers=h, json=[1, 2]), 422),
        (client.get("/api/orders/" + "x" * 100, headers=h), 422),  # order ids are <= 64 chars
        (client.put("/api/orders", headers=h), 405),
    ):
        assert response.status_code == status, (response.request.url, response.text)
        assert set(response.json()) == {"code", "message"}
        code = response.json()["code"]
        assert isinstance(code, int)
        assert code // 100_000 == status, code  # Alpaca style: the status times 1e5 plus detail
