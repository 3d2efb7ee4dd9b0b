"""Evidence coverage per trigger (monitor/coverage.py) from tables: the floor, blind stretches
against each trigger's own bound, missed windows counted blind, and the exit code they lead to.
"""

from __future__ import annotations

import pytest

from mytrader_ops.monitor.aggregate import Totals
from mytrader_ops.monitor.coverage import (
    CoverageBoard,
    EvidenceFinding,
    evidence_line,
    judge_board,
    judge_evidence,
    percent,
)
from mytrader_ops.monitor.dashboard import window_json, window_line
from mytrader_ops.monitor.triggers import (
    AnyTrigger,
    DatabaseTrigger,
    TriggerStatus,
    Window,
    WindowVerdict,
    advance,
    initial_status,
)
from mytrader_ops.monitor.verdicts import exit_code_for, trigger_verdicts
from mytrader_ops.monitor.windows import WindowSummary

INTERVAL_S = 30.0
BY_WINDOWS = DatabaseTrigger(id="db", kind="database", consecutive=5)
BY_DURATION = DatabaseTrigger.model_validate({"id": "db", "kind": "database", "for": "90s"})


def pattern(text: str, repeat: int = 1) -> list[WindowVerdict]:
    """ "o" ok, "b" breach, "." no-data; one character per window."""
    code: dict[str, WindowVerdict] = {"o": "ok", "b": "breach", ".": "no-data"}
    return [code[c] for c in text * repeat]


def fold(spec: AnyTrigger, verdicts: list[WindowVerdict]) -> EvidenceFinding:
    board = CoverageBoard.start([spec.id], INTERVAL_S)
    for i, v in enumerate(verdicts):
        board = board.advance(i, {spec.id: v})
    return judge_evidence(spec, board.coverage[spec.id], 0.90)


@pytest.mark.parametrize(
    ("name", "spec", "verdicts", "sufficient", "fired", "code"),
    [
        # the case: one window of evidence in a day of 30 s windows
        ("1 of 2880", BY_WINDOWS, pattern("o") + pattern(".", 2879), False, False, 3),
        # 95% coverage, but one stretch of 6 blind windows against a bound of 5
        ("95%, one long gap", BY_WINDOWS, pattern("o", 114) + pattern(".", 6), False, False, 3),
        ("95%, gaps short", BY_WINDOWS, pattern("o" * 19 + ".", 6), True, False, 0),
        ("100%", BY_WINDOWS, pattern("o", 2880), True, False, 0),
        ("exactly the floor", BY_WINDOWS, pattern("ooooooooo."), True, False, 0),
        ("just under the floor", BY_WINDOWS, pattern("o" * 89 + "." * 11), False, False, 3),
        ("stretch equal to bound", BY_WINDOWS, pattern("o" * 95 + "." * 5), True, False, 0),
        ("breach is evidence", BY_WINDOWS, pattern("bo", 50), True, False, 0),
        ("fired wins", BY_WINDOWS, pattern("o") + pattern(".", 99), False, True, 1),
        # for: 90s at 30 s windows: 3 blind windows are 90 s (not longer), 4 are 120 s
        ("for: 3 blind", BY_DURATION, pattern("o" * 97 + "." * 3), True, False, 0),
        ("for: 4 blind", BY_DURATION, pattern("o" * 96 + "." * 4), False, False, 3),
        ("nothing watched", BY_WINDOWS, [], False, False, 3),
    ],
)
def test_coverage_rules_and_exit_code(
    name: str,
    spec: AnyTrigger,
    verdicts: list[WindowVerdict],
    sufficient: bool,
    fired: bool,
    code: int,
) -> None:
    found = fold(spec, verdicts)
    assert found.sufficient is sufficient, (name, found.reasons)
    assert bool(found.reasons) is not sufficient
    assert exit_code_for(fired, [found]) == code


def test_one_window_of_evidence_in_a_day_is_reported_with_its_figures() -> None:
    found = fold(BY_WINDOWS, pattern("o") + pattern(".", 2879))
    c = found.coverage
    assert (c.windows_with_evidence, c.windows_watched) == (1, 2880)
    assert (c.longest_blind_windows, c.longest_blind_s) == (2879, 2879 * INTERVAL_S)
    assert found.reasons[0] == "coverage 0.1% is below the floor of 90%"
    assert "more than the bound of 5 consecutive windows" in found.reasons[1]
    assert found.blind_too_long


def test_describe_states_coverage_beside_floor_and_bound() -> None:
    found = fold(BY_WINDOWS, pattern("o" * 2868 + "..." + "o" * 9))
    assert found.describe() == (
        "evidence in 2877 of 2880 windows (99.9%, floor 90%); "
        "longest blind stretch 3 windows (90 s) vs bound 5 windows"
    )
    assert fold(BY_DURATION, pattern("o.")).describe().endswith("vs bound for 90s (90 s)")


def test_windows_never_recorded_are_watched_and_blind() -> None:
    """A gap in the indexes (the monitor was down, nothing stored) counts as blind windows of
    the schedule's length, for every trigger."""
    board = CoverageBoard.start(["a", "b"], INTERVAL_S)
    board = board.advance(0, {"a": "ok", "b": "ok"})
    board = board.advance(7, {"a": "ok", "b": "no-data"})
    a, b = board.coverage["a"], board.coverage["b"]
    assert (a.windows_watched, a.windows_with_evidence, a.longest_blind_windows) == (8, 2, 6)
    assert a.longest_blind_s == 6 * INTERVAL_S
    assert (b.windows_watched, b.windows_with_evidence, b.blind_windows) == (8, 1, 7)
    closed = board.skip_to(10)  # the deadline: windows 8 and 9 were never recorded
    assert closed.coverage["a"].windows_watched == 10
    assert closed.coverage["a"].blind_windows == 2


