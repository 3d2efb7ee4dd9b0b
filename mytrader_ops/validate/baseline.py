"""Pure: a sampled stream against the same stream of a baseline (a stored run, or the stable
fleet sampled beside the canary in the same moments).

Fixed thresholds catch a release that is broken; they miss one that is twice as slow as the
release before it and still under the line. This judge compares distributions. Rules, per
stream that both sides sampled:

- **Evidence.** Fewer than MIN_SAMPLES latency samples on either side, or a baseline without
  a stored distribution -> INCONCLUSIVE, naming the side.
- **Tests.** Two tests on the latency samples, chosen so that neither of Kayenta's known
  misses passes (kayenta #780: a jump in variance only; spinnaker #6278: 7 of 10 samples at
  100x): the one-sided Mann-Whitney U test (is the canary stochastically slower?) catches a
  shift of location, and the two-sample Kolmogorov-Smirnov test catches a change of shape
  (spread, tails) that leaves the median alone. Both come from scipy (exact p-values for small
  samples, asymptotic for large). The family of p-values of the whole run (two per stream) is
  corrected by Holm's step-down procedure at ALPHA = 0.05, so comparing more streams does not
  raise the chance of a false regression (Holm 1979, "A simple sequentially rejective multiple
  test procedure", Scand. J. Statist. 6).
- **Size.** The shift is measured at the criterion's percentile as a ratio canary/baseline,
  with a conservative interval built from each side's distribution-free 95% interval of that
  percentile; the effect size is Cliff's delta (2U / mn - 1: the probability that a canary
  sample is slower than a baseline one, minus the reverse).
- **Verdict.** FAIL when a test is significant after correction *and* the percentile grew by
  more than `max_regression` (default 20%) *and* by more than MIN_SHIFT_MS (1 ms, below which a
  shift is timer and scheduling noise): a shift must be both real and large. PASS when the
  percentile grew by no more than that. WARN when it grew by more but no test is significant
  (too noisy to call). Error rates, where `max_error_rate_increase` is set: FAIL when the
  canary's error share is significantly higher (one-sided Fisher exact test, in the same Holm
  family) and higher by more than the allowed increase.

Every verdict shows both sides' values, the ratio with its interval, each statistic and p-value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from mytrader_ops.config import Check, ErrorRateCheck, HubLatencyCheck, LatencyCheck
from mytrader_ops.report.model import LatencyStream, RunReport
from mytrader_ops.stats import LatencyHistogram
from mytrader_ops.verdict import Measurement, Status, Verdict

ALPHA = 0.05
MIN_SAMPLES = 10
DEFAULT_MAX_REGRESSION = 0.20
# A percentile that moved by less than this is the machine's and the network's noise (timer
# granularity, scheduling), whatever its ratio: 0.4 ms -> 0.6 ms is +50% and no regression.
MIN_SHIFT_MS = 1.0
DIFF_MAX_ERROR_INCREASE = 0.01  # `report diff`: at most one percentage point more errors


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: a stream's latency distribution and its error count."""

    label: str  # "canary" / "baseline run 2026..." / "baseline https://stable..."
    histogram: LatencyHistogram | None  # None: the side has no stored distribution
    requests: int
    errors: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """What a stream's two sides look like, before the family-wide correction."""

    stream: str
    percentile: float
    max_regression: float
    canary: Side
    baseline: Side
    ratio: float | None = None
    ratio_interval: tuple[float, float] | None = None
    canary_value_ms: float | None = None
    baseline_value_ms: float | None = None
    cliffs_delta: float | None = None
    u_statistic: float | None = None
    u_p: float | None = None
    ks_statistic: float | None = None
    ks_p: float | None = None
    missing: str | None = None  # why there is nothing to compare


@dataclass(frozen=True, slots=True)
class ErrorComparison:
    stream: str
    max_increase: float
    canary: Side
    baseline: Side
    p: float | None = None
    missing: str | None = None

    @property
    def increase(self) -> float:
        return _share(self.canary) - _share(self.baseline)


@dataclass(frozen=True, slots=True)
class Judgement:
    status: Status
    summary: str
    measurements: tuple[Measurement, ...]
    evidence: tuple[str, ...]


