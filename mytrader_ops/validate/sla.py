"""The SLA phase: sequential open-model sampling of HTTP endpoints and hubs, then connection
success.

Latency streams (the HTTP sampler, hub invocations) run together and alone, so connection
churn does not load the sampler or the target; connection attempts follow in a short window of
their own. A controller watches the streams as they fill and ends each one by the stop rules of
`sequential` (planned duration, early when decisive with --until-decisive, later when a
critical criterion is marginal, never past the budget). Everything is bounded by an overall
deadline; what was not measured is judged as missing evidence. Judgement itself is pure
(`evaluate`).

Error accounting is the same for every stream: each scheduled send or invocation counts once,
and every failure (HTTP >= 400, timeout, reset, a dropped send; an error completion, no
completion, no connection) counts against the target. The error-rate criterion covers every
sampled request and invocation; none is excluded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from mytrader_ops.config import (
    Check,
    ConnectionSuccessCheck,
    ErrorRateCheck,
    HubLatencyCheck,
    LatencyCheck,
)
from mytrader_ops.observation import Observation, utc_now
from mytrader_ops.probes import hub, hublatency
from mytrader_ops.probes.context import ProbeContext
from mytrader_ops.probes.hublatency import HubLatencyResult
from mytrader_ops.probes.sampler import (
    SamplerResult,
    SamplingControl,
    StreamResult,
    StreamSpec,
    run_sampler,
)
from mytrader_ops.report.model import LatencyStream, SamplerInfo
from mytrader_ops.stats import LatencyHistogram, min_samples_for_proportion, share_vs_limit
from mytrader_ops.validate.evaluate import (
    CheckMeta,
    SampledLatency,
    judge_observation,
    judge_percentile,
    judge_rate_above,
    judge_share_below,
    make_verdict,
)
from mytrader_ops.validate.plan import RunPlan
from mytrader_ops.validate.sequential import Criterion, Schedule, make_schedule, streams_to_stop
from mytrader_ops.verdict import Measurement, Status, Verdict

CONNECT_SPACING_S = 0.02
CONTROL_TICK_S = 0.2
DEFAULT_HUB_ERROR_RATE = 0.05
_RANK = {Status.PASS: 0, Status.WARN: 1, Status.INCONCLUSIVE: 2, Status.FAIL: 3}


def _meta(check: Check) -> CheckMeta:
    return CheckMeta(check.id, check.title, check.critical, check.component, check.criterion)


def http_key(path: str) -> str:
    return f"http {path}"


def hub_key(check_id: str) -> str:
    return f"hub {check_id}"


@dataclass(slots=True)
class SlaOutcome:
    verdicts: list[Verdict]
    streams: list[LatencyStream]
    sampler: SamplerInfo | None
    compared: list[LatencyStream] = field(default_factory=list)  # --compare-to's streams


@dataclass(slots=True)
class _Streams:
    """What the controller watches: the live results and controls of every sampled stream."""

    http: SamplingControl
    hubs: dict[str, tuple[SamplingControl, HubLatencyResult]]
    stopped: dict[str, str]  # stream key -> why it stopped
    mirror: _Streams | None = None  # the compared deployment's streams stop with these

    def running(self) -> list[str]:
        keys = [http_key(p) for p in self.http.live if p not in self.http.stopped]
        keys += [hub_key(i) for i, (ctl, _r) in self.hubs.items() if i not in ctl.stopped]
        return [k for k in keys if k not in self.stopped]

    def stop(self, key: str, reason: str) -> None:
        self.stopped[key] = reason
        kind, _, name = key.partition(" ")
        if kind == "http":
            self.http.stopped.add(name)
        else:
            self.hubs[name][0].stopped.add(name)
        if self.mirror is not None:
            self.mirror.stop(key, reason)

    def pooled_errors(self) -> tuple[int, int]:
        """(failures, outcomes) over every stream, HTTP and hub, none excluded."""
        k = sum(r.errors for r in self.http.live.values())
        n = sum(r.completed for r in self.http.live.values())
        k += sum(r.errors for _c, r in self.hubs.values())
        n += sum(r.completed for _c, r in self.hubs.values())
        return k, n


def hub_error_limit(c: HubLatencyCheck, checks: list[Check]) -> float:
    if c.max_error_rate is not None:
        return c.max_error_rate
    suite = next((x for x in checks if isinstance(x, ErrorRateCheck)), None)
    return suite.max_rate if suite is not None else DEFAULT_HUB_ERROR_RATE


def _deciders(
    checks: list[Check], streams: _Streams, specs: dict[str, StreamSpec]
) -> tuple[list[Criterion], dict[str, Callable[[], bool]]]:
    """Each sampled criterion, the streams it reads, and whether it is decided yet (live)."""
    criteria: list[Criterion] = []
    decided: dict[str, Callable[[], bool]] = {}
    every = frozenset([*(http_key(p) for p in specs), *(hub_key(i) for i in streams.hubs)])
    for c in checks:
        if isinstance(c, LatencyCheck) and c.path in specs:
            criteria.append(Criterion(c.id, c.critical, frozenset({http_key(c.path)})))

            def latency(c: LatencyCheck = c) -> bool:
                live = streams.http.live.get(c.path)
                if live is None or live.histogram.count < (c.min_samples or 1):
                    return False
                return _percentile_decided(live.histogram, c.percentile, c.max_ms)

            decided[c.id] = latency
        elif isinstance(c, HubLatencyCheck) and c.id in streams.hubs:
            criteria.append(Criterion(c.id, c.critical, frozenset({hub_key(c.id)})))
            limit = hub_error_limit(c, checks)

            def hub_decided(c: HubLatencyCheck = c, limit: float = limit) -> bool:
                r = streams.hubs[c.id][1]
                if r.drops.total() > c.max_drops:
                    return True  # the target dropped the connection: decided, a failure
                errors = share_vs_limit(r.errors, r.completed, limit)
                if errors == "above":
                    return True  # failing invocations decide it, whatever the latency
                enough = r.histogram.count >= (c.min_samples or 1)
                return (
                    errors == "below"
                    and enough
                    and _percentile_decided(r.histogram, c.percentile, c.max_ms)
                )

            decided[c.id] = hub_decided
        elif isinstance(c, ErrorRateCheck) and every:
            criteria.append(Criterion(c.id, c.critical, every))

            def rate(c: ErrorRateCheck = c) -> bool:
                k, n = streams.pooled_errors()
                return n >= c.min_samples and share_vs_limit(k, n, c.max_rate) != "undecided"

            decided[c.id] = rate
    return criteria, decided


def _percentile_decided(h: LatencyHistogram, percentile: float, max_ms: float) -> bool:
    return share_vs_limit(h.count_above_ms(max_ms), h.count, 1 - percentile / 100) != "undecided"


async def _control(
    schedule: Schedule,
    streams: _Streams,
    criteria: list[Criterion],
    decided: dict[str, Callable[[], bool]],
) -> None:
    """End each stream by the stop rules; runs until every stream has stopped."""
    start = time.perf_counter()
    while running := streams.running():
        await asyncio.sleep(CONTROL_TICK_S)
        elapsed = time.perf_counter() - start
        states = {c.check_id: decided[c.check_id]() for c in criteria}
        for key, reason in streams_to_stop(elapsed, schedule, criteria, states, running).items():
            streams.stop(key, reason)


def _top(kinds: dict[str, int]) -> dict[str, int]:
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:5])


def _http_stream(r: StreamResult, stop: str) -> LatencyStream:
    summary = r.histogram.summary()
    return LatencyStream(
        r.path, "http", r.scheduled, r.responses, r.errors, r.late, r.dropped, summary,
        _top(dict(r.error_kinds)), stop, r.histogram.encode(),
    )  # fmt: skip


def _hub_stream(name: str, r: HubLatencyResult, stop: str) -> LatencyStream:
    kinds = dict(r.error_kinds) | {f"dropped: {k}": v for k, v in r.drops.items()}
    summary = r.histogram.summary()
    return LatencyStream(
        name, "hub", r.scheduled, r.completions, r.errors, r.late, 0, summary, _top(kinds), stop,
        r.histogram.encode(),
    )  # fmt: skip


def _no_response_verdict(meta: CheckMeta, name: str, errors: int, kinds: dict[str, int]) -> Verdict:
    top = max(kinds, key=lambda k: kinds[k]) if kinds else "no response"
    return make_verdict(
        meta,
        Status.FAIL,
        f"{name}: no response to any of {errors} requests ({top})",
        evidence=tuple(f"{n} x {k}" for k, n in kinds.items()),
    )


def _missing(meta: CheckMeta, check: Check, reason: str) -> Verdict:
    obs = Observation(check.id, check.kind, utc_now(), 0.0, inconclusive=reason)
    return judge_observation(meta, obs)


def _unavailable(meta: CheckMeta, check: Check, reason: str, failed: bool) -> Verdict:
    """Not sampled: missing credentials is missing evidence; a failing login or token endpoint
    (or a hub that could not be reached) is the deployment's failure."""
    if not failed:
        return _missing(meta, check, reason)
    return judge_observation(meta, Observation(check.id, check.kind, utc_now(), 0.0, error=reason))


