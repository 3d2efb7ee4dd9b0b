"""Pure: a finished (or fired) watch -> validate's RunReport, so the same renderers write
report.md, report.json, junit.xml and report.html.

Phase checks judge the watch as a whole; each trigger is one more check (FAIL when it
fired, INCONCLUSIVE when its evidence was insufficient: coverage below the floor or a blind
stretch longer than its bound, monitor/coverage.py). Every verdict carries the measured value
beside its threshold, a trigger's coverage beside its floor and bound included.

The phase latency verdict reads the monitor's own sampler health per window: trusted only
when every measured window of the phase found the sampler valid, with the worst window's
lag as the sampler's own delay (validate's `judge_latency` then gives INCONCLUSIVE rather
than PASS on an invalid sampler).

Exit codes: 0 no trigger fired and every trigger had enough evidence; 1 a trigger fired;
3 no trigger fired but some trigger's evidence was insufficient (missing data is never read
as healthy); 4/5 come from an automatic rollback (see service).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence

from mytrader_ops import __version__
from mytrader_ops.monitor.aggregate import MAX_GAPS, PhaseTotals, Totals
from mytrader_ops.monitor.coverage import EvidenceFinding, percent
from mytrader_ops.monitor.settings import (
    CRITICAL_PHASE_S,
    Phase,
    Thresholds,
    format_duration,
)
from mytrader_ops.monitor.triggers import AnyTrigger, TriggerStatus
from mytrader_ops.monitor.windows import LeakFinding, detect_leak
from mytrader_ops.report.model import LatencyStream, RunReport, SamplerInfo
from mytrader_ops.stats import LatencyHistogram, min_samples_for_proportion, wilson_interval
from mytrader_ops.validate.decision import decide
from mytrader_ops.validate.evaluate import (
    CheckMeta,
    LatencyEvidence,
    judge_latency,
    judge_rate_below,
    make_verdict,
)
from mytrader_ops.verdict import Measurement, Status, Verdict

EXIT_OK = 0
EXIT_FIRED = 1
EXIT_NO_EVIDENCE = 3
MB = 1024 * 1024


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def judge_share(
    meta: CheckMeta, name: str, ok: int, n: int, min_rate: float, evidence: tuple[str, ...] = ()
) -> Verdict:
    """A success share over windows or attempts: no attempts -> INCONCLUSIVE, below -> FAIL."""
    if n == 0:
        return make_verdict(
            meta, Status.INCONCLUSIVE, f"{name}: nothing measured", evidence=evidence
        )
    rate = ok / n
    m = Measurement(name, rate, "%", min_rate, ">=", n, wilson_interval(ok, n))
    status = Status.PASS if rate >= min_rate else Status.FAIL
    return make_verdict(meta, status, m.describe(), measurements=(m,), evidence=evidence)


def _leak_verdict(meta: CheckMeta, finding: LeakFinding, what: str) -> Verdict:
    status = {"stable": Status.PASS, "leak": Status.FAIL, "unknown": Status.INCONCLUSIVE}[
        finding.verdict
    ]
    return make_verdict(meta, status, f"{what}: {finding.detail}")


def critical_checks(
    t: PhaseTotals, hist: LatencyHistogram, th: Thresholds, span: str
) -> list[Verdict]:
    crit = f"critical phase (first {span})"
    out = [
        judge_share(
            CheckMeta("monitor-health", "Health endpoints responding", criterion=crit),
            "readiness answered pass/warn",
            t.health_ok,
            t.health_attempts,
            0.95,
        )
    ]
    hub_a = sum(t.path(p).attempts for p in ("direct-hub", "mobile-hub", "proxy-hub"))
    hub_ok = sum(t.path(p).ok for p in ("direct-hub", "mobile-hub", "proxy-hub"))
    out.append(
        judge_share(
            CheckMeta("monitor-hub-connections", "Hub connections establishing", component="hubs"),
            "hub connections established",
            hub_ok,
            hub_a,
            th.min_hub_success,
            tuple(f"{v} x {k}" for k, v in t.hub_failures.items()),
        )
    )
    s = hist.summary()
    p95 = hist.percentile_ms(95) if hist.count else math.nan
    ev = LatencyEvidence(
        "sampled API paths",
        s,
        p95,
        hist.percentile_interval_ms(95) if hist.count else (0.0, 0.0),
        t.requests,
        t.errors,
        0,
        0,
        t.sampler_valid,
        f"open-model sampler, one window at a time; {t.sampler_text()}",
        t.sampler_lag_p95_ms,
    )
    lat = judge_latency(
        CheckMeta("monitor-api-latency", "API latency within SLA", criterion=crit),
        ev,
        95.0,
        th.api_p95_ms,
    )
    windows_line = (
        f"{t.p95_breaches} of {t.p95_windows} windows had p95 above {th.api_p95_ms:g} ms; "
        f"worst window p95 {t.worst_p95_ms:.1f} ms"
    )
    out.append(dataclasses.replace(lat, evidence=(*lat.evidence, windows_line)))
    out.append(
        judge_rate_below(
            CheckMeta("monitor-error-rate", "Error rate below 5%", criterion=crit),
            "error rate",
            t.errors,
            t.requests,
            th.max_error_rate,
            min_samples_for_proportion(th.max_error_rate),
            ("over every sampled request of the phase; none excluded",),
        )
    )
    paths = [p for p in t.paths if t.paths[p][0]]
    ok = sum(t.paths[p][1] for p in paths)
    n = sum(t.paths[p][0] for p in paths)
    out.append(
        judge_share(
            CheckMeta("monitor-connectivity", "User connectivity above 90%", criterion=crit),
            "user connections and requests that succeeded",
            ok,
            n,
            th.min_connectivity,
            tuple(f"{p}: {t.paths[p][1]}/{t.paths[p][0]}" for p in paths),
        )
    )
    return out


def extended_checks(
    totals: Totals, th: Thresholds, has_frontend: bool, has_credentials: bool
) -> list[Verdict]:
    crit = "extended phase (first 24 h)"
    out = [
        _leak_verdict(
            CheckMeta("monitor-memory", "Memory stable (no leak)", criterion=crit),
            detect_leak(
                totals.rss.points,
                abs_per_hour=th.leak_mb_per_hour * MB,
                share_per_hour=th.leak_share_per_hour,
                unit="MB",
                scale=MB,
            ),
            "resident memory (process_resident_memory_bytes)",
        )
    ]
    cpu = detect_leak(
        totals.cpu.points, abs_per_hour=th.cpu_slope_per_hour, share_per_hour=1.0, unit="cores"
    )
    cpu_v = _leak_verdict(
        CheckMeta("monitor-cpu", "CPU stable", criterion=crit),
        cpu,
        "CPU (process_cpu_seconds_total rate)",
    )
    if cpu.trend is not None and cpu.trend.mean > th.max_cpu_share:
        cpu_v = make_verdict(
            CheckMeta("monitor-cpu", "CPU stable", criterion=crit),
            Status.FAIL,
            f"mean {cpu.trend.mean:.2f} cores vs limit {th.max_cpu_share:g}; {cpu.detail}",
        )
    out.append(cpu_v)
    meta = CheckMeta("monitor-database", "Database performance acceptable", criterion=crit)
    if totals.db_windows == 0:
        out.append(make_verdict(meta, Status.INCONCLUSIVE, "no database figure in any window"))
    else:
        p95 = totals.db_ms.percentile_ms(95) if totals.db_ms.count else None
        m = Measurement(
            "database round trip p95", p95, "ms", th.db_p95_ms, "<=", totals.db_ms.count
        )
        fail_text = f"{totals.db_fail_windows} of {totals.db_windows} windows reported it failing"
        if totals.db_fail_windows:
            out.append(
                make_verdict(meta, Status.FAIL, f"database failing: {fail_text}", measurements=(m,))
            )
        elif p95 is None:
            out.append(make_verdict(meta, Status.INCONCLUSIVE, "no database latency measured"))
        else:
            ok = p95 <= th.db_p95_ms
            out.append(
                make_verdict(
                    meta, Status.PASS if ok else Status.FAIL, m.describe(), measurements=(m,)
                )
            )
    meta = CheckMeta("monitor-data-flow", "Real-time data flow continuous", component="hubs")
    if totals.stream_windows == 0:
        out.append(
            make_verdict(meta, Status.INCONCLUSIVE, "the market-data stream was not watched")
        )
    else:
        m = Measurement("longest market-data gap", totals.max_gap_s, "s", th.max_stream_gap_s, "<=")
        gaps = tuple(f"gap from {_iso(a)} lasting {b:.1f} s" for a, b in totals.gaps[-20:])
        summary = (
            f"{m.describe()}; {len(totals.gaps)}{'+' if len(totals.gaps) >= MAX_GAPS else ''} "
            "gap(s) above the limit, "
            f"{totals.stream_messages} messages, stream down in "
            f"{totals.stream_down_windows} of {totals.stream_windows} windows"
        )
        ok = totals.max_gap_s <= th.max_stream_gap_s and not totals.gaps
        out.append(
            make_verdict(
                meta, Status.PASS if ok else Status.FAIL, summary, measurements=(m,), evidence=gaps
            )
        )
    meta = CheckMeta("monitor-auth", "No authentication failures", criterion=crit)
    auth_text = (
        f"{totals.auth_ok} windows ok, {totals.auth_failed} failed, "
        f"{totals.auth_no_data} without a verdict"
    )
    if totals.auth_failed:
        out.append(
            make_verdict(meta, Status.FAIL, f"{auth_text}; last: {totals.auth_last_failure}")
        )
    elif totals.auth_ok == 0:
        why = "" if has_credentials else " (no credentials configured)"
        out.append(make_verdict(meta, Status.INCONCLUSIVE, f"{auth_text}{why}"))
    else:
        out.append(make_verdict(meta, Status.PASS, auth_text))
    w = totals.whole
    for path, title, component, scoped in (
        ("direct", "Connectivity: direct", "backend", True),
        ("mobile", "Connectivity: simulated mobile client", "hubs", has_credentials),
        ("proxy", "Connectivity: frontend proxy", "frontend", has_frontend),
    ):
        names = [p for p in w.paths if p.startswith(path)]
        good = sum(w.paths[p][1] for p in names)
        n = sum(w.paths[p][0] for p in names)
        meta = CheckMeta(f"monitor-connectivity-{path}", title, component=component)
        v = judge_share(meta, f"{path} path successes", good, n, th.min_hub_success)
        if not scoped:
            need = "frontend URL" if path == "proxy" else "credentials"
            v = make_verdict(
                meta,
                Status.INCONCLUSIVE,
                f"not in scope: no {need} given for this watch",
                in_scope=path == "mobile",
            )
        if path == "mobile":
            v = make_verdict(
                meta,
                v.status,
                v.summary,
                measurements=v.measurements,
                label="simulated mobile client",
                in_scope=v.in_scope,
            )
        out.append(v)
    return out


def coverage_measurements(f: EvidenceFinding) -> tuple[Measurement, Measurement]:
    """A trigger's coverage beside its floor, its longest blind stretch beside its bound."""
    c = f.coverage
    share = Measurement("evidence coverage", c.share, "%", f.floor, ">=", c.windows_watched)
    if f.bound_windows is not None:
        blind = Measurement(
            "longest blind stretch",
            float(c.longest_blind_windows),
            "windows",
            float(f.bound_windows),
            "<=",
        )
    else:
        blind = Measurement("longest blind stretch", c.longest_blind_s, "s", f.bound_s, "<=")
    return share, blind


