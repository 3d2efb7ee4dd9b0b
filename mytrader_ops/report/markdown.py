"""report.md: the go/no-go document. Every tick points at its evidence (a check id anchor)."""

from __future__ import annotations

import re

from mytrader_ops.report.model import RunReport, sampling_text, status_counts
from mytrader_ops.verdict import Decision, Status, Verdict

_TICK = {
    Status.PASS: "[x]",
    Status.WARN: "[!]",
    Status.KNOWN_ISSUE: "[~]",
    Status.FAIL: "[ ]",
    Status.INCONCLUSIVE: "[?]",
}


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_TAG_START = re.compile(r"<(?=[A-Za-z!/?])")  # what could open an HTML tag or comment
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")  # what a viewer would read as an entity


def _esc(text: str) -> str:
    """A value made safe for one line of a table or list: no line breaks, no table pipes, no
    HTML (a target's `<!--` would hide the rest of the document in a PR comment)."""
    text = _ENTITY.sub("&amp;", _CONTROL.sub(" ", text))
    return _TAG_START.sub("&lt;", text).replace("|", "\\|")


def _link(v: Verdict) -> str:
    return f"[{v.check_id}](#check-{v.check_id})"


def _status(v: Verdict) -> str:
    return v.status.value if v.in_scope else "NOT IN SCOPE"


def _observed(v: Verdict) -> str:
    if not v.measurements:
        return _esc(v.summary)
    return _esc("; ".join(m.describe() for m in v.measurements))


