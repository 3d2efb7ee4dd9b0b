"""A live MyTrader server shared by a test module, and a helper to run the monitor on it."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mytrader_ops.monitor.service import MonitorOutcome, MonitorRequest, run_monitor
from tests.support.live import LiveServer, scaled, server_env, start_server

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "monitor-user", "monitor-pass-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("monitor-server")
    srv = start_server(tmp, server_env(tmp / "data", MYTRADER_LOGIN_RATE_PER_MINUTE="600"))
    srv.add_user(USER, PASSWORD)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYTRADER_OPS_USERNAME", USER)
    monkeypatch.setenv("MYTRADER_OPS_PASSWORD", PASSWORD)


def watch(server: LiveServer, tmp_path: Path, **kw: object) -> tuple[MonitorOutcome, str]:
    """Run the monitor in-process; returns the outcome and everything it printed (stderr, then
    the JSON lines)."""
    values: dict[str, object] = {
        "target": server.url,
        "interval": "1s",
        "duration": "8s",
        "rate": 30.0,
        "json": True,
        "state_dir": tmp_path / "state",
        "phase": "all",
    }
    values.update(kw)
    out, err = io.StringIO(), io.StringIO()
    outcome = run_monitor(MonitorRequest(**values), out=out, err=err)  # type: ignore[arg-type]
    return outcome, err.getvalue() + out.getvalue()


def monitor_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "mytrader_ops.commands_monitor", *args]


def run_monitor_cli(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real command; ``timeout`` is scaled by MYTRADER_TEST_TIME_FACTOR."""
    return subprocess.run(
        monitor_argv(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        cwd=REPO,
    )
