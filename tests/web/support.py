"""The web front (``mytrader-server web``) as a real process for tests, next to a real API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.live import LiveServer, cli_env, scaled, stop_process

REQUIRE_TOOLS = os.environ.get("MYTRADER_TEST_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``; on CI (MYTRADER_TEST_REQUIRE_SERVICES=1) fail instead, so a missing
    install step in .ci/run shows up as a failure rather than as a green run that tested less."""
    if REQUIRE_TOOLS:
        pytest.fail(f"{reason}; required when MYTRADER_TEST_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@dataclass
class WebFront:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        return stop_process(self.process, timeout=timeout)


def start_web(
    tmp_path: Path, backend: str, port: int = 0, *extra: str, startup_timeout: float = 30.0
) -> WebFront:
    """Start ``python -m mytrader_server web`` and wait for its ready file."""
    stamp = time.monotonic_ns()
    ready = tmp_path / f"web-ready-{stamp}.url"
    log_path = tmp_path / f"web-{stamp}.log"
    env = cli_env()
    cmd = [sys.executable, "-m", "mytrader_server", "web", "--port", str(port)]
    cmd += ["--backend", backend, "--ready-file", str(ready), *extra]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + scaled(startup_timeout)
    while time.monotonic() < deadline:
        if ready.exists():
            url = ready.read_text().strip()
            return WebFront(url, int(url.rsplit(":", 1)[1]), process, log_path)
        if process.poll() is not None:
            raise RuntimeError(f"web exited with {process.returncode}: {log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"web did not start in time: {log_path.read_text()}")


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_api_on_port(tmp_path: Path, env: dict[str, str], port: int) -> LiveServer:
    """``mytrader-server`` on a fixed port, so a test can stop it and bring it back at the same
    address (the front's ``--backend`` does not change)."""
    stamp = time.monotonic_ns()
    ready = tmp_path / f"api-ready-{stamp}.url"
    log_path = tmp_path / f"api-{stamp}.log"
    cmd = [sys.executable, "-m", "mytrader_server", "--port", str(port), "--ready-file", str(ready)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + scaled(30)
    while time.monotonic() < deadline:
        if ready.exists():
            data_dir = Path(env["MYTRADER_DATA_DIR"])
            return LiveServer(ready.read_text().strip(), process, env, data_dir, log_path)
        if process.poll() is not None:
            raise RuntimeError(f"API exited with {process.returncode}: {log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"API did not start in time: {log_path.read_text()}")
