"""Fixtures for the hub tests: one real server per module and back end, short keep-alive timers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS, backend_database, db_env
from tests.support.live import LiveServer, server_env, start_server

HUB_ENV = {
    "MYTRADER_HUB_KEEPALIVE_S": "0.5",
    "MYTRADER_HUB_CLIENT_TIMEOUT_S": "30",
    "MYTRADER_FEED_INTERVAL_S": "0.1",
}


@pytest.fixture(scope="module", params=BACKENDS)
def hub_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A real ``mytrader-server`` that pings hub clients every 0.5 s, on SQLite and then on a
    PostgreSQL database of its own (``MYTRADER_DATABASE_URL``)."""
    tmp = tmp_path_factory.mktemp("hub-server")
    with backend_database(request.param) as url:
        server = start_server(tmp, server_env(tmp / "data", **HUB_ENV, **db_env(url)))
        try:
            yield server
        finally:
            server.stop()