def trigger_verdicts(
    specs: Sequence[AnyTrigger],
    states: Sequence[TriggerStatus],
    evidence: Sequence[EvidenceFinding],
) -> list[Verdict]:
    """One verdict per trigger: FAIL fired; INCONCLUSIVE when its evidence was insufficient
    (never PASS without enough of it); WARN pending on evidence; INCONCLUSIVE pending for
    lack of it at the end; PASS ok. Each shows its coverage beside floor and bound."""
    by_id = {s.trigger_id: s for s in states}
    findings = {f.trigger_id: f for f in evidence}
    out = []
    for spec in specs:
        st = by_id.get(spec.id)
        found = findings.get(spec.id)
        if st is None or found is None:
            continue
        meta = CheckMeta(
            f"rollback-{spec.id}", f"Rollback trigger {spec.id} ({spec.kind})", criterion="rollback"
        )
        summary = f"{st.summary}; {found.describe()}"
        if st.state == "firing":
            status = Status.FAIL
        elif not found.sufficient:
            status = Status.INCONCLUSIVE
            summary = f"insufficient evidence: {'; '.join(found.reasons)}; {summary}"
        elif st.state == "ok":
            status = Status.PASS
        elif st.streak_windows:
            status = Status.WARN
        else:
            status = Status.INCONCLUSIVE
        lines = tuple(f"{_iso(e.start_s)}: {e.verdict}: {e.note}" for e in st.evidence)
        out.append(
            make_verdict(
                meta,
                status,
                summary,
                measurements=coverage_measurements(found),
                evidence=(found.describe(), *lines),
            )
        )
    return out