def _share(side: Side) -> float:
    return side.errors / side.requests if side.requests else 0.0


def _samples(h: LatencyHistogram) -> np.ndarray:
    values, counts = h.values_and_counts()
    return np.repeat(np.asarray(values, dtype=float), np.asarray(counts, dtype=np.int64))


def compare_latency(
    stream: str, percentile: float, max_regression: float, canary: Side, baseline: Side
) -> Comparison:
    """Run the two tests and measure the shift; the correction comes later (`holm`)."""
    base = Comparison(stream, percentile, max_regression, canary, baseline)
    for side in (canary, baseline):
        if side.histogram is None:
            return _with(base, missing=f"{side.label}: no stored latency distribution")
        if side.histogram.count < MIN_SAMPLES:
            return _with(
                base,
                missing=f"{side.label}: {side.histogram.count} samples, {MIN_SAMPLES} needed",
            )
    assert canary.histogram is not None
    assert baseline.histogram is not None
    a, b = _samples(canary.histogram), _samples(baseline.histogram)
    u = sps.mannwhitneyu(a, b, alternative="greater")
    ks = sps.ks_2samp(a, b, alternative="two-sided")
    qc = float(np.quantile(a, percentile / 100, method="inverted_cdf"))
    qb = float(np.quantile(b, percentile / 100, method="inverted_cdf"))
    lo_c, hi_c = canary.histogram.percentile_interval_ms(percentile)
    lo_b, hi_b = baseline.histogram.percentile_interval_ms(percentile)
    ratio = qc / qb if qb > 0 else math.inf
    interval = (lo_c / hi_b if hi_b > 0 else math.inf, hi_c / lo_b if lo_b > 0 else math.inf)
    delta = 2 * float(u.statistic) / (len(a) * len(b)) - 1
    return _with(
        base,
        ratio=ratio,
        ratio_interval=interval,
        canary_value_ms=qc,
        baseline_value_ms=qb,
        cliffs_delta=delta,
        u_statistic=float(u.statistic),
        u_p=float(u.pvalue),
        ks_statistic=float(ks.statistic),
        ks_p=float(ks.pvalue),
    )


def compare_errors(
    stream: str, max_increase: float, canary: Side, baseline: Side
) -> ErrorComparison:
    base = ErrorComparison(stream, max_increase, canary, baseline)
    for side in (canary, baseline):
        if side.requests < MIN_SAMPLES:
            return _with_err(base, f"{side.label}: {side.requests} requests, {MIN_SAMPLES} needed")
    table = [
        [canary.errors, canary.requests - canary.errors],
        [baseline.errors, baseline.requests - baseline.errors],
    ]
    p = float(sps.fisher_exact(table, alternative="greater").pvalue)
    return ErrorComparison(stream, max_increase, canary, baseline, p)


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down: which hypotheses are rejected, family-wise error at most alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    m = len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected


def family(
    latencies: Sequence[Comparison], errors: Sequence[ErrorComparison] = ()
) -> tuple[list[tuple[bool, bool]], list[bool]]:
    """Holm over every p-value of the run: (MW, KS) significance per latency comparison, and
    the significance of each error comparison."""
    ps: list[float] = []
    for c in latencies:
        if c.u_p is not None and c.ks_p is not None:
            ps += [c.u_p, c.ks_p]
    ps += [e.p for e in errors if e.p is not None]
    rejected = iter(holm(ps))
    lat = [
        (next(rejected), next(rejected)) if c.u_p is not None else (False, False) for c in latencies
    ]
    err = [next(rejected) if e.p is not None else False for e in errors]
    return lat, err


