"""Statuses, measurements and verdicts: the vocabulary of every report."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 - a status, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    KNOWN_ISSUE = "KNOWN ISSUE"


class Decision(StrEnum):
    GO = "GO"
    GO_WITH_KNOWN_ISSUES = "GO WITH KNOWN ISSUES"
    NO_GO = "NO-GO"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured value beside its threshold, with its evidence base."""

    name: str
    value: float | None
    unit: str
    threshold: float | None = None
    comparator: str = "<="
    samples: int | None = None
    interval: tuple[float, float] | None = None

    def value_text(self) -> str:
        """The measured value with its interval and sample count, without the name."""
        text = "n/a" if self.value is None else _fmt(self.value, self.unit)
        if self.interval is not None:
            lo, hi = self.interval
            text += f" (95% CI {_fmt(lo, self.unit)}-{_fmt(hi, self.unit)})"
        if self.samples is not None:
            text += f", n={self.samples}"
        return text

    def limit_text(self) -> str:
        if self.threshold is None:
            return ""
        return f"{self.comparator} {_fmt(self.threshold, self.unit)}"

    def describe(self) -> str:
        value = "n/a" if self.value is None else _fmt(self.value, self.unit)
        text = f"{self.name} {value}"
        if self.interval is not None:
            lo, hi = self.interval
            text += f" (95% CI {_fmt(lo, self.unit)}-{_fmt(hi, self.unit)})"
        if self.threshold is not None:
            text += f" vs limit {self.limit_text()}"
        if self.samples is not None:
            text += f", n={self.samples}"
        return text


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.2f}%"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "":
        return f"{value:g}"
    if unit == "x":  # a ratio
        return f"{value:.2f}x"
    return f"{value:g} {unit}"


@dataclass(frozen=True, slots=True)
class KnownIssueNote:
    """A known issue as it applied to one verdict in one run."""

    ticket: str
    mitigation: str
    expires: str
    expired: bool
    days_left: int | None = None  # days until expiry (negative once expired)
    waives: tuple[str, ...] = ("fail",)
    applied: bool = False  # whether it changed this verdict's status
    why_not: str = ""  # when it did not apply although the check did not pass


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one check: status, why (observed vs threshold) and its evidence."""

    check_id: str
    title: str
    status: Status
    summary: str
    critical: bool = True
    component: str = "backend"
    criterion: str = ""
    measurements: tuple[Measurement, ...] = ()
    evidence: tuple[str, ...] = ()
    in_scope: bool = True
    label: str | None = None
    known_issue: KnownIssueNote | None = None
    # A statistic whose 95% confidence sequence still straddled its limit when sampling
    # ended: neither met nor breached was demonstrated (INCONCLUSIVE if critical, else WARN).
    undemonstrated: bool = False

    @property
    def observed(self) -> str:
        return "; ".join(m.describe() for m in self.measurements) or self.summary
