"""Statistics behind every SLA verdict: confidence sequences, Wilson intervals, minimum
samples, HDR percentiles.

Confidence is stated as what was measured (n, interval), never as an invented percentage.

Sequential sampling (validate keeps sampling a marginal criterion, or stops once every
criterion is decisive) must not peek at a fixed-n interval: looking again and again at a 95%
interval until it clears the limit passes far more than 5% of bad releases. Instead every
sampled criterion is judged on an *anytime-valid* 95% confidence sequence for a proportion
(a share of errors, or of latencies above the limit). It is Robbins' method of mixtures: with
a Beta(1/2, 1/2) mixture over the unknown share, M_n(p) = B(a+k, b+n-k) / B(a, b) /
(p^k (1-p)^(n-k)) is a nonnegative martingale with mean 1 when the true share is p, so by
Ville's inequality P(M_n(p) >= 1/alpha for some n) <= alpha; the set {p : M_n(p) < 1/alpha}
covers the true share at every n simultaneously with probability >= 1 - alpha, whenever
sampling stops (Robbins 1970, "Statistical methods related to the law of the iterated
logarithm"; Howard, Ramdas, McAuliffe, Sekhon 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Ann. Statist. 49(2)). A percentile criterion "pQ <= L"
is the proportion criterion "share of samples above L <= 1 - Q" (Howard and Ramdas 2022,
"Sequential estimation of quantiles with applications to A/B-testing and best-arm
identification", Bernoulli 28(3)). The price is width: a flawless run clears a 5% limit from
about 116 samples instead of 73 at fixed n, a 1% limit from about 680.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hdrh.histogram import HdrHistogram

Z95 = 1.959963984540054
CS_ALPHA = 0.05  # the confidence sequences' error: 95%, whenever sampling stops
_PRIOR = 0.5  # the Beta(1/2, 1/2) (Jeffreys) mixture
_US_PER_MS = 1000.0
_MAX_TRACKABLE_US = 3_600_000_000  # one hour
SPECTRUM_PERCENTILES = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when n == 0."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside 0..{n}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def min_samples_for_percentile(percentile: float, confidence: float = 0.95) -> int:
    """Smallest n for which the sample maximum bounds the percentile at `confidence`.

    With n samples all below a limit, P(all n below | true quantile at limit) = q**n; requiring
    q**n < 1 - confidence gives n >= ln(1 - confidence) / ln(q): 59 for p95, 299 for p99.
    """
    q = percentile / 100.0
    if not 0 < q < 1:
        raise ValueError("percentile must be in (0, 100)")
    return math.ceil(math.log(1 - confidence) / math.log(q))


def percentile_rank_interval(n: int, percentile: float, z: float = Z95) -> tuple[float, float]:
    """Distribution-free 95% interval of a quantile, as percentiles of the sample (order stats)."""
    q = percentile / 100.0
    half = z * math.sqrt(n * q * (1 - q))
    lo_rank = max(1.0, math.floor(n * q - half))
    hi_rank = min(float(n), math.ceil(n * q + half) + 1)
    return (100.0 * lo_rank / n, 100.0 * hi_rank / n)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Frozen summary of a latency histogram, in milliseconds."""

    count: int
    min_ms: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    spectrum: tuple[tuple[float, float], ...]  # (percentile, ms) for charts

    def at(self, percentile: float) -> float:
        """Percentile read off the stored spectrum (exact for the standard percentiles)."""
        for p, value in self.spectrum:
            if p >= percentile:
                return value
        return self.max_ms


