"""Statistics behind every SLA verdict: Wilson intervals, minimum samples, HDR percentiles.

Confidence is stated as what was measured (n, interval), never as an invented percentage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

Z95 = 1.959963984540054
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

    def record_ms(self, value_ms: float) -> None:
        us = min(_MAX_TRACKABLE_US, max(1, round(value_ms * _US_PER_MS)))
        self._h.record_value(us)
        self._sum_ms += value_ms

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
