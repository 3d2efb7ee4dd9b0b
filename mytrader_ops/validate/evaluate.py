"""Pure judgement: observations and sampled evidence in, verdicts out. No I/O here.

Rules (fail closed):
- evidence that could not be gathered for a non-target reason -> INCONCLUSIVE;
- a target that could not be observed, or a failed step -> FAIL;
- a probe that recorded no step it saw working (none at all, or only skipped ones), and no
  measured value -> INCONCLUSIVE: nothing was seen, so nothing passed;
- a step seen working in a degraded state (health `Degraded` / `warn`) -> WARN, which does
  not block the decision but is counted in its summary line (`allow_warn: false` makes the
  probe record it as a failure instead);
- a measured value beyond its limit -> FAIL; within the limit but with a 95% interval that
  reaches past it -> WARN; too few samples for the criterion -> INCONCLUSIVE (fixed-n judges,
  used by the monitor on its phases);
- validate's sampled criteria (latency percentiles, error rates, hub invocations) are judged
  on anytime-valid 95% confidence sequences (`stats`): PASS when the share beyond the limit is
  demonstrably below it, FAIL when demonstrably above; when the sequence still straddles the
  limit as sampling ends the criterion is *not demonstrated*: INCONCLUSIVE if critical, WARN
  if not. Stopping early or sampling longer never raises the error above 5%.
Every verdict carries the measured value beside its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from mytrader_ops.observation import Observation, Step
from mytrader_ops.stats import (
    LatencyHistogram,
    LatencySummary,
    min_samples_for_percentile,
    quantile_sequence_ranks,
    share_sequence,
    share_vs_limit,
    wilson_interval,
)
from mytrader_ops.verdict import Measurement, Status, Verdict

MAX_SAMPLER_SHARE = 0.25
_MARK = {
    "ok": "[ok]",
    "warn": "[WARN]",
    "failed": "[FAILED]",
    "skipped": "[skipped]",
    "unknown": "[unknown]",
}


@dataclass(frozen=True, slots=True)
class CheckMeta:
    """The identity of a check as verdicts need it (decoupled from config models)."""

    check_id: str
    title: str
    critical: bool = True
    component: str = "backend"
    criterion: str = ""


@dataclass(frozen=True, slots=True)
class Limit:
    """A numeric limit on one of an observation's values."""

    value: str
    threshold: float
    unit: str = "ms"
    comparator: str = "<="
    label: str = ""

    def holds(self, observed: float) -> bool:
        if self.comparator == "<=":
            return observed <= self.threshold
        if self.comparator == "<":
            return observed < self.threshold
        if self.comparator == ">=":
            return observed >= self.threshold
        return observed > self.threshold


@dataclass(frozen=True, slots=True)
class LatencyEvidence:
    """What the open-model sampler measured for one endpoint."""

    target: str
    summary: LatencySummary
    value_ms: float
    interval_ms: tuple[float, float]
    sent: int
    errors: int
    late: int
    dropped: int
    sampler_valid: bool
    sampler_note: str
    sampler_lag_ms: float = 0.0  # the sampler's own delay at the judged percentile


def describe_step(step: Step) -> str:
    took = f" ({step.elapsed_ms:.1f} ms)" if step.elapsed_ms is not None else ""
    detail = f": {step.detail}" if step.detail else ""
    return f"{_MARK[step.outcome]} {step.name}{took}{detail}"


def make_verdict(meta: CheckMeta, status: Status, summary: str, **kw: object) -> Verdict:
    """A verdict carrying the check's identity; every judge builds its verdicts here."""
    return Verdict(
        check_id=meta.check_id,
        title=meta.title,
        status=status,
        summary=summary,
        critical=meta.critical,
        component=meta.component,
        criterion=meta.criterion,
        **kw,  # type: ignore[arg-type]
    )


