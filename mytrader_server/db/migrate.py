"""Versioned schema migrations with Alembic, serialised across processes.

Several API processes sharing one database may start at the same moment; each would run the
upgrade. ``upgrade_to_head`` therefore holds a database-wide lock for the whole upgrade: a
PostgreSQL transaction-scoped advisory lock, or SQLite's own write lock (``BEGIN IMMEDIATE``).
The second process waits, then finds the schema at head and does nothing. Operators who prefer
a separate step run ``mytrader-server migrate`` and start the servers with
``MYTRADER_MIGRATE_ON_START=false``; a server then refuses to start on an older schema.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from mytrader_server.db.engine import WRITE_OPTION
from mytrader_server.errors import SettingsError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any bigint unique to this application; every process takes the same one.
ADVISORY_LOCK_KEY = 0x6D79_7472_6164_6572 >> 1  # "mytrader", as a positive bigint


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations shipped"
    return head


async def upgrade_to_head(engine: AsyncEngine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision under a cross-process lock.

    Returns (revision before, revision after); a no-op when it is already at head.
    """

    def upgrade(sync_conn: Connection) -> tuple[str | None, str]:
        before = MigrationContext.configure(sync_conn).get_current_revision()
        command.upgrade(alembic_config(sync_conn), "head")
        return before, head_revision()

    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # BEGIN IMMEDIATE takes the database's write lock before reading the version.
            conn = await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                # Released when this transaction ends, so a killed process never leaves it held.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
            return await conn.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def require_head(engine: AsyncEngine) -> None:
    """Refuse to serve on a schema that is not at head (start-up migration switched off)."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SettingsError(
            f"the database schema is at revision {current or 'none (empty database)'} but this "
            f"server needs {head}: run `mytrader-server migrate` first, or start with "
            "MYTRADER_MIGRATE_ON_START=true"
        )