def judge_hub_stream(
    meta: CheckMeta, c: HubLatencyCheck, r: HubLatencyResult, limit: float, stop: str
) -> Verdict:
    """Failed invocations and dropped connections against their limit, then the latency.

    A hub that accepts, answers a few invocations and then drops every connection fails here:
    its failures are counted, never left out as "too few samples", and a connection the target
    closed or lost while sampling (beyond `max_drops`, default none) is a failure in itself.
    """
    name = f"{c.path} {c.invoke.target}"
    drops = "; ".join(f"{n} x {how}" for how, n in r.drops.most_common(5)) or "none"
    counts = (
        f"{r.scheduled} invocations sent, {r.completions} completed, {r.errors} failed; "
        f"connections dropped: {drops}; reconnected {r.reconnects} time(s)"
    )
    kinds = tuple(f"{n} x {k}" for k, n in r.error_kinds.most_common(8))
    health = r.health
    failures = judge_share_below(
        meta, f"invocation failures ({name})", r.errors, r.completed, limit, 1, (counts, *kinds)
    )
    latency = judge_percentile(
        meta,
        SampledLatency(
            name,
            r.histogram,
            r.scheduled,
            r.errors,
            r.late,
            0,
            health.valid if health is not None else False,
            health.note if health is not None else "not measured",
            (health.lag_p95_ms if c.percentile <= 95 else health.lag_p99_ms) if health else 0.0,
            stop,
        ),
        c.percentile,
        c.max_ms,
        c.min_samples,
    )
    dropped = r.drops.total()
    m_drops = Measurement("connections dropped by the target", dropped, "", c.max_drops, "<=")
    measurements = (*latency.measurements, *failures.measurements, m_drops)
    evidence = (counts, *latency.evidence, *kinds)
    if dropped > c.max_drops:
        return make_verdict(
            meta,
            Status.FAIL,
            f"{counts}: {m_drops.describe()}; {failures.measurements[0].describe()}",
            measurements=measurements,
            evidence=evidence,
        )
    worst = max((failures, latency), key=lambda v: _RANK.get(v.status, 0))
    summary = worst.summary
    if worst is failures and failures.status is not Status.PASS:
        summary = f"{counts}: {failures.summary}"
    return make_verdict(
        meta,
        worst.status,
        summary,
        measurements=measurements,
        evidence=evidence,
        undemonstrated=worst.undemonstrated,
    )


