"""Start-up migrations are serialised across processes (issue 13, defect 1).

Three processes started at once on an empty PostgreSQL database used to race in Alembic
(``UniqueViolation pg_type_typname_nsp_index``, ``relation "alembic_version" already exists``,
``column "reserved_cash" already exists``). ``upgrade_to_head`` now holds a database-wide lock;
``mytrader-server migrate`` runs the upgrade as a separate step, and a server started with
``MYTRADER_MIGRATE_ON_START=false`` refuses an old schema with a clear message.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from mytrader_server.db.engine import create_engine
from mytrader_server.db.migrate import alembic_config, current_revision, head_revision
from mytrader_server.db.migrate import upgrade_to_head as upgrade
from mytrader_server.settings import Settings
from tests.conftest import make_settings
from tests.support.live import scaled, server_env

RACERS = 6


async def _at_revision(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


async def _race(settings: Settings, start_at: str | None) -> list[object]:
    """RACERS engines (separate pools, as separate processes have) upgrade at the same moment."""
    engines = [create_engine(settings) for _ in range(RACERS)]
    try:
        if start_at is not None:
            await _at_revision(engines[0], start_at)
        results = await asyncio.gather(*(upgrade(e) for e in engines), return_exceptions=True)
        results.append(await current_revision(engines[0]))
        return results
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.parametrize("start_at", [None, "0001"], ids=["empty", "from-0001"])
def test_concurrent_upgrades_on_postgres_all_succeed(
    postgres_url: str, tmp_path: Path, start_at: str | None, request: pytest.FixtureRequest
) -> None:
    """Six concurrent upgrades of one database, three fresh databases in a row: none fails and
    exactly one of them did the work (the others found the schema at head)."""
    for trial in range(3):
        url = request.getfixturevalue("fresh_postgres") if trial == 0 else _new_db(request)
        results = asyncio.run(_race(make_settings(tmp_path, database_url=url), start_at))
        *upgrades, final = results
        failures = [r for r in upgrades if isinstance(r, BaseException)]
        assert not failures, f"trial {trial}: {failures!r}"
        assert final == head_revision()
        did_work = [r for r in upgrades if isinstance(r, tuple) and r[0] != r[1]]
        assert len(did_work) == 1, upgrades


def _new_db(request: pytest.FixtureRequest) -> str:
    """Another fresh database (the fixture gives one per test; trials need more)."""
    import uuid

    from tests.conftest import _admin_sql

    base_url = request.getfixturevalue("postgres_url")
    name = f"mytrader_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(base_url, f'CREATE DATABASE "{name}"'))
    request.addfinalizer(
        lambda: asyncio.run(_admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    )
    return f"{base_url.rpartition('/')[0]}/{name}"


# One back end each by design: the PostgreSQL case above races on the advisory lock, this one
# on SQLite's file write lock; the two mechanisms are different code paths in upgrade_to_head.
def test_concurrent_upgrades_on_one_sqlite_file_all_succeed(tmp_path: Path) -> None:
    """The embedded default relies on SQLite's write lock (BEGIN IMMEDIATE) the same way."""
    results = asyncio.run(_race(make_settings(tmp_path), "0001"))
    *upgrades, final = results
    assert not [r for r in upgrades if isinstance(r, BaseException)], upgrades
    assert final == head_revision()


def _server(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mytrader_server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )


# PostgreSQL only: the multi-process deployment `migrate` exists for (several servers sharing
# one database); the refusal path itself does not depend on the back end.
def test_migrate_as_a_separate_step(fresh_postgres: str, tmp_path: Path) -> None:
    """With start-up migration off, a server refuses an empty database with a clear message
    (exit 2, no traceback); three concurrent `mytrader-server migrate` runs then all succeed
    and exactly one reports the upgrade."""
    env = server_env(
        tmp_path / "data", MYTRADER_DATABASE_URL=fresh_postgres, MYTRADER_MIGRATE_ON_START="false"
    )
    refused = _server(env, "--port", "0")
    assert refused.returncode == 2, refused.stderr
    assert "run `mytrader-server migrate` first" in refused.stderr
    assert "Traceback" not in refused.stderr

    cmd = [sys.executable, "-m", "mytrader_server", "migrate"]
    runs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [(p.wait(scaled(60)), *p.communicate()) for p in runs]
    assert [code for code, _, _ in outputs] == [0, 0, 0], outputs
    said = sorted(out.strip() for _, out, _ in outputs)
    head = head_revision()
    assert said == [
        f"database schema already at {head}",
        f"database schema already at {head}",
        f"database schema upgraded from empty to {head}",
    ]


def test_migrate_names_an_unreachable_database_without_its_password(tmp_path: Path) -> None:
    env = server_env(
        tmp_path / "data",
        MYTRADER_DATABASE_URL="postgresql://ops:s3cret-pw@127.0.0.1:1/none",
    )
    done = _server(env, "migrate")
    assert done.returncode == 1
    assert done.stderr.startswith("mytrader-server: cannot migrate the database:")
    assert "s3cret-pw" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
