r"""Redaction masks values, never rendered text: for any username and password, every artefact
is well formed and holds no form of the password (issue 9, item 1).

The old redactor rewrote the serialised JSON and treated the username as a secret, so an
ordinary username such as `mytrader`, `status` or `check_id` corrupted report.json (a
ValueError or KeyError and no verdict), and a password with a quote or backslash survived in
its escaped form. Here the password is planted where real leaks happen (an echoed body, an
error message, a URL, an error kind), raw and in the forms other text gives it (JSON-,
Python-, HTML-escaped, percent-encoded), and the username where it belongs (evidence,
summaries); the artefacts are then checked for structure and for the password.

The absence check skips a form only where the same form is already part of the artefact
rendered for the same username and an unrelated password: a password such as `PASS` or
`check_id` is also the report's own vocabulary (a status, a key), and `mytrader\` appears by
itself in the JSON text of the username `mytrader` followed by a quote; no redactor can remove
either without breaking the document. Every other occurrence is a leak.
"""

from __future__ import annotations

import html
import io
import json
import sqlite3
import tempfile
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mytrader_ops.monitor.aggregate import Totals
from mytrader_ops.monitor.dashboard import JsonLines, PlainLines
from mytrader_ops.monitor.windows import WindowSummary
from mytrader_ops.redaction import MIN_SECRET_LEN, Redactor, escaped_forms
from mytrader_ops.report.files import write_reports
from mytrader_ops.report.model import LatencyStream, RunReport, from_json, redact_report, to_json
from mytrader_ops.report.terminal import Progress, make_console, render
from mytrader_ops.stats import LatencyHistogram
from mytrader_ops.store import RunStore
from mytrader_ops.verdict import Decision, Measurement, Status, Verdict

SCHEMA_WORDS = [
    "mytrader",
    "mytrader-ops",
    "status",
    "check_id",
    "schema",
    "verdicts",
    "summary",
    "decision",
    "PASS",
    "FAIL",
    "NO-GO",
    "true",
    "false",
    "null",
    "NaN",
    "report/v1",
    '"status": "',
    "<td>",
    "</testcase>",
    "&amp;",
    "[/]",
    "[bold]",
    "| x |",
    "\\",
    '"',
    "'",
    "\n",
    "é",
    "日本",
    "😀",
    "%20",
    "${X}",
]
pieces = st.one_of(st.sampled_from(SCHEMA_WORDS), st.text(min_size=1, max_size=6))
usernames = st.one_of(
    st.sampled_from(SCHEMA_WORDS),
    st.lists(pieces, min_size=1, max_size=4).map("".join),
)
passwords = (
    st.lists(pieces, min_size=1, max_size=5)
    .map("".join)
    .filter(lambda p: len(p) >= MIN_SECRET_LEN and p.strip() == p and "\x00" not in p)
)
NEUTRAL_USER, NEUTRAL_PASSWORD = "plain-user", "Zk4-neutral-secret-71"


def _report(username: str, password: str) -> RunReport:
    hist = LatencyHistogram()
    for i in range(100):
        hist.record_ms(1 + i / 10)
    body = json.dumps({"username": username, "password": password})
    url = f"https://api.example/login?user={quote(username)}&pw={quote(password, safe='')}"
    lat = Measurement("p95 latency (/api/symbols)", 12.0, "ms", 100.0, "<=", 100, (10.0, 14.0))
    verdicts = (
        Verdict(
            "auth-flow",
            "Authentication works end to end",
            Status.PASS,
            f"logged in as {username}",
            evidence=(
                f"[ok] login (12.0 ms): HTTP 200 as {username}",
                f"[ok] body: {body}",
                f"[ok] echoed: {password}",
                f"[ok] html: {html.escape(password)}",
                f"[ok] repr: {password!r}",
                f"[ok] form: user={quote_plus(username)}&password={quote_plus(password)}",
            ),
        ),
        Verdict(
            "api-latency",
            "API latency",
            Status.FAIL,
            f"{lat.describe()}; request by {username} failed: password {password} rejected",
            criterion="API < 100 ms",
            measurements=(lat,),
            evidence=(f"GET {url}",),
        ),
    )
    stream = LatencyStream(
        "/api/symbols",
        "http",
        100,
        100,
        3,
        0,
        0,
        hist.summary(),
        {f"HTTP 401 for {username}": 2, f"OSError: {password}": 1},
    )
    return RunReport(
        run_id="20261202T000000Z-aaaaaa",
        tool_version="0.1.0",
        title="Go-live",
        env_name="staging",
        backend="https://api.example",
        frontend=None,
        started_at="2026-12-02T00:00:00.000Z",
        finished_at="2026-12-02T00:00:25.000Z",
        elapsed_s=25.0,
        decision=Decision.NO_GO,
        exit_code=1,
        verdicts=verdicts,
        streams=(stream,),
    )


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(f"/{tag}")


