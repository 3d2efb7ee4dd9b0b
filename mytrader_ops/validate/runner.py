"""Execute a RunPlan: functional probes, then the SLA phase, then pure judgement and decision.

All I/O is bounded: every probe has its own deadline and the SLA phase an overall one, so a
hanging or dripping target ends as a verdict within `duration + timeouts`, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable

from mytrader_ops import __version__
from mytrader_ops.config import (
    AuthCheck,
    Check,
    CommandCheck,
    DatabaseCheck,
    Environment,
    ErrorBudgetCheck,
    FrontendCheck,
    HealthCheck,
    HttpCheck,
    HubCheck,
    MetricsCheck,
    MobileCheck,
    PrometheusCheck,
    ProxyCheck,
    Slo,
    TlsCheck,
    WebSocketCheck,
)
from mytrader_ops.observation import Observation, utc_now
from mytrader_ops.probes import (
    auth,
    command,
    database,
    frontend,
    http,
    hub,
    prometheus,
    tls,
    websocket,
)
from mytrader_ops.probes.context import ProbeContext, open_context
from mytrader_ops.probes.prometheus import PromResult
from mytrader_ops.redaction import Redactor
from mytrader_ops.report.model import BaselineInfo, LatencyStream, RunReport, redact_report
from mytrader_ops.validate.budget import BudgetSource, judge_budget, judge_promql_budget
from mytrader_ops.validate.decision import (
    KnownIssueRule,
    apply_known_issues,
    decide,
    exit_code,
    mark_out_of_scope,
)
from mytrader_ops.validate.evaluate import (
    CheckMeta,
    Limit,
    judge_observation,
)
from mytrader_ops.validate.plan import RunPlan
from mytrader_ops.validate.promjudge import judge_prometheus
from mytrader_ops.validate.sla import run_sla_phase
from mytrader_ops.verdict import Status, Verdict

Progress = Callable[[str, str], None]
SLA_KINDS = ("latency", "error-rate", "hub-latency", "connection-success")
PROBE_CONCURRENCY = 32


def _meta(check: Check) -> CheckMeta:
    return CheckMeta(check.id, check.title, check.critical, check.component, check.criterion)


def _limits(check: Check) -> tuple[Limit, ...]:
    if isinstance(check, HttpCheck | HealthCheck) and check.max_latency_ms is not None:
        return (Limit("latency_ms", check.max_latency_ms, label="latency"),)
    if isinstance(check, FrontendCheck):
        return (Limit("load_ms", check.max_load_ms, label="page load"),)
    if isinstance(check, MobileCheck):
        return (Limit("reconnect_ms", check.max_reconnect_ms, label="reconnect"),)
    if isinstance(check, CommandCheck):
        limits = []
        if check.max is not None:
            limits.append(Limit("value", check.max, check.unit, "<=", "value"))
        if check.min is not None:
            limits.append(Limit("value", check.min, check.unit, ">=", "value"))
        return tuple(limits)
    if isinstance(check, TlsCheck):
        return (Limit("days_to_expiry", check.min_days, "days", ">=", "days to expiry"),)
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
    if isinstance(check, CommandCheck):
        return await command.probe_command(ctx, check)
    if isinstance(check, TlsCheck):
        return await tls.probe_tls(ctx, check)
    raise AssertionError(f"not a probe check: {check.kind}")


def _open(
    env: Environment, redactor: Redactor, backend: str, frontend: str | None
) -> contextlib.AbstractAsyncContextManager[ProbeContext]:
    """The probes' context for one deployment of the environment (its own or --compare-to)."""
    creds = env.credentials
    return open_context(
        backend=backend,
        frontend=frontend,
        username=creds.username.reveal() if creds.username else None,
        password=creds.password.reveal() if creds.password else None,
        redactor=redactor,
        tls_verify=env.tls_verify,
        ca_file=env.ca_file,
        follow_redirects=env.follow_redirects,
        auth=env.auth,
    )


async def _prometheus(ctx: ProbeContext, plan: RunPlan, check: PrometheusCheck) -> Verdict:
    source = plan.environment.prometheus
    if source is None:
        obs = Observation(
            check.id,
            check.kind,
            utc_now(),
            0.0,
            inconclusive="no prometheus: URL in this environment to query",
        )
        return judge_observation(_meta(check), obs)
    try:
        async with asyncio.timeout(check.timeout_s):
            result = await prometheus.query_check(ctx, source, check)
    except TimeoutError:
        result = PromResult(unreachable=f"Prometheus did not answer within {check.timeout_s:g} s")
    return judge_prometheus(_meta(check), check, result)


