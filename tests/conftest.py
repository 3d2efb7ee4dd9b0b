"""Shared fixtures: settings and in-process apps on SQLite or PostgreSQL, real servers, services.

Service-backed tests read MYTRADER_TEST_POSTGRES_URL / MYTRADER_TEST_REDIS_URL and skip with a
reason when unset; with MYTRADER_TEST_REQUIRE_SERVICES=1 (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
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


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"mytrader_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(postgres_url, f'CREATE DATABASE "{name}"'))
    base, _, _ = postgres_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each database back end: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("fresh_postgres")
        return make_settings(tmp_path, database_url=url)
    return make_settings(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def backend_client(backend_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(backend_settings)) as c:
        yield c


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real ``mytrader-server`` process on an ephemeral port (SQLite, faults enabled)."""
    server = start_server(tmp_path, server_env(tmp_path / "data"))
    try:
        yield server
    finally:
        server.stop()
