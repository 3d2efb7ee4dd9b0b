"""Real servers for tests: ``mytrader-server`` in a subprocess on an ephemeral port.

The server writes its base URL to a ready file once it listens; we poll that file (never a fixed
sleep). ``TIME_FACTOR`` (env ``MYTRADER_TEST_TIME_FACTOR``) scales every wait on slow machines.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TIME_FACTOR = float(os.environ.get("MYTRADER_TEST_TIME_FACTOR", "1"))
TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def scaled(seconds: float) -> float:
    return seconds * TIME_FACTOR


@dataclass
class LiveServer:
    """A running ``mytrader-server`` process and what a test needs to talk to it."""

    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    data_dir: Path
    log_path: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, object]:
        """A plain stdlib request (no client library under test), returning (status, JSON)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=scaled(timeout)) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw) if raw else None
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def register(self, username: str, password: str = "correct-horse-battery") -> str:
        """Register (if needed) and log in; return a bearer token."""
        self.request("POST", "/api/auth/register", {"username": username, "password": password})
        status, body = self.request(
            "POST", "/api/auth/login", {"username": username, "password": password}
        )
        assert status == 200, body
        assert isinstance(body, dict)
        token = str(body["accessToken"])
        self.tokens[username] = token
        return token

    def add_user(self, username: str, password: str, admin: bool = False) -> None:
        """Create an account with the real CLI (``mytrader-server users add``)."""
        add_user(self.env, username, password, admin)

    def admin_token(self) -> str:
        if "__admin__" not in self.tokens:
            self.add_user("ops-admin", "admin-password-123", admin=True)
            status, body = self.request(
                "POST",
                "/api/auth/login",
                {"username": "ops-admin", "password": "admin-password-123"},
            )
            assert status == 200, body
            assert isinstance(body, dict)
            self.tokens["__admin__"] = str(body["accessToken"])
        return self.tokens["__admin__"]

    def set_faults(self, **profile: object) -> None:
        status, body = self.request("PUT", "/api/admin/faults", profile, token=self.admin_token())
        assert status == 200, body

    def clear_faults(self) -> None:
        status, body = self.request("DELETE", "/api/admin/faults", token=self.admin_token())
        assert status == 204, body

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        return stop_process(self.process, sig, timeout)


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0
) -> int:
    """Send ``sig``, wait up to ``timeout`` (scaled), then SIGKILL; the exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a mytrader-ops subprocess: no MYTRADER_* from the caller's shell,
    this checkout importable, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env.update(extra)
    return env


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYTRADER_")}
    env.update(
        {
            "MYTRADER_DATA_DIR": str(data_dir),
            "MYTRADER_JWT_SECRET": TEST_SECRET,
            "MYTRADER_ENV": "test",
            "MYTRADER_FAULTS_ENABLED": "true",
            "MYTRADER_FEED_INTERVAL_S": "0.1",
        }
    )
    env.update(extra)
    return env


def add_user(env: dict[str, str], username: str, password: str, admin: bool = False) -> None:
    cmd = [sys.executable, "-m", "mytrader_server", "users", "add", username]
    if admin:
        cmd.append("--admin")
    done = subprocess.run(
        cmd, input=password + "\n", env=env, capture_output=True, text=True, timeout=scaled(60)
    )
    if done.returncode != 0 and "already exists" not in done.stderr:
        raise RuntimeError(f"users add failed: {done.stderr}")


def start_server(
    tmp_path: Path, env: dict[str, str] | None = None, startup_timeout: float = 30.0
) -> LiveServer:
    """Start ``python -m mytrader_server --port 0`` and wait until it listens."""
    data_dir = tmp_path / "data"
    env = env or server_env(data_dir)
    data_dir = Path(env.get("MYTRADER_DATA_DIR", str(data_dir)))
    ready = tmp_path / f"ready-{time.monotonic_ns()}.url"
    log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mytrader_server", "--port", "0", "--ready-file", str(ready)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + scaled(startup_timeout)
    while time.monotonic() < deadline:
        if ready.exists():
            url = ready.read_text().strip()
            return LiveServer(url, process, env, data_dir, log_path)
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start in time: {log_path.read_text()}")


async def until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> float:
    """Poll ``predicate`` every 20 ms; the seconds it took. Fails the test on timeout."""
    started = time.monotonic()
    deadline = started + scaled(timeout)
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started
