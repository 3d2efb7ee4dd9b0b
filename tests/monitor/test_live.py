"""The monitor against a real MyTrader server: a healthy deployment never fires over many
jittery windows; each injected fault fires its trigger within the trigger's stated bound."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from mytrader_ops.monitor.rules import worst_bound_s
from mytrader_ops.monitor.triggers import default_triggers
from tests.monitor.conftest import PASSWORD, watch
from tests.support.live import LiveServer, scaled

pytestmark = pytest.mark.slow
SPECS = {t.id: t for t in default_triggers()}


def test_healthy_deployment_never_fires(server: LiveServer, tmp_path: Path, creds: None) -> None:
    outcome, err = watch(server, tmp_path, duration="12s", report_dir=tmp_path / "report")
    assert outcome.fired is None, err
    assert outcome.exit_code == 0, err
    states = {v.check_id: v.status.value for v in outcome.report.verdicts}
    assert all(states[f"rollback-{t}"] == "PASS" for t in SPECS), states
    for name in ("report.md", "report.json", "junit.xml", "report.html"):
        assert PASSWORD not in (tmp_path / "report" / name).read_text()  # C4 canary
    assert PASSWORD not in err
    assert PASSWORD.encode() not in (tmp_path / "state" / "monitor.db").read_bytes()
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["exit_code"] == 0
    assert doc["decision"] == outcome.report.decision.value
    assert [(v["check_id"], v["status"]) for v in doc["verdicts"]] == [
        (v.check_id, v.status.value) for v in outcome.report.verdicts
    ]
    # critical-phase checks are judged on evidence: value beside threshold, and the count
    err_rate = outcome.report.verdict("monitor-error-rate")
    assert err_rate is not None
    assert err_rate.status.value == "PASS", err_rate.summary
    judged = re.fullmatch(
        r"error rate 0\.00% \(95% CI 0\.00%-\d+\.\d\d%\) vs limit < 5\.00%, n=(\d+)",
        err_rate.summary,
    )
    assert judged is not None, err_rate.summary
    assert int(judged.group(1)) > 0


@pytest.mark.parametrize(
    ("faults", "trigger", "kw"),
    [
        ({"error_rate": {"/api": 0.5}}, "error-rate-above-10pct", {}),
        ({"database_down": True}, "database-failing", {}),
        ({"hubs_down": True}, "websocket-unavailable", {}),
        ({"latency_ms": {"/api": 700}}, "latency-above-500ms", {"interval": "1.5s"}),
    ],
)
def test_fault_fires_its_trigger_within_bound(
    server: LiveServer,
    tmp_path: Path,
    creds: None,
    faults: dict[str, object],
    trigger: str,
    kw: dict[str, object],
) -> None:
    server.set_faults(**faults)
    try:
        # the watch ends when the trigger fires; the duration only has to outlast the bound
        outcome, err = watch(server, tmp_path, duration=f"{math.ceil(scaled(15))}s", **kw)
    finally:
        server.clear_faults()
    assert outcome.fired is not None, err
    assert outcome.fired.trigger_id == trigger, err
    verdict = outcome.report.verdict(f"rollback-{trigger}")
    assert verdict is not None
    assert verdict.status.value == "FAIL", (verdict.summary, err)
    interval = float(str(kw.get("interval", "1s")).rstrip("s"))
    assert outcome.fired.fired_at_s is not None
    took = outcome.fired.fired_at_s - outcome.start_s  # fault on before the watch started
    # never before its consecutive windows of evidence have ended, never after its bound
    spec = SPECS[trigger]
    assert spec.consecutive is not None
    assert spec.consecutive * interval <= took, (took, err)
    assert took <= scaled(worst_bound_s(spec, interval) + 1), (took, err)
    assert outcome.exit_code == 1


def test_wrong_credentials_fire_auth_trigger(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYTRADER_OPS_USERNAME", "monitor-user")
    monkeypatch.setenv("MYTRADER_OPS_PASSWORD", "not-the-password")
    outcome, err = watch(server, tmp_path, duration="10s")
    assert outcome.fired is not None, err
    verdict = outcome.report.verdict("rollback-auth-failing")
    assert verdict is not None
    assert verdict.status.value == "FAIL"
    assert "not-the-password" not in err + json.dumps(str(outcome.report))
    assert outcome.fired.fired_at_s is not None
    assert outcome.fired.trigger_id == "auth-failing", err
    took = outcome.fired.fired_at_s - outcome.start_s
    spec = SPECS["auth-failing"]
    assert spec.consecutive is not None
    assert spec.consecutive * 1.0 <= took <= scaled(worst_bound_s(spec, 1.0) + 1), (took, err)
    assert outcome.exit_code == 1


def test_without_credentials_auth_is_never_read_as_healthy(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MYTRADER_OPS_USERNAME", raising=False)
    monkeypatch.delenv("MYTRADER_OPS_PASSWORD", raising=False)
    outcome, err = watch(server, tmp_path, duration="3s")
    assert outcome.fired is None, err
    assert outcome.exit_code == 3  # no trigger fired, but auth had no evidence
    verdict = outcome.report.verdict("rollback-auth-failing")
    assert verdict is not None
    assert verdict.status.value == "INCONCLUSIVE"


def test_every_path_including_the_frontend_proxy(
    server: LiveServer, tmp_path: Path, creds: None
) -> None:
    from tests.web.support import start_web

    web = start_web(tmp_path, server.url)
    try:
        outcome, err = watch(server, tmp_path, duration="4s", frontend=web.url)
    finally:
        web.stop()
    assert outcome.fired is None, err
    by_id = {v.check_id: v for v in outcome.report.verdicts}
    for path in ("direct", "mobile", "proxy"):
        verdict = by_id[f"monitor-connectivity-{path}"]
        assert verdict.in_scope, verdict.summary
        assert verdict.status.value == "PASS", verdict.summary
    assert by_id["monitor-connectivity-mobile"].label == "simulated mobile client"


def test_an_invalid_sampler_makes_the_latency_verdict_inconclusive(
    server: LiveServer, tmp_path: Path, creds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor reads its sampler's own health each window: a sampler that says it was the
    bottleneck cannot pass the phase latency check, however fast the answers looked."""
    import dataclasses

    from mytrader_ops.monitor import collect
    from mytrader_ops.probes.sampler import SamplerResult

    real = collect.run_sampler

    async def overloaded(*args: object, **kw: object) -> SamplerResult:
        got = await real(*args, **kw)  # type: ignore[arg-type]
        bad = dataclasses.replace(
            got.health, valid=False, note="sampler CPU-bound: (injected by the test)"
        )
        return SamplerResult(got.streams, bad, got.duration_s, got.rate)

    monkeypatch.setattr(collect, "run_sampler", overloaded)
    outcome, err = watch(server, tmp_path, duration="3s")
    verdict = outcome.report.verdict("monitor-api-latency")
    assert verdict is not None
    assert verdict.measurements[0].samples, verdict.summary  # it had latencies to judge
    assert verdict.status.value == "INCONCLUSIVE", verdict.summary
    assert "sampler invalid" in verdict.summary
    assert outcome.report.sampler is not None
    assert outcome.report.sampler.valid is False
    assert "injected by the test" in outcome.report.sampler.note
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert [d["window"]["index"] for d in lines] == [0, 1, 2], err  # 3 s of 1 s windows
    assert all(d["window"]["sampler_valid"] is False for d in lines)
