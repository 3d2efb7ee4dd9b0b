"""Pure decision rules: scope, known issues and the overall go/no-go.

- Checks whose component was not given (no frontend URL) are "not in scope": listed, never
  counted. Checks in scope without evidence are INCONCLUSIVE, never passed.
- A known issue needs a ticket, a mitigation and an expiry no further ahead than its file's
  ceiling (`known_issue_max_days`, default 30; a further date is a configuration error).
- A known issue waives a known *failure*: by default it turns a FAIL of its check into
  KNOWN ISSUE, and nothing else. Missing evidence (INCONCLUSIVE) stays INCONCLUSIVE unless
  the known issue says `waives: [fail, inconclusive]`; the verdict then reads "not measured,
  waived by TICKET". With `match: PATTERN` it waives only a verdict whose text contains the
  pattern: a different failure of the same check is not waived.
- An expired known issue waives nothing: the verdict keeps its status and says so.
- Every waiver shows the days left before it expires.
- Overall: any critical FAIL -> NO-GO; else any critical INCONCLUSIVE -> INCONCLUSIVE; else any
  KNOWN ISSUE -> GO WITH KNOWN ISSUES; else GO (WARNs are counted, never blocking). No
  critical check in scope -> INCONCLUSIVE.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mytrader_ops.verdict import Decision, KnownIssueNote, Status, Verdict

_WAIVABLE = {Status.FAIL: "fail", Status.INCONCLUSIVE: "inconclusive"}


@dataclass(frozen=True, slots=True)
class KnownIssueRule:
    check_id: str
    ticket: str
    mitigation: str
    expires: dt.date
    waives: tuple[str, ...] = ("fail",)
    match: str | None = None


def mark_out_of_scope(verdict: Verdict, components: frozenset[str]) -> Verdict:
    """A verdict for a component not given in this run leaves the decision untouched."""
    if verdict.component in components:
        return verdict
    return dataclasses.replace(
        verdict,
        in_scope=False,
        summary=f"not in scope: no {verdict.component} given for this run",
    )


def verdict_text(v: Verdict) -> str:
    """What a known issue's `match` is searched in: the summary and the measured values."""
    return " ".join([v.summary, *(m.describe() for m in v.measurements)])


def apply_known_issue(v: Verdict, issue: KnownIssueRule, today: dt.date) -> Verdict:
    days_left = (issue.expires - today).days
    expired = days_left < 0
    note = KnownIssueNote(
        issue.ticket,
        issue.mitigation,
        issue.expires.isoformat(),
        expired,
        days_left,
        issue.waives,
    )
    kind = _WAIVABLE.get(v.status)
    if kind is None:  # PASS, WARN: nothing to waive in this run
        return dataclasses.replace(v, known_issue=note)
    why_not = ""
    if expired:
        why_not = f"expired {note.expires}"
    elif kind not in issue.waives:
        why_not = "it waives failures only, not missing evidence"
    elif issue.match is not None and re.search(issue.match, verdict_text(v)) is None:
        why_not = f"this {v.status.value} does not match {issue.match!r}"
    if why_not:
        note = dataclasses.replace(note, why_not=why_not)
        summary = f"known issue {issue.ticket} does not apply ({why_not}): {v.summary}"
        return dataclasses.replace(v, known_issue=note, summary=summary)
    note = dataclasses.replace(note, applied=True)
    summary = v.summary
    if v.status is Status.INCONCLUSIVE:
        summary = f"not measured, waived by {issue.ticket}: {v.summary}"
    return dataclasses.replace(v, status=Status.KNOWN_ISSUE, known_issue=note, summary=summary)


def apply_known_issues(
    verdicts: Sequence[Verdict], issues: Iterable[KnownIssueRule], today: dt.date
) -> list[Verdict]:
    by_check = {i.check_id: i for i in issues}
    out = []
    for v in verdicts:
        issue = by_check.get(v.check_id)
        if issue is None or not v.in_scope:
            out.append(v)
        else:
            out.append(apply_known_issue(v, issue, today))
    return out


def decide(verdicts: Sequence[Verdict]) -> Decision:
    scoped = [v for v in verdicts if v.in_scope]
    critical = [v for v in scoped if v.critical]
    if not critical:
        return Decision.INCONCLUSIVE
    if any(v.status is Status.FAIL for v in critical):
        return Decision.NO_GO
    if any(v.status is Status.INCONCLUSIVE for v in critical):
        return Decision.INCONCLUSIVE
    if any(v.status is Status.KNOWN_ISSUE for v in scoped):
        return Decision.GO_WITH_KNOWN_ISSUES
    return Decision.GO


def exit_code(decision: Decision) -> int:
    return {
        Decision.GO: 0,
        Decision.GO_WITH_KNOWN_ISSUES: 0,
        Decision.NO_GO: 1,
        Decision.INCONCLUSIVE: 3,
    }[decision]
