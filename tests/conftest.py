"""Shared fixtures: settings and in-process apps on SQLite and PostgreSQL, real servers, services.

Every test that asks for ``settings``, ``client``, ``settings_for``, ``database_url``,
``server_db_env`` or ``live_server`` runs twice: once on the embedded SQLite file (id
``sqlite``) and once on a fresh PostgreSQL database of its own (id ``postgres``; creating and
dropping one costs well under 0.1 s). Service-backed tests read MYTRADER_TEST_POSTGRES_URL /
MYTRADER_TEST_REDIS_URL and skip with a reason when unset; with MYTRADER_TEST_REQUIRE_SERVICES=1
(set by .ci/run) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mytrader_server.app import create_app
from mytrader_server.settings import Settings, load_settings
from tests.support.live import TEST_SECRET, LiveServer, server_env, start_server

REQUIRE_SERVICES = os.environ.get("MYTRADER_TEST_REQUIRE_SERVICES") == "1"


def service_url(var: str, what: str) -> str:
    url = os.environ.get(var)
    if not url:
        if REQUIRE_SERVICES:
            pytest.fail(f"{var} must be set when MYTRADER_TEST_REQUIRE_SERVICES=1")
        pytest.skip(f"{what} not configured: set {var} to run this test")
    return url


@pytest.fixture
def postgres_url() -> str:
    return service_url("MYTRADER_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def redis_url() -> str:
    return service_url("MYTRADER_TEST_REDIS_URL", "Redis")


async def _admin_sql(base_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``postgres_url``, dropped afterwards."""
    name = f"mytrader_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(postgres_url, f'CREATE DATABASE "{name}"'))
    base, _, _ = postgres_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    with postgres_database(postgres_url) as url:
        yield url


BACKENDS = ["sqlite", "postgres"]


@contextmanager
def backend_database(backend: str) -> Iterator[str | None]:
    """The database URL for ``backend``: None (the SQLite file under the data directory) or a
    fresh PostgreSQL database. For fixtures of any scope (module-scoped real servers use it)."""
    if backend == "postgres":
        with postgres_database(service_url("MYTRADER_TEST_POSTGRES_URL", "PostgreSQL")) as url:
            yield url
    else:
        yield None


def db_env(database_url: str | None) -> dict[str, str]:
    """The environment a real server process needs to use ``database_url``."""
    return {} if database_url is None else {"MYTRADER_DATABASE_URL": database_url}


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "jwt_secret": TEST_SECRET,
        "env": "test",
        "faults_enabled": True,
        "feed_interval_s": 0.05,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Each database back end in turn: None (SQLite file) or a fresh PostgreSQL database."""
    with backend_database(request.param) as url:
        yield url


@pytest.fixture
def settings_for(tmp_path: Path, database_url: str | None) -> Callable[..., Settings]:
    """Build settings with overrides on this test's back end: ``settings_for(x=1)``."""

    def build(**overrides: object) -> Settings:
        return make_settings(tmp_path, database_url=database_url, **overrides)

    return build


@pytest.fixture
def settings(settings_for: Callable[..., Settings]) -> Settings:
    return settings_for()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def server_db_env(database_url: str | None) -> dict[str, str]:
    """Extra ``server_env`` variables that put a real server on this test's back end."""
    return db_env(database_url)


@pytest.fixture
def live_server(tmp_path: Path, server_db_env: dict[str, str]) -> Iterator[LiveServer]:
    """A real ``mytrader-server`` process on an ephemeral port (each back end, faults enabled)."""
    server = start_server(tmp_path, server_env(tmp_path / "data", **server_db_env))
    try:
        yield server
    finally:
        server.stop()