async def _stream_specs(
    ctx: ProbeContext, checks: list[Check]
) -> tuple[dict[str, StreamSpec], dict[str, tuple[str, bool]]]:
    """One stream per sampled path (with a token where a check needs one), and the checks
    that cannot be sampled for want of credentials."""
    specs: dict[str, StreamSpec] = {}
    token_missing: dict[str, tuple[str, bool]] = {}
    for lc in checks:
        if not isinstance(lc, LatencyCheck):
            continue
        headers: dict[str, str] = {}
        if lc.auth:
            cred, reason, failed = await ctx.credential()
            if cred is None:
                token_missing[lc.id] = (reason, failed)
                continue
            headers.update(cred.headers)
        spec = specs.setdefault(lc.path, StreamSpec(lc.path, headers))
        specs[lc.path] = dataclasses.replace(spec, watch_ms=(*spec.watch_ms, lc.max_ms))
    return specs, token_missing


class _Sampling:
    """Every stream of one deployment: the HTTP sampler and one hub sampler per check."""

    def __init__(
        self,
        ctx: ProbeContext,
        plan: RunPlan,
        checks: list[Check],
        schedule: Schedule,
        specs: dict[str, StreamSpec],
        offset_periods: float = 0.0,
    ) -> None:
        self.ctx, self.plan, self.schedule, self.specs = ctx, plan, schedule, specs
        self.offset_periods = offset_periods
        self.hub_checks = [c for c in checks if isinstance(c, HubLatencyCheck)]
        self.streams = _Streams(
            SamplingControl(),
            {c.id: (SamplingControl(), HubLatencyResult()) for c in self.hub_checks},
            {},
        )
        for hc in self.hub_checks:
            self.streams.hubs[hc.id][1].histogram.watch(hc.max_ms)
        # The controller ends every stream; the samplers' own end is the budget's.
        budget_at = time.perf_counter() + schedule.budget_s + 1
        self.streams.http.end_at = budget_at
        for ctl, _r in self.streams.hubs.values():
            ctl.end_at = budget_at
        self.streams.http.live = {p: StreamResult(p) for p in specs}
        self.sampled: SamplerResult | None = None

    async def run_http(self) -> None:
        s = self.plan.sampler
        if self.specs:
            self.sampled = await run_sampler(
                self.ctx.backend,
                list(self.specs.values()),
                rate=s.rate,
                duration_s=self.schedule.budget_s,
                max_connections=s.max_connections,
                request_timeout_s=s.request_timeout_s,
                late_after_ms=s.late_after_ms,
                ssl_context=self.ctx.ssl_context,
                control=self.streams.http,
                start_offset_s=self.offset_periods / s.rate,
            )

    async def run_hub(self, c: HubLatencyCheck) -> None:
        ctl, result = self.streams.hubs[c.id]
        await hublatency.sample_hub_latency(
            self.ctx,
            c,
            self.schedule.budget_s,
            self.plan.sampler.late_after_ms,
            control=ctl,
            result=result,
            start_offset_s=self.offset_periods / c.rate,
        )
        if result.unavailable is not None:
            self.streams.stop(hub_key(c.id), "unavailable")

    def jobs(self) -> list[Coroutine[None, None, None]]:
        return [self.run_http(), *(self.run_hub(c) for c in self.hub_checks)]

    def latency_streams(self) -> list[LatencyStream]:
        """The sampled streams as the report keeps them (with their distributions)."""
        out = []
        if self.sampled is not None:
            for r in self.sampled.streams.values():
                out.append(_http_stream(r, self.streams.stopped.get(http_key(r.path), "")))
        for c in self.hub_checks:
            hr = self.streams.hubs[c.id][1]
            if hr.unavailable is None and hr.health is not None:
                stop = self.streams.stopped.get(hub_key(c.id), "")
                out.append(_hub_stream(f"{c.path} {c.invoke.target}", hr, stop))
        return out