def render_markdown(report: RunReport) -> str:
    out: list[str] = []
    add = out.append
    add(f"# {report.title}: {report.decision.value}\n")
    add(
        f"- Run `{report.run_id}`, {report.started_at} to {report.finished_at} "
        f"({report.elapsed_s:.1f} s), mytrader-ops {report.tool_version}"
    )
    add(
        f"- Environment **{report.env_name}**: backend {report.backend}"
        + (f", frontend {report.frontend}" if report.frontend else ", no frontend given")
    )
    add(f"- Suite: {', '.join(report.sources)}; report schema `{report.schema}`\n")

    add("## 1. Executive summary\n")
    blocking = [
        v
        for v in report.in_scope()
        if v.critical and v.status in (Status.FAIL, Status.INCONCLUSIVE)
    ]
    add(
        f"**Decision: {report.decision.value}** (exit code {report.exit_code}). "
        f"In-scope checks: {status_counts(report)}.\n"
    )
    if report.decision is Decision.GO:
        add("Every critical criterion in scope was measured in this run and met its threshold.\n")
    if blocking:
        add("Blocking findings:\n")
        for v in blocking:
            add(f"- **{v.status.value}** {_link(v)}: {_esc(v.summary)}")
        add("")
    advisory = [v for v in report.in_scope() if not v.critical]
    if advisory:
        add("Checks that cannot block this decision (`critical: false` in the suite):\n")
        for v in advisory:
            add(f"- {_link(v)} ({_esc(v.criterion or v.title)}): {_status(v)}")
        add("")
    warned = [v for v in report.in_scope() if v.status is Status.WARN]
    if warned:
        add("Warnings (seen working, degraded or marginal; they do not block):\n")
        for v in warned:
            add(f"- **WARN** {_link(v)}: {_esc(v.summary)}")
        add("")
    if report.decision is Decision.GO_WITH_KNOWN_ISSUES:
        add("Go is conditional on the known issues and mitigations in section 4.\n")
    add(
        "Confidence is stated as what was measured: sample counts and 95% intervals are given "
        "beside each statistic; no overall confidence percentage is claimed.\n"
    )

    add("## 2. Success criteria\n")
    add("| | criterion | check | status | measured vs target | critical |")
    add("|---|---|---|---|---|---|")
    for v in report.verdicts:
        if not v.in_scope:
            continue
        add(
            f"| {_TICK[v.status]} | {_esc(v.criterion or v.title)} | {_link(v)} | {_status(v)} "
            f"| {_observed(v)} | {'yes' if v.critical else 'no'} |"
        )
    add("")
    out_of_scope = report.out_of_scope()
    add("### Scope\n")
    if out_of_scope:
        add("Not in scope for this run (component not given); these do not change the decision:\n")
        for v in out_of_scope:
            add(f"- `{v.check_id}` ({v.component}): {_esc(v.title)}")
    else:
        add("Every check of the suite was in scope.")
    add("")

    add("## 3. Real-time features\n")
    add("| check | status | evidence |")
    add("|---|---|---|")
    for v in report.verdicts:
        if v.component == "hubs" or v.label:
            label = f" ({v.label})" if v.label else ""
            add(f"| {_link(v)}{label} | {_status(v)} | {_esc(v.summary)} |")
    add("")

    add("## 4. Known issues and mitigations\n")
    if report.known_issues:
        add("| check | ticket | waives | mitigation | expires | status in this run |")
        add("|---|---|---|---|---|---|")
        for k in report.known_issues:
            kv = report.verdict(k["check"])
            note = kv.known_issue if kv is not None else None
            state = "check not in suite" if kv is None else _status(kv)
            if note is not None and note.why_not:
                state += f" (not waived: {_esc(note.why_not)})"
            elif note is not None and note.applied and kv is not None:
                state += (
                    " (waived)" if "not measured" not in kv.summary else " (not measured, waived)"
                )
            waives = _esc(k.get("waives", "fail")) + (
                f", matching `{_esc(k['match'])}`" if k.get("match") else ""
            )
            left = ""
            if note is not None and note.days_left is not None:
                left = f" ({note.days_left} days left)" if note.days_left >= 0 else " (EXPIRED)"
            add(
                f"| `{k['check']}` | {_esc(k['ticket'])} | {waives} | {_esc(k['mitigation'])} | "
                f"{k['expires']}{left} | {state} |"
            )
    else:
        add("No known issues declared.")
    add("")

    add("## 5. Performance and reliability (measured vs target)\n")
    add("| stream | kind | sent | responses | errors | late | dropped | p50 | p95 | p99 | max |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for st in report.streams:
        lat = st.summary
        add(
            f"| `{_esc(st.name)}` | {st.kind} | {st.scheduled} | {st.responses} | {st.errors} | "
            f"{st.late} | {st.dropped} | {lat.p50_ms:.2f} | {lat.p95_ms:.2f} | {lat.p99_ms:.2f} | "
            f"{lat.max_ms:.2f} |"
        )
    if not report.streams:
        add("| (no load sampling in this suite) | | | | | | | | | | |")
    add("\nLatencies in ms, timed from each request's intended send time (open model).\n")
    if report.sampler is not None:
        valid = "valid" if report.sampler.valid else "**INVALID**"
        add(
            f"Sampler: {sampling_text(report.sampler)}; run {valid}: {_esc(report.sampler.note)}.\n"
        )
    stops = [st for st in report.streams if st.stop_reason]
    if stops:
        add(
            "Why sampling stopped (sequential: every sampled criterion is judged on an "
            "anytime-valid 95% confidence sequence):\n"
        )
        for st in stops:
            add(f"- `{_esc(st.name)}`: {_esc(st.stop_reason)}")
        add("")
    add("| criterion | check | status | measured | target |")
    add("|---|---|---|---|---|")
    for v in report.verdicts:
        for meas in v.measurements:
            if meas.threshold is None or not v.in_scope:
                continue
            add(
                f"| {_esc(v.criterion or v.title)} | {_link(v)} | {_status(v)} | "
                f"{_esc(meas.name)}: {_esc(meas.value_text())} | {_esc(meas.limit_text())} |"
            )
    add("")

    add("## 6. Readiness checklist and sign-off\n")
    for v in report.in_scope():
        add(f"- {_TICK[v.status]} {_esc(v.title)}: {_status(v)}, evidence {_link(v)}")
    add("")
    add("| role | name | decision | signature / date |")
    add("|---|---|---|---|")
    for so in report.sign_offs:
        add(f"| {_esc(so['role'])} | {_esc(so['name'])} | GO / NO-GO | |")
    add("")

    add("## 7. Rollback triggers\n")
    if report.rollback_triggers:
        for t in report.rollback_triggers:
            add(f"- `{t['id']}`: when {_esc(t['condition'])} -> {_esc(t['action'])}")
    else:
        add("None declared in the suite.")
    add("")

    add("## 8. Monitoring plan\n")
    if report.monitoring:
        add("| signal | threshold | window | source |")
        add("|---|---|---|---|")
        for mon in report.monitoring:
            add(
                f"| {_esc(mon['signal'])} | {_esc(mon['threshold'])} | {_esc(mon['window'])} | "
                f"{_esc(mon['source'])} |"
            )
    else:
        add("None declared in the suite.")
    add("")

    add("## 9. Evidence\n")
    for v in report.verdicts:
        add(f'<a id="check-{v.check_id}"></a>\n### {v.check_id}: {_status(v)}\n')
        add(
            f"{_esc(v.title)}. Critical: {'yes' if v.critical else 'no'}. "
            f"Component: {v.component}. Runbook: `runbooks/{v.check_id}.md`."
            + (f" Label: **{_esc(v.label)}**." if v.label else "")
        )
        add(f"\nResult: {_esc(v.summary)}\n")
        if v.known_issue is not None:
            ki = v.known_issue
            left = "EXPIRED" if ki.expired else f"{ki.days_left} days left"
            applied = "waived this run" if ki.applied else f"not applied: {_esc(ki.why_not)}"
            if not ki.applied and not ki.why_not:
                applied = "nothing to waive this run"
            add(
                f"Known issue {_esc(ki.ticket)} (expires {ki.expires}, {left}; waives "
                f"{', '.join(ki.waives)}; {applied}): {_esc(ki.mitigation)}\n"
            )
        for line in v.evidence:
            add(f"- {_esc(line)}")
        add("")
    return "\n".join(out) + "\n"
