"""Pure stop rules for sequential sampling: when a sampled stream may stop, and why.

Every sampled criterion (a latency percentile, an error rate, a hub's invocation failures) is
judged on an anytime-valid confidence sequence (`stats`), so the answer keeps its 95% error
guarantee whenever sampling stops. That makes both directions safe:

- **Marginal criteria run on.** At the planned duration, a stream that a critical criterion
  still needs (its sequence straddles the limit) keeps sampling, up to the budget
  (`--max-duration`, default 3x the planned duration). Streams whose criteria are decided, or
  only non-critical ones are open, stop at the planned duration.
- **Decisive runs stop early** (`--until-decisive`). After the minimum duration (default 10 s,
  so the samples still span feed ticks and keep-alive cycles) a stream stops as soon as every
  criterion that reads it is decided.
- **The budget is a hard end.** Whatever is still open then is reported as not demonstrated
  (INCONCLUSIVE when critical, WARN when not).

A criterion reads one or more streams (the error rate reads them all); a stream stops only when
no criterion that keeps it open reads it. Each stream's stop reason is kept for the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_MIN_DECISIVE_S = 10.0
DEFAULT_BUDGET_FACTOR = 3.0


@dataclass(frozen=True, slots=True)
class Criterion:
    """A sampled criterion as the stop rules see it."""

    check_id: str
    critical: bool
    streams: frozenset[str]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When sampling may end: planned, earliest (with --until-decisive) and the budget."""

    planned_s: float
    budget_s: float
    until_decisive: bool = False
    min_decisive_s: float = DEFAULT_MIN_DECISIVE_S

    @property
    def earliest_s(self) -> float:
        if not self.until_decisive:
            return self.planned_s
        return min(self.planned_s, self.min_decisive_s)


def make_schedule(
    planned_s: float,
    max_duration_s: float | None,
    until_decisive: bool,
    min_decisive_s: float = DEFAULT_MIN_DECISIVE_S,
) -> Schedule:
    budget = max_duration_s if max_duration_s is not None else DEFAULT_BUDGET_FACTOR * planned_s
    return Schedule(planned_s, max(budget, planned_s), until_decisive, min_decisive_s)


def streams_to_stop(
    elapsed_s: float,
    schedule: Schedule,
    criteria: Iterable[Criterion],
    decided: Mapping[str, bool],
    running: Iterable[str],
) -> dict[str, str]:
    """The running streams that may stop now, each with its reason (empty: keep sampling)."""
    running = list(running)
    criteria = list(criteria)
    if elapsed_s >= schedule.budget_s:
        reasons = {}
        for stream in running:
            open_ = [
                c.check_id for c in criteria if stream in c.streams and not decided[c.check_id]
            ]
            reasons[stream] = (
                f"budget of {schedule.budget_s:g} s spent; still undecided: {', '.join(open_)}"
                if open_
                else f"budget of {schedule.budget_s:g} s spent"
            )
        return reasons
    if elapsed_s < schedule.earliest_s:
        return {}
    if elapsed_s < schedule.planned_s:
        # early (until-decisive): a stream stops once every criterion reading it is decided
        keep = {s for c in criteria if not decided[c.check_id] for s in c.streams}
        why = f"every criterion decisive after {elapsed_s:.1f} s (planned {schedule.planned_s:g} s)"
        return {s: why for s in running if s not in keep}
    # planned duration reached: only a critical criterion that is still open keeps a stream
    keep = {s for c in criteria if c.critical and not decided[c.check_id] for s in c.streams}
    extended = elapsed_s - schedule.planned_s > 0.5
    return {
        s: (
            f"decisive after {elapsed_s:.1f} s (extended past the planned {schedule.planned_s:g} s)"
            if extended
            else f"planned {schedule.planned_s:g} s reached"
        )
        for s in running
        if s not in keep
    }
