"""Monitor exit codes 4 and 5: a trigger fires, the automatic rollback starts, and either its
step fails (4) or another rollback of the environment holds the lock (5). The real command
against a real server with an injected fault; the lock is a real flock held by this test."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path

import pytest

from mytrader_ops.rollback.lock import lock_path
from tests.monitor.conftest import PASSWORD, USER, run_monitor_cli
from tests.support.live import LiveServer, cli_env, scaled

pytestmark = pytest.mark.slow


def _watch_with_rollback(
    server: LiveServer, tmp: Path, plan_steps: list[object]
) -> tuple[int, str]:
    plan = tmp / "plan.yaml"
    plan.write_text(json.dumps({"name": "auto", "steps": plan_steps}))  # JSON is YAML
    env = cli_env(MYTRADER_OPS_USERNAME=USER, MYTRADER_OPS_PASSWORD=PASSWORD)
    server.set_faults(error_rate={"/api": 0.5})
    try:
        done = run_monitor_cli(
            "--target", server.url, "--state-dir", str(tmp / "state"), "--json",
            "--interval", "1s", "--duration", "60s", "--rate", "30",
            "--auto-rollback", "--rollback-plan", str(plan), "--rollback-env", "staging",
            "--to", "v1", env=env, timeout=scaled(120),
        )  # fmt: skip
    finally:
        server.clear_faults()
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


def test_a_failing_automatic_rollback_exits_4(server: LiveServer, tmp_path: Path) -> None:
    failing = {"name": "fails", "kind": "command", "argv": [sys.executable, "-c", "exit(7)"]}
    code, err = _watch_with_rollback(server, tmp_path, [failing])
    assert code == 4, err
    assert "TRIGGER FIRED error-rate" in err


def test_an_automatic_rollback_that_finds_the_lock_held_exits_5(
    server: LiveServer, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    step = {
        "name": "touch",
        "kind": "command",
        "argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
    }
    path = lock_path(tmp_path / "state", "staging")
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another rollback holds it
        code, err = _watch_with_rollback(server, tmp_path, [step])
    finally:
        os.close(fd)
    assert code == 5, err
    assert not marker.exists()  # nothing of the plan ran
