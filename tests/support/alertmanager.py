"""A real Alertmanager (Debian's `prometheus-alertmanager`, installed by `.ci/run`) on a free
loopback port, with a webhook receiver of our own so a test sees what Alertmanager itself
notifies: `firing`, then `resolved`. Skips where the binary is absent, fails instead with
MYTRADER_TEST_REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import scaled

BINARY = "prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    notifications: list[dict[str, Any]] = field(default_factory=list)

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"filter={k}%3D%22{v}%22" for k, v in filters.items())
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=5) as r:
            data: list[dict[str, Any]] = json.loads(r.read())
        return data

    def wait_notification(self, status: str, timeout_s: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + scaled(timeout_s)
        while time.monotonic() < deadline:
            for n in list(self.notifications):
                if n.get("status") == status:
                    return n
            time.sleep(0.1)
        raise AssertionError(f"no {status} notification from Alertmanager: {self.notifications}")


def _receiver(store: list[dict[str, Any]]) -> ThreadingHTTPServer:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            store.append(json.loads(raw))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    binary = shutil.which(BINARY)
    if binary is None:
        if os.environ.get("MYTRADER_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{BINARY} is not installed (.ci/run installs prometheus-alertmanager)")
        pytest.skip(f"{BINARY} not installed: apt-get install prometheus-alertmanager")
    notifications: list[dict[str, Any]] = []
    hook = _receiver(notifications)
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: hook\n  group_by: [alertname, trigger, env, watch]\n"
        "  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        "receivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{hook.server_address[1]}/hook\n"
        "        send_resolved: true\n"
    )
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    am = Alertmanager(f"http://127.0.0.1:{port}", process, log, notifications)
    deadline = time.monotonic() + scaled(20)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{am.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager did not start: {log.read_text()}")
            time.sleep(0.1)
        yield am
    finally:
        process.terminate()
        try:
            process.wait(scaled(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        hook.shutdown()
        hook.server_close()
