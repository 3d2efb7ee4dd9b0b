"""A real Prometheus (Debian's `prometheus` package) on a free loopback port, scraping the
given targets every second, for tests that use Prometheus as an evidence source."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.live import scaled, stop_process


@dataclass
class PromServer:
    url: str
    proc: subprocess.Popen[bytes]

    def query(self, promql: str) -> list[dict[str, object]]:
        params = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=5) as answer:
            doc = json.loads(answer.read())
        result = doc["data"]["result"]
        assert isinstance(result, list)
        return result

    def wait_for(self, promql: str, count: int, timeout_s: float = 30) -> None:
        """Until the query returns at least `count` series (e.g. scraped targets `up == 1`)."""
        deadline = time.monotonic() + scaled(timeout_s)
        while time.monotonic() < deadline:
            try:
                if len(self.query(promql)) >= count:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"Prometheus never returned {count} series for {promql!r}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_prometheus(tmp: Path, targets: list[str]) -> PromServer:
    """Scrape `host:port` targets at 1 s; fails (never skips) without the prometheus binary."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is needed (Debian's prometheus package; .ci/run installs it)")
    port = _free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: mytrader\n"
        f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
    )
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PromServer(f"http://127.0.0.1:{port}", proc)
    try:
        server.wait_for("up == 1", len(targets))
    except BaseException:
        stop_process(proc)
        raise
    return server