class LatencyHistogram:
    """HDR histogram in microseconds, 3 significant digits, fixed memory."""

    def __init__(self) -> None:
        self._h = HdrHistogram(1, _MAX_TRACKABLE_US, 3)
        self._sum_ms = 0.0
        self._above: dict[float, int] = {}  # watched limits -> samples above each, exactly

    def watch(self, limit_ms: float) -> None:
        """Count samples above `limit_ms` exactly as they are recorded (from now on).

        A sequential judge asks "how many above the limit?" several times a second; walking
        the HDR buckets for it costs tens of milliseconds, a counter costs nothing.
        """
        self._above.setdefault(limit_ms, 0)

    def record_ms(self, value_ms: float) -> None:
        us = min(_MAX_TRACKABLE_US, max(1, round(value_ms * _US_PER_MS)))
        self._h.record_value(us)
        self._sum_ms += value_ms
        if self._above:
            for limit in self._above:
                if value_ms > limit:
                    self._above[limit] += 1

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def merge(self, other: LatencyHistogram) -> None:
        """Add another histogram's samples (and their exact sum) to this one."""
        if other.count:
            self._h.add(other._h)
            self._sum_ms += other._sum_ms

    def encode(self) -> str:
        """A compact text form (a few hundred bytes, whatever the count) for checkpoints."""
        if not self.count:
            return ""
        return f"{self._sum_ms!r};{self._h.encode().decode('ascii')}"

    @classmethod
    def decode(cls, text: str) -> LatencyHistogram:
        hist = cls()
        if text:
            total, _, encoded = text.rpartition(";")
            hist._h.decode_and_add(encoded.encode("ascii"))
            hist._sum_ms = (
                float(total) if total else hist._h.get_mean_value() * hist.count / _US_PER_MS
            )
        return hist

    def percentile_ms(self, percentile: float) -> float:
        if self.count == 0:
            return math.nan
        return float(self._h.get_value_at_percentile(percentile)) / _US_PER_MS

    def count_above_ms(self, limit_ms: float) -> int:
        """Samples above `limit_ms`: exact for a watched limit; otherwise read off the buckets,
        where one that straddles the limit counts as above (HDR keeps 3 significant digits:
        the doubt is at most 0.1% of the limit)."""
        if limit_ms in self._above:
            return self._above[limit_ms]
        limit_us = limit_ms * _US_PER_MS
        above = 0
        for item in self._h.get_recorded_iterator():
            if self._h.get_highest_equivalent_value(item.value_iterated_to) > limit_us:
                above += item.count_at_value_iterated_to
        return above

    def values_and_counts(self) -> tuple[list[float], list[int]]:
        """Every recorded bucket: its value in ms (the bucket's highest equivalent value, the
        one percentiles report) and how many samples it holds, in increasing order."""
        values: list[float] = []
        counts: list[int] = []
        for item in self._h.get_recorded_iterator():
            top = self._h.get_highest_equivalent_value(item.value_iterated_to)
            values.append(float(top) / _US_PER_MS)
            counts.append(int(item.count_at_value_iterated_to))
        return values, counts

    def value_at_rank_ms(self, rank: int) -> float:
        """The rank-th smallest sample (1-based), to the histogram's precision."""
        if not 1 <= rank <= self.count:
            raise ValueError(f"rank {rank} outside 1..{self.count}")
        return self.percentile_ms(100.0 * rank / self.count)

    def percentile_interval_ms(self, percentile: float) -> tuple[float, float]:
        lo, hi = percentile_rank_interval(self.count, percentile)
        return (self.percentile_ms(lo), self.percentile_ms(hi))

    def summary(self) -> LatencySummary:
        if self.count == 0:
            nan = math.nan
            return LatencySummary(0, nan, nan, nan, nan, nan, nan, ())
        # One pass over the counts for every percentile (hdrh's per-call lookup walks them all).
        wanted = [p for p in SPECTRUM_PERCENTILES if p > 0]
        values = self._h.get_percentile_to_value_dict(wanted)
        at = {p: float(values.get(p, self._h.get_max_value())) / _US_PER_MS for p in wanted}
        at[0.0] = float(self._h.get_min_value()) / _US_PER_MS
        return LatencySummary(
            count=self.count,
            min_ms=at[0.0],
            mean_ms=self._sum_ms / self.count,
            p50_ms=at[50.0],
            p95_ms=at[95.0],
            p99_ms=at[99.0],
            max_ms=float(self._h.get_max_value()) / _US_PER_MS,
            spectrum=tuple((p, at[p]) for p in SPECTRUM_PERCENTILES),
        )


