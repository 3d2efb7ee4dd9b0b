"""The real end-to-end loop on one machine: a good release runs, a bad one is deployed,
the error-rate trigger fires on measured windows, and the shipped local plan puts the good
release back by restarting the server process; verify (the smoke suite) passes and the
audit log tells the story."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mytrader_ops.resources import data_dir
from mytrader_ops.triggers import TriggerBoard, Window, default_triggers
from tests.rollback.conftest import REPO, audit_records, run_cli
from tests.support.live import add_user, scaled, server_env

PASSWORD = "monitor-password-1234"


def _release(env: dict[str, str], base: Path, name: str) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mytrader_ops.rollback.localrelease",
            "deploy",
            "--dir",
            str(base),
            "--release",
            name,
            "--timeout",
            str(scaled(60)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(90),
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    info = json.loads((base / "running.json").read_text())
    assert isinstance(info, dict)
    return info


def _window(url: str, n: int) -> Window:
    """A minimal monitor window: n sequential requests, their error rate."""
    start = time.time()
    errors = 0
    for _ in range(n):
        try:
            with urllib.request.urlopen(url + "/api/symbols", timeout=scaled(5)) as resp:
                resp.read()
        except (urllib.error.URLError, OSError):
            errors += 1
    return Window(start, time.time(), samples=n, error_rate=errors / n)


@pytest.mark.slow
def test_bad_release_is_detected_rolled_back_and_verified(tmp_path: Path) -> None:
    base = tmp_path / "releases"
    (base / "releases").mkdir(parents=True)
    (base / "releases" / "good.json").write_text(json.dumps({"env": {}}))
    bad = {"error_rate": {"/api": 0.6}}
    (base / "releases" / "bad.json").write_text(
        json.dumps({"env": {"MYTRADER_FAULT_PROFILE": json.dumps(bad)}})
    )
    env = server_env(tmp_path / "data")
    env["PYTHONPATH"] = str(REPO)
    add_user(env, "ops-monitor", PASSWORD)
    try:
        good = _release(env, base, "good")
        url = str(good["url"])
        deployed = _release(env, base, "bad")
        assert deployed["url"] == url  # same address, new process
        assert deployed["pid"] != good["pid"]

        board = TriggerBoard.start(default_triggers())
        for _ in range(2):
            board = board.advance(_window(url, 60))
        assert [t.trigger_id for t in board.firing] == ["error-rate-above-10pct"]

        plan = data_dir("rollback") / "local-mytrader.yaml"
        run_env = {**env, "MYTRADER_OPS_USERNAME": "ops-monitor", "MYTRADER_OPS_PASSWORD": PASSWORD}
        state = tmp_path / "state"
        done = run_cli(
            "--plan",
            str(plan),
            "--to",
            "good",
            "--reason",
            board.reason(),
            "--evidence",
            json.dumps(board.evidence()),
            "--set",
            f"release_dir={base}",
            "--set",
            f"target={url}",
            "--state-dir",
            str(state),
            "--yes",
            env=run_env,
            timeout=240,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert PASSWORD not in done.stdout + done.stderr

        running = json.loads((base / "running.json").read_text())
        assert running["release"] == "good"
        assert running["pid"] != deployed["pid"]  # the process really restarted
        assert _window(url, 40).error_rate == 0.0

        records = audit_records(state / "rollback-audit.jsonl")
        start = records[0]
        assert start["event"] == "rollback-start"
        assert "error-rate-above-10pct" in str(start["reason"])
        evidence = start["evidence"]
        assert isinstance(evidence, dict)
        assert evidence["all"]["error-rate-above-10pct"] == "firing"  # type: ignore[index]
        ends = [(r["name"], r["outcome"]) for r in records if r["event"] == "step-end"]
        assert ends == [("deploy-previous", "ok"), ("wait-ready", "ok"), ("verify", "ok")]
        assert records[-1]["outcome"] == "rolled-back"
        assert PASSWORD not in (state / "rollback-audit.jsonl").read_text()
    finally:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mytrader_ops.rollback.localrelease",
                "stop",
                "--dir",
                str(base),
            ],
            env=env,
            capture_output=True,
            timeout=scaled(60),
            cwd=REPO,
        )
