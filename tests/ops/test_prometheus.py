"""Prometheus as an evidence source (issue 10, part 2): a real Prometheus scraping two real
mytrader-server processes every second; the real CLI queries it across the fleet.

Healthy -> PASS; injected 5xx on one replica -> FAIL with the fleet's value; a query that
matches nothing, an unreachable Prometheus, a NaN and a query the server rejects ->
INCONCLUSIVE with the reason (never PASS); `config check --env` reports the rejected query
with its file and line before any run.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.ops.conftest import run_cli
from tests.support.live import LiveServer, scaled, start_server
from tests.support.prometheus import PromServer, start_prometheus

pytestmark = pytest.mark.slow

FLEET_ERRORS = (
    '(sum(rate(mytrader_http_requests_total{status=~"5.."}[5s])) or vector(0))'
    " / sum(rate(mytrader_http_requests_total[5s]))"
)


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[LiveServer], PromServer]]:
    servers: list[LiveServer] = []
    prom: PromServer | None = None
    try:
        for name in ("a", "b"):
            tmp = tmp_path_factory.mktemp(f"replica-{name}")
            servers.append(start_server(tmp))
        targets = [urlsplit(s.url).netloc for s in servers]
        prom = start_prometheus(tmp_path_factory.mktemp("prometheus"), targets)
        yield servers, prom
    finally:
        if prom is not None:
            prom.proc.terminate()
            prom.proc.wait(10)
        for s in servers:
            s.stop()


def _traffic(servers: list[LiveServer], seconds: float) -> None:
    """Requests to every replica for a while, so the 5 s rates have samples to rate."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for s in servers:
            with contextlib.suppress(OSError):  # an injected 500 is the point
                urllib.request.urlopen(f"{s.url}/api/symbols", timeout=5).read()
        time.sleep(0.02)


def _validate(tmp: Path, prom_url: str, target: str, checks: str, *extra: str) -> Any:
    cfg = tmp / "fleet.yaml"
    cfg.write_text(
        f"version: 1\ndefault_env: fleet\nenvironments:\n  fleet:\n    backend: {target}\n"
        f"    prometheus: {prom_url}\nchecks:\n{checks}"
    )
    res = run_cli(
        "validate", "--config", str(cfg), "--report-dir", str(tmp / "r"), "--no-store",
        "--no-color", *extra, timeout=scaled(60),
    )  # fmt: skip
    doc = json.loads((tmp / "r" / "report.json").read_text())
    return res.code, {v["check_id"]: v for v in doc["verdicts"]}, res.stdout + res.stderr


def _check(query: str, limit: str = "max: 0.05", extra: str = "") -> str:
    return (
        f"  - id: q\n    title: Fleet query\n    kind: prometheus\n    query: '{query}'\n"
        f"    {limit}\n{extra}"
    )


def test_a_healthy_fleet_passes_and_its_5xx_fail_with_the_fleets_value(
    fleet: tuple[list[LiveServer], PromServer], tmp_path: Path
) -> None:
    servers, prom = fleet
    _traffic(servers, scaled(3))
    code, verdicts, out = _validate(tmp_path, prom.url, servers[0].url, _check(FLEET_ERRORS))
    assert (code, verdicts["q"]["status"]) == (0, "PASS"), out
    (m,) = verdicts["q"]["measurements"]
    assert m["value"] == 0.0
    servers[1].set_faults(error_rate={"/api/symbols": 1.0})  # one replica of two fails
    try:
        _traffic(servers, scaled(6))
        code, verdicts, out = _validate(tmp_path, prom.url, servers[0].url, _check(FLEET_ERRORS))
    finally:
        servers[1].clear_faults()
    assert (code, verdicts["q"]["status"]) == (1, "FAIL"), out
    (m,) = verdicts["q"]["measurements"]
    assert 0.2 < m["value"] < 0.8  # about half the fleet's requests, measured at the fleet
    assert "vs limit <= 0.05" in verdicts["q"]["summary"]