async def _promql_budget(
    ctx: ProbeContext, plan: RunPlan, check: ErrorBudgetCheck, slo: Slo
) -> Verdict:
    prom = plan.environment.prometheus
    if prom is None:
        obs = Observation(
            check.id, check.kind, utc_now(), 0.0, inconclusive="no prometheus: to ask for the SLO"
        )
        return judge_observation(_meta(check), obs)
    try:
        async with asyncio.timeout(check.timeout_s):
            result = await prometheus.query(ctx, prom, slo.ratio_query(slo.window))
    except TimeoutError:
        result = PromResult(unreachable=f"Prometheus did not answer within {check.timeout_s:g} s")
    return judge_promql_budget(_meta(check), check, slo, result)


async def _budget(
    ctx: ProbeContext, plan: RunPlan, check: ErrorBudgetCheck, source: BudgetSource | None
) -> Verdict:
    slo = next(o for o in plan.slos if o.id == check.slo)  # the config validated the reference
    if slo.signal == "promql":
        return await _promql_budget(ctx, plan, check, slo)
    if source is None:
        obs = Observation(
            check.id, check.kind, utc_now(), 0.0, inconclusive="no monitor store to read"
        )
        return judge_observation(_meta(check), obs)
    since = time.time() - slo.window_s
    events = await asyncio.to_thread(source.events, plan.environment.backend, slo, since)
    return judge_budget(_meta(check), check, slo, events, source.name)


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


async def execute(
    plan: RunPlan,
    redactor: Redactor,
    progress: Progress | None = None,
    today: dt.date | None = None,
    baseline: RunReport | None = None,
    budget_source: BudgetSource | None = None,
) -> RunReport:
    """Run every check of the plan; never raises for an unhealthy target. With `baseline`
    (a stored run), every sampled stream is also judged against the same stream of it."""
    note = progress or (lambda _c, _m: None)
    env = plan.environment
    creds = env.credentials
    redactor.add_secret(creds.password)  # a username is not a secret
    redactor.add_secret(creds.expired_token)
    started_at, t0 = utc_now(), time.perf_counter()
    in_scope = [c for c in plan.checks if c.component in plan.components]
    scoped_ids = {c.id for c in in_scope}
    results = {c.id: _not_in_scope(c) for c in plan.checks if c.id not in scoped_ids}
    async with _open(env, redactor, env.backend, env.frontend) as ctx:
        sem = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def one(check: Check) -> None:
            async with sem:
                note(check.id, "probing")
                if isinstance(check, ErrorBudgetCheck):
                    verdict = await _budget(ctx, plan, check, budget_source)
                elif isinstance(check, PrometheusCheck):
                    verdict = await _prometheus(ctx, plan, check)
                else:
                    obs = await _probe(ctx, plan, check)
                    verdict = judge_observation(_meta(check), obs, _limits(check))
                results[check.id] = verdict
                note(check.id, verdict.status.value)

        await asyncio.gather(*(one(c) for c in in_scope if c.kind not in SLA_KINDS))
        sla_checks = [c for c in in_scope if c.kind in SLA_KINDS]
        streams: list[LatencyStream] = []
        compared: list[LatencyStream] = []
        sampler_info = None
        if sla_checks:
            for c in sla_checks:
                note(c.id, f"sampling for {plan.sampler.duration_s:g} s")
            async with contextlib.AsyncExitStack() as stack:
                other = None
                if plan.compare_to is not None:
                    other = await stack.enter_async_context(
                        _open(env, redactor, plan.compare_to, None)
                    )
                outcome = await run_sla_phase(ctx, plan, sla_checks, other)
            for v in outcome.verdicts:
                results[v.check_id] = v
                note(v.check_id, v.status.value)
            streams, sampler_info = outcome.streams, outcome.sampler
            compared = outcome.compared
    ordered = [
        mark_out_of_scope(results[c.id], plan.components)
        if results[c.id].in_scope
        else results[c.id]
        for c in plan.checks
    ]
    baseline_info = None
    if baseline is not None or plan.compare_to is not None:
        from mytrader_ops.validate.baseline import apply_baseline  # scipy: only when comparing

        if baseline is not None:
            label, base_streams = f"baseline run {baseline.run_id}", baseline.streams
        else:
            label, base_streams = f"{plan.compare_to} (sampled alongside)", tuple(compared)
        ordered = apply_baseline(ordered, plan.checks, streams, base_streams, "this run", label)
        baseline_info = BaselineInfo(
            label, baseline.run_id if baseline is not None else None, tuple(base_streams)
        )
    rules = [
        KnownIssueRule(k.check, k.ticket, k.mitigation, k.expires, tuple(k.waives), k.match)
        for k in plan.known_issues
    ]
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
                "waives": ", ".join(k.waives),
                "match": k.match or "",
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
        baseline=baseline_info,
    )
    return redact_report(report, redactor)
