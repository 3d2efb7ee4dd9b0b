"""Pure comparison of two runs, check by check: status changes and measured-value changes,
then the regression judge's rows (computed by validate's baseline judge, rendered here)."""

from __future__ import annotations

from collections.abc import Sequence

from mytrader_ops.report.model import RunReport
from mytrader_ops.verdict import Status

JudgedRow = tuple[str, Status, str]  # stream, status, summary


def regression_section(rows: Sequence[JudgedRow], markdown: bool) -> str:
    """The judge's verdict per stream: a table for a pull-request comment, or plain lines."""
    if markdown:
        lines = ["", "### Regression judge (B against A)", "", "| stream | verdict | evidence |"]
        lines.append("|---|---|---|")
        for name, status, summary in rows:
            cell = summary.replace("|", "\\|")
            lines.append(f"| `{name}` | **{status.value}** | {cell} |")
    else:
        lines = ["", "Regression judge (B against A):"]
        lines += [f"  {status.value:<12} {name}: {summary}" for name, status, summary in rows]
    return "\n".join(lines) + "\n"


def diff_reports(a: RunReport, b: RunReport) -> str:
    lines = [
        f"# Run diff: {a.run_id} -> {b.run_id}",
        "",
        f"Decision: {a.decision.value} -> {b.decision.value}",
        "",
        "| check | status A | status B | measured A | measured B |",
        "|---|---|---|---|---|",
    ]
    ids = [v.check_id for v in a.verdicts] + [
        v.check_id for v in b.verdicts if a.verdict(v.check_id) is None
    ]
    for check_id in ids:
        va, vb = a.verdict(check_id), b.verdict(check_id)
        sa = "-" if va is None else (va.status.value if va.in_scope else "not in scope")
        sb = "-" if vb is None else (vb.status.value if vb.in_scope else "not in scope")
        ma = "-" if va is None else va.observed.replace("|", "\\|")
        mb = "-" if vb is None else vb.observed.replace("|", "\\|")
        marker = " **changed**" if sa != sb else ""
        lines.append(f"| `{check_id}`{marker} | {sa} | {sb} | {ma} | {mb} |")
    streams_a = {s.name: s for s in a.streams}
    if a.streams or b.streams:
        lines += [
            "",
            "| stream | p95 A ms | p95 B ms | p99 A ms | p99 B ms | errors A | errors B |",
            "|---|---|---|---|---|---|---|",
        ]
        for sb_ in b.streams:
            sa_ = streams_a.get(sb_.name)
            if sa_ is None:
                continue
            lines.append(
                f"| `{sb_.name}` | {sa_.summary.p95_ms:.2f} | {sb_.summary.p95_ms:.2f} | "
                f"{sa_.summary.p99_ms:.2f} | {sb_.summary.p99_ms:.2f} | "
                f"{sa_.errors} | {sb_.errors} |"
            )
    return "\n".join(lines) + "\n"
