"""Evidence coverage of each rollback trigger: how much of the watch the trigger could see.

A trigger that did not fire has only said "not firing" for the windows it had evidence for;
one window of evidence out of 2,880 must not end a watch with exit 0 (issue 9, item 5).

1. Watched: every window of the watch's schedule up to the last one evaluated, whether it was
   measured, recorded as missing (the monitor was down and resumed; a window that did not
   finish), or never recorded at all (a skipped index). A watch that ran to its deadline
   watched its whole schedule.
2. Evidence: a watched window has evidence for a trigger when the trigger judged it "ok" or
   "breach". A "no-data" window (too few samples, nothing measured) and every missing or
   skipped window are blind, whatever the trigger's `missing_data` setting.
3. Coverage = windows with evidence / windows watched.
4. A blind stretch is a run of consecutive blind windows, counted in windows and in seconds
   of the schedule (windows x interval). The longest one of the watch is kept.
5. Evidence is insufficient when coverage is below the floor (`coverage_floor` of the monitor
   config file, default 90%: `settings.DEFAULT_COVERAGE_FLOOR`), or when the longest blind
   stretch exceeds the trigger's own persistence bound: more than N windows for
   `consecutive: N`, longer than D for `for: D`; the condition could have held that long,
   and fired the trigger, unseen. A trigger with no window watched has no evidence.
6. Exit code (`verdicts.exit_code_for`): a fired trigger -> 1; else any trigger with
   insufficient evidence -> 3; else 0.

The fold is pure and goes by window index (`CoverageBoard.advance`), so a resumed monitor
rebuilds it from its stored windows and an index that was never stored still counts as
blind. Memory is a few counters per trigger, however long the watch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from mytrader_ops.monitor.triggers import AnyTrigger, WindowVerdict

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Coverage:
    """One trigger's evidence over the windows watched so far."""

    trigger_id: str
    windows_watched: int = 0
    windows_with_evidence: int = 0
    blind_windows: int = 0  # the current blind stretch (0 after a window with evidence)
    blind_s: float = 0.0
    longest_blind_windows: int = 0
    longest_blind_s: float = 0.0

    @property
    def share(self) -> float | None:
        """Windows with evidence / windows watched; None before the first window."""
        if not self.windows_watched:
            return None
        return self.windows_with_evidence / self.windows_watched

    def see(self, evidence: bool, length_s: float) -> Coverage:
        """One more watched window, with or without evidence for this trigger."""
        if evidence:
            return replace(
                self,
                windows_watched=self.windows_watched + 1,
                windows_with_evidence=self.windows_with_evidence + 1,
                blind_windows=0,
                blind_s=0.0,
            )
        blind_w, blind_s = self.blind_windows + 1, self.blind_s + length_s
        return replace(
            self,
            windows_watched=self.windows_watched + 1,
            blind_windows=blind_w,
            blind_s=blind_s,
            longest_blind_windows=max(self.longest_blind_windows, blind_w),
            longest_blind_s=max(self.longest_blind_s, blind_s),
        )


@dataclass(frozen=True, slots=True)
class CoverageBoard:
    """Every trigger's coverage, advanced once per window of the schedule (rules 1-4)."""

    interval_s: float
    next_index: int  # the first window of the schedule not yet accounted for
    coverage: Mapping[str, Coverage]

    @classmethod
    def start(cls, trigger_ids: Iterable[str], interval_s: float) -> CoverageBoard:
        return cls(interval_s, 0, {t: Coverage(t) for t in trigger_ids})

    def skip_to(self, index: int) -> CoverageBoard:
        """Windows `next_index` .. `index - 1` were never recorded: watched, and blind for
        every trigger (rule 1)."""
        board = self
        while board.next_index < index:
            board = CoverageBoard(
                board.interval_s,
                board.next_index + 1,
                {t: c.see(False, self.interval_s) for t, c in board.coverage.items()},
            )
        return board

    def advance(self, index: int, verdicts: Mapping[str, WindowVerdict]) -> CoverageBoard:
        """Window `index` with each trigger's verdict for it; a trigger without a verdict is
        blind for it. A window already accounted for changes nothing."""
        if index < self.next_index:
            return self
        board = self.skip_to(index)
        return CoverageBoard(
            board.interval_s,
            index + 1,
            {
                t: c.see(verdicts.get(t, "no-data") != "no-data", board.interval_s)
                for t, c in board.coverage.items()
            },
        )


