"""The pull-request comment (or merge-request note): one per environment, rewritten in place.

Pure. The first line is a hidden marker, `<!-- mytrader-ops:gate env=NAME -->`, which is how
the next run finds the comment to update instead of adding another. Below it: the decision,
the checks that block it (value vs threshold), and the diff against the last GO run of the
same environment and backend (`report diff`'s table and regression judge), folded.
"""

from __future__ import annotations

import re

from mytrader_ops.report.model import RunReport, status_counts
from mytrader_ops.verdict import Decision, Status

MAX_CHARS = 60_000  # GitHub refuses comments over 65,536 characters; GitLab notes allow 1 MB
_ICON = {
    Decision.GO: "✅",
    Decision.GO_WITH_KNOWN_ISSUES: "☑️",
    Decision.NO_GO: "⛔",
    Decision.INCONCLUSIVE: "❔",
}
_UNSAFE = re.compile(r"[<>|\r\n]")


def marker(env: str) -> str:
    return f"<!-- mytrader-ops:gate env={_UNSAFE.sub('_', env)} -->"


def _cell(text: str) -> str:
    return _UNSAFE.sub(lambda m: {"<": "&lt;", ">": "&gt;", "|": "\\|"}.get(m[0], " "), text)


def comment_body(
    report: RunReport,
    diff_markdown: str | None,
    base_run_id: str | None,
    run_url: str | None,
) -> str:
    lines = [
        marker(report.env_name),
        f"### {_ICON[report.decision]} mytrader-ops validate: **{report.decision.value}** "
        f"on `{_cell(report.env_name)}`",
        "",
        f"Run `{report.run_id}` against {_cell(report.backend)}: {_cell(status_counts(report))}"
        + (f" · [workflow run]({run_url})" if run_url else ""),
    ]
    blocking = [
        v
        for v in report.in_scope()
        if v.critical and v.status in (Status.FAIL, Status.INCONCLUSIVE)
    ]
    if blocking:
        lines += ["", "| check | status | observed vs threshold |", "|---|---|---|"]
        lines += [f"| `{v.check_id}` | {v.status.value} | {_cell(v.observed)} |" for v in blocking]
    lines.append("")
    if diff_markdown is None:
        lines.append("No earlier GO run of this environment in the run store to compare with.")
    else:
        lines += [
            f"<details><summary>Diff against the last GO run <code>{base_run_id}</code></summary>",
            "",
            diff_markdown.strip(),
            "",
            "</details>",
        ]
    body = "\n".join(lines) + "\n"
    if len(body) > MAX_CHARS:
        body = body[: MAX_CHARS - 80] + "\n\n_(cut to fit a comment; see the report artefact)_\n"
    return body


def run_diff(report: RunReport, base: RunReport) -> str:
    """`report diff BASE THIS --format markdown`: the table and the regression judge."""
    from mytrader_ops.report.diff import diff_reports, regression_section
    from mytrader_ops.validate.baseline import judge_runs

    rows = [(name, j.status, j.summary) for name, j in judge_runs(base, report)]
    return diff_reports(base, report) + regression_section(rows, True)
