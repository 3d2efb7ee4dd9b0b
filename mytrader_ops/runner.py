"""Execute a RunPlan: functional probes, then the SLA phase, then pure judgement and decision.

All I/O is bounded: every probe has its own deadline and the SLA phase an overall one, so a
hanging or dripping target ends as a verdict within `duration + timeouts`, never a hang.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from mytrader_ops import __version__
from mytrader_ops.config import (
    AuthCheck,
    Check,
    ConnectionSuccessCheck,
    DatabaseCheck,
    ErrorRateCheck,
    FrontendCheck,
    HealthCheck,
    HttpCheck,
    HubCheck,
    HubLatencyCheck,
    LatencyCheck,
    MetricsCheck,
    MobileCheck,
    ProxyCheck,
    WebSocketCheck,
)
from mytrader_ops.decision import (
    KnownIssueRule,
    apply_known_issues,
    decide,
    exit_code,
    mark_out_of_scope,
)
from mytrader_ops.evaluate import (
    CheckMeta,
    LatencyEvidence,
    Limit,
    judge_latency,
    judge_observation,
    judge_rate_above,
    judge_rate_below,
)
from mytrader_ops.observation import Observation, utc_now
from mytrader_ops.plan import RunPlan
from mytrader_ops.probes import auth, database, frontend, http, hub, hublatency, websocket
from mytrader_ops.probes.context import NO_CREDENTIALS, ProbeContext, open_context
from mytrader_ops.redaction import Redactor
from mytrader_ops.report.model import LatencyStream, RunReport, SamplerInfo, from_json, to_json
from mytrader_ops.sampler import SamplerResult, StreamSpec, run_sampler
from mytrader_ops.stats import LatencyHistogram, min_samples_for_proportion
from mytrader_ops.verdict import Status, Verdict

Progress = Callable[[str, str], None]
SLA_KINDS = ("latency", "error-rate", "hub-latency", "connection-success")
PROBE_CONCURRENCY = 32
CONNECT_SPACING_S = 0.02


def _meta(check: Check) -> CheckMeta:
    return CheckMeta(check.id, check.title, check.critical, check.component, check.criterion)


def _limits(check: Check) -> tuple[Limit, ...]:
    if isinstance(check, HttpCheck | HealthCheck) and check.max_latency_ms is not None:
        return (Limit("latency_ms", check.max_latency_ms, label="latency"),)
    if isinstance(check, FrontendCheck):
        return (Limit("load_ms", check.max_load_ms, label="page load"),)
    if isinstance(check, MobileCheck):
        return (Limit("reconnect_ms", check.max_reconnect_ms, label="reconnect"),)
    if isinstance(check, HubCheck) and check.expect_message is not None:
        return (
            Limit("first_message_ms", check.first_message_within_ms, label="time to first message"),
        )
    return ()


async def _probe(ctx: ProbeContext, plan: RunPlan, check: Check) -> Observation:
    if isinstance(check, HttpCheck):
        return await http.probe_http(ctx, check)
    if isinstance(check, HealthCheck):
        return await http.probe_health(ctx, check)
    if isinstance(check, MetricsCheck):
        return await http.probe_metrics(ctx, check)
    if isinstance(check, AuthCheck):
        return await auth.probe_auth(ctx, check, plan.environment)
    if isinstance(check, DatabaseCheck):
        return await database.probe_database(ctx, check)
    if isinstance(check, MobileCheck):
        return await hub.probe_mobile(ctx, check)
    if isinstance(check, HubCheck):
        return await hub.probe_hub(ctx, check)
    if isinstance(check, WebSocketCheck):
        return await websocket.probe_websocket(ctx, check)
    if isinstance(check, FrontendCheck):
        return await frontend.probe_frontend(ctx, check)
    if isinstance(check, ProxyCheck):
        return await frontend.probe_proxy(ctx, check)
    raise AssertionError(f"not a probe check: {check.kind}")


def _not_in_scope(check: Check) -> Verdict:
    return Verdict(
        check.id,
        check.title,
        Status.INCONCLUSIVE,
        f"not in scope: no {check.component} given for this run",
        critical=check.critical,
        component=check.component,
        criterion=check.criterion,
        in_scope=False,
    )


@dataclass(slots=True)
class _SlaOutcome:
    verdicts: list[Verdict]
    streams: list[LatencyStream]
    sampler: SamplerInfo | None


def _stream(
    name: str,
    kind: str,
    hist: LatencyHistogram,
    scheduled: int,
    responses: int,
    errors: int,
    late: int,
    dropped: int,
    kinds: dict[str, int],
) -> LatencyStream:
    return LatencyStream(
        name,
        kind,
        scheduled,
        responses,
        errors,
        late,
        dropped,
        hist.summary(),
        dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:5]),
    )


def _no_response_verdict(meta: CheckMeta, name: str, errors: int, kinds: dict[str, int]) -> Verdict:
    top = max(kinds, key=lambda k: kinds[k]) if kinds else "no response"
    return Verdict(
        meta.check_id,
        meta.title,
        Status.FAIL,
        f"{name}: no response to any of {errors} requests ({top})",
        critical=meta.critical,
        component=meta.component,
        criterion=meta.criterion,
        evidence=tuple(f"{n} x {k}" for k, n in kinds.items()),
    )


async def _sla_phase(ctx: ProbeContext, plan: RunPlan, checks: list[Check]) -> _SlaOutcome:
    s = plan.sampler
    latency_checks = [c for c in checks if isinstance(c, LatencyCheck)]
    verdicts: list[Verdict] = []
    specs: dict[str, StreamSpec] = {}
    token_missing: set[str] = set()
    for lc in latency_checks:
        headers: dict[str, str] = {}
        if lc.auth:
            token, _reason = await ctx.token()
            if token is None:
                token_missing.add(lc.id)
                continue
            headers["Authorization"] = f"Bearer {token}"
        specs.setdefault(lc.path, StreamSpec(lc.path, headers))
    tallies: dict[str, hub.ConnectionTally] = {}
    hub_results: dict[str, hublatency.HubLatencyResult] = {}
    sampled: SamplerResult | None = None

    async def run_http() -> None:
        nonlocal sampled
        if specs:
            sampled = await run_sampler(
                ctx.backend,
                list(specs.values()),
                rate=s.rate,
                duration_s=s.duration_s,
                max_connections=s.max_connections,
                request_timeout_s=s.request_timeout_s,
                late_after_ms=s.late_after_ms,
                ssl_context=ctx.ssl_context,
            )

    async def run_hub(c: HubLatencyCheck) -> None:
        hub_results[c.id] = await hublatency.sample_hub_latency(
            ctx, c, s.duration_s, s.late_after_ms
        )

    # Latency first, alone, so connection churn does not load the sampler or the target;
    # then connection success in a short window of its own.
    jobs = [run_http()]
    jobs += [run_hub(c) for c in checks if isinstance(c, HubLatencyCheck)]
    budget = s.duration_s + s.request_timeout_s + max((c.timeout_s for c in checks), default=5) + 10
    try:
        async with asyncio.timeout(budget):
            await asyncio.gather(*jobs)
    except TimeoutError:
        pass  # whatever was not measured is judged below as missing evidence
    for cc in checks:
        if isinstance(cc, ConnectionSuccessCheck):
            window = max(1.0, cc.attempts * CONNECT_SPACING_S)
            tallies[cc.id] = await hub.measure_connection_success(ctx, cc, window)
    streams: list[LatencyStream] = []
    sampler_info = None
    if sampled is not None:
        h = sampled.health
        sampler_info = SamplerInfo(
            s.duration_s, s.rate, h.valid, h.note, h.lag_p99_ms, h.cpu_us_per_request, h.cpu_share
        )
        for r in sampled.streams.values():
            streams.append(
                _stream(
                    r.path,
                    "http",
                    r.histogram,
                    r.scheduled,
                    r.responses,
                    r.errors,
                    r.late,
                    r.dropped,
                    dict(r.error_kinds),
                )
            )
    for c in checks:
        meta = _meta(c)
        if isinstance(c, LatencyCheck):
            if c.id in token_missing:
                verdicts.append(
                    judge_observation(
                        meta, Observation(c.id, c.kind, utc_now(), 0.0, inconclusive=NO_CREDENTIALS)
                    )
                )
                continue
            got = sampled.streams.get(c.path) if sampled is not None else None
            if got is None:
                verdicts.append(
                    judge_observation(
                        meta,
                        Observation(
                            c.id, c.kind, utc_now(), 0.0, inconclusive="the sampler did not finish"
                        ),
                    )
                )
                continue
            if got.histogram.count == 0 and got.errors:
                verdicts.append(
                    _no_response_verdict(meta, c.path, got.errors, dict(got.error_kinds))
                )
                continue
            assert sampled is not None
            ev = LatencyEvidence(
                c.path,
                got.histogram.summary(),
                got.histogram.percentile_ms(c.percentile),
                got.histogram.percentile_interval_ms(c.percentile)
                if got.histogram.count
                else (0, 0),
                got.scheduled,
                got.errors,
                got.late,
                got.dropped,
                sampled.health.valid,
                sampled.health.note,
                sampled.health.lag_p95_ms if c.percentile <= 95 else sampled.health.lag_p99_ms,
            )
            verdicts.append(judge_latency(meta, ev, c.percentile, c.max_ms, c.min_samples))
        elif isinstance(c, ErrorRateCheck):
            n, errors = sampled.total() if sampled is not None else (0, 0)
            kinds: dict[str, int] = {}
            if sampled is not None:
                for sr in sampled.streams.values():
                    for k, v in sr.error_kinds.items():
                        kinds[f"{sr.path}: {k}"] = kinds.get(f"{sr.path}: {k}", 0) + v
            evidence = tuple(
                f"{v} x {k}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]
            )
            evidence += (
                f"over every sampled request ({', '.join(specs) or 'none'}); none excluded",
            )
            need = max(c.min_samples, min_samples_for_proportion(c.max_rate))
            verdicts.append(
                judge_rate_below(meta, "error rate", errors, n, c.max_rate, need, evidence)
            )
        elif isinstance(c, HubLatencyCheck):
            hr = hub_results.get(c.id)
            if hr is None or hr.unavailable is not None:
                reason = hr.unavailable if hr is not None else "the hub sampler did not finish"
                obs = Observation(
                    c.id,
                    c.kind,
                    utc_now(),
                    0.0,
                    **(
                        {"inconclusive": reason}
                        if reason in (NO_CREDENTIALS, "the hub sampler did not finish")
                        else {"error": reason}
                    ),
                )
                verdicts.append(judge_observation(meta, obs))
                continue
            name = f"{c.path} {c.invoke.target}"
            streams.append(
                _stream(
                    name,
                    "hub",
                    hr.histogram,
                    hr.scheduled,
                    hr.completions,
                    hr.errors,
                    hr.late,
                    0,
                    dict(hr.error_kinds),
                )
            )
            if hr.histogram.count == 0:
                verdicts.append(_no_response_verdict(meta, name, hr.errors, dict(hr.error_kinds)))
                continue
            ev = LatencyEvidence(
                name,
                hr.histogram.summary(),
                hr.histogram.percentile_ms(c.percentile),
                hr.histogram.percentile_interval_ms(c.percentile),
                hr.scheduled,
                hr.errors,
                hr.late,
                0,
                True,
                "invocations multiplexed on one session; timed send to completion",
                0.0 if sampled is None else sampled.health.lag_p95_ms,
            )
            verdicts.append(judge_latency(meta, ev, c.percentile, c.max_ms, c.min_samples))
        elif isinstance(c, ConnectionSuccessCheck):
            t = tallies.get(c.id)
            if t is None or t.unavailable is not None:
                reason = t.unavailable if t is not None and t.unavailable else "did not finish"
                verdicts.append(
                    judge_observation(
                        meta, Observation(c.id, c.kind, utc_now(), 0.0, inconclusive=reason)
                    )
                )
                continue
            evidence = tuple(f"{v} x {k}" for k, v in t.failures.items())
            if t.connect_ms_p50 is not None:
                evidence += (f"median negotiate+connect+handshake {t.connect_ms_p50:.1f} ms",)
            need = min_samples_for_proportion(c.min_rate)
            verdicts.append(
                judge_rate_above(
                    meta,
                    f"connection success ({c.path})",
                    t.successes,
                    t.attempts,
                    c.min_rate,
                    need,
                    evidence,
                )
            )
    return _SlaOutcome(verdicts, streams, sampler_info)


async def execute(
    plan: RunPlan,
    redactor: Redactor,
    progress: Progress | None = None,
    today: dt.date | None = None,
) -> RunReport:
    """Run every check of the plan; never raises for an unhealthy target."""
    note = progress or (lambda _c, _m: None)
    env = plan.environment
    creds = env.credentials
    redactor.add_secret(creds.username)
    redactor.add_secret(creds.password)
    redactor.add_secret(creds.expired_token)
    started_at, t0 = utc_now(), time.perf_counter()
    in_scope = [c for c in plan.checks if c.component in plan.components]
    scoped_ids = {c.id for c in in_scope}
    results = {c.id: _not_in_scope(c) for c in plan.checks if c.id not in scoped_ids}
    async with open_context(
        backend=env.backend,
        frontend=env.frontend,
        username=creds.username.reveal() if creds.username else None,
        password=creds.password.reveal() if creds.password else None,
        redactor=redactor,
        tls_verify=env.tls_verify,
        ca_file=env.ca_file,
        follow_redirects=env.follow_redirects,
    ) as ctx:
        sem = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def one(check: Check) -> None:
            async with sem:
                note(check.id, "probing")
                obs = await _probe(ctx, plan, check)
                verdict = judge_observation(_meta(check), obs, _limits(check))
                results[check.id] = verdict
                note(check.id, verdict.status.value)

        await asyncio.gather(*(one(c) for c in in_scope if c.kind not in SLA_KINDS))
        sla_checks = [c for c in in_scope if c.kind in SLA_KINDS]
        streams: list[LatencyStream] = []
        sampler_info = None
        if sla_checks:
            for c in sla_checks:
                note(c.id, f"sampling for {plan.sampler.duration_s:g} s")
            outcome = await _sla_phase(ctx, plan, sla_checks)
            for v in outcome.verdicts:
                results[v.check_id] = v
                note(v.check_id, v.status.value)
            streams, sampler_info = outcome.streams, outcome.sampler
    ordered = [
        mark_out_of_scope(results[c.id], plan.components)
        if results[c.id].in_scope
        else results[c.id]
        for c in plan.checks
    ]
    rules = [KnownIssueRule(k.check, k.ticket, k.mitigation, k.expires) for k in plan.known_issues]
    verdicts = apply_known_issues(ordered, rules, today or dt.datetime.now(dt.UTC).date())
    decision = decide(verdicts)
    report = RunReport(
        run_id=f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        tool_version=__version__,
        title=plan.title,
        env_name=plan.env_name,
        backend=env.backend,
        frontend=env.frontend,
        started_at=started_at,
        finished_at=utc_now(),
        elapsed_s=round(time.perf_counter() - t0, 3),
        decision=decision,
        exit_code=exit_code(decision),
        verdicts=tuple(verdicts),
        streams=tuple(streams),
        sampler=sampler_info,
        known_issues=tuple(
            {
                "check": k.check,
                "ticket": k.ticket,
                "mitigation": k.mitigation,
                "expires": k.expires.isoformat(),
                "owner": k.owner or "",
            }
            for k in plan.known_issues
        ),
        sign_offs=tuple({"role": s.role, "name": s.name or ""} for s in plan.sign_offs),
        rollback_triggers=tuple(
            {"id": r.id, "condition": r.condition, "action": r.action}
            for r in plan.rollback_triggers
        ),
        monitoring=tuple(
            {"signal": m.signal, "threshold": m.threshold, "window": m.window, "source": m.source}
            for m in plan.monitoring
        ),
        sources=plan.sources,
    )
    return redact_report(report, redactor)


def redact_report(report: RunReport, redactor: Redactor) -> RunReport:
    """Every string of the report passes through the redactor (the canonical form is redacted)."""
    text = redactor.redact(json.dumps(to_json(report)))
    return from_json(json.loads(text))