def judge_comparison(c: Comparison, significant: tuple[bool, bool]) -> Judgement:
    name = f"p{c.percentile:g} vs baseline ({c.stream})"
    if c.missing is not None:
        return Judgement(
            Status.INCONCLUSIVE,
            f"no baseline comparison: {c.missing}",
            (Measurement(name, None, "x", 1 + c.max_regression, "<="),),
            (f"{c.canary.label} vs {c.baseline.label}",),
        )
    assert c.ratio is not None
    assert c.canary_value_ms is not None
    limit = 1 + c.max_regression
    m = Measurement(name, c.ratio, "x", limit, "<=", None, c.ratio_interval)
    sides = (
        f"p{c.percentile:g} {c.canary_value_ms:.2f} ms ({c.canary.label}, "
        f"n={_n(c.canary)}) vs {c.baseline_value_ms:.2f} ms ({c.baseline.label}, "
        f"n={_n(c.baseline)})"
    )
    u_sig, ks_sig = significant
    tests = (
        f"Mann-Whitney U={c.u_statistic:.0f}, one-sided p={_p(c.u_p)}"
        f"{' (significant)' if u_sig else ''}; Kolmogorov-Smirnov D={c.ks_statistic:.3f}, "
        f"p={_p(c.ks_p)}{' (significant)' if ks_sig else ''}; Holm-corrected at alpha "
        f"{ALPHA:g}; Cliff's delta {c.cliffs_delta:+.2f}"
    )
    evidence = (sides, tests)
    shift = f"{sides}: ratio {m.value_text()} vs at most {limit:.2f}x"
    grew = c.ratio > limit and c.canary_value_ms - (c.baseline_value_ms or 0.0) > MIN_SHIFT_MS
    if (u_sig or ks_sig) and grew:
        return Judgement(Status.FAIL, f"regression: {shift}", (m,), evidence)
    if not grew:
        within = f"no regression beyond {c.max_regression:.0%} (or {MIN_SHIFT_MS:g} ms)"
        return Judgement(Status.PASS, f"{within}: {shift}", (m,), evidence)
    return Judgement(Status.WARN, f"slower but not significantly: {shift}", (m,), evidence)


def judge_errors(e: ErrorComparison, significant: bool) -> Judgement:
    name = f"error share increase vs baseline ({e.stream})"
    if e.missing is not None:
        return Judgement(
            Status.INCONCLUSIVE,
            f"no baseline comparison of errors: {e.missing}",
            (Measurement(name, None, "%", e.max_increase, "<="),),
            (),
        )
    m = Measurement(name, e.increase, "%", e.max_increase, "<=")
    sides = (
        f"{e.canary.errors}/{e.canary.requests} errors ({e.canary.label}) vs "
        f"{e.baseline.errors}/{e.baseline.requests} ({e.baseline.label}); one-sided Fisher "
        f"exact p={_p(e.p)}{' (significant)' if significant else ''}"
    )
    if significant and e.increase > e.max_increase:
        return Judgement(Status.FAIL, f"more errors than the baseline: {sides}", (m,), (sides,))
    return Judgement(Status.PASS, f"no error increase beyond the allowed: {sides}", (m,), (sides,))


def _n(side: Side) -> int:
    return side.histogram.count if side.histogram is not None else 0


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else "<0.0001"


def _with(c: Comparison, **changes: object) -> Comparison:
    return dataclasses.replace(c, **changes)  # type: ignore[arg-type]


def _with_err(e: ErrorComparison, missing: str) -> ErrorComparison:
    return dataclasses.replace(e, missing=missing)


# --------------------------------------------------------------------------- a run's verdicts


def _stream_name(check: Check) -> str | None:
    if isinstance(check, LatencyCheck):
        return check.path
    if isinstance(check, HubLatencyCheck):
        return f"{check.path} {check.invoke.target}"
    return None


def _side(label: str, stream: LatencyStream | None) -> Side:
    if stream is None:
        return Side(label, None, 0, 0)
    hist = LatencyHistogram.decode(stream.histogram) if stream.histogram else None
    return Side(label, hist, stream.scheduled, stream.errors)


def _pooled(label: str, streams: Sequence[LatencyStream]) -> Side:
    return Side(label, None, sum(s.scheduled for s in streams), sum(s.errors for s in streams))


_RANK = {Status.PASS: 0, Status.WARN: 1, Status.INCONCLUSIVE: 2, Status.FAIL: 3}


