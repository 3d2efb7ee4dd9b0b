"""What `validate` writes on a GitHub runner, wherever the runner's files are named.

GitHub sets `GITHUB_STEP_SUMMARY` and `GITHUB_OUTPUT` for every step; `validate` appends
its report.md to the first (the job's summary page) and `decision=...`, `exit-code=...`,
`run-id=...` (and `report-dir=...` with `--report-dir`) to the second, so a plain `run:`
step can branch on `steps.<id>.outputs.decision` without the action. A usage error writes
`decision=ERROR` and `exit-code=2`. Writing these files never changes the verdict or the exit
code: a problem is a warning. The summary is capped below GitHub's 1 MiB per step.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from mytrader_ops.redaction import Redactor
from mytrader_ops.report.markdown import render_markdown
from mytrader_ops.report.model import RunReport, redact_report

SUMMARY_LIMIT = 1_000_000  # GitHub refuses a step summary over 1 MiB


def output_lines(values: Mapping[str, str]) -> str:
    """`name=value` lines; a value with a line break uses the heredoc form with a random
    delimiter, so no value can inject another output."""
    out = []
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            delim = f"ghadelimiter_{secrets.token_hex(8)}"
            out.append(f"{name}<<{delim}\n{value}\n{delim}\n")
        else:
            out.append(f"{name}={value}\n")
    return "".join(out)


def _append(path: str, text: str) -> str | None:
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        return f"cannot append to {path}: {exc.strerror}"
    return None


def write_outputs(values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return []
    problem = _append(path, output_lines(values))
    return [problem] if problem else []


def summary_text(report: RunReport, redactor: Redactor) -> str:
    text = render_markdown(redact_report(report, redactor))
    if len(text.encode()) > SUMMARY_LIMIT:
        cut = text.encode()[: SUMMARY_LIMIT - 200].decode(errors="ignore")
        text = cut + "\n\n_(report.md cut to fit GitHub's step summary; see the artefact)_\n"
    return text + "\n"


def publish_to_runner(
    report: RunReport,
    report_dir: Path | None,
    redactor: Redactor,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Append the summary and the outputs when the runner's variables are set; the problems."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        problem = _append(summary, summary_text(report, redactor))
        if problem:
            problems.append(problem)
    values = {
        "decision": report.decision.value,
        "exit-code": str(report.exit_code),
        "run-id": report.run_id,
    }
    if report_dir is not None:
        values["report-dir"] = str(report_dir)
    return problems + write_outputs(values, env)
