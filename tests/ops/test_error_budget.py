"""validate gates a deploy on an SLO's remaining error budget (issue 11, part 2), read from the
monitor's store: the real CLI against a real SQLite watch store written by the monitor's own
store code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mytrader_ops.monitor.store import WatchRecord, WatchStore
from mytrader_ops.monitor.windows import WindowSummary
from tests.ops.conftest import run_cli

TARGET = "http://127.0.0.1:9"  # nothing is probed: the only check reads the store
CONFIG = """version: 1
slos:
  - {id: api-availability, objective: 99.9%, window: 7d}
  - {id: api-fast, objective: 99%, window: 7d, signal: latency, threshold_ms: 300}
checks:
  - {id: budget-availability, title: Availability budget, kind: error-budget,
     slo: api-availability, min_remaining: 25%}
  - {id: budget-latency, title: Latency budget, kind: error-budget, slo: api-fast}
"""


def _watch(store: Path, windows: list[tuple[int, int, int]], age_s: float = 0.0) -> None:
    """Windows of (requests, errors, requests slower than 300 ms), ending `age_s` ago."""
    ws = WatchStore(store)
    now = time.time() - age_s
    start = now - 30 * len(windows)
    watch_id = f"mon-test-{len(windows)}-{int(age_s)}"
    ws.create(
        WatchRecord(
            watch_id, TARGET, "command line", "all", 30.0, start, now, {}, "done", 0, "", ""
        )
    )
    for i, (requests, errors, slow) in enumerate(windows):
        window = WindowSummary(
            index=i,
            start_s=start + 30 * i,
            end_s=start + 30 * (i + 1),
            requests=requests,
            errors=errors,
            latency_samples=requests,
            slow={"300": slow},
        )
        ws.checkpoint(watch_id, window, "", "")


def _validate(tmp: Path, store: Path) -> tuple[int, dict[str, dict[str, object]], str]:
    cfg = tmp / "budget.yaml"
    cfg.write_text(CONFIG)
    res = run_cli(
        "validate", "--config", str(cfg), "--target", TARGET, "--monitor-store", str(store),
        "--report-dir", str(tmp / "r"), "--no-store", "--no-color",
    )  # fmt: skip
    doc = json.loads((tmp / "r" / "report.json").read_text())
    return res.code, {v["check_id"]: v for v in doc["verdicts"]}, res.stdout + res.stderr


def test_a_healthy_week_leaves_the_budget_and_is_go(tmp_path: Path) -> None:
    store = tmp_path / "monitor.db"
    # 2 bad of 22,000 against a 0.1% budget: 9% of it spent
    _watch(store, [(200, 0, 0)] * 100 + [(200, 1, 10)] * 2 + [(200, 0, 10)] * 8)
    code, verdicts, out = _validate(tmp_path, store)
    assert code == 0, out
    availability = verdicts["budget-availability"]
    assert availability["status"] == "PASS"
    (m,) = availability["measurements"]
    assert m["value"] == pytest.approx(1 - (2 / 22_000) / 0.001)
    assert m["threshold"] == 0.25
    assert "2 bad of 22000 events in 110 window(s)" in availability["evidence"][0]
    assert verdicts["budget-latency"]["status"] == "PASS"  # 100 slow of 22,000 vs 1%


def test_a_spent_budget_is_no_go_with_the_figure(tmp_path: Path) -> None:
    store = tmp_path / "monitor.db"
    _watch(store, [(200, 1, 0)] * 100)  # 0.5% errors against a 0.1% budget: spent 5 times
    code, verdicts, out = _validate(tmp_path, store)
    assert code == 1, out
    availability = verdicts["budget-availability"]
    assert availability["status"] == "FAIL"
    assert str(availability["summary"]).startswith("budget spent: error budget remaining")
    (m,) = availability["measurements"]
    assert m["value"] == pytest.approx(-4.0)


def test_no_data_is_inconclusive_never_a_healthy_budget(tmp_path: Path) -> None:
    store = tmp_path / "monitor.db"
    _watch(store, [(200, 0, 0)] * 100, age_s=8 * 86400)  # older than the 7-day SLO window
    code, verdicts, out = _validate(tmp_path, store)
    assert code == 3, out
    for check in ("budget-availability", "budget-latency"):
        assert verdicts[check]["status"] == "INCONCLUSIVE"
        assert "0 events in the SLO window" in str(verdicts[check]["summary"])
    code, verdicts, out = _validate(tmp_path, tmp_path / "absent.db")
    assert code == 3, out


def test_an_error_budget_check_must_name_a_declared_slo(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("version: 1\nchecks:\n  - {id: b, title: B, kind: error-budget, slo: missing}\n")
    res = run_cli("config", "check", str(cfg))
    assert res.code == 2
    assert "no SLO 'missing' under slos" in res.stderr