def test_a_range_query_judges_every_sample_of_every_series(
    fleet: tuple[list[LiveServer], PromServer], tmp_path: Path
) -> None:
    servers, prom = fleet
    checks = _check("up", "min: 1", "    range: 10s\n    step: 1s\n    min_series: 2\n")
    code, verdicts, out = _validate(tmp_path, prom.url, servers[0].url, checks)
    assert (code, verdicts["q"]["status"]) == (0, "PASS"), out
    (m,) = verdicts["q"]["measurements"]
    assert m["samples"] >= 2 * 8  # both replicas, a sample a second


@pytest.mark.parametrize(
    ("query", "prom", "says"),
    [
        ("nonexistent_metric_total", None, "0 series, 1 needed (the query matched nothing)"),
        ("up", "http://127.0.0.1:9", "Prometheus http://127.0.0.1:9"),
        ("vector(0) / vector(0)", None, "is NaN"),
        ("sum(rate(up[5s]", None, "Prometheus rejected the query"),
    ],
)
def test_missing_evidence_is_inconclusive_never_pass(
    fleet: tuple[list[LiveServer], PromServer],
    tmp_path: Path,
    query: str,
    prom: str | None,
    says: str,
) -> None:
    servers, server = fleet
    code, verdicts, out = _validate(tmp_path, prom or server.url, servers[0].url, _check(query))
    assert (code, verdicts["q"]["status"]) == (3, "INCONCLUSIVE"), out
    assert says in verdicts["q"]["summary"]


def test_config_check_asks_prometheus_to_parse_each_query(
    fleet: tuple[list[LiveServer], PromServer], tmp_path: Path
) -> None:
    servers, prom = fleet
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        f"version: 1\nenvironments:\n  fleet:\n    backend: {servers[0].url}\n"
        f"    prometheus: {prom.url}\nchecks:\n" + _check("sum(rate(up[5s]")
    )
    res = run_cli("config", "check", str(cfg), "--env", "fleet")
    assert res.code == 2, res.stdout + res.stderr
    assert f"{cfg}:10: checks[0].query: Prometheus rejects it:" in res.stderr
    good = tmp_path / "good.yaml"
    good.write_text(cfg.read_text().replace("sum(rate(up[5s]", "sum(rate(up[5s]))"))
    res = run_cli("config", "check", str(good), "--env", "fleet")
    assert res.code == 0, res.stderr


def test_a_monitor_trigger_reads_the_fleets_error_rate_from_prometheus(
    fleet: tuple[list[LiveServer], PromServer], tmp_path: Path
) -> None:
    """The monitor watches replica a; replica b fails every request. Only the fleet-wide
    query sees it: the prometheus trigger fires with the fleet's value in its evidence."""
    import io

    from mytrader_ops.monitor.service import MonitorRequest, run_monitor

    servers, prom = fleet
    cfg = tmp_path / "fleet.yaml"
    cfg.write_text(
        f"version: 1\ndefault_env: fleet\nenvironments:\n  fleet:\n"
        f"    backend: {servers[0].url}\n    prometheus: {prom.url}\n"
    )
    triggers = tmp_path / "monitor.yaml"
    triggers.write_text(
        "version: 1\ntriggers:\n"
        "  - id: fleet-errors\n    kind: prometheus\n    consecutive: 2\n    above: 0.1\n"
        f"    query: '{FLEET_ERRORS}'\n"
    )
    servers[1].set_faults(error_rate={"/api/symbols": 1.0})
    stop = threading.Event()
    load = threading.Thread(target=lambda: _until(stop, servers), daemon=True)
    load.start()
    try:
        out, err = io.StringIO(), io.StringIO()
        outcome = run_monitor(
            MonitorRequest(
                config_file=cfg,
                monitor_config=triggers,
                interval="1s",
                duration=f"{scaled(20):g}s",
                rate=10.0,
                json=True,
                state_dir=tmp_path / "state",
                phase="all",
            ),
            out=out,
            err=err,
        )
    finally:
        stop.set()
        load.join(10)
        servers[1].clear_faults()
    assert outcome.fired is not None, err.getvalue()
    assert outcome.fired.trigger_id == "fleet-errors"
    assert outcome.exit_code == 1
    last = outcome.fired.evidence[-1]
    assert last.value is not None
    assert last.value > 0.1
    assert last.threshold == 0.1


