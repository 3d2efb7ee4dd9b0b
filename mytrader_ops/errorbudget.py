"""Pure SLO arithmetic: error budgets and burn rates (Google SRE workbook, "Alerting on SLOs").

An SLO with objective O (e.g. 99.9%) over a window allows a share 1 - O of bad events: that is
the error budget. Over any span:

- the *burn rate* is the bad share divided by 1 - O: 1.0 spends the budget exactly over the
  SLO window, 14.4 spends 2% of a 30-day budget in one hour;
- the *budget consumed* over the SLO window is bad / (total x (1 - O)), and what remains is
  1 - consumed (negative once overspent).

A multiwindow, multi-burn-rate alert fires when the burn rate is at least its factor over a
long window *and* a short one: the long window proves the burn is significant, the short one
that it is still going on (it resets quickly once the problem is fixed).

Missing data is never read as healthy: a span with fewer events than asked for has no burn
rate (None), and the callers treat that as "no evidence".

This module is shared: the monitor's burn-rate triggers and validate's error-budget gate both
read it; the windows themselves come from the monitor's store or its live watch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Events:
    """Good and total events in one measured span (a monitor window), ending at `end_s`."""

    end_s: float
    length_s: float
    good: int
    total: int

    @property
    def bad(self) -> int:
        return self.total - self.good


@dataclass(frozen=True, slots=True)
class Burn:
    """The burn rate over one span, with what it rests on."""

    rate: float | None  # None: too few events to say
    bad: int
    total: int
    span_s: float  # how much of the asked-for span had measurements


def burn_rate(
    history: Sequence[Events], now_s: float, span_s: float, objective: float, min_total: int = 1
) -> Burn:
    """The burn rate over the `span_s` seconds before `now_s` (windows ending inside it)."""
    inside = [e for e in history if now_s - span_s < e.end_s <= now_s]
    total = sum(e.total for e in inside)
    bad = sum(e.bad for e in inside)
    measured = sum(e.length_s for e in inside)
    if total < max(1, min_total):
        return Burn(None, bad, total, measured)
    return Burn((bad / total) / (1 - objective), bad, total, measured)


@dataclass(frozen=True, slots=True)
class Budget:
    objective: float
    good: int
    total: int
    remaining: float | None  # share of the budget left; None without events
    windows: int


def error_budget(history: Sequence[Events], objective: float) -> Budget:
    """What is left of the budget after the events in `history` (the SLO window's)."""
    total = sum(e.total for e in history)
    good = sum(e.good for e in history)
    if total == 0:
        return Budget(objective, good, total, None, len(history))
    consumed = (total - good) / (total * (1 - objective))
    return Budget(objective, good, total, 1 - consumed, len(history))