def min_samples_for_proportion(limit: float, z: float = Z95) -> int:
    """Smallest n at which a flawless run can clear `limit` on its Wilson 95% interval.

    With no failures the Wilson bound is z^2 / (n + z^2) away from the ideal, so a rate limit
    r needs n > z^2 (1 - r) / r: 73 for a 5% error-rate limit or a 95% success limit.
    """
    r = min(limit, 1 - limit)
    if not 0 < r < 1:
        raise ValueError("limit must be in (0, 1)")
    return math.floor(z * z * (1 - r) / r) + 1


# --------------------------------------------------------------------------- sequences


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def log_mixture(k: int, n: int, p: float) -> float:
    """log M_n(p): the evidence against "the true share is p" after k of n trials."""
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    mixed = _log_beta(_PRIOR + k, _PRIOR + n - k) - _log_beta(_PRIOR, _PRIOR)
    return mixed - (k * math.log(p) + (n - k) * math.log1p(-p))


def share_excluded(k: int, n: int, p: float, alpha: float = CS_ALPHA) -> bool:
    """True when the confidence sequence after k of n trials no longer contains `p`."""
    return n > 0 and log_mixture(k, n, p) >= math.log(1 / alpha)


def share_sequence(k: int, n: int, alpha: float = CS_ALPHA) -> tuple[float, float]:
    """The anytime-valid (1 - alpha) interval for a share after k of n trials; (0, 1) at n=0."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"k {k} outside 0..{n}")
    level = math.log(1 / alpha)
    centre = k / n

    def edge(inside: float, outside: float) -> float:
        for _ in range(60):  # log M is convex in p, below the level at the centre
            mid = (inside + outside) / 2
            if log_mixture(k, n, mid) < level:
                inside = mid
            else:
                outside = mid
        return inside

    lo = 0.0 if k == 0 else edge(centre, 1e-15)
    hi = 1.0 if k == n else edge(centre, 1 - 1e-15)
    return (lo, hi)


Decisive = Literal["below", "above", "undecided"]


def share_vs_limit(k: int, n: int, limit: float, alpha: float = CS_ALPHA) -> Decisive:
    """Is the true share demonstrably below `limit`, above it, or not yet either?"""
    if n <= 0 or not share_excluded(k, n, limit, alpha):
        return "undecided"
    return "below" if k / n < limit else "above"


def _search(lo: int, hi: int, good: Callable[[int], bool], largest: bool) -> int | None:
    """The largest (or smallest) k in lo..hi with good(k), for a `good` monotone in k."""
    found = None
    while lo <= hi:
        mid = (lo + hi) // 2
        if good(mid):
            found = mid
            lo, hi = (mid + 1, hi) if largest else (lo, mid - 1)
        else:
            lo, hi = (lo, mid - 1) if largest else (mid + 1, hi)
    return found


def quantile_sequence_ranks(
    n: int, percentile: float, alpha: float = CS_ALPHA
) -> tuple[int | None, int | None]:
    """Order-statistic ranks (1..n) bounding the percentile, anytime-validly.

    The percentile is at most the r-th smallest sample once the share of samples above it is
    demonstrably below 1 - q; at least the r-th once that share is demonstrably above. None
    where no rank qualifies yet (too few samples).
    """
    t = 1 - percentile / 100.0
    if n <= 0 or not 0 < t < 1:
        return (None, None)
    below = _search(0, math.ceil(n * t) - 1, lambda k: share_excluded(k, n, t, alpha), True)
    above = _search(math.floor(n * t) + 1, n, lambda k: share_excluded(k, n, t, alpha), False)
    upper = n - below if below is not None else None
    lower = n - above if above is not None and above < n else None
    return (lower, upper)
