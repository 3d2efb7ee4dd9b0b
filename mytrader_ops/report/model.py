"""The run report: one frozen document every renderer and the store work from.

`to_json` / `from_json` define report.json (schema `SCHEMA`); stored runs are re-rendered
from it, so a report can be reproduced later without re-probing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from mytrader_ops.redaction import Redactor
from mytrader_ops.stats import LatencySummary
from mytrader_ops.verdict import Decision, KnownIssueNote, Measurement, Status, Verdict

SCHEMA = "mytrader-ops.report/v1"
# Identifiers, enums, units and timestamps: the report's structure, never masked.
_STRUCTURE = frozenset(
    {
        "schema",
        "run_id",
        "tool_version",
        "check_id",
        "status",
        "decision",
        "unit",
        "comparator",
        "component",
        "kind",
        "started_at",
        "finished_at",
        "expires",
        "histogram",
    }
)
_FREE_KEYS = frozenset({"error_kinds"})  # error messages counted by kind: the keys are text


@dataclass(frozen=True, slots=True)
class LatencyStream:
    """One sampled stream: an HTTP endpoint or a hub's invoke round trip."""

    name: str
    kind: str
    scheduled: int
    responses: int
    errors: int
    late: int
    dropped: int
    summary: LatencySummary
    error_kinds: dict[str, int]
    stop_reason: str = ""  # why sampling of this stream ended (sequential sampling)
    histogram: str = ""  # the latency distribution, HDR-encoded, for later comparisons


@dataclass(frozen=True, slots=True)
class BaselineInfo:
    """What this run was compared with: a stored run, or a deployment sampled beside it."""

    source: str  # "run 2026...-abc123" or "https://stable.example (sampled alongside)"
    run_id: str | None
    streams: tuple[LatencyStream, ...] = ()


@dataclass(frozen=True, slots=True)
class SamplerInfo:
    duration_s: float  # how long the streams were sampled (the longest of them)
    rate: float
    valid: bool
    note: str
    lag_p99_ms: float
    cpu_us_per_request: float
    cpu_share: float
    planned_s: float | None = None  # the planned duration; sampling may end before or after
    budget_s: float | None = None  # the most a marginal criterion may extend sampling to
    until_decisive: bool = False


@dataclass(frozen=True, slots=True)
class RunReport:
    run_id: str
    tool_version: str
    title: str
    env_name: str
    backend: str
    frontend: str | None
    started_at: str
    finished_at: str
    elapsed_s: float
    decision: Decision
    exit_code: int
    verdicts: tuple[Verdict, ...]
    streams: tuple[LatencyStream, ...] = ()
    sampler: SamplerInfo | None = None
    known_issues: tuple[dict[str, str], ...] = ()
    sign_offs: tuple[dict[str, str], ...] = ()
    rollback_triggers: tuple[dict[str, str], ...] = ()
    monitoring: tuple[dict[str, str], ...] = ()
    sources: tuple[str, ...] = ()
    baseline: BaselineInfo | None = None
    schema: str = SCHEMA

    def in_scope(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.in_scope]

    def out_of_scope(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.in_scope]

    def verdict(self, check_id: str) -> Verdict | None:
        return next((v for v in self.verdicts if v.check_id == check_id), None)


def sampling_text(sampler: SamplerInfo) -> str:
    """How long the streams were sampled against the plan, e.g. for the report's sampler line."""
    text = f"sampled {sampler.duration_s:.1f} s at {sampler.rate:g}/s per endpoint"
    if sampler.planned_s is not None:
        text += f" (planned {sampler.planned_s:g} s"
        if sampler.budget_s is not None:
            text += f", budget {sampler.budget_s:g} s"
        text += ", until decisive)" if sampler.until_decisive else ")"
    return text


def status_counts(report: RunReport) -> str:
    """The in-scope checks by status, e.g. "18 PASS, 1 WARN, 1 KNOWN ISSUE"."""
    scoped = report.in_scope()
    counts = [(s, sum(1 for v in scoped if v.status is s)) for s in Status]
    text = ", ".join(f"{n} {s.value}" for s, n in counts if n) or "no check in scope"
    open_ = [v.check_id for v in scoped if v.undemonstrated]
    if open_:
        text += f"; not demonstrated: {', '.join(open_)}"
    return text