def _html_tags(text: str) -> list[str]:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return parser.tags


def _unescaped_pipes(line: str) -> int:
    return line.count("|") - line.count("\\|")


def _artefacts(username: str, password: str, tmp: Path) -> dict[str, str]:
    """Every output of validate and monitor for one run, as text."""
    redactor = Redactor()
    redactor.add(password)
    report = _report(username, password)
    out: dict[str, str] = {}
    for path in write_reports(report, tmp / "reports", redactor):
        out[path.name] = path.read_text(encoding="utf-8")
    term = io.StringIO()
    console = make_console(True, term)
    console.width = 10_000  # no wrapping: a wrapped password would hide a leak
    Progress(console, redactor, quiet=False)("auth-flow", f"login as {username}: {password}")
    render(report, console, redactor)
    out["terminal"] = term.getvalue()
    store = RunStore(tmp / "runs.db")
    store.save(redact_report(report, redactor))  # as validate stores it
    with sqlite3.connect(tmp / "runs.db") as conn:
        out["stored"] = "\n".join(row[0] for row in conn.execute("SELECT document FROM runs"))
    out["stored-reloaded"] = json.dumps(to_json(store.load("latest")), ensure_ascii=False)
    window = WindowSummary(
        index=1,
        start_s=0.0,
        end_s=30.0,
        requests=10,
        errors=1,
        error_kinds={f"OSError: {password}": 1, f"HTTP 401 for {username}": 1},
        auth="failed",
        auth_detail=f"login as {username} refused; password {password}",
        hub_failures={f"connect: token {password}": 1},
    )
    lines, plain = io.StringIO(), io.StringIO()
    totals = Totals(critical_span_s=1800, p95_limit_ms=100, start_s=0.0)
    JsonLines("w-1", lines, redactor).window(window, (), totals, ())
    PlainLines(plain, redactor).window(window, (), totals, ())
    out["monitor-json"] = lines.getvalue()
    out["monitor-plain"] = plain.getvalue()
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(username=usernames, password=passwords)
def test_every_artefact_is_well_formed_and_holds_no_form_of_the_password(
    username: str, password: str
) -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        got = _artefacts(username, password, Path(a))
        baseline = _artefacts(NEUTRAL_USER, NEUTRAL_PASSWORD, Path(b))
    with tempfile.TemporaryDirectory() as c:
        same_user = _artefacts(username, NEUTRAL_PASSWORD, Path(c))

    # Well formed, with the same structure as a run with a plain username and password.
    doc = json.loads(got["report.json"])
    back = from_json(doc)
    assert [v.check_id for v in back.verdicts] == ["auth-flow", "api-latency"]
    assert back.decision is Decision.NO_GO
    assert [v.status for v in back.verdicts] == [Status.PASS, Status.FAIL]
    junit = ET.fromstring(got["junit.xml"])  # noqa: S314 - our own output
    assert [c.get("name") for c in junit.iter("testcase")] == [
        c.get("name")
        for c in ET.fromstring(baseline["junit.xml"]).iter("testcase")  # noqa: S314
    ]
    assert _html_tags(got["report.html"]) == _html_tags(baseline["report.html"])
    md, md0 = got["report.md"].splitlines(), baseline["report.md"].splitlines()
    assert len(md) == len(md0)
    assert [_unescaped_pipes(line) for line in md] == [_unescaped_pipes(line) for line in md0]
    assert json.loads(got["stored"])["schema"] == "mytrader-ops.report/v1"
    window = json.loads(got["monitor-json"])
    assert window["schema"] == "mytrader-ops.monitor-window/v1"
    assert window["window"]["auth"] == "failed"
    assert got["terminal"].count("\n") == baseline["terminal"].count("\n")

    # The username is not a secret: it stays readable wherever the password is not in it.
    if not any(f in username for f in escaped_forms(password)):
        assert any(username in e for e in back.verdict("auth-flow").evidence)  # type: ignore[union-attr]

    # No form of the password anywhere, except where it is the report's own vocabulary.
    for name, text in got.items():
        for form in escaped_forms(password):
            if len(form) < MIN_SECRET_LEN or form in same_user[name]:
                continue
            assert form not in text, f"{name} holds {form!r}"
