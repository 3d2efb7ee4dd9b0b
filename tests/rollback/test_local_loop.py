"""The real end-to-end loop, through the one command that runs it
(`python -m mytrader_ops.rollback.demo`): a good release runs, a bad one is deployed, the
error-rate trigger fires on measured windows, and the shipped local plan puts the good
release back by restarting the server process; verify (the smoke suite) passes and the
audit log tells the story."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rollback.conftest import REPO, audit_records
from tests.support.live import cli_env, scaled


@pytest.mark.slow
def test_bad_release_is_detected_rolled_back_and_verified(tmp_path: Path) -> None:
    base = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "mytrader_ops.rollback.demo", "--dir", str(base)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=scaled(300),
        cwd=REPO,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "FIRING: error-rate-above-10pct: FIRING: error rate" in out
    assert "Rolled back local to good; verified." in out
    assert re.search(r"after the rollback: 0% errors", out), out
    password = (base / "monitor.password").read_text().strip()
    assert password not in out

    records = audit_records(base / "state" / "rollback-audit.jsonl")
    start = records[0]
    assert start["event"] == "rollback-start"
    # the reason is the board's: the firing trigger first, with what it measured
    assert str(start["reason"]).startswith("error-rate-above-10pct: FIRING: error rate"), start
    evidence = start["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["all"]["error-rate-above-10pct"] == "firing"
    firing = evidence["firing"][0]
    assert firing["evidence"][-1]["verdict"] == "breach"
    assert firing["evidence"][-1]["threshold"] == 0.1
    ends = [(r["name"], r["outcome"]) for r in records if r["event"] == "step-end"]
    assert ends == [("deploy-previous", "ok"), ("wait-ready", "ok"), ("verify", "ok")]
    restarted = re.search(
        r"stopped release bad \(pid (\d+)\); started release good \(pid (\d+)\)",
        str(records[2]["output"]),
    )
    assert restarted is not None, records[2]
    assert restarted.group(1) != restarted.group(2)  # the process really restarted
    assert records[-1]["outcome"] == "rolled-back"
    assert password not in (base / "state" / "rollback-audit.jsonl").read_text()
    assert not (base / "running.json").exists()  # the demo stopped its server
    bad = json.loads((base / "releases" / "bad.json").read_text())["env"]
    assert json.loads(bad["MYTRADER_FAULT_PROFILE"])["error_rate"]  # the bad release errs
    assert json.loads((base / "releases" / "good.json").read_text()) == {"env": {}}