@dataclass(frozen=True, slots=True)
class EvidenceFinding:
    """Rule 5 applied to one trigger: its coverage, the limits it is held to, the verdict."""

    coverage: Coverage
    floor: float
    bound_windows: int | None  # `consecutive: N`
    bound_s: float | None  # `for: D`
    bound: str  # as the trigger states it: "2 consecutive windows" | "for 5m"
    sufficient: bool
    reasons: tuple[str, ...]  # why evidence is insufficient; empty when sufficient
    blind_too_long: bool  # final for the watch: a later window cannot undo it

    @property
    def trigger_id(self) -> str:
        return self.coverage.trigger_id

    def describe(self) -> str:
        """e.g. "evidence in 2871 of 2880 windows (99.7%, floor 90%); longest blind stretch
        3 windows (90 s) vs bound 5 windows"."""
        c = self.coverage
        pct = "n/a" if c.share is None else percent(c.share)
        return (
            f"evidence in {c.windows_with_evidence} of {c.windows_watched} window"
            f"{'' if c.windows_watched == 1 else 's'} ({pct}, floor {percent(self.floor)}); "
            f"longest blind stretch {_windows(c.longest_blind_windows)} "
            f"({c.longest_blind_s:.0f} s) vs bound {self.bound_text()}"
        )

    def bound_text(self) -> str:
        if self.bound_windows is not None:
            return _windows(self.bound_windows)
        return f"{self.bound} ({self.bound_s:g} s)"

    def to_dict(self) -> dict[str, object]:
        """The coverage fields of a trigger in a `--json` window line."""
        c = self.coverage
        return {
            "coverage": None if c.share is None else round(c.share, 6),
            "coverage_floor": self.floor,
            "windows_with_evidence": c.windows_with_evidence,
            "windows_watched": c.windows_watched,
            "blind_windows": c.blind_windows,
            "longest_blind_windows": c.longest_blind_windows,
            "longest_blind_s": round(c.longest_blind_s, 3),
            "evidence_sufficient": self.sufficient,
        }


def percent(share: float) -> str:
    """A share as a percentage that never rounds a shortfall up to 100% or a trace to 0%."""
    pct = share * 100
    if 99.95 <= pct < 100:
        return "99.9%"
    if 0 < pct < 0.05:
        return "0.1%"
    return f"{pct:.1f}%".replace(".0%", "%")


def _windows(n: int) -> str:
    return f"{n} window{'' if n == 1 else 's'}"


def judge_evidence(spec: AnyTrigger, cov: Coverage, floor: float) -> EvidenceFinding:
    """Rule 5 (pure): is this trigger's evidence enough to say it did not fire?"""
    reasons: list[str] = []
    share = cov.share
    if share is None:
        reasons.append("no window watched")
    elif cov.windows_with_evidence < floor * cov.windows_watched - _EPS:
        reasons.append(f"coverage {percent(share)} is below the floor of {percent(floor)}")
    for_s = spec.for_s
    too_long = (
        cov.longest_blind_windows > spec.consecutive
        if spec.consecutive is not None
        else for_s is not None and cov.longest_blind_s > for_s + _EPS
    )
    if too_long and spec.consecutive is not None:
        reasons.append(
            f"blind for {_windows(cov.longest_blind_windows)} in a row, more than the bound of "
            f"{spec.bound()}: the trigger could have fired unseen"
        )
    elif too_long:
        reasons.append(
            f"blind for {cov.longest_blind_s:.0f} s in a row, longer than the bound "
            f"({spec.bound()}): the trigger could have fired unseen"
        )
    return EvidenceFinding(
        cov, floor, spec.consecutive, for_s, spec.bound(), not reasons, tuple(reasons), too_long
    )


def judge_board(
    specs: Sequence[AnyTrigger], board: CoverageBoard, floor: float
) -> list[EvidenceFinding]:
    """Rule 5 for every trigger, in the order the triggers are configured."""
    return [judge_evidence(s, board.coverage[s.id], floor) for s in specs]


def evidence_line(findings: Sequence[EvidenceFinding]) -> str:
    """One line for the end of the watch: which triggers lacked evidence, or the lowest
    coverage when every trigger had enough."""
    short = [f for f in findings if not f.sufficient]
    if short:
        return "insufficient evidence: " + "; ".join(
            f"{f.trigger_id} ({', '.join(f.reasons)})" for f in short
        )
    if not findings:
        return "no trigger configured"
    low = min(findings, key=lambda f: f.coverage.share or 0.0)
    return f"every trigger had enough evidence (lowest: {low.trigger_id}, {low.describe()})"
