"""Fixtures for the scale-out tests: three real processes, one fresh PostgreSQL database, the
machine's Redis (a unique prefix per cluster) and a real nginx in front running
deploy/nginx/mytrader.conf.

``cluster`` is a fresh cluster per test (for tests that kill, cut or restart processes);
``shared_cluster`` is one cluster for the whole module, for tests that only place orders and
connect clients (each uses its own users). Both always tear down every process they started.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _admin_sql, service_url
from tests.scaleout.harness import Cluster
from tests.web.support import unavailable
from tests.web.test_nginx import NGINX


def _require_nginx() -> None:
    if NGINX is None:
        unavailable("nginx is not installed (apt-get install nginx)")


def new_database(postgres_url: str) -> tuple[str, str]:
    name = f"mytrader_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(postgres_url, f'CREATE DATABASE "{name}"'))
    return name, f"{postgres_url.rpartition('/')[0]}/{name}"


def drop_database(postgres_url: str, name: str) -> None:
    asyncio.run(_admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def cluster(fresh_postgres: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """Three processes started at the same moment on an empty database, behind nginx."""
    _require_nginx()
    c = Cluster.build(tmp_path, fresh_postgres, redis_url)
    try:
        took = c.start()
        print(f"\n[cluster] 3 processes + nginx ready in {took:.2f} s")
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _require_nginx()
    postgres_url = service_url("MYTRADER_TEST_POSTGRES_URL", "PostgreSQL")
    redis_url = service_url("MYTRADER_TEST_REDIS_URL", "Redis")
    name, url = new_database(postgres_url)
    c = Cluster.build(tmp_path_factory.mktemp("shared-cluster"), url, redis_url)
    try:
        took = c.start()
        print(f"\n[shared cluster] 3 processes + nginx ready in {took:.2f} s")
        yield c
    finally:
        c.close()
        drop_database(postgres_url, name)
