"""The async engine and sessions, with SQLite set up for durability (WAL, synchronous=FULL).

On SQLite a writing transaction (a session from ``create_sessionmaker(engine, write=True)``)
starts with ``BEGIN IMMEDIATE`` so that two writers never both read and then fail to upgrade
their lock; ``busy_timeout`` makes the loser wait instead of erroring. Reads begin deferred and,
under WAL, never wait for a writer (health checks and GETs stay fast during order bursts).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mytrader_server.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.effective_database_url
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 10})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


WRITE_OPTION = "mytrader_write"


def create_sessionmaker(
    engine: AsyncEngine, write: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads, or (``write=True``) for transactions that change rows."""
    options = {WRITE_OPTION: True} if write else {}
    return async_sessionmaker(engine, expire_on_commit=False, execution_options=options)


async def ping(engine: AsyncEngine) -> float:
    """One real round trip to the database; returns its latency in milliseconds."""
    started = time.perf_counter()
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return (time.perf_counter() - started) * 1000.0
