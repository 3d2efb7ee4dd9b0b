"""One window's figures, and the pure arithmetic over a series of windows.

A `WindowSummary` is all the monitor keeps of a window: counts, a few percentiles and the
values scraped from the service's /metrics; never raw samples. A value that could not be
measured is `None`, and the reason is in `notes`: missing data is never read as healthy.

Trend and leak detection fit a least-squares line to (time, value) points: a leak is a
slope above both an absolute and a relative limit per hour, with a fit good enough (R^2)
that the rise is not just garbage-collection sawtooth, over enough points and time.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ComponentStatus = Literal["pass", "warn", "fail"]
AuthState = Literal["ok", "failed", "no-data"]
PATHS = ("direct-api", "direct-hub", "mobile-hub", "proxy-api", "proxy-hub")


@dataclass(frozen=True, slots=True)
class PathTally:
    attempts: int = 0
    ok: int = 0


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """What one window measured. Times are UNIX seconds; durations seconds; latencies ms."""

    index: int
    start_s: float
    end_s: float
    # open-model sampler over the API paths
    requests: int = 0
    errors: int = 0
    late: int = 0
    dropped: int = 0
    latency_samples: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)
    # health and components (from /health/ready)
    health_attempts: int = 0
    health_ok: int = 0
    db_status: ComponentStatus | None = None
    db_ms: float | None = None
    # connectivity by path: direct-api, direct-hub, mobile-hub, proxy-api, proxy-hub
    paths: dict[str, PathTally] = field(default_factory=dict)
    hub_failures: dict[str, int] = field(default_factory=dict)
    # authentication
    auth: AuthState = "no-data"
    auth_detail: str = ""
    # market-data stream
    stream_messages: int = 0
    stream_connected: bool = False
    stream_max_gap_s: float | None = None
    stream_gaps: tuple[tuple[float, float], ...] = ()  # (gap start, length) above threshold
    # service /metrics
    rss_bytes: float | None = None
    cpu_seconds: float | None = None
    db_query_ms: float | None = None
    feed_lag_s: float | None = None
    hub_connections: float | None = None
    # the monitor itself
    monitor_cpu_s: float = 0.0
    # the sampler's own health (probes/sampler.py judge_sampler): None = not reported (a missing
    # window, or one stored before the monitor recorded it), never "valid"
    sampler_valid: bool | None = None
    sampler_note: str = ""
    sampler_lag_p95_ms: float | None = None
    sampler_lag_p99_ms: float | None = None
    # sampled requests slower than each SLO latency threshold (ms, as text: JSON keys)
    slow: dict[str, int] = field(default_factory=dict)
    # each prometheus trigger's figure: [worst series value or None, why none]
    prom: dict[str, list[Any]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    missing: bool = False  # the monitor was not running (e.g. killed, then resumed)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def path(self, name: str) -> PathTally:
        return self.paths.get(name, PathTally())

    @property
    def hub_attempts(self) -> int:
        return sum(self.path(p).attempts for p in PATHS if p.endswith("hub"))

    @property
    def hub_ok(self) -> int:
        return sum(self.path(p).ok for p in PATHS if p.endswith("hub"))


def missing_window(index: int, start_s: float, end_s: float, why: str) -> WindowSummary:
    return WindowSummary(index, start_s, end_s, notes=(why,), missing=True)


def to_dict(w: WindowSummary) -> dict[str, Any]:
    doc = dataclasses.asdict(w)
    doc["paths"] = {k: [v.attempts, v.ok] for k, v in w.paths.items()}
    doc["notes"] = list(w.notes)
    doc["stream_gaps"] = [list(g) for g in w.stream_gaps]
    return doc


def from_dict(doc: dict[str, Any]) -> WindowSummary:
    values = dict(doc)
    values["paths"] = {k: PathTally(int(v[0]), int(v[1])) for k, v in doc.get("paths", {}).items()}
    values["notes"] = tuple(doc.get("notes", ()))
    values["stream_gaps"] = tuple((float(a), float(b)) for a, b in doc.get("stream_gaps", ()))
    names = {f.name for f in dataclasses.fields(WindowSummary)}
    return WindowSummary(**{k: v for k, v in values.items() if k in names})


# --------------------------------------------------------------------------- trends


@dataclass(frozen=True, slots=True)
class Trend:
    """A least-squares line through (t, value): slope per hour, fit, and what it covered."""

    points: int
    span_s: float
    mean: float
    slope_per_hour: float
    r2: float
    first: float
    last: float

    def describe(self, unit: str = "", scale: float = 1.0) -> str:
        u = f" {unit}" if unit else ""
        return (
            f"{self.last / scale:.3g}{u} now, slope {self.slope_per_hour / scale:+.3g}{u}/h "
            f"(R^2 {self.r2:.2f}, {self.points} points over {self.span_s / 60:.1f} min)"
        )


def fit_trend(points: Sequence[tuple[float, float]]) -> Trend | None:
    """Least-squares slope of value over time; None with fewer than two distinct times."""
    pts = [(t, v) for t, v in points if math.isfinite(t) and math.isfinite(v)]
    n = len(pts)
    if n < 2:
        return None
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    sxx = sum((t - mt) ** 2 for t, _ in pts)
    if sxx <= 0:
        return None
    sxy = sum((t - mt) * (v - mv) for t, v in pts)
    syy = sum((v - mv) ** 2 for _, v in pts)
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    span = pts[-1][0] - pts[0][0]
    return Trend(n, span, mv, slope * 3600, r2, pts[0][1], pts[-1][1])


LeakVerdict = Literal["stable", "leak", "unknown"]


@dataclass(frozen=True, slots=True)
class LeakFinding:
    verdict: LeakVerdict
    detail: str
    trend: Trend | None


def detect_leak(
    points: Sequence[tuple[float, float]],
    *,
    abs_per_hour: float,
    share_per_hour: float,
    min_points: int = 10,
    min_span_s: float = 300.0,
    min_r2: float = 0.6,
    unit: str = "",
    scale: float = 1.0,
) -> LeakFinding:
    """Rising steadily faster than both limits -> leak; too little evidence -> unknown."""
    trend = fit_trend(points)
    if trend is None or trend.points < min_points or trend.span_s < min_span_s:
        have = 0 if trend is None else trend.points
        span = 0.0 if trend is None else trend.span_s
        return LeakFinding(
            "unknown",
            f"not enough evidence: {have} points over {span / 60:.1f} min "
            f"(need {min_points} over {min_span_s / 60:.0f} min)",
            trend,
        )
    limit = max(abs_per_hour, share_per_hour * abs(trend.mean))
    text = trend.describe(unit, scale)
    if trend.slope_per_hour > limit and trend.r2 >= min_r2:
        return LeakFinding(
            "leak", f"rising: {text}; limit {limit / scale:.3g} {unit}/h".rstrip(), trend
        )
    return LeakFinding("stable", f"{text}; limit {limit / scale:.3g} {unit}/h", trend)


def cpu_shares(windows: Sequence[WindowSummary]) -> list[tuple[float, float]]:
    """(t, cores used) between consecutive /metrics scrapes of the service's CPU counter."""
    out: list[tuple[float, float]] = []
    prev: WindowSummary | None = None
    for w in windows:
        if w.cpu_seconds is None:
            continue
        if prev is not None and prev.cpu_seconds is not None and w.end_s > prev.end_s:
            delta = w.cpu_seconds - prev.cpu_seconds
            if delta >= 0:  # a restart resets the counter: skip that step
                out.append((w.end_s, delta / (w.end_s - prev.end_s)))
        prev = w
    return out


