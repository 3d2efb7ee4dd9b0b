"""junit.xml: one testcase per check, for CI dashboards. Failures carry value vs threshold."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mytrader_ops.report.model import RunReport, status_counts
from mytrader_ops.verdict import Status

# Characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates, U+FFFE/FFFF):
# a target's error text may hold them, and one would make the whole file unreadable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def render_junit(report: RunReport) -> str:
    scoped = report.in_scope()
    suite = ET.Element(
        "testsuite",
        {
            "name": _x(f"mytrader-ops validate: {report.title}"),
            "tests": str(len(report.verdicts)),
            "failures": str(sum(1 for v in scoped if v.status is Status.FAIL)),
            "errors": "0",
            "skipped": str(
                sum(
                    1
                    for v in report.verdicts
                    if not v.in_scope
                    or (
                        v.status is not Status.FAIL
                        and v.status is not Status.PASS
                        and v.status is not Status.WARN
                    )
                )
            ),
            "time": f"{report.elapsed_s:.3f}",
            "timestamp": report.started_at,
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("decision", report.decision.value),
        ("checks", status_counts(report)),
        ("run_id", report.run_id),
        ("environment", report.env_name),
        ("backend", report.backend),
    ):
        ET.SubElement(props, "property", {"name": name, "value": _x(value)})
    for v in report.verdicts:
        case = ET.SubElement(
            suite, "testcase", {"classname": f"validate.{v.component}", "name": v.check_id}
        )
        text = _x("\n".join([v.summary, *v.evidence]))
        if not v.in_scope:
            ET.SubElement(case, "skipped", {"message": "not in scope"})
        elif v.status is Status.FAIL:
            el = ET.SubElement(case, "failure", {"message": _x(v.summary), "type": "FAIL"})
            el.text = text
        elif v.status in (Status.INCONCLUSIVE, Status.KNOWN_ISSUE):
            ET.SubElement(case, "skipped", {"message": _x(f"{v.status.value}: {v.summary}")})
        out = ET.SubElement(case, "system-out")
        out.text = f"WARN: {text}" if v.in_scope and v.status is Status.WARN else text
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
