"""Market-data routes: symbols, quotes, bars, volume leaders in Alpaca's shape, movers."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient

from mytrader_server.market.universe import UNIVERSE
from tests.server.helpers import wait_for


def test_symbols(client: TestClient) -> None:
    symbols = client.get("/api/symbols").json()
    assert sorted(s["symbol"] for s in symbols) == sorted(a.symbol for a in UNIVERSE)
    assert {"symbol", "name", "exchange", "assetClass", "status", "tradable"} <= set(symbols[0])
    assert {s["assetClass"] for s in symbols} == {"us_equity", "crypto"}
    crypto = client.get("/api/symbols?asset_class=crypto").json()
    assert sorted(s["symbol"] for s in crypto) == sorted(
        a.symbol for a in UNIVERSE if a.asset_class == "crypto"
    )
    assert all(s["assetClass"] == "crypto" for s in crypto)
    assert client.get("/api/symbols/aapl").json()["symbol"] == "AAPL"
    assert client.get("/api/symbols/NOPE").status_code == 404


def test_quotes_move_and_are_decimal_strings(client: TestClient) -> None:
    first = client.get("/api/market-data/quotes/BTCUSD").json()
    for key in ("price", "bid", "ask", "open", "high", "low", "prev_close", "change"):
        assert isinstance(first[key], str)
        Decimal(first[key])
    assert wait_for(
        lambda: (
            client.get("/api/market-data/quotes/BTCUSD").json()["timestamp"] != first["timestamp"]
        )
    )
    many = client.get("/api/market-data/quotes?symbols=AAPL,MSFT").json()
    assert [q["symbol"] for q in many] == ["AAPL", "MSFT"]
    every = client.get("/api/market-data/quotes").json()
    assert sorted(q["symbol"] for q in every) == sorted(a.symbol for a in UNIVERSE)
    assert client.get("/api/market-data/quotes/NOPE").status_code == 404


def test_bars(client: TestClient) -> None:
    bars = client.get("/api/market-data/bars/AAPL?limit=10").json()
    assert bars["symbol"] == "AAPL"
    assert len(bars["bars"]) == 10
    bar = bars["bars"][-1]
    assert Decimal(bar["l"]) <= Decimal(bar["c"]) <= Decimal(bar["h"])
    assert client.get("/api/market-data/bars/AAPL?limit=0").status_code == 422


def test_volume_leaders_in_alpaca_shape(client: TestClient) -> None:
    assert wait_for(
        lambda: (
            client.get("/api/market-data/volume-leaders").json()["most_actives"][0]["volume"] > 0
        )
    )
    body = client.get("/api/market-data/volume-leaders?by=volume&top=5").json()
    assert set(body) == {"most_actives", "last_updated"}
    rows = body["most_actives"]
    assert len(rows) == 5
    assert all(set(r) == {"symbol", "volume", "trade_count"} for r in rows)
    assert [r["volume"] for r in rows] == sorted((r["volume"] for r in rows), reverse=True)
    by_trades = client.get("/api/market-data/volume-leaders?by=trades&top=100").json()[
        "most_actives"
    ]
    counts = [r["trade_count"] for r in by_trades]
    assert counts == sorted(counts, reverse=True)
    for top in ("0", "101", "-1", "abc"):
        assert client.get(f"/api/market-data/volume-leaders?top={top}").status_code == 422


def test_movers(client: TestClient) -> None:
    body = client.get("/api/market-data/movers?top=3").json()
    assert {"gainers", "losers", "last_updated"} <= set(body)
    gainers, losers = body["gainers"], body["losers"]
    assert len(gainers) <= 3
    assert len(losers) <= 3
    # the sign from the exact change (percent_change is rounded to 0.01)
    assert all(Decimal(row["change"]) > 0 for row in gainers), gainers
    assert all(Decimal(row["change"]) < 0 for row in losers), losers
    up = [Decimal(row["percent_change"]) for row in gainers]
    down = [Decimal(row["percent_change"]) for row in losers]
    assert up == sorted(up, reverse=True)  # biggest gain first
    assert down == sorted(down)  # biggest loss first