# --------------------------------------------------------------------------- stream gaps


@dataclass(frozen=True, slots=True)
class GapReport:
    """Gaps in a stream of message arrival times within [start, end]."""

    messages: int
    max_gap_s: float
    gaps_over: tuple[tuple[float, float], ...]  # (gap start, length) above the threshold


def merge_gaps(gaps: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Distinct gaps over many windows: one gap seen by several windows is counted once,
    at its longest."""
    longest: dict[float, float] = {}
    for start, length in gaps:
        key = round(start, 3)
        longest[key] = max(length, longest.get(key, 0.0))
    return sorted(longest.items())


def find_gaps(
    arrivals: Sequence[float],
    start: float,
    end: float,
    threshold_s: float,
    last_before: float | None = None,
) -> GapReport:
    """Time every silence: from the last arrival before the window (else the window start) to
    each arrival and to the window end. A gap spanning windows keeps its true start, so it is
    timed whole; no arrival at all makes the window one gap (silence is not continuity).
    """
    marks = sorted(t for t in arrivals if start <= t <= end)
    first = start if last_before is None else min(start, last_before)
    edges = [first, *marks, end]
    gaps = [(a, b - a) for a, b in itertools.pairwise(edges)]
    max_gap = max((g for _, g in gaps), default=0.0)
    over = tuple((a, g) for a, g in gaps if g > threshold_s)
    return GapReport(len(marks), max_gap, over)