def judge_observation(meta: CheckMeta, obs: Observation, limits: tuple[Limit, ...] = ()) -> Verdict:
    """Judge a probe observation: steps must pass and every limit must hold."""
    evidence = tuple(describe_step(s) for s in obs.steps)
    measurements = tuple(
        Measurement(
            lim.label or lim.value,
            obs.values.get(lim.value),
            lim.unit,
            lim.threshold,
            lim.comparator,
        )
        for lim in limits
    )
    extra = {"evidence": evidence, "measurements": measurements, "label": obs.label}
    if obs.error is not None:
        return make_verdict(meta, Status.FAIL, f"could not observe: {obs.error}", **extra)
    failed = obs.failed_steps()
    if failed:  # a failure seen is decisive even if other evidence is missing
        first = failed[0]
        return make_verdict(meta, Status.FAIL, f"{first.name} failed: {first.detail}", **extra)
    if obs.inconclusive is not None:
        return make_verdict(meta, Status.INCONCLUSIVE, f"no evidence: {obs.inconclusive}", **extra)
    for m, lim in zip(measurements, limits, strict=True):
        if m.value is None:
            return make_verdict(meta, Status.INCONCLUSIVE, f"{lim.value} was not measured", **extra)
        if not lim.holds(m.value):
            return make_verdict(meta, Status.FAIL, m.describe(), **extra)
    unknown = [s for s in obs.steps if s.outcome == "unknown"]
    if unknown:
        return make_verdict(
            meta, Status.INCONCLUSIVE, f"{unknown[0].name}: {unknown[0].detail}", **extra
        )
    seen = [s for s in obs.steps if s.outcome in ("ok", "warn")]
    if not seen and not measurements:
        what = "only skipped steps" if obs.steps else "no steps"
        return make_verdict(
            meta, Status.INCONCLUSIVE, f"no evidence: the probe recorded {what}", **extra
        )
    warned = [s for s in obs.steps if s.outcome == "warn"]
    if warned:
        first = warned[0]
        more = f" (+{len(warned) - 1} more)" if len(warned) > 1 else ""
        return make_verdict(
            meta, Status.WARN, f"degraded: {first.name}: {first.detail}{more}", **extra
        )
    summary = "; ".join(m.describe() for m in measurements) or _steps_summary(obs.steps)
    return make_verdict(meta, Status.PASS, summary, **extra)


def _steps_summary(steps: tuple[Step, ...]) -> str:
    ok = [s for s in steps if s.outcome == "ok"]
    first = f"{ok[0].name}: {ok[0].detail}" if ok[0].detail else ok[0].name
    names = ", ".join(s.name for s in ok[1:4]) + (", ..." if len(ok) > 4 else "")
    return f"{len(ok)} step(s) ok ({first}" + (f"; {names})" if names else ")")


def judge_latency(
    meta: CheckMeta,
    ev: LatencyEvidence,
    percentile: float,
    max_ms: float,
    min_samples: int | None = None,
) -> Verdict:
    """Open-model latency percentile against its limit, with a distribution-free 95% CI."""
    needed = min_samples or min_samples_for_percentile(percentile)
    n = ev.summary.count
    name = f"p{percentile:g} latency ({ev.target})"
    m = Measurement(
        name, ev.value_ms if n else None, "ms", max_ms, "<=", n, ev.interval_ms if n else None
    )
    evidence = (
        f"open-model sampler: {ev.sent} scheduled sends, {ev.errors} errors, {ev.late} late, "
        f"{ev.dropped} dropped; latency from intended send time",
        f"p50 {ev.summary.p50_ms:.2f} ms, p95 {ev.summary.p95_ms:.2f} ms, "
        f"p99 {ev.summary.p99_ms:.2f} ms, max {ev.summary.max_ms:.2f} ms",
        f"sampler: {ev.sampler_note}",
    )
    kw = {"measurements": (m,), "evidence": evidence}
    own_delay_too_large = ev.sampler_lag_ms > MAX_SAMPLER_SHARE * max_ms
    if not ev.sampler_valid or own_delay_too_large:
        # The sampler's own delay could explain up to `sampler_lag_ms` of each latency: only a
        # breach larger than that is still decisive.
        if n >= needed and ev.value_ms - ev.sampler_lag_ms > max_ms:
            return make_verdict(
                meta,
                Status.FAIL,
                f"{m.describe()} (breach exceeds the sampler's "
                f"own delay of {ev.sampler_lag_ms:.2f} ms)",
                **kw,
            )
        why = (
            f"sampler invalid ({ev.sampler_note}); measured {m.describe()}"
            if not ev.sampler_valid
            else f"the sampler's own delay ({ev.sampler_lag_ms:.2f} ms at p{percentile:g}) exceeds "
            f"{MAX_SAMPLER_SHARE:.0%} of the {max_ms:g} ms limit; measured {m.describe()}"
        )
        return make_verdict(meta, Status.INCONCLUSIVE, why, **kw)
    if n < needed:
        return make_verdict(
            meta,
            Status.INCONCLUSIVE,
            f"{n} samples, {needed} needed for p{percentile:g}: {m.describe()}",
            **kw,
        )
    _lo, hi = ev.interval_ms
    if ev.value_ms > max_ms:
        return make_verdict(meta, Status.FAIL, m.describe(), **kw)
    if hi > max_ms:
        return make_verdict(meta, Status.WARN, f"{m.describe()}; interval reaches the limit", **kw)
    return make_verdict(meta, Status.PASS, m.describe(), **kw)


