"""What probes return: a record of what was seen, never a judgement.

A failure to observe (refused, timed out, oversized) is data here, not an exception.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

# ok: seen working; warn: seen working in a degraded state (e.g. health "Degraded"/"warn");
# failed: seen failing; skipped: not attempted; unknown: could not tell (missing evidence).
StepOutcome = Literal["ok", "warn", "failed", "skipped", "unknown"]


@dataclass(frozen=True, slots=True)
class Step:
    """One stage of a probe (e.g. negotiate, handshake) with what was seen."""

    name: str
    outcome: StepOutcome
    detail: str = ""
    elapsed_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """The result of one probe run.

    `values` holds numeric measurements by name (`latency_ms`, `first_message_ms`...);
    `inconclusive` names evidence that could not be gathered for a reason other than the
    target (e.g. no credentials configured).
    """

    check_id: str
    kind: str
    started_at: str
    elapsed_ms: float
    steps: tuple[Step, ...] = ()
    values: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    inconclusive: str | None = None
    label: str | None = None

    def failed_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.outcome == "failed")


def utc_now() -> str:
    """RFC 3339 UTC timestamp with millisecond precision."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StepLog:
    """Mutable collector used inside a probe; frozen into an Observation at the end."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.values: dict[str, float] = {}

    def ok(self, name: str, detail: str = "", elapsed_ms: float | None = None) -> None:
        self.steps.append(Step(name, "ok", detail, elapsed_ms))

    def warn(self, name: str, detail: str, elapsed_ms: float | None = None) -> None:
        self.steps.append(Step(name, "warn", detail, elapsed_ms))

    def fail(self, name: str, detail: str, elapsed_ms: float | None = None) -> None:
        self.steps.append(Step(name, "failed", detail, elapsed_ms))

    def skip(self, name: str, detail: str) -> None:
        self.steps.append(Step(name, "skipped", detail))

    def unknown(self, name: str, detail: str) -> None:
        self.steps.append(Step(name, "unknown", detail))

    @property
    def has_failure(self) -> bool:
        return any(s.outcome == "failed" for s in self.steps)
