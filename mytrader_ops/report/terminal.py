"""Terminal rendering with rich: live progress while probing, then the results table.

The only module that imports rich. Every value shown is redacted first (values, not the
rendered text) and made safe: rich markup in a value is escaped, and control characters
(newlines, ANSI escapes) from a target's text are shown as spaces, so a value can neither
restyle the terminal nor forge a line such as a decision.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mytrader_ops.redaction import Redactor
from mytrader_ops.report.model import RunReport, redact_report, sampling_text, status_counts
from mytrader_ops.verdict import Decision, Status

_STYLE = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.INCONCLUSIVE: "magenta",
    Status.KNOWN_ISSUE: "cyan",
}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _safe(text: str) -> str:
    """One line of plain text: controls become spaces, rich markup is escaped."""
    return escape(_CONTROL.sub(" ", text))


_DECISION_STYLE = {
    Decision.GO: "bold green",
    Decision.GO_WITH_KNOWN_ISSUES: "bold cyan",
    Decision.NO_GO: "bold red",
    Decision.INCONCLUSIVE: "bold magenta",
}


def make_console(no_color: bool, stream: TextIO | None = None) -> Console:
    return Console(
        file=stream or sys.stdout,
        no_color=no_color,
        highlight=False,
        soft_wrap=False,
        emoji=False,
    )


class Progress:
    """Prints one line per probe event (works in CI logs as well as terminals)."""

    def __init__(self, console: Console, redactor: Redactor, quiet: bool) -> None:
        self.console = console
        self.redactor = redactor
        self.quiet = quiet

    def __call__(self, check_id: str, message: str) -> None:
        if self.quiet:
            return
        style = next((s for st, s in _STYLE.items() if st.value == message), "dim")
        self.console.print(
            f"  {_safe(check_id):<26} [{style}]{_safe(self.redactor.redact(message))}[/]",
            markup=True,
        )


def render(report: RunReport, console: Console, redactor: Redactor, quiet: bool = False) -> None:
    report = redact_report(report, redactor)
    r = _safe
    if not quiet:
        table = Table(
            title=r(f"{report.title} - {report.env_name} ({report.backend})"),
            show_lines=False,
            expand=False,
        )
        table.add_column("check")
        table.add_column("status")
        table.add_column("crit")
        table.add_column("observed vs threshold", overflow="fold")
        for v in report.verdicts:
            status = v.status.value if v.in_scope else "NOT IN SCOPE"
            style = _STYLE[v.status] if v.in_scope else "dim"
            label = f" ({v.label})" if v.label else ""
            table.add_row(
                r(v.check_id),
                f"[{style}]{status}[/]",
                "yes" if v.critical else "no",
                r(v.summary + label),
            )
        console.print(table)
        if report.sampler is not None:
            console.print(r(f"Sampler: {sampling_text(report.sampler)}; {report.sampler.note}"))
    style = _DECISION_STYLE[report.decision]
    listed = [
        v
        for v in report.in_scope()
        if (v.critical and v.status in (Status.FAIL, Status.INCONCLUSIVE))
        or v.status in (Status.WARN, Status.KNOWN_ISSUE)
    ]
    console.print(
        f"[{style}]{report.decision.value}[/] run {report.run_id} "
        f"(exit {report.exit_code}, {report.elapsed_s:.1f} s): {status_counts(report)}"
    )
    for v in listed:
        console.print(f"  {v.status.value}: {r(v.check_id)}: {r(v.summary)}", soft_wrap=True)