async def run_sla_phase(
    ctx: ProbeContext,
    plan: RunPlan,
    checks: list[Check],
    compare_ctx: ProbeContext | None = None,
) -> SlaOutcome:
    """Sample and judge the SLA checks. With `compare_ctx` (another deployment, e.g. the stable
    fleet beside a canary) the same streams are sampled there too, on the same schedule offset
    by half a period, so both see the same moments; they stop when this deployment's stop."""
    s = plan.sampler
    schedule = make_schedule(s.duration_s, s.max_duration_s, s.until_decisive, s.min_decisive_s)
    verdicts: list[Verdict] = []
    specs, token_missing = await _stream_specs(ctx, checks)
    main = _Sampling(ctx, plan, checks, schedule, specs)
    streams = main.streams
    other: _Sampling | None = None
    if compare_ctx is not None:
        other_specs, _no_token = await _stream_specs(compare_ctx, checks)
        other = _Sampling(compare_ctx, plan, checks, schedule, other_specs, offset_periods=0.5)
        streams.mirror = other.streams
    criteria, decided = _deciders(checks, streams, specs)
    tallies: dict[str, hub.ConnectionTally] = {}
    jobs = main.jobs() + (other.jobs() if other is not None else [])
    controller = asyncio.create_task(_control(schedule, streams, criteria, decided))
    deadline = (
        schedule.budget_s + s.request_timeout_s + max((c.timeout_s for c in checks), default=5)
    )
    try:
        async with asyncio.timeout(deadline + 10):
            await asyncio.gather(*jobs)
    except TimeoutError:
        pass  # whatever was not measured is judged below as missing evidence
    finally:
        controller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await controller
    sampled = main.sampled
    for cc in checks:
        if isinstance(cc, ConnectionSuccessCheck):
            window = max(1.0, cc.attempts * CONNECT_SPACING_S)
            tallies[cc.id] = await hub.measure_connection_success(ctx, cc, window)
    out_streams = main.latency_streams()
    sampler_info = None
    if sampled is not None:
        h = sampled.health
        longest = max(
            [sampled.duration_s, *(r.sampled_s for _c, r in streams.hubs.values())], default=0.0
        )
        sampler_info = SamplerInfo(
            round(longest, 3),
            s.rate,
            h.valid,
            h.note,
            h.lag_p99_ms,
            h.cpu_us_per_request,
            h.cpu_share,
            schedule.planned_s,
            schedule.budget_s,
            schedule.until_decisive,
        )
    for c in checks:
        meta = _meta(c)
        if isinstance(c, LatencyCheck):
            verdicts.append(_judge_latency_check(meta, c, sampled, streams, token_missing))
        elif isinstance(c, ErrorRateCheck):
            verdicts.append(_judge_error_rate(meta, c, streams, specs))
        elif isinstance(c, HubLatencyCheck):
            _ctl, hr = streams.hubs[c.id]
            if hr.unavailable is not None:
                verdicts.append(_unavailable(meta, c, hr.unavailable, not hr.missing))
                continue
            if hr.health is None:
                verdicts.append(_missing(meta, c, "the hub sampler did not finish"))
                continue
            stop = streams.stopped.get(hub_key(c.id), "")
            verdicts.append(judge_hub_stream(meta, c, hr, hub_error_limit(c, checks), stop))
        elif isinstance(c, ConnectionSuccessCheck):
            verdicts.append(_judge_connections(meta, c, tallies.get(c.id)))
    compared = other.latency_streams() if other is not None else []
    return SlaOutcome(verdicts, out_streams, sampler_info, compared)