def _clean(value: Any) -> Any:
    """NaN and infinities are not JSON: write them as null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def to_json(report: RunReport) -> dict[str, Any]:
    doc = dataclasses.asdict(report)
    doc["decision"] = report.decision.value
    for v in doc["verdicts"]:
        v["status"] = Status(v["status"]).value
    return {"schema": SCHEMA, **{k: _clean(val) for k, val in doc.items() if k != "schema"}}


def dumps(report: RunReport) -> str:
    return json.dumps(to_json(report), indent=2, sort_keys=False)


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _summary(doc: dict[str, Any]) -> LatencySummary:
    return LatencySummary(
        count=int(doc["count"]),
        min_ms=_num(doc["min_ms"]),
        mean_ms=_num(doc["mean_ms"]),
        p50_ms=_num(doc["p50_ms"]),
        p95_ms=_num(doc["p95_ms"]),
        p99_ms=_num(doc["p99_ms"]),
        max_ms=_num(doc["max_ms"]),
        spectrum=tuple((float(p), _num(v)) for p, v in doc["spectrum"]),
    )


def _measurement(doc: dict[str, Any]) -> Measurement:
    interval = doc.get("interval")
    return Measurement(
        name=doc["name"],
        value=doc.get("value"),
        unit=doc["unit"],
        threshold=doc.get("threshold"),
        comparator=doc.get("comparator", "<="),
        samples=doc.get("samples"),
        interval=(interval[0], interval[1]) if interval else None,
    )


def _verdict(doc: dict[str, Any]) -> Verdict:
    ki = doc.get("known_issue")
    return Verdict(
        check_id=doc["check_id"],
        title=doc["title"],
        status=Status(doc["status"]),
        summary=doc["summary"],
        critical=doc["critical"],
        component=doc["component"],
        criterion=doc.get("criterion", ""),
        measurements=tuple(_measurement(m) for m in doc.get("measurements", [])),
        evidence=tuple(doc.get("evidence", [])),
        in_scope=doc.get("in_scope", True),
        label=doc.get("label"),
        known_issue=KnownIssueNote(**{**ki, "waives": tuple(ki.get("waives", ("fail",)))})
        if ki
        else None,
        undemonstrated=bool(doc.get("undemonstrated", False)),
    )


def _sampler(doc: dict[str, Any]) -> SamplerInfo:
    return SamplerInfo(
        duration_s=_num(doc["duration_s"]),
        rate=_num(doc["rate"]),
        valid=bool(doc["valid"]),
        note=str(doc["note"]),
        lag_p99_ms=_num(doc["lag_p99_ms"]),
        cpu_us_per_request=_num(doc["cpu_us_per_request"]),
        cpu_share=_num(doc["cpu_share"]),
        planned_s=doc.get("planned_s"),
        budget_s=doc.get("budget_s"),
        until_decisive=bool(doc.get("until_decisive", False)),
    )


def from_json(doc: dict[str, Any]) -> RunReport:
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"unsupported report schema {doc.get('schema')!r}")
    sampler = doc.get("sampler")
    return RunReport(
        run_id=doc["run_id"],
        tool_version=doc["tool_version"],
        title=doc["title"],
        env_name=doc["env_name"],
        backend=doc["backend"],
        frontend=doc.get("frontend"),
        started_at=doc["started_at"],
        finished_at=doc["finished_at"],
        elapsed_s=doc["elapsed_s"],
        decision=Decision(doc["decision"]),
        exit_code=doc["exit_code"],
        verdicts=tuple(_verdict(v) for v in doc["verdicts"]),
        streams=tuple(_stream(s) for s in doc.get("streams", [])),
        sampler=_sampler(sampler) if sampler else None,
        known_issues=tuple(doc.get("known_issues", [])),
        sign_offs=tuple(doc.get("sign_offs", [])),
        rollback_triggers=tuple(doc.get("rollback_triggers", [])),
        monitoring=tuple(doc.get("monitoring", [])),
        sources=tuple(doc.get("sources", [])),
        baseline=_baseline(doc["baseline"]) if doc.get("baseline") else None,
    )


def _stream(doc: dict[str, Any]) -> LatencyStream:
    return LatencyStream(**{**doc, "summary": _summary(doc["summary"])})


def _baseline(doc: dict[str, Any]) -> BaselineInfo:
    return BaselineInfo(
        source=str(doc["source"]),
        run_id=doc.get("run_id"),
        streams=tuple(_stream(s) for s in doc.get("streams", [])),
    )


def redact_report(report: RunReport, redactor: Redactor) -> RunReport:
    """The report with every free-text value masked (values, not the serialised text)."""
    return redactor.redact_fields(report, _STRUCTURE, _FREE_KEYS)
