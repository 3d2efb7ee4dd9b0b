"""Pure decision rules: scope, known issues and the overall go/no-go.

- Checks whose component was not given (no frontend URL) are "not in scope": listed, never
  counted. Checks in scope without evidence are INCONCLUSIVE, never passed.
- A known issue needs a ticket, a mitigation and an expiry; once expired it counts as a failure.
- Overall: any critical FAIL -> NO-GO; else any critical INCONCLUSIVE -> INCONCLUSIVE; else any
  KNOWN ISSUE -> GO WITH KNOWN ISSUES; else GO. No critical check in scope -> INCONCLUSIVE.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mytrader_ops.verdict import Decision, KnownIssueNote, Status, Verdict


@dataclass(frozen=True, slots=True)
class KnownIssueRule:
    check_id: str
    ticket: str
    mitigation: str
    expires: dt.date


def mark_out_of_scope(verdict: Verdict, components: frozenset[str]) -> Verdict:
    """A verdict for a component not given in this run leaves the decision untouched."""
    if verdict.component in components:
        return verdict
    return dataclasses.replace(
        verdict,
        in_scope=False,
        summary=f"not in scope: no {verdict.component} given for this run",
    )


def apply_known_issues(
    verdicts: Sequence[Verdict], issues: Iterable[KnownIssueRule], today: dt.date
) -> list[Verdict]:
    by_check = {i.check_id: i for i in issues}
    out = []
    for v in verdicts:
        issue = by_check.get(v.check_id)
        if issue is None or not v.in_scope:
            out.append(v)
            continue
        expired = today > issue.expires
        note = KnownIssueNote(issue.ticket, issue.mitigation, issue.expires.isoformat(), expired)
        if v.status in (Status.PASS, Status.WARN):
            out.append(dataclasses.replace(v, known_issue=note))
        elif expired:
            out.append(
                dataclasses.replace(
                    v,
                    status=Status.FAIL,
                    known_issue=note,
                    summary=f"known issue {issue.ticket} expired {note.expires}: {v.summary}",
                )
            )
        else:
            out.append(dataclasses.replace(v, status=Status.KNOWN_ISSUE, known_issue=note))
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