def _judge_latency_check(
    meta: CheckMeta,
    c: LatencyCheck,
    sampled: SamplerResult | None,
    streams: _Streams,
    token_missing: dict[str, tuple[str, bool]],
) -> Verdict:
    if c.id in token_missing:
        reason, failed = token_missing[c.id]
        return _unavailable(meta, c, reason, failed)
    got = sampled.streams.get(c.path) if sampled is not None else None
    if got is None or sampled is None:
        return _missing(meta, c, "the sampler did not finish")
    if got.histogram.count == 0 and got.errors:
        return _no_response_verdict(meta, c.path, got.errors, dict(got.error_kinds))
    health = sampled.health
    return judge_percentile(
        meta,
        SampledLatency(
            c.path,
            got.histogram,
            got.scheduled,
            got.errors,
            got.late,
            got.dropped,
            health.valid,
            health.note,
            health.lag_p95_ms if c.percentile <= 95 else health.lag_p99_ms,
            streams.stopped.get(http_key(c.path), ""),
        ),
        c.percentile,
        c.max_ms,
        c.min_samples,
    )


def _judge_error_rate(
    meta: CheckMeta, c: ErrorRateCheck, streams: _Streams, specs: dict[str, StreamSpec]
) -> Verdict:
    k, n = streams.pooled_errors()
    kinds: dict[str, int] = {}
    per_stream: list[str] = []
    for sr in streams.http.live.values():
        per_stream.append(f"{sr.path}: {sr.errors} of {sr.completed}")
        for kind, v in sr.error_kinds.items():
            kinds[f"{sr.path}: {kind}"] = kinds.get(f"{sr.path}: {kind}", 0) + v
    for hub_id, (_ctl, hr) in streams.hubs.items():
        per_stream.append(f"hub {hub_id}: {hr.errors} of {hr.completed} invocations")
        for kind, v in hr.error_kinds.items():
            kinds[f"hub {hub_id}: {kind}"] = kinds.get(f"hub {hub_id}: {kind}", 0) + v
    evidence = tuple(
        f"{v} x {kind}" for kind, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]
    )
    evidence += (
        f"over every sampled request and hub invocation ({'; '.join(per_stream) or 'none'}); "
        "none excluded",
    )
    return judge_share_below(meta, "error rate", k, n, c.max_rate, c.min_samples, evidence)


def _judge_connections(
    meta: CheckMeta, c: ConnectionSuccessCheck, t: hub.ConnectionTally | None
) -> Verdict:
    """A fixed-size experiment (not sequential): judged on its Wilson 95% interval."""
    if t is None:
        return _missing(meta, c, "did not finish")
    if t.unavailable is not None:
        return _unavailable(meta, c, t.unavailable, not t.missing)
    evidence = tuple(f"{v} x {k}" for k, v in t.failures.items())
    if t.connect_ms_p50 is not None:
        evidence += (f"median negotiate+connect+handshake {t.connect_ms_p50:.1f} ms",)
    need = min_samples_for_proportion(c.min_rate)
    return judge_rate_above(
        meta,
        f"connection success ({c.path})",
        t.successes,
        t.attempts,
        c.min_rate,
        need,
        evidence,
    )
