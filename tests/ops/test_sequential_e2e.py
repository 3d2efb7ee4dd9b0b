"""Sequential sampling end to end (issue 9, item 7): the real CLI against small local servers.

- A clean target with `--until-decisive` stops as soon as every criterion is decided (after
  the minimum duration), far before the planned duration, and says why.
- A target that fails exactly at the limit (every 20th request: 5.00% against a 5% limit)
  never becomes decisive: sampling runs on past the planned duration to the budget, and the
  criterion is reported as not demonstrated, INCONCLUSIVE, with the decision line naming it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import ThreadedServer, read_request, response, run_cli
from tests.support.live import scaled

pytestmark = pytest.mark.slow

CONFIG = """version: 1
sampler: {{duration_s: {duration}, rate: 50, min_decisive_s: 2}}
checks:
  - {{id: api-latency, title: API latency, kind: latency, path: /api, max_ms: 1000}}
  - {{id: error-rate, title: Error rate, kind: error-rate, max_rate: 0.05}}
"""


def every_nth_fails(n: int | None) -> Callable[..., object]:
    """Keep-alive answers; the n-th, 2n-th... request of all gets a 500 (never, for None)."""
    count = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        while True:
            await read_request(reader)
            count += 1
            failing = n is not None and count % n == 0
            writer.write(response(500 if failing else 200, b"{}"))
            await writer.drain()

    return handler


def _validate(url: str, tmp: Path, duration: float, *extra: str) -> tuple[int, Any, str]:
    cfg = tmp / "c.yaml"
    cfg.write_text(CONFIG.format(duration=duration))
    res = run_cli(
        "validate", "--config", str(cfg), "--target", url, "--report-dir", str(tmp / "r"),
        "--no-store", "--no-color", *extra, timeout=scaled(120),
    )  # fmt: skip
    doc = json.loads((tmp / "r" / "report.json").read_text())
    return res.code, doc, res.stdout + res.stderr


def test_until_decisive_stops_a_clean_run_early_and_says_why(
    serve: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = serve(every_nth_fails(None))
    code, doc, out = _validate(server.url, tmp_path, 20, "--until-decisive")
    assert (code, doc["decision"]) == (0, "GO"), out
    sampler = doc["sampler"]
    assert sampler["planned_s"] == 20
    assert sampler["until_decisive"] is True
    # 116 clean samples decide a 5% error rate; at 50/s that is ~2.3 s, after the 2 s minimum
    assert 2.0 <= sampler["duration_s"] < 10.0, sampler
    (stream,) = doc["streams"]
    assert stream["stop_reason"].startswith("every criterion decisive after"), stream
    assert "planned 20 s" in stream["stop_reason"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Why sampling stopped" in md
    assert "until decisive" in md


def test_a_criterion_at_its_limit_samples_to_the_budget_and_is_not_demonstrated(
    serve: Callable[..., ThreadedServer], tmp_path: Path
) -> None:
    server = serve(every_nth_fails(20))  # exactly 5% errors against a 5% limit
    code, doc, out = _validate(server.url, tmp_path, 2, "--max-duration", "5")
    assert (code, doc["decision"]) == (3, "INCONCLUSIVE"), out
    rate = next(v for v in doc["verdicts"] if v["check_id"] == "error-rate")
    assert rate["status"] == "INCONCLUSIVE"
    assert rate["undemonstrated"] is True
    assert rate["summary"].startswith("not demonstrated: error rate ")
    (m,) = rate["measurements"]
    assert 0.04 < m["value"] < 0.06
    lo, hi = m["interval"]
    assert lo < 0.05 < hi  # the sequence still straddles the limit
    sampler = doc["sampler"]
    assert sampler["planned_s"] == 2
    assert sampler["budget_s"] == 5
    assert sampler["duration_s"] > 4.0  # ran on past the planned 2 s, to the budget
    (stream,) = doc["streams"]
    assert stream["stop_reason"] == "budget of 5 s spent; still undecided: error-rate"
    assert stream["scheduled"] > 200  # more than the planned 100 samples
    assert "not demonstrated: error-rate" in out  # the decision line says so
