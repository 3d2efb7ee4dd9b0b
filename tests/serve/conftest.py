"""A live MyTrader server shared by the gate tests, and its synthetic account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live import LiveServer, server_env, start_server

USER, PASSWORD = "gate-user", "gate-password-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("gate-server")
    srv = start_server(tmp, server_env(tmp / "data", MYTRADER_LOGIN_RATE_PER_MINUTE="600"))
    srv.add_user(USER, PASSWORD)
    try:
        yield srv
    finally:
        srv.stop()
