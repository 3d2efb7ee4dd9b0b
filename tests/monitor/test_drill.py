"""The end-to-end release drill as the README runs it: `scripts/drill`.

Good release v1 running -> bad v2 deployed (fault profile) -> monitor --auto-rollback fires
the error-rate trigger -> the plan really restarts v1 -> verify passes -> the audit log
tells the story. The drill checks all of that itself; this test runs it and reads what it
left behind."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.monitor.conftest import REPO
from tests.support.live import cli_env, scaled

pytestmark = pytest.mark.slow


def test_drill_rolls_a_bad_release_back(tmp_path: Path) -> None:
    base = tmp_path / "drill"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "drill"), "--dir", str(base)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=scaled(300),
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DRILL PASSED" in done.stdout
    records = [
        json.loads(line)
        for line in (base / "state" / "rollback-audit.jsonl").read_text().splitlines()
    ]
    events = [r["event"] for r in records]
    assert events[0] == "rollback-start"
    assert events[-1] == "rollback-end"
    start = records[0]
    assert re.match(
        r"monitor: error-rate-above-10pct: FIRING: error rate \d+\.\d% > 10\.0%; \d+ breaching",
        start["reason"],
    ), start["reason"]
    assert start["evidence"]["source"] == "mytrader-ops monitor --auto-rollback"
    # one rollback per watch: a resumed monitor continues this id rather than starting another
    assert start["rollback_id"] == f"rb-{start['evidence']['watch_id']}"
    assert records[-1]["outcome"] == "rolled-back"
    windows = [
        json.loads(line) for line in (base / "reports" / "monitor.jsonl").read_text().splitlines()
    ]
    fired = windows[-1]["triggers"]
    assert any(t["trigger"] == "error-rate-above-10pct" and t["state"] == "firing" for t in fired)
    report = json.loads((base / "reports" / "monitor" / "report.json").read_text())
    assert report["exit_code"] == 1
    assert "drill-password" not in (base / "reports" / "monitor" / "report.md").read_text()