def exit_code_for(fired: bool, evidence: Sequence[EvidenceFinding]) -> int:
    """A fired trigger wins (1); else any trigger with insufficient evidence (3); else 0."""
    if fired:
        return EXIT_FIRED
    if not all(f.sufficient for f in evidence):
        return EXIT_NO_EVIDENCE
    return EXIT_OK


def build_report(
    *,
    watch_id: str,
    env_name: str,
    target: str,
    frontend: str | None,
    phase: Phase,
    interval_s: float,
    rate: float,
    start_s: float,
    end_s: float,
    deadline_s: float,
    totals: Totals,
    hist_all: LatencyHistogram,
    hist_critical: LatencyHistogram,
    specs: Sequence[AnyTrigger],
    states: Sequence[TriggerStatus],
    evidence: Sequence[EvidenceFinding],
    coverage_floor: float,
    thresholds: Thresholds,
    exit_code: int,
    has_credentials: bool,
    ending: str,
) -> RunReport:
    verdicts: list[Verdict] = []
    if phase in ("critical", "all"):
        verdicts += critical_checks(
            totals.critical, hist_critical, thresholds, format_duration(CRITICAL_PHASE_S)
        )
    if phase in ("extended", "all"):
        verdicts += extended_checks(totals, thresholds, frontend is not None, has_credentials)
    verdicts += trigger_verdicts(specs, states, evidence)
    w = totals.whole
    cpu_share = totals.monitor_cpu_s / totals.measured_s if totals.measured_s else 0.0
    sampler = SamplerInfo(
        totals.measured_s,
        rate,
        w.sampler_valid,
        f"{w.sampler_text()}; monitor CPU {cpu_share * 100:.2f}% of one core over "
        f"{totals.measured_s:.0f} s measured",
        w.sampler_lag_p99_ms,
        totals.monitor_cpu_s / w.requests * 1e6 if w.requests else 0.0,
        cpu_share,
    )
    stream = LatencyStream(
        "sampled API paths (whole watch)",
        "http",
        w.requests,
        w.requests - w.errors,
        w.errors,
        0,
        0,
        hist_all.summary(),
        {},
    )
    trig = tuple(
        {
            "id": s.id,
            "condition": f"{s.kind}: {s.description or s.id}, {s.bound()}",
            "action": "automatic rollback (--auto-rollback) and alert sinks",
        }
        for s in specs
    )
    monitoring = (
        {
            "signal": "windows",
            "threshold": f"{w.windows - w.missing} measured, {w.missing} missing",
            "window": f"interval {format_duration(interval_s)}",
            "source": f"watch {watch_id}, ended: {ending}",
        },
        {
            "signal": "trigger evidence coverage",
            "threshold": (
                f"each trigger: evidence in >= {percent(coverage_floor)} of windows, "
                "no blind stretch beyond its persistence bound (else exit 3)"
            ),
            "window": "whole watch, missed windows counted blind",
            "source": "; ".join(
                f"{f.trigger_id} {'-' if f.coverage.share is None else percent(f.coverage.share)}"
                for f in evidence
            ),
        },
        {
            "signal": "error rate (sampled API)",
            "threshold": f"{w.errors} errors of {w.requests} requests",
            "window": "whole watch",
            "source": "open-model sampler",
        },
    )
    return RunReport(
        run_id=watch_id,
        tool_version=__version__,
        title=f"MyTrader post-deployment monitor ({phase} phase)",
        env_name=env_name,
        backend=target,
        frontend=frontend,
        started_at=_iso(start_s),
        finished_at=_iso(end_s),
        elapsed_s=round(end_s - start_s, 3),
        decision=decide(verdicts),
        exit_code=exit_code,
        verdicts=tuple(verdicts),
        streams=(stream,) if w.requests else (),
        sampler=sampler,
        rollback_triggers=trig,
        monitoring=monitoring,
        sources=(f"monitor until {_iso(deadline_s)}",),
    )
