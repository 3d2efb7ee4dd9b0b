"""Running totals over a watch in bounded memory (pure: windows in, figures out).

A 24-hour watch must not grow with its length: totals are counters, series for trend
detection are decimated (`Series` halves itself by averaging neighbours when full), the
database latency goes into a fixed-size HDR histogram, and stream gaps keep the longest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mytrader_ops.monitor.windows import PATHS, PathTally, WindowSummary, merge_gaps
from mytrader_ops.stats import LatencyHistogram

SERIES_CAP = 512
MAX_GAPS = 200


@dataclass(slots=True)
class Series:
    """(t, value) points, at most `cap`: when full, neighbours are averaged pairwise, so the
    series keeps covering the whole watch at a coarser step (a trend survives decimation)."""

    cap: int = SERIES_CAP
    points: list[tuple[float, float]] = field(default_factory=list)
    step: int = 1  # raw points per stored point
    _pending: list[tuple[float, float]] = field(default_factory=list)

    def add(self, t: float, value: float) -> None:
        self._pending.append((t, value))
        if len(self._pending) < self.step:
            return
        n = len(self._pending)
        self.points.append(
            (sum(p[0] for p in self._pending) / n, sum(p[1] for p in self._pending) / n)
        )
        self._pending.clear()
        if len(self.points) >= self.cap:
            pairs = zip(self.points[0::2], self.points[1::2], strict=False)
            self.points = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in pairs]
            self.step *= 2


@dataclass(slots=True)
class PhaseTotals:
    windows: int = 0
    missing: int = 0
    requests: int = 0
    errors: int = 0
    health_attempts: int = 0
    health_ok: int = 0
    paths: dict[str, list[int]] = field(default_factory=lambda: {p: [0, 0] for p in PATHS})
    hub_failures: dict[str, int] = field(default_factory=dict)
    p95_breaches: int = 0
    p95_windows: int = 0
    worst_p95_ms: float = 0.0
    # the sampler's own health over the measured windows that reported it
    sampler_windows: int = 0
    sampler_invalid_windows: int = 0
    sampler_lag_p95_ms: float = 0.0  # the worst window's
    sampler_lag_p99_ms: float = 0.0  # the worst window's
    sampler_note: str = ""  # the latest invalid window's note, else the worst-lag window's

    def add(self, w: WindowSummary, p95_limit_ms: float) -> None:
        self.windows += 1
        if w.missing:
            self.missing += 1
            return
        self.requests += w.requests
        self.errors += w.errors
        self.health_attempts += w.health_attempts
        self.health_ok += w.health_ok
        for name, tally in w.paths.items():
            slot = self.paths.setdefault(name, [0, 0])
            slot[0] += tally.attempts
            slot[1] += tally.ok
        for k, v in w.hub_failures.items():
            if k in self.hub_failures or len(self.hub_failures) < 20:
                self.hub_failures[k] = self.hub_failures.get(k, 0) + v
        self._add_sampler(w)
        if w.p95_ms is not None:
            self.p95_windows += 1
            self.worst_p95_ms = max(self.worst_p95_ms, w.p95_ms)
            if w.p95_ms > p95_limit_ms:
                self.p95_breaches += 1

    def _add_sampler(self, w: WindowSummary) -> None:
        if w.sampler_valid is None:
            return
        self.sampler_windows += 1
        lag95, lag99 = w.sampler_lag_p95_ms or 0.0, w.sampler_lag_p99_ms or 0.0
        if not w.sampler_valid:
            self.sampler_invalid_windows += 1
            self.sampler_note = w.sampler_note
        elif not self.sampler_invalid_windows and lag99 >= self.sampler_lag_p99_ms:
            self.sampler_note = w.sampler_note
        self.sampler_lag_p95_ms = max(self.sampler_lag_p95_ms, lag95)
        self.sampler_lag_p99_ms = max(self.sampler_lag_p99_ms, lag99)

    @property
    def sampler_valid(self) -> bool:
        """The sampler is trusted for the phase only if every measured window that reported
        its health found it valid, and at least one did (unknown is not valid)."""
        return self.sampler_windows > 0 and self.sampler_invalid_windows == 0

    def sampler_text(self) -> str:
        if not self.sampler_windows:
            return "no window reported the sampler's own health"
        head = (
            f"sampler invalid in {self.sampler_invalid_windows} of {self.sampler_windows} "
            f"windows (latest: {self.sampler_note})"
            if self.sampler_invalid_windows
            else f"sampler valid in all {self.sampler_windows} windows "
            f"(slowest: {self.sampler_note})"
        )
        return (
            f"{head}; highest window lag p95 {self.sampler_lag_p95_ms:.2f} ms, "
            f"p99 {self.sampler_lag_p99_ms:.2f} ms"
        )

    def path(self, name: str) -> PathTally:
        a, ok = self.paths.get(name, [0, 0])
        return PathTally(a, ok)


@dataclass(slots=True)
class Totals:
    """Everything the final report needs, accumulated window by window."""

    critical_span_s: float
    p95_limit_ms: float
    start_s: float
    critical: PhaseTotals = field(default_factory=PhaseTotals)
    whole: PhaseTotals = field(default_factory=PhaseTotals)
    rss: Series = field(default_factory=Series)
    cpu: Series = field(default_factory=Series)
    db_ms: LatencyHistogram = field(default_factory=LatencyHistogram)
    db_windows: int = 0
    db_fail_windows: int = 0
    auth_ok: int = 0
    auth_failed: int = 0
    auth_no_data: int = 0
    auth_last_failure: str = ""
    stream_messages: int = 0
    stream_windows: int = 0
    stream_down_windows: int = 0
    max_gap_s: float = 0.0
    gaps: list[tuple[float, float]] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    monitor_cpu_s: float = 0.0
    measured_s: float = 0.0
    _prev_cpu: tuple[float, float] | None = None

    def add(self, w: WindowSummary) -> None:
        self.whole.add(w, self.p95_limit_ms)
        if w.start_s - self.start_s < self.critical_span_s:
            self.critical.add(w, self.p95_limit_ms)
        for note in w.notes:
            if note in self.notes or len(self.notes) < 20:
                self.notes[note] = self.notes.get(note, 0) + 1
        if w.missing:
            return
        self.monitor_cpu_s += w.monitor_cpu_s
        self.measured_s += w.duration_s
        if w.rss_bytes is not None:
            self.rss.add(w.end_s, w.rss_bytes)
        if w.cpu_seconds is not None:
            if self._prev_cpu is not None and w.end_s > self._prev_cpu[0]:
                delta = w.cpu_seconds - self._prev_cpu[1]
                if delta >= 0:
                    self.cpu.add(w.end_s, delta / (w.end_s - self._prev_cpu[0]))
            self._prev_cpu = (w.end_s, w.cpu_seconds)
        if w.db_status is not None:
            self.db_windows += 1
            if w.db_status == "fail":
                self.db_fail_windows += 1
            if w.db_ms is not None:
                self.db_ms.record_ms(w.db_ms)
        if w.db_query_ms is not None:
            self.db_ms.record_ms(w.db_query_ms)
        if w.auth == "ok":
            self.auth_ok += 1
        elif w.auth == "failed":
            self.auth_failed += 1
            self.auth_last_failure = w.auth_detail
        else:
            self.auth_no_data += 1
        self.stream_windows += 1
        self.stream_messages += w.stream_messages
        if not w.stream_connected:
            self.stream_down_windows += 1
        if w.stream_max_gap_s is not None:
            self.max_gap_s = max(self.max_gap_s, w.stream_max_gap_s)
        if w.stream_gaps:
            # keep the longest gaps (a 60 s stall must outlive 250 later 6 s ones), in order
            merged = merge_gaps([*self.gaps, *w.stream_gaps])
            longest = sorted(merged, key=lambda g: g[1], reverse=True)[:MAX_GAPS]
            self.gaps = sorted(longest)
