"""report.html: self-contained (inline CSS and SVG, no external requests), with latency charts.

Charts plot each stream's percentile spectrum HdrHistogram-style: the x axis spreads the tail
(1 / (1 - p)) so p99 and p99.9 are visible, the y axis is latency in ms, the dashed line the
limit of the check judging that stream.
"""

from __future__ import annotations

import math
from html import escape

from mytrader_ops.report.model import LatencyStream, RunReport, sampling_text, status_counts
from mytrader_ops.verdict import Status

_COLOUR = {
    Status.PASS: "#1a7f37",
    Status.WARN: "#9a6700",
    Status.FAIL: "#cf222e",
    Status.INCONCLUSIVE: "#8250df",
    Status.KNOWN_ISSUE: "#0969da",
}
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1f2328}
table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border:1px solid #d0d7de;
padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
.badge{color:#fff;border-radius:4px;padding:1px 6px;font-weight:600;white-space:nowrap}
.decision{font-size:1.6em;font-weight:700}.muted{color:#656d76}
svg{background:#fff;border:1px solid #d0d7de;margin:0.5em 0}
code{background:#f6f8fa;padding:0 3px}
"""


def _x(p: float) -> float:
    """Percentile to tail-spreading x position: log10(1 / (1 - p)), capped at p99.99."""
    q = min(p, 99.99) / 100
    return math.log10(1 / (1 - q))


def latency_chart(
    stream: LatencyStream, limit_ms: float | None, width: int = 520, height: int = 220
) -> str:
    points = [(p, v) for p, v in stream.summary.spectrum if not math.isnan(v)]
    if not points:
        return f'<p class="muted">{escape(stream.name)}: no latency samples.</p>'
    pad_l, pad_b, pad_t, pad_r = 60, 34, 18, 34
    x_max = _x(99.99)
    data_max = max(v for _, v in points) or 1.0
    # Scale to the data; show the limit line only when it is within 3x of the data, else say
    # where it is (a flat line under a distant limit shows nothing).
    limit_on_chart = limit_ms is not None and limit_ms <= 3 * data_max
    top = max(data_max, limit_ms if limit_on_chart and limit_ms is not None else 0.0)
    y_max = top * 1.15

    def sx(p: float) -> float:
        return pad_l + (width - pad_l - pad_r) * _x(p) / x_max

    def sy(v: float) -> float:
        return height - pad_b - (height - pad_b - pad_t) * v / y_max

    line = " ".join(f"{sx(p):.1f},{sy(v):.1f}" for p, v in points)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="latency by percentile for {escape(stream.name)}">',
        f'<text x="{pad_l}" y="12" font-size="12">{escape(stream.name)} ({stream.kind}, '
        f"n={stream.summary.count})</text>",
        f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" '
        'stroke="#888"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#888"/>',
    ]
    for p in (0.0, 50.0, 90.0, 99.0, 99.9, 99.99):
        parts.append(
            f'<text x="{sx(p):.1f}" y="{height - pad_b + 14}" font-size="10" '
            f'text-anchor="middle">p{p:g}</text>'
        )
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        v = top * frac
        parts.append(
            f'<text x="{pad_l - 4}" y="{sy(v) + 3:.1f}" font-size="10" text-anchor="end">'
            f"{v:.3g} ms</text>"
            f'<line x1="{pad_l}" y1="{sy(v):.1f}" x2="{width - pad_r}" y2="{sy(v):.1f}" '
            'stroke="#eee"/>'
        )
    if limit_ms is not None and not limit_on_chart:
        parts.append(
            f'<text x="{width - pad_r}" y="{pad_t + 10}" font-size="10" text-anchor="end" '
            f'fill="#1a7f37">limit {limit_ms:g} ms, above this chart</text>'
        )
    if limit_ms is not None and limit_on_chart:
        parts.append(
            f'<line x1="{pad_l}" y1="{sy(limit_ms):.1f}" x2="{width - pad_r}" '
            f'y2="{sy(limit_ms):.1f}" stroke="#cf222e" stroke-dasharray="5,4"/>'
            f'<text x="{width - pad_r}" y="{sy(limit_ms) - 4:.1f}" font-size="10" '
            f'text-anchor="end" fill="#cf222e">limit {limit_ms:g} ms</text>'
        )
    parts.append(f'<polyline fill="none" stroke="#0969da" stroke-width="2" points="{line}"/>')
    for p, v in points:
        parts.append(
            f'<circle cx="{sx(p):.1f}" cy="{sy(v):.1f}" r="2.5" fill="#0969da">'
            f"<title>p{p:g}: {v:.2f} ms</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _badge(status: Status, in_scope: bool) -> str:
    if not in_scope:
        return '<span class="badge" style="background:#6e7781">NOT IN SCOPE</span>'
    return f'<span class="badge" style="background:{_COLOUR[status]}">{status.value}</span>'


def _limit_for(report: RunReport, stream: LatencyStream) -> float | None:
    for v in report.verdicts:
        for m in v.measurements:
            if m.unit == "ms" and m.threshold is not None and f"({stream.name})" in m.name:
                return m.threshold
    return None


def render_html(report: RunReport) -> str:
    e = escape
    rows = []
    for v in report.verdicts:
        evidence = "<br>".join(e(x) for x in v.evidence)
        label = f" <em>({e(v.label)})</em>" if v.label else ""
        rows.append(
            f'<tr id="check-{e(v.check_id)}"><td><code>{e(v.check_id)}</code>{label}<br>'
            f'<span class="muted">{e(v.criterion or v.title)}</span></td>'
            f"<td>{_badge(v.status, v.in_scope)}</td><td>{'yes' if v.critical else 'no'}</td>"
            f'<td>{e(v.summary)}<br><small class="muted">{evidence}</small></td></tr>'
        )
    charts = "".join(latency_chart(s, _limit_for(report, s)) for s in report.streams)
    stream_rows = "".join(
        f"<tr><td><code>{e(s.name)}</code></td><td>{s.kind}</td><td>{s.scheduled}</td>"
        f"<td>{s.responses}</td><td>{s.errors}</td><td>{s.late}</td><td>{s.dropped}</td>"
        f"<td>{s.summary.p50_ms:.2f}</td><td>{s.summary.p95_ms:.2f}</td>"
        f"<td>{s.summary.p99_ms:.2f}</td><td>{s.summary.max_ms:.2f}</td>"
        f"<td>{e(s.stop_reason)}</td></tr>"
        for s in report.streams
    )
    sampler = (
        f"<p>Sampler: {e(sampling_text(report.sampler))}; "
        f"{'valid' if report.sampler.valid else '<strong>INVALID</strong>'}: "
        f"{e(report.sampler.note)}</p>"
        if report.sampler
        else ""
    )
    colour = {"GO": "#1a7f37", "GO WITH KNOWN ISSUES": "#0969da", "NO-GO": "#cf222e"}.get(
        report.decision.value, "#8250df"
    )
    frontend = f", frontend {e(report.frontend)}" if report.frontend else ", no frontend given"
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    head_cells = "".join(
        f"<th>{h}</th>" for h in ("check", "status", "critical", "observed vs threshold, evidence")
    )
    stream_cells = "".join(
        f"<th>{h}</th>"
        for h in (
            "stream",
            "kind",
            "sent",
            "responses",
            "errors",
            "late",
            "dropped",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "stopped",
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>{e(report.title)}: {e(report.decision.value)}</title><style>{_CSS}</style></head>
<body>
<h1>{e(report.title)}</h1>
<p class="decision" style="color:{colour}">{e(report.decision.value)}</p>
<p>In-scope checks: {e(status_counts(report))}.</p>
<p class="muted">Run <code>{e(report.run_id)}</code>, {e(report.started_at)} to
{e(report.finished_at)} ({report.elapsed_s:.1f} s).
Environment <strong>{e(report.env_name)}</strong>: backend {e(report.backend)}{frontend}.
Exit code {report.exit_code}. Schema <code>{e(report.schema)}</code>.</p>
<h2>Checks</h2>
<table><tr>{head_cells}</tr>
{"".join(rows)}</table>
<h2>Latency (open model, from intended send time)</h2>
{sampler}
<table><tr>{stream_cells}</tr>{stream_rows}</table>
{charts}
</body></html>
"""