def judge_rate_below(
    meta: CheckMeta,
    name: str,
    failures: int,
    n: int,
    max_rate: float,
    min_samples: int,
    evidence: tuple[str, ...] = (),
) -> Verdict:
    """A failure proportion that must stay below `max_rate` (Wilson 95% interval)."""
    lo, hi = wilson_interval(failures, n)
    rate = failures / n if n else None
    m = Measurement(name, rate, "%", max_rate, "<", n, (lo, hi) if n else None)
    kw = {"measurements": (m,), "evidence": evidence}
    if n < min_samples:
        return make_verdict(
            meta, Status.INCONCLUSIVE, f"{n} samples, {min_samples} needed: {m.describe()}", **kw
        )
    assert rate is not None
    if rate >= max_rate:
        return make_verdict(meta, Status.FAIL, m.describe(), **kw)
    if hi >= max_rate:
        return make_verdict(meta, Status.WARN, f"{m.describe()}; interval reaches the limit", **kw)
    return make_verdict(meta, Status.PASS, m.describe(), **kw)


def judge_rate_above(
    meta: CheckMeta,
    name: str,
    successes: int,
    n: int,
    min_rate: float,
    min_samples: int,
    evidence: tuple[str, ...] = (),
) -> Verdict:
    """A success proportion that must stay above `min_rate` (Wilson 95% interval)."""
    lo, hi = wilson_interval(successes, n)
    rate = successes / n if n else None
    m = Measurement(name, rate, "%", min_rate, ">", n, (lo, hi) if n else None)
    kw = {"measurements": (m,), "evidence": evidence}
    if n < min_samples:
        return make_verdict(
            meta, Status.INCONCLUSIVE, f"{n} samples, {min_samples} needed: {m.describe()}", **kw
        )
    assert rate is not None
    if rate <= min_rate:
        return make_verdict(meta, Status.FAIL, m.describe(), **kw)
    if lo <= min_rate:
        return make_verdict(meta, Status.WARN, f"{m.describe()}; interval reaches the limit", **kw)
    return make_verdict(meta, Status.PASS, m.describe(), **kw)


# --------------------------------------------------------------------------- sequential judges


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def undemonstrated(meta: CheckMeta, summary: str, **kw: object) -> Verdict:
    """Neither met nor breached was demonstrated: blocks when critical, flags otherwise."""
    status = Status.INCONCLUSIVE if meta.critical else Status.WARN
    return make_verdict(meta, status, f"not demonstrated: {summary}", undemonstrated=True, **kw)


@dataclass(frozen=True, slots=True)
class SampledLatency:
    """A latency stream as sampled so far, for the sequential percentile judge."""

    target: str
    histogram: LatencyHistogram
    sent: int
    errors: int
    late: int
    dropped: int
    sampler_valid: bool
    sampler_note: str
    sampler_lag_ms: float = 0.0
    stop_note: str = ""


def percentile_state(s: SampledLatency, percentile: float, max_ms: float) -> str:
    """below / above / undecided: is the percentile demonstrably within `max_ms`?"""
    h = s.histogram
    return share_vs_limit(h.count_above_ms(max_ms), h.count, 1 - percentile / 100)


