"""The SLA phase: open-model sampling of HTTP endpoints and hubs, then connection success.

Latency streams (HTTP sampler, hub invocations) run together and alone, so connection churn
does not load the sampler or the target; connection attempts follow in a short window of their
own. Everything is bounded by an overall budget; what was not measured is judged as missing
evidence. Judgement itself is pure (`evaluate`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mytrader_ops.config import (
    Check,
    ConnectionSuccessCheck,
    ErrorRateCheck,
    HubLatencyCheck,
    LatencyCheck,
)
from mytrader_ops.observation import Observation, utc_now
from mytrader_ops.probes import hub, hublatency
from mytrader_ops.probes.context import NO_CREDENTIALS, ProbeContext
from mytrader_ops.probes.sampler import SamplerResult, StreamSpec, run_sampler
from mytrader_ops.report.model import LatencyStream, SamplerInfo
from mytrader_ops.stats import LatencyHistogram, min_samples_for_proportion
from mytrader_ops.validate.evaluate import (
    CheckMeta,
    LatencyEvidence,
    judge_latency,
    judge_observation,
    judge_rate_above,
    judge_rate_below,
    make_verdict,
)
from mytrader_ops.validate.plan import RunPlan
from mytrader_ops.verdict import Status, Verdict

CONNECT_SPACING_S = 0.02


def _meta(check: Check) -> CheckMeta:
    return CheckMeta(check.id, check.title, check.critical, check.component, check.criterion)


@dataclass(slots=True)
class SlaOutcome:
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
    return make_verdict(
        meta,
        Status.FAIL,
        f"{name}: no response to any of {errors} requests ({top})",
        evidence=tuple(f"{n} x {k}" for k, n in kinds.items()),
    )


async def run_sla_phase(ctx: ProbeContext, plan: RunPlan, checks: list[Check]) -> SlaOutcome:
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
    return SlaOutcome(verdicts, streams, sampler_info)
