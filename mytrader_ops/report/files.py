"""Write every report artefact into a directory: report.md, report.json, junit.xml, report.html."""

from __future__ import annotations

import os
from pathlib import Path

from mytrader_ops.redaction import Redactor
from mytrader_ops.report.html import render_html
from mytrader_ops.report.junit import render_junit
from mytrader_ops.report.markdown import render_markdown
from mytrader_ops.report.model import RunReport, dumps, redact_report

ARTEFACTS = ("report.md", "report.json", "junit.xml", "report.html")


def write_reports(report: RunReport, directory: Path, redactor: Redactor) -> list[Path]:
    """Render and write all artefacts atomically, from a report whose values are redacted."""
    directory.mkdir(parents=True, exist_ok=True)
    report = redact_report(report, redactor)
    rendered = {
        "report.md": render_markdown(report),
        "report.json": dumps(report) + "\n",
        "junit.xml": render_junit(report),
        "report.html": render_html(report),
    }
    written = []
    for name, text in rendered.items():
        path = directory / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written
