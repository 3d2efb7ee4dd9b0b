"""Audit log and resume decisions: pure folds from tables, torn lines, redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mytrader_ops.redaction import Redactor
from mytrader_ops.rollback.audit import AuditLog, prior_state, read_log, truncate
from mytrader_ops.rollback.model import parse_plan
from mytrader_ops.rollback.plan import plan_rollback
from mytrader_ops.rollback.service import decide_resume

PLAN = parse_plan(
    """name: t
steps:
  - {name: a, kind: command, argv: [x]}
  - {name: b, kind: command, argv: [z]}
  - {name: c, kind: wait, seconds: 0}
  - {name: v, kind: verify, target: "http://127.0.0.1:1"}
"""
)
RESOLVED = plan_rollback(PLAN, "staging", "v1", "why")
RID = RESOLVED.rollback_id


def start(attempt: int = 1) -> dict[str, object]:
    return {"event": "rollback-start", "rollback_id": RID, "attempt": attempt, "to_version": "v1"}


def s(i: int) -> dict[str, object]:
    return {"event": "step-start", "rollback_id": RID, "step": i}


def e(i: int, outcome: str = "ok", **kw: object) -> dict[str, object]:
    return {"event": "step-end", "rollback_id": RID, "step": i, "outcome": outcome, **kw}


def end(outcome: str) -> dict[str, object]:
    return {"event": "rollback-end", "rollback_id": RID, "outcome": outcome, "at": "T"}


@pytest.mark.parametrize(
    ("records", "mode", "skip"),
    [
        ([], "fresh", []),
        ([start(), s(1), e(1), s(2)], "resume", [1]),  # SIGKILL during step 2
        ([start(), s(1), e(1), s(2), e(2), s(3), e(3), s(4)], "resume", [1, 2, 3]),
        ([start(), s(1), e(1), s(2), e(2, "failed"), end("failed")], "resume", [1]),
        ([start(), s(1), e(1, "timed_out")], "resume", []),
        ([start(), s(1), e(1, "failed", optional=True), s(2)], "resume", [1]),
        (
            [start(), *[x for i in (1, 2, 3, 4) for x in (s(i), e(i))], end("rolled-back")],
            "reverify",
            [1, 2, 3],
        ),
        (  # a failed re-verify resumes at the verify step, never re-runs the commands
            [
                start(),
                *[x for i in (1, 2, 3, 4) for x in (s(i), e(i))],
                end("rolled-back"),
                start(2),
                e(1, "skipped"),
                e(2, "skipped"),
                e(3, "skipped"),
                s(4),
                e(4, "failed"),
                end("failed"),
            ],
            "resume",
            [1, 2, 3],
        ),
        (  # every step ok but the end record never written
            [start(), *[x for i in (1, 2, 3, 4) for x in (s(i), e(i))]],
            "resume",
            [1, 2, 3],
        ),
        ([{**start(), "rollback_id": "other"}, s(1)], "fresh", []),
    ],
)
def test_decide_resume(records: list[dict[str, object]], mode: str, skip: list[int]) -> None:
    prior = prior_state(tuple(records), RID)
    decision = decide_resume(RESOLVED, prior)
    assert decision.mode == mode
    assert sorted(decision.skip) == skip


def test_interrupted_step_is_named() -> None:
    prior = prior_state((start(), s(1), e(1), s(2)), RID)
    assert prior.interrupted_step == 2
    assert "step 2 was interrupted" in decide_resume(RESOLVED, prior).message


def test_append_is_redacted_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    redactor = Redactor(["canary-secret-value"])
    log = AuditLog(path, redactor)
    log.append("note", text="token canary-secret-value in https://u:p@host/x?token=abc")
    with path.open("ab") as fh:
        fh.write(b'{"event": "step-start", "rollb')  # power loss mid-write
    log.append("note", text="after the crash")
    raw = path.read_text()
    assert "canary-secret-value" not in raw
    assert "u:p@" not in raw
    read = read_log(path)
    assert [r["text"] for r in read.records] == [
        "token *** in https://***@host/x?token=***",
        "after the crash",
    ]
    assert read.bad_lines == (2,)
    for line in raw.splitlines():
        if line.startswith('{"v"'):
            json.loads(line)


def test_truncate_keeps_head_and_tail() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    short = truncate(text, 100)
    half = "x" * 46  # 50 characters each side: HEAD or TAIL and 46 of the x
    assert short == f"HEAD{half}\n... [9908 characters omitted] ...\n{half}TAIL"
    assert truncate("small", 100) == "small"
