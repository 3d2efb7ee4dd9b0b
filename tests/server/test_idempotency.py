"""Idempotent order placement: a replay is answered before any business check.

Defect 2 of issue 13: a sell of a whole position sent many times with one ``client_order_id``
got one 201 and then 403 "insufficient qty" for every replay, because the funds check ran
before the id was looked up. A replay of an accepted request returns the original order (200)
whatever the account looks like now; a different body under the same id is a 422.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.server.helpers import login


def _buy(c: TestClient, h: dict[str, str], qty: str) -> None:
    r = c.post("/api/orders", headers=h, json={"symbol": "MSFT", "qty": qty, "side": "buy"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "filled"


def test_replays_of_a_whole_position_sell_return_the_original_order(
    client: TestClient,
) -> None:
    """Twenty concurrent identical sells of the whole position: one 201, nineteen 200 replays of
    the same order, and a later sequential retry is still a 200 (the position is gone by then)."""
    c = client
    h = login(c, "seller")
    _buy(c, h, "3")
    body = {"symbol": "MSFT", "qty": "3", "side": "sell", "client_order_id": "close-msft"}
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: c.post("/api/orders", headers=h, json=body), range(20)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] * 19 + [201], [(r.status_code, r.text) for r in results]
    ids = {r.json()["id"] for r in results}
    assert len(ids) == 1
    assert c.get("/api/positions", headers=h).json() == []  # sold exactly once

    retry = c.post("/api/orders", headers=h, json=body)
    assert retry.status_code == 200, retry.text
    assert retry.json()["id"] in ids
    assert retry.json()["status"] == "filled"


def test_a_different_body_under_an_accepted_id_is_422_not_a_funds_error(
    client: TestClient,
) -> None:
    """The id is taken: a different body gets the documented 422 even when the account could
    not afford it (the 403 funds check would otherwise hide the misuse of the id)."""
    c = client
    h = login(c, "reuser")
    _buy(c, h, "1")
    body = {"symbol": "MSFT", "qty": "1", "side": "sell", "client_order_id": "reuse-1"}
    assert c.post("/api/orders", headers=h, json=body).status_code == 201
    different = c.post("/api/orders", headers=h, json={**body, "qty": "1000"})
    assert different.status_code == 422, different.text
    assert "client_order_id" in different.json()["message"]
    sells = [o for o in c.get("/api/orders?status=all", headers=h).json() if o["side"] == "sell"]
    assert len(sells) == 1