def _combine(v: Verdict, j: Judgement) -> Verdict:
    """The check's verdict with its baseline judgement: the worse status decides."""
    worse = _RANK.get(j.status, 0) > _RANK.get(v.status, 0)
    return dataclasses.replace(
        v,
        status=j.status if worse else v.status,
        summary=j.summary if worse else f"{v.summary}; {j.summary}",
        measurements=(*v.measurements, *j.measurements),
        evidence=(*v.evidence, *j.evidence),
        undemonstrated=v.undemonstrated and not worse,
    )


def apply_baseline(
    verdicts: Sequence[Verdict],
    checks: Sequence[Check],
    canary: Sequence[LatencyStream],
    baseline: Sequence[LatencyStream],
    canary_label: str,
    baseline_label: str,
) -> list[Verdict]:
    """Every sampled check's verdict, judged also against the baseline's same stream."""
    mine = {s.name: s for s in canary}
    theirs = {s.name: s for s in baseline}
    latency: list[tuple[str, Comparison]] = []
    errors: list[tuple[str, ErrorComparison]] = []
    for c in checks:
        name = _stream_name(c)
        if name is not None and isinstance(c, LatencyCheck | HubLatencyCheck):
            regression = (
                c.max_regression if c.max_regression is not None else DEFAULT_MAX_REGRESSION
            )
            latency.append(
                (
                    c.id,
                    compare_latency(
                        name,
                        c.percentile,
                        regression,
                        _side(canary_label, mine.get(name)),
                        _side(baseline_label, theirs.get(name)),
                    ),
                )
            )
        elif isinstance(c, ErrorRateCheck) and c.max_error_rate_increase is not None:
            errors.append(
                (
                    c.id,
                    compare_errors(
                        "every sampled stream",
                        c.max_error_rate_increase,
                        _pooled(canary_label, canary),
                        _pooled(baseline_label, baseline),
                    ),
                )
            )
    lat_sig, err_sig = family([c for _i, c in latency], [e for _i, e in errors])
    judged: dict[str, Judgement] = {}
    for (check_id, comp), sig in zip(latency, lat_sig, strict=True):
        judged[check_id] = judge_comparison(comp, sig)
    for (check_id, err), sig_e in zip(errors, err_sig, strict=True):
        judged[check_id] = judge_errors(err, sig_e)
    return [
        _combine(v, judged[v.check_id]) if v.check_id in judged and v.in_scope else v
        for v in verdicts
    ]


def judge_runs(baseline: RunReport, candidate: RunReport) -> list[tuple[str, Judgement]]:
    """`report diff A B`: every stream both runs sampled, B judged against A at p95 with the
    default tolerance, and the error share over every stream (at most 1 point more)."""
    mine = {s.name: s for s in candidate.streams}
    latency: list[tuple[str, Comparison]] = []
    for theirs in baseline.streams:
        stream = mine.get(theirs.name)
        if stream is None:
            continue
        latency.append(
            (
                theirs.name,
                compare_latency(
                    theirs.name,
                    95.0,
                    DEFAULT_MAX_REGRESSION,
                    _side(f"run {candidate.run_id}", stream),
                    _side(f"run {baseline.run_id}", theirs),
                ),
            )
        )
    shared = [s for s in candidate.streams if s.name in {t.name for t in baseline.streams}]
    base_shared = [s for s in baseline.streams if s.name in mine]
    errors = [
        compare_errors(
            "every shared stream",
            DIFF_MAX_ERROR_INCREASE,
            _pooled(f"run {candidate.run_id}", shared),
            _pooled(f"run {baseline.run_id}", base_shared),
        )
    ]
    lat_sig, err_sig = family([c for _n, c in latency], errors)
    rows = [
        (name, judge_comparison(c, sig)) for (name, c), sig in zip(latency, lat_sig, strict=True)
    ]
    rows.append(("errors (every shared stream)", judge_errors(errors[0], err_sig[0])))
    return rows


def diff_exit_code(rows: Sequence[tuple[str, Judgement]]) -> int:
    """0 no regression, 1 a regression, 3 inconclusive (nothing comparable, or a side short)."""
    statuses = [j.status for _n, j in rows]
    if Status.FAIL in statuses:
        return 1
    if Status.INCONCLUSIVE in statuses or len(rows) <= 1:
        return 3
    return 0
