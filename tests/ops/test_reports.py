"""Report rendering, the JSON schema round trip, the run store and diffs, from synthetic runs."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mytrader_ops.errors import StoreError
from mytrader_ops.redaction import Redactor
from mytrader_ops.report.diff import diff_reports
from mytrader_ops.report.files import write_reports
from mytrader_ops.report.html import render_html
from mytrader_ops.report.junit import render_junit
from mytrader_ops.report.markdown import render_markdown
from mytrader_ops.report.model import LatencyStream, RunReport, SamplerInfo, from_json, to_json
from mytrader_ops.stats import LatencyHistogram
from mytrader_ops.store import RunStore
from mytrader_ops.verdict import Decision, KnownIssueNote, Measurement, Status, Verdict


def _report(
    run_id: str = "20261127T000000Z-aaaaaa",
    decision: Decision = Decision.NO_GO,
    api_status: Status = Status.FAIL,
) -> RunReport:
    h = LatencyHistogram()
    for i in range(200):
        h.record_ms(1 + i / 10)
    lat = Measurement("p95 latency (/api/symbols)", 250.0, "ms", 100.0, "<=", 1000, (240.0, 260.0))
    return RunReport(
        run_id=run_id,
        tool_version="0.1.0",
        title="Go-live | test",
        env_name="staging",
        backend="https://api.example",
        frontend=None,
        started_at="2026-11-27T00:00:00.000Z",
        finished_at="2026-11-27T00:00:25.000Z",
        elapsed_s=25.0,
        decision=decision,
        exit_code=1 if decision is Decision.NO_GO else 0,
        verdicts=(
            Verdict(
                "backend-live",
                "Backend live",
                Status.PASS,
                "1 step(s) ok",
                criterion="All services start",
                evidence=("[ok] status: HTTP 200",),
            ),
            Verdict(
                "api-latency",
                "API latency",
                api_status,
                lat.describe(),
                criterion="API < 100 ms",
                measurements=(lat,),
            ),
            Verdict(
                "mobile-reconnect",
                "Mobile",
                Status.KNOWN_ISSUE,
                "reconnect failed",
                critical=False,
                component="hubs",
                label="simulated mobile client",
                known_issue=KnownIssueNote(
                    "OPS-1", "retry", "2026-12-20", False, 23, ("fail",), applied=True
                ),
            ),
            Verdict(
                "frontend-load",
                "Frontend",
                Status.INCONCLUSIVE,
                "not in scope",
                component="frontend",
                in_scope=False,
            ),
        ),
        streams=(LatencyStream("/api/symbols", "http", 200, 200, 0, 0, 0, h.summary(), {}),),
        sampler=SamplerInfo(20, 50, True, "own scheduling lag p95 0.2 ms", 0.5, 80.0, 0.05),
        known_issues=(
            {
                "check": "mobile-reconnect",
                "ticket": "OPS-1",
                "mitigation": "retry",
                "expires": "2026-12-20",
                "owner": "",
                "waives": "fail",
                "match": "",
            },
        ),
        sign_offs=({"role": "Release manager", "name": ""},),
        rollback_triggers=({"id": "t", "condition": "errors > 10%", "action": "roll back"},),
        monitoring=({"signal": "p95", "threshold": "<100 ms", "window": "30 min", "source": "m"},),
    )


def test_json_round_trip_is_lossless() -> None:
    report = _report()
    doc = to_json(report)
    assert doc["schema"] == "mytrader-ops.report/v1"
    assert from_json(json.loads(json.dumps(doc))) == report


def test_unknown_schema_is_refused() -> None:
    doc = to_json(_report())
    doc["schema"] = "something/v9"
    with pytest.raises(ValueError, match="unsupported report schema"):
        from_json(doc)


def test_markdown_is_a_go_no_go_document() -> None:
    md = render_markdown(_report())
    assert md.startswith("# Go-live | test: NO-GO")
    assert "**FAIL** [api-latency](#check-api-latency): p95 latency (/api/symbols) 250 ms" in md
    assert '<a id="check-api-latency"></a>' in md
    assert "| [ ] | API < 100 ms | [api-latency](#check-api-latency) | FAIL |" in md
    assert "`frontend-load` (frontend)" in md
    assert "simulated mobile client" in md
    assert "cannot block this decision" in md
    assert "- [mobile-reconnect](#check-mobile-reconnect) (Mobile): KNOWN ISSUE" in md
    assert (
        "| `mobile-reconnect` | OPS-1 | fail | retry | 2026-12-20 (23 days left) "
        "| KNOWN ISSUE (waived) |"
    ) in md
    assert "no overall confidence percentage" in md


def test_junit_has_one_testcase_per_check() -> None:
    suite = ET.fromstring(render_junit(_report()).split("\n", 1)[1])  # noqa: S314
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"backend-live", "api-latency", "mobile-reconnect", "frontend-load"}
    failure = cases["api-latency"].find("failure")
    assert failure is not None
    assert "vs limit <= 100 ms" in (failure.get("message") or "")
    assert cases["frontend-load"].find("skipped") is not None
    assert suite.get("failures") == "1"


def test_html_is_self_contained_with_a_chart() -> None:
    html = render_html(_report())
    assert "<svg" in html
    assert "limit 100 ms" in html
    assert "default-src 'none'" in html
    for needle in ("<script", "<link", "src=", "url("):
        assert needle not in html


def test_files_are_redacted(tmp_path: Path) -> None:
    report = dataclasses.replace(_report(), backend="https://ops:s3cret-canary@api.example")
    write_reports(report, tmp_path, Redactor(["s3cret-canary"]))
    for path in tmp_path.iterdir():
        assert "s3cret-canary" not in path.read_text()


def test_store_save_load_prefix_latest_and_diff(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    a = _report("20261127T000000Z-aaaaaa", Decision.NO_GO, Status.FAIL)
    b = dataclasses.replace(
        _report("20261128T000000Z-bbbbbb", Decision.GO, Status.PASS),
        started_at="2026-11-28T00:00:00.000Z",
    )
    store.save(a)
    store.save(b)
    assert store.load(a.run_id) == a
    assert store.load("20261128") == b
    assert store.load("latest") == b
    with pytest.raises(StoreError, match="ambiguous"):
        store.load("2026112")
    with pytest.raises(StoreError, match="no stored run"):
        store.load("2026_")  # LIKE wildcards are literal
    assert [r[0] for r in store.list()] == [b.run_id, a.run_id]
    diff = diff_reports(a, b)
    assert "NO-GO -> GO" in diff
    assert "`api-latency` **changed** | FAIL | PASS" in diff