def test_a_window_accounted_for_twice_counts_once() -> None:
    board = CoverageBoard.start(["a"], INTERVAL_S).advance(0, {"a": "ok"})
    assert board.advance(0, {"a": "no-data"}) == board


def test_a_trigger_without_a_verdict_for_a_window_is_blind_for_it() -> None:
    board = CoverageBoard.start(["a"], INTERVAL_S).advance(0, {})
    assert board.coverage["a"].windows_with_evidence == 0
    assert board.coverage["a"].windows_watched == 1


def test_exit_code_needs_every_trigger_sufficient() -> None:
    good = fold(BY_WINDOWS, pattern("o", 10))
    blind = fold(BY_WINDOWS, pattern(".", 10))
    assert exit_code_for(False, [good, good]) == 0
    assert exit_code_for(False, [good, blind]) == 3
    assert exit_code_for(True, [good, blind]) == 1


def test_judge_board_and_end_of_watch_line() -> None:
    specs = [
        DatabaseTrigger(id="db", kind="database", consecutive=2),
        DatabaseTrigger(id="auth-like", kind="database", consecutive=2),
    ]
    board = CoverageBoard.start(["db", "auth-like"], INTERVAL_S)
    for i in range(10):
        board = board.advance(i, {"db": "ok", "auth-like": "ok" if i != 4 else "no-data"})
    findings = judge_board(specs, board, 0.95)
    assert [f.trigger_id for f in findings] == ["db", "auth-like"]
    assert evidence_line(findings) == (
        "insufficient evidence: auth-like (coverage 90% is below the floor of 95%)"
    )
    ok = judge_board(specs, board, 0.90)
    assert evidence_line(ok).startswith("every trigger had enough evidence (lowest: auth-like,")


@pytest.mark.parametrize(
    ("share", "text"),
    [(1.0, "100%"), (0.9996, "99.9%"), (0.997, "99.7%"), (0.9, "90%"), (0.0003, "0.1%"), (0, "0%")],
)
def test_percent_never_rounds_to_a_whole_or_to_nothing(share: float, text: str) -> None:
    assert percent(share) == text


def _watch(verdicts: list[WindowVerdict]) -> tuple[list[TriggerStatus], list[EvidenceFinding]]:
    """A database trigger fed windows whose db verdict follows `verdicts`."""
    db = {"ok": True, "breach": False, "no-data": None}
    windows = [
        Window(i * INTERVAL_S, (i + 1) * INTERVAL_S, db_ok=db[v]) for i, v in enumerate(verdicts)
    ]
    spec = BY_WINDOWS
    status = initial_status(spec)
    board = CoverageBoard.start([spec.id], INTERVAL_S)
    for i, w in enumerate(windows):
        status = advance(spec, status, w)
        board = board.advance(i, {spec.id: status.evidence[-1].verdict})
    return [status], judge_board([spec], board, 0.90)


def test_a_trigger_that_was_mostly_blind_is_inconclusive_never_pass() -> None:
    states, evidence = _watch(pattern("o") + pattern(".", 20) + pattern("o"))
    assert states[0].state == "ok"  # its last window had evidence: the old rule said PASS
    (verdict,) = trigger_verdicts([BY_WINDOWS], states, evidence)
    assert verdict.status.value == "INCONCLUSIVE"
    assert verdict.summary.startswith("insufficient evidence: coverage 9.1% is below the floor")
    assert "evidence in 2 of 22 windows (9.1%, floor 90%)" in verdict.summary
    share, blind = verdict.measurements
    assert (share.value, share.threshold, share.comparator) == (2 / 22, 0.90, ">=")
    assert (blind.value, blind.threshold, blind.unit) == (20.0, 5.0, "windows")


def test_a_trigger_with_enough_evidence_passes_with_its_coverage_shown() -> None:
    states, evidence = _watch(pattern("o" * 9 + "." + "o" * 10))
    (verdict,) = trigger_verdicts([BY_WINDOWS], states, evidence)
    assert verdict.status.value == "PASS", verdict.summary
    assert "evidence in 19 of 20 windows (95%, floor 90%)" in verdict.summary
    assert verdict.measurements[0].value == 0.95


def test_every_json_window_line_carries_each_triggers_coverage_so_far() -> None:
    states, evidence = _watch(pattern("oo.o"))
    doc = window_json(
        "w", WindowSummary(3, 90.0, 120.0), states, Totals(1800.0, 100.0, 0.0), evidence
    )
    (entry,) = doc["triggers"]
    assert entry["trigger"] == "db"
    assert entry["coverage"] == 0.75
    assert entry["windows_with_evidence"] == 3
    assert entry["windows_watched"] == 4
    assert entry["longest_blind_windows"] == 1
    assert entry["longest_blind_s"] == INTERVAL_S
    assert entry["blind_windows"] == 0
    assert entry["coverage_floor"] == 0.90
    assert entry["evidence_sufficient"] is False  # 75% so far
    line = window_line(WindowSummary(3, 90.0, 120.0), states, evidence)
    assert "db=ok evidence 3/4 (75%) INSUFFICIENT" in line
