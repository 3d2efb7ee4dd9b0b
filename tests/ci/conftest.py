"""A live MyTrader server for the CI tests, a synthetic account, and a config naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import LiveServer, server_env, start_server

USER, PASSWORD = "ci-gate-user", "ci-gate-password-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("ci-server")
    srv = start_server(tmp, server_env(tmp / "data", MYTRADER_LOGIN_RATE_PER_MINUTE="600"))
    srv.add_user(USER, PASSWORD)
    try:
        yield srv
    finally:
        srv.stop()


def write_config(path: Path, backend: str) -> Path:
    """The smoke suite against `staging` (seconds, no load sampling)."""
    path.write_text(
        "version: 1\ninclude: [smoke]\nenvironments:\n  staging:\n"
        f"    backend: {backend}\n    credentials:\n"
        "      username: ${MYTRADER_OPS_USERNAME}\n      password: ${MYTRADER_OPS_PASSWORD}\n"
    )
    return path
