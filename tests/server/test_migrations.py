"""Schema migrations keep real data, on SQLite and on PostgreSQL.

A database is built at revision 0001 and filled with plain SQL as a 0001 server would have left
it (users, accounts, positions, fills, orders in every state, resting buy orders among them);
then the real upgrade runs. Revision 0002 adds ``accounts.reserved_cash`` and backfills it with
what each account's resting buy limit orders hold: (qty - filled_qty) * limit_price over the
statuses accepted, new, partially_filled and pending_cancel. Every row must survive, the
backfill must be exact, a downgrade to 0001 and back must give the same result, and the server
must then serve the upgraded data (buying power, open orders, a cancel releasing its hold).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from alembic import command
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Connection, DateTime, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from mytrader_server.app import create_app
from mytrader_server.db.engine import create_engine
from mytrader_server.db.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from mytrader_server.settings import Settings

PASSWORD = "migrated-password-1"
ALICE, BOB, CAROL = (str(uuid.uuid4()) for _ in range(3))
SNAPSHOT = {
    "users": "SELECT id, username, password_hash, is_admin, created_at FROM users ORDER BY id",
    "accounts": "SELECT id, user_id, account_number, cash, created_at FROM accounts ORDER BY id",
    "orders": "SELECT id, user_id, client_order_id, request_hash, symbol, side, type, "
    "time_in_force, qty, filled_qty, limit_price, filled_avg_price, status, created_at, "
    "updated_at, submitted_at FROM orders ORDER BY id",
    "positions": "SELECT user_id, symbol, qty, cost_basis, updated_at FROM positions "
    "ORDER BY user_id, symbol",
    "fills": "SELECT id, order_id, user_id, symbol, side, qty, price, at FROM fills ORDER BY id",
}

# (user, symbol, side, type, qty, filled_qty, limit_price, status): what reserves cash is a
# buy limit order still open (accepted, new, partially_filled, pending_cancel)
ORDERS: list[tuple[str, str, str, str, str, str, str | None, str]] = [
    (ALICE, "AAPL", "buy", "market", "10", "10", None, "filled"),
    (ALICE, "AAPL", "buy", "limit", "10", "0", "100.50", "new"),  # 1005.00
    (ALICE, "MSFT", "buy", "limit", "4", "1", "250", "partially_filled"),  # 750
    (ALICE, "NVDA", "buy", "limit", "2", "0", "10", "pending_cancel"),  # 20
    (ALICE, "AAPL", "buy", "limit", "1", "0", "0.01", "accepted"),  # 0.01
    (ALICE, "AAPL", "sell", "limit", "5", "0", "999", "new"),  # a sell holds shares, not cash
    (ALICE, "AAPL", "buy", "limit", "3", "0", "90", "canceled"),
    (ALICE, "MSFT", "buy", "limit", "1", "1", "400", "filled"),
    (BOB, "MSFT", "buy", "limit", "2", "0", "300", "new"),  # 600
    (BOB, "MSFT", "buy", "limit", "3", "0", "350", "expired"),
    (BOB, "AAPL", "buy", "market", "1", "0", None, "rejected"),
]
RESERVED = {ALICE: Decimal("1775.01"), BOB: Decimal("600"), CAROL: Decimal("0")}
CASH = {ALICE: "50000.00", BOB: "1234.56", CAROL: "100000"}


def _ts(minute: int) -> datetime:
    return datetime(2026, 11, 20, 14, minute, tzinfo=UTC)


def _sql(statement: str) -> TextClause:
    """Plain SQL whose ``:at`` is bound as a timestamp (text on SQLite, timestamptz on
    PostgreSQL: the form each back end's 0001 server stored)."""
    return text(statement).bindparams(bindparam("at", type_=DateTime(timezone=True)))


def _fill_at_0001(conn: Connection) -> None:
    pw = PasswordHasher().hash(PASSWORD)
    for n, (uid, name) in enumerate([(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")]):
        conn.execute(
            _sql(
                "INSERT INTO users (id, username, password_hash, is_admin, created_at) "
                "VALUES (:id, :name, :pw, FALSE, :at)"
            ),
            {"id": uid, "name": name, "pw": pw, "at": _ts(n)},
        )
        conn.execute(
            _sql(
                "INSERT INTO accounts (id, user_id, account_number, cash, created_at) "
                "VALUES (:id, :uid, :num, :cash, :at)"
            ),
            {
                "id": str(uuid.uuid4()),
                "uid": uid,
                "num": f"PA{n:010d}",
                "cash": CASH[uid],
                "at": _ts(n),
            },
        )
    for uid, symbol, qty, basis in [(ALICE, "AAPL", "10", "1895.00"), (ALICE, "MSFT", "1", "400")]:
        conn.execute(
            _sql(
                "INSERT INTO positions (user_id, symbol, qty, cost_basis, updated_at) "
                "VALUES (:uid, :symbol, :qty, :basis, :at)"
            ),
            {"uid": uid, "symbol": symbol, "qty": qty, "basis": basis, "at": _ts(30)},
        )
    for n, (uid, symbol, side, type_, qty, filled, limit, status) in enumerate(ORDERS):
        order_id = str(uuid.uuid4())
        conn.execute(
            _sql(
                "INSERT INTO orders (id, user_id, client_order_id, request_hash, symbol, side, "
                "type, time_in_force, qty, limit_price, filled_qty, filled_avg_price, status, "
                "created_at, updated_at, submitted_at) VALUES (:id, :uid, :cid, :hash, :symbol, "
                ":side, :type, 'gtc', :qty, :limit, :filled, :avg, :status, :at, "
                ":at, :at)"
            ),
            {
                "id": order_id,
                "uid": uid,
                "cid": f"legacy-{n}",
                "hash": f"{n:064x}",
                "symbol": symbol,
                "side": side,
                "type": type_,
                "qty": qty,
                "limit": limit,
                "filled": filled,
                "avg": None if filled == "0" else (limit or "189.50"),
                "status": status,
                "at": _ts(10 + n),
            },
        )
        if filled != "0":
            conn.execute(
                _sql(
                    "INSERT INTO fills (id, order_id, user_id, symbol, side, qty, price, at) "
                    "VALUES (:id, :oid, :uid, :symbol, :side, :qty, :price, :at)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "oid": order_id,
                    "uid": uid,
                    "symbol": symbol,
                    "side": side,
                    "qty": filled,
                    "price": limit or "189.50",
                    "at": _ts(10 + n),
                },
            )


def _snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every 0001 table, in a stable order (reserved_cash left out)."""
    return {t: [tuple(r) for r in conn.execute(text(query))] for t, query in SNAPSHOT.items()}


def _reserved(conn: Connection) -> dict[str, Decimal]:
    rows = conn.execute(text("SELECT user_id, reserved_cash FROM accounts")).fetchall()
    return {uid: Decimal(value) for uid, value in rows}


def _columns(conn: Connection, table: str) -> set[str]:
    from sqlalchemy import inspect

    return {c["name"] for c in inspect(conn).get_columns(table)}


async def _run(engine: AsyncEngine, fn: Any) -> Any:
    async with engine.begin() as conn:
        return await conn.run_sync(fn)


async def _migrate_and_check(engine: AsyncEngine) -> None:
    await _run(engine, lambda c: command.upgrade(alembic_config(c), "0001"))
    await _run(engine, _fill_at_0001)
    before = await _run(engine, _snapshot)
    assert len(before["orders"]) == len(ORDERS)
    assert "reserved_cash" not in await _run(engine, lambda c: _columns(c, "accounts"))

    assert await upgrade_to_head(engine) == ("0001", head_revision())  # the server's own path
    assert await _run(engine, _snapshot) == before
    assert await _run(engine, _reserved) == RESERVED

    # down to 0001 (the column goes, nothing else does) and up again: the same backfill
    await _run(engine, lambda c: command.downgrade(alembic_config(c), "0001"))
    assert await current_revision(engine) == "0001"
    assert "reserved_cash" not in await _run(engine, lambda c: _columns(c, "accounts"))
    assert await _run(engine, _snapshot) == before
    assert await upgrade_to_head(engine) == ("0001", head_revision())
    assert await _run(engine, _snapshot) == before
    assert await _run(engine, _reserved) == RESERVED


def test_upgrade_from_0001_keeps_data_and_backfills_reserved_cash(settings: Settings) -> None:
    engine = create_engine(settings)

    async def go() -> None:
        try:
            await _migrate_and_check(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())

    # the upgraded database is what a server then serves
    with TestClient(create_app(settings)) as c:
        r = c.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 200, r.text
        h = {"authorization": f"Bearer {r.json()['accessToken']}"}
        account = c.get("/api/account", headers=h).json()
        assert account["cash"] == "50000.00"
        assert account["buying_power"] == "48224.99"  # 50000.00 - 1775.01
        open_orders = c.get("/api/orders?status=open&limit=500", headers=h).json()
        assert sorted(o["client_order_id"] for o in open_orders) == [
            "legacy-1",
            "legacy-2",
            "legacy-3",
            "legacy-4",
            "legacy-5",
        ]
        positions = {p["symbol"]: p["qty"] for p in c.get("/api/positions", headers=h).json()}
        assert positions == {"AAPL": "10", "MSFT": "1"}
        # cancelling the 10 x 100.50 resting buy releases exactly its hold
        legacy_1 = next(o for o in open_orders if o["client_order_id"] == "legacy-1")
        assert c.delete(f"/api/orders/{legacy_1['id']}", headers=h).status_code == 204
        after = c.get("/api/account", headers=h).json()
        assert after["buying_power"] == "49229.99"  # 48224.99 + 1005.00