def judge_percentile(
    meta: CheckMeta,
    s: SampledLatency,
    percentile: float,
    max_ms: float,
    min_samples: int | None = None,
) -> Verdict:
    """A latency percentile against its limit on an anytime-valid confidence sequence.

    "pQ <= max_ms" is "the share of samples above max_ms is at most 1 - Q": PASS once that
    share is demonstrably below, FAIL once demonstrably above, else not demonstrated.
    """
    h = s.histogram
    n = h.count
    t = 1 - percentile / 100
    above = h.count_above_ms(max_ms) if n else 0
    value = h.percentile_ms(percentile) if n else None
    lo_rank, hi_rank = quantile_sequence_ranks(n, percentile)
    interval = None
    if lo_rank is not None and hi_rank is not None:
        interval = (h.value_at_rank_ms(lo_rank), h.value_at_rank_ms(hi_rank))
    m = Measurement(f"p{percentile:g} latency ({s.target})", value, "ms", max_ms, "<=", n, interval)
    share_lo, share_hi = share_sequence(above, n)
    summ = h.summary()
    evidence = (
        f"open-model sampler: {s.sent} scheduled sends, {s.errors} errors, {s.late} late, "
        f"{s.dropped} dropped; latency from intended send time",
        f"{above} of {n} samples above {max_ms:g} ms ({_pct(above / n) if n else 'n/a'}; "
        f"anytime-valid 95% bounds {_pct(share_lo)}-{_pct(share_hi)} vs at most {_pct(t)})",
        f"p50 {summ.p50_ms:.2f} ms, p95 {summ.p95_ms:.2f} ms, p99 {summ.p99_ms:.2f} ms, "
        f"max {summ.max_ms:.2f} ms"
        if n
        else "no latency sample",
        f"sampler: {s.sampler_note}",
        *((f"sampling: {s.stop_note}",) if s.stop_note else ()),
    )
    kw = {"measurements": (m,), "evidence": evidence}
    bound = "" if interval is not None else " (too few samples for a 95% bound yet)"
    if not s.sampler_valid or s.sampler_lag_ms > MAX_SAMPLER_SHARE * max_ms:
        # The sampler's own delay could explain up to `sampler_lag_ms` of each latency: only a
        # breach larger than that is still decisive.
        beyond = h.count_above_ms(max_ms + s.sampler_lag_ms) if n else 0
        if share_vs_limit(beyond, n, t) == "above":
            return make_verdict(
                meta,
                Status.FAIL,
                f"{m.describe()} (breach exceeds the sampler's own delay of "
                f"{s.sampler_lag_ms:.2f} ms)",
                **kw,
            )
        why = (
            f"sampler invalid ({s.sampler_note}); measured {m.describe()}"
            if not s.sampler_valid
            else f"the sampler's own delay ({s.sampler_lag_ms:.2f} ms) exceeds "
            f"{MAX_SAMPLER_SHARE:.0%} of the {max_ms:g} ms limit; measured {m.describe()}"
        )
        return make_verdict(meta, Status.INCONCLUSIVE, why, **kw)
    if min_samples is not None and n < min_samples:
        return make_verdict(
            meta, Status.INCONCLUSIVE, f"{n} samples, {min_samples} required: {m.describe()}", **kw
        )
    state = share_vs_limit(above, n, t)
    if state == "below":
        return make_verdict(meta, Status.PASS, m.describe(), **kw)
    if state == "above":
        return make_verdict(meta, Status.FAIL, m.describe(), **kw)
    return undemonstrated(
        meta,
        f"{m.describe()}{bound}; {_pct(above / n) if n else 'no'} samples above the limit",
        **kw,
    )


def judge_share_below(
    meta: CheckMeta,
    name: str,
    failures: int,
    n: int,
    max_rate: float,
    min_samples: int = 1,
    evidence: tuple[str, ...] = (),
) -> Verdict:
    """A failure share that must stay below `max_rate`, on an anytime-valid 95% sequence."""
    lo, hi = share_sequence(failures, n)
    rate = failures / n if n else None
    m = Measurement(name, rate, "%", max_rate, "<", n, (lo, hi) if n else None)
    kw = {"measurements": (m,), "evidence": evidence}
    if n < min_samples:
        return make_verdict(
            meta, Status.INCONCLUSIVE, f"{n} samples, {min_samples} required: {m.describe()}", **kw
        )
    state = share_vs_limit(failures, n, max_rate)
    if state == "below":
        return make_verdict(meta, Status.PASS, m.describe(), **kw)
    if state == "above":
        return make_verdict(meta, Status.FAIL, m.describe(), **kw)
    return undemonstrated(meta, m.describe(), **kw)