def _until(stop: threading.Event, servers: list[LiveServer]) -> None:
    while not stop.is_set():
        _traffic(servers, 0.5)


GOOD = 'sum(rate(mytrader_http_requests_total{status!~"5.."}[$window]))'
TOTAL = "sum(rate(mytrader_http_requests_total[$window]))"


def _budget_config(tmp: Path, target: str, prom_url: str, good: str, total: str) -> Path:
    cfg = tmp / "budget.yaml"
    cfg.write_text(
        f"version: 1\ndefault_env: fleet\nenvironments:\n  fleet:\n    backend: {target}\n"
        f"    prometheus: {prom_url}\n"
        "slos:\n  - id: fleet\n    objective: 99%\n    window: 10s\n    signal: promql\n"
        f"    good: '{good}'\n    total: '{total}'\n"
        "    burn_alerts: [{long: 10s, short: 4s, factor: 10}]\n"
        "checks:\n  - {id: budget, title: Fleet budget, kind: error-budget, slo: fleet}\n"
    )
    return cfg


def _run(tmp: Path, cfg: Path) -> Any:
    res = run_cli(
        "validate", "--config", str(cfg), "--report-dir", str(tmp / "r"), "--no-store",
        "--no-color", timeout=scaled(60),
    )  # fmt: skip
    doc = json.loads((tmp / "r" / "report.json").read_text())
    return res.code, doc["verdicts"][0], res.stdout + res.stderr


def test_an_slo_over_the_fleets_metrics_gates_on_its_budget_and_fires_its_burn_rate(
    fleet: tuple[list[LiveServer], PromServer], tmp_path: Path
) -> None:
    """signal: promql: the fleet's good share from Prometheus. A share that is always 1 leaves
    the whole budget (GO); a query that matches nothing is INCONCLUSIVE; replica b failing every
    request spends a 99% budget many times over (NO-GO) and fires the SLO's burn-rate trigger
    in a monitor watch of replica a."""
    import io

    from mytrader_ops.monitor.service import MonitorRequest, run_monitor

    servers, prom = fleet
    target = servers[0].url
    samples = "sum(count_over_time(up[$window]))"  # good == total: a share of exactly 1
    whole = _budget_config(tmp_path, target, prom.url, samples, samples)
    code, verdict, out = _run(tmp_path, whole)
    assert (code, verdict["status"]) == (0, "PASS"), out
    assert verdict["measurements"][0]["value"] == 1.0
    nothing = _budget_config(tmp_path, target, prom.url, "sum(rate(nope[$window]))", TOTAL)
    code, verdict, out = _run(tmp_path, nothing)
    assert (code, verdict["status"]) == (3, "INCONCLUSIVE"), out
    cfg = _budget_config(tmp_path, target, prom.url, GOOD, TOTAL)
    servers[1].set_faults(error_rate={"/api/symbols": 1.0})
    stop = threading.Event()
    load = threading.Thread(target=lambda: _until(stop, servers), daemon=True)
    load.start()
    try:
        time.sleep(scaled(6))
        code, verdict, out = _run(tmp_path, cfg)
        err = io.StringIO()
        outcome = run_monitor(
            MonitorRequest(
                config_file=cfg,
                interval="1s",
                duration=f"{scaled(15):g}s",
                rate=30.0,
                json=True,
                state_dir=tmp_path / "state",
                phase="all",
            ),
            out=io.StringIO(),
            err=err,
        )
    finally:
        stop.set()
        load.join(10)
        servers[1].clear_faults()
    assert (code, verdict["status"]) == (1, "FAIL"), out
    assert verdict["summary"].startswith("budget spent: error budget remaining (SLO fleet")
    assert verdict["measurements"][0]["value"] < -10  # about half failing against a 1% budget
    burn = outcome.report.verdict("rollback-slo-fleet-burn-10s-4s")
    assert burn is not None
    assert burn.status.value == "FAIL", (burn.summary, err.getvalue())
    assert "across the fleet (Prometheus)" in burn.summary
