"""Pure trigger evaluation: each window gives each trigger a reading; a run of bad readings
as long as the trigger's bound (`consecutive: N` windows or `for: DURATION`) fires it.

Readings are three-valued. `bad` and `good` need evidence; `no-data` (too few samples, no
credentials, a probe that could not run) neither resets nor advances a streak, and a trigger
whose recent windows all lack data shows `no-data`, never `ok`: missing data is never read
as healthy. Streaks are *consecutive* bad windows, never a cumulative count over the watch
(the Flagger/Argo confusion, peers.md): one good window resets the streak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mytrader_ops.monitor.settings import TriggerSpec
from mytrader_ops.monitor.windows import WindowSummary
from mytrader_ops.stats import wilson_interval

ReadingState = Literal["good", "bad", "no-data"]
TriggerStatus = Literal["ok", "pending", "firing", "no-data"]


@dataclass(frozen=True, slots=True)
class Reading:
    state: ReadingState
    value: float | None
    detail: str


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def read_error_rate(spec: TriggerSpec, w: WindowSummary) -> Reading:
    limit = spec.threshold if spec.threshold is not None else 0.10
    if w.requests < spec.min_samples:
        return Reading(
            "no-data",
            w.error_rate,
            f"{w.requests} requests, {spec.min_samples} needed to judge the error rate",
        )
    rate = w.errors / w.requests
    lo, hi = wilson_interval(w.errors, w.requests)
    top = max(w.error_kinds, key=lambda k: w.error_kinds[k]) if w.error_kinds else ""
    detail = (
        f"error rate {_pct(rate)} (95% CI {_pct(lo)}-{_pct(hi)}, {w.errors}/{w.requests}) "
        f"vs > {_pct(limit)}" + (f"; mostly {top}" if top else "")
    )
    return Reading("bad" if rate > limit else "good", rate, detail)


def read_database(_spec: TriggerSpec, w: WindowSummary) -> Reading:
    if w.db_status is None:
        return Reading("no-data", None, "no database component in any readiness answer")
    ms = f", {w.db_ms:.1f} ms" if w.db_ms is not None else ""
    if w.db_status == "fail":
        return Reading("bad", 0.0, f"readiness reports database {w.db_status}{ms}")
    return Reading("good", 1.0, f"readiness reports database {w.db_status}{ms}")


def read_websockets(_spec: TriggerSpec, w: WindowSummary) -> Reading:
    attempts, ok = w.hub_attempts, w.hub_ok
    stream = (
        f"; stream {w.stream_messages} messages" if w.stream_connected else "; stream down"
    )
    if attempts == 0:
        return Reading("no-data", None, "no hub connection attempted in this window" + stream)
    why = ""
    if w.hub_failures:
        why = "; " + max(w.hub_failures, key=lambda k: w.hub_failures[k])
    detail = f"{ok}/{attempts} hub connections established{why}{stream}"
    return Reading("bad" if ok == 0 else "good", ok / attempts, detail)


def read_latency(spec: TriggerSpec, w: WindowSummary) -> Reading:
    limit = spec.threshold if spec.threshold is not None else 500.0
    value = {50.0: w.p50_ms, 95.0: w.p95_ms, 99.0: w.p99_ms}.get(spec.percentile, w.p95_ms)
    answered = w.requests - w.dropped
    if value is None or answered < min(spec.min_samples, 10):
        return Reading("no-data", value, f"{answered} timed responses: too few for p{spec.percentile:g}")
    detail = f"p{spec.percentile:g} {value:.1f} ms vs > {limit:g} ms (n={answered})"
    return Reading("bad" if value > limit else "good", value, detail)


def read_auth(_spec: TriggerSpec, w: WindowSummary) -> Reading:
    if w.auth == "no-data":
        return Reading("no-data", None, w.auth_detail or "authentication not exercised")
    return Reading("bad" if w.auth == "failed" else "good", None, w.auth_detail)


_READERS = {
    "error-rate": read_error_rate,
    "database": read_database,
    "websockets": read_websockets,
    "latency": read_latency,
    "auth": read_auth,
}


def read(spec: TriggerSpec, w: WindowSummary) -> Reading:
    if w.missing:
        return Reading("no-data", None, w.notes[0] if w.notes else "window not measured")
    return _READERS[spec.kind](spec, w)


@dataclass(frozen=True, slots=True)
class TriggerState:
    """A trigger after the latest window, with the evidence an operator needs."""

    trigger_id: str
    kind: str
    status: TriggerStatus
    detail: str  # the latest reading: value vs threshold
    bound: str  # "3 consecutive window(s)" / "for 2m"
    streak: int  # consecutive bad windows (no-data windows skipped)
    streak_s: float
    bad_windows: tuple[int, ...]
    value: float | None = None

    @property
    def progress(self) -> str:
        return f"{self.streak} bad window(s), {self.streak_s:.0f} s; fires after {self.bound}"


def evaluate_trigger(spec: TriggerSpec, history: Sequence[WindowSummary]) -> TriggerState:
    """The trigger's state over the windows seen so far (oldest first)."""
    readings = [(w, read(spec, w)) for w in history]
    streak: list[WindowSummary] = []
    for w, r in reversed(readings):
        if r.state == "good":
            break
        if r.state == "bad":
            streak.append(w)
    streak.reverse()
    latest = readings[-1][1] if readings else Reading("no-data", None, "no window yet")
    streak_s = (streak[-1].end_s - streak[0].start_s) if streak else 0.0
    fired = bool(streak) and (
        (spec.consecutive is not None and len(streak) >= spec.consecutive)
        or (spec.for_s is not None and streak_s >= spec.for_s)
    )
    status: TriggerStatus
    if fired:
        status = "firing"
    elif streak:
        status = "pending"
    elif latest.state == "no-data":
        status = "no-data"
    else:
        status = "ok"
    detail = latest.detail
    if streak and latest.state != "bad":
        bad = read(spec, streak[-1])
        detail = f"{bad.detail} (window {streak[-1].index}); latest: {latest.detail}"
    return TriggerState(
        spec.id,
        spec.kind,
        status,
        detail,
        spec.bound_text(),
        len(streak),
        streak_s,
        tuple(w.index for w in streak),
        latest.value,
    )


def evaluate_all(
    specs: Sequence[TriggerSpec], history: Sequence[WindowSummary]
) -> list[TriggerState]:
    return [evaluate_trigger(s, history) for s in specs if s.enabled]


def worst_bound_s(spec: TriggerSpec, interval_s: float) -> float:
    """How long after a fault starts the trigger fires at the latest: the window in which the
    fault began (partly healthy) plus the bound, plus one window for the last answers."""
    if spec.consecutive is not None:
        return (spec.consecutive + 2) * interval_s
    assert spec.for_s is not None
    return spec.for_s + 3 * interval_s
