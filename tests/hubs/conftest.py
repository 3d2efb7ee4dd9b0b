"""Fixtures for the hub tests: one real server per module with short keep-alive timers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live import LiveServer, server_env, start_server

HUB_ENV = {
    "MYTRADER_HUB_KEEPALIVE_S": "0.5",
    "MYTRADER_HUB_CLIENT_TIMEOUT_S": "30",
    "MYTRADER_FEED_INTERVAL_S": "0.1",
}


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real ``mytrader-server`` (SQLite) that pings hub clients every 0.5 s."""
    tmp = tmp_path_factory.mktemp("hub-server")
    server = start_server(tmp, server_env(tmp / "data", **HUB_ENV))
    try:
        yield server
    finally:
        server.stop()
