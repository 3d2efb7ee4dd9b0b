"""The real command in a subprocess: usage errors exit 2 without a traceback, and a monitor
killed with SIGKILL continues the same watch with --resume (same start, same deadline,
nothing measured lost, the windows it missed recorded as missing and counted blind)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mytrader_ops.monitor.store import WatchStore
from tests.monitor.conftest import PASSWORD, USER, monitor_argv, run_monitor_cli
from tests.support.live import LiveServer, cli_env, scaled
from tests.support.locks import env_locked

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0s"], "duration"),
        (["--interval", "soon"], "invalid duration"),
        (["--interval", "10s", "--duration", "5s"], "--interval"),
        (["--phase", "forever"], "--phase"),
        (["--resume"], "nothing to resume"),
        (["--interval", "30s", "--rate", "0.1"], "--rate"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_monitor_cli(
        "--target", "http://127.0.0.1:9", "--state-dir", str(tmp_path), *args, env=cli_env()
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def _lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[dict[str, object]]:
    assert proc.stdout is not None
    docs: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while len(docs) < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        docs.append(json.loads(line))
    return docs


def test_resume_after_sigkill_continues_the_same_watch(server: LiveServer, tmp_path: Path) -> None:
    env = cli_env(MYTRADER_OPS_USERNAME=USER, MYTRADER_OPS_PASSWORD=PASSWORD)
    state = tmp_path / "state"
    common = ["--target", server.url, "--state-dir", str(state), "--json"]
    first = subprocess.Popen(
        monitor_argv(*common, "--interval", "1s", "--duration", "10s", "--rate", "30"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        before = _lines(first, 3, scaled(30))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert first.stdout is not None
        first.stdout.close()
    assert len(before) == 3
    watch_id = before[0]["watch_id"]
    time.sleep(1.5)  # the monitor is down for at least one window
    store = WatchStore(state / "monitor.db")
    rec, kept = store.load(str(watch_id))
    assert [w.index for w in kept][:3] == [0, 1, 2]  # every reported window was checkpointed
    assert rec.status == "running"

    done = run_monitor_cli(
        *common, "--resume", "--report-dir", str(tmp_path / "report"), env=env, timeout=60
    )
    after = [json.loads(line) for line in done.stdout.splitlines()]
    assert {d["watch_id"] for d in after} == {watch_id}
    indexes = [d["window"]["index"] for d in after]  # type: ignore[index]
    # every window after the last checkpoint, once each, in order, to the end of the watch
    assert indexes[0] > 2
    assert indexes == list(range(indexes[0], 10)), indexes
    assert any(d["window"]["missing"] for d in after)  # type: ignore[index]
    rec2, windows = store.load(str(watch_id))
    assert (rec2.start_s, rec2.deadline_s) == (rec.start_s, rec.deadline_s)
    assert [w.index for w in windows] == list(range(len(windows)))  # no window lost
    assert len(windows) == 10
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["run_id"] == watch_id
    assert "Resuming watch" in done.stderr
    # The windows missed while the monitor was down (at least the one it was measuring and
    # the 1.5 s it stayed down: 2 of 10) are watched and blind for every trigger: coverage at
    # most 80%, under the 90% floor, so no trigger had enough evidence to end with exit 0.
    missed = sum(w.missing for w in windows)
    assert missed >= 2, [w.index for w in windows if w.missing]
    assert done.returncode == 3, done.stderr
    assert rec2.status == "ended"
    assert report["exit_code"] == 3
    for entry in after[-1]["triggers"]:  # type: ignore[union-attr]
        assert entry["windows_watched"] == 10, entry
        assert entry["windows_with_evidence"] <= 10 - missed, entry
        assert entry["longest_blind_windows"] >= missed, entry
        assert entry["evidence_sufficient"] is False, entry
    verdicts = {v["check_id"]: v for v in report["verdicts"]}
    auth = verdicts["rollback-auth-failing"]
    assert auth["status"] == "INCONCLUSIVE", auth
    assert auth["summary"].startswith("insufficient evidence: coverage"), auth
    assert "insufficient evidence: " in done.stderr.splitlines()[-1]


def test_sigterm_stops_cleanly_and_leaves_the_watch_resumable(
    server: LiveServer, tmp_path: Path
) -> None:
    env = cli_env(MYTRADER_OPS_USERNAME=USER, MYTRADER_OPS_PASSWORD=PASSWORD)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        monitor_argv(
            "--target",
            server.url,
            "--state-dir",
            str(state),
            "--json",
            "--interval",
            "1s",
            "--duration",
            "30s",
            "--rate",
            "30",
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        got = _lines(proc, 2, scaled(30))
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=scaled(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert len(got) == 2
    assert proc.returncode == 130, err
    assert "--resume" in err
    assert "Traceback" not in err
    rec = WatchStore(state / "monitor.db").latest_running(server.url, "command line")
    assert rec is not None
    assert rec.watch_id == got[0]["watch_id"]


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigkill_mid_auto_rollback_then_resume_finishes_that_rollback(
    server: LiveServer, tmp_path: Path
) -> None:
    """The monitor fires, starts its rollback, dies in step 2 of 3; `--resume` acts on the
    recorded firing at once and finishes the same rollback (same id) without redoing step 1."""
    first_log, started, last_log = tmp_path / "first", tmp_path / "slow-started", tmp_path / "last"
    append = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
    slow = "import sys, time; open(sys.argv[1], 'a').write('x\\n'); time.sleep(float(sys.argv[2]))"

    def step(name: str, code: str, *args: str) -> dict[str, object]:
        return {"name": name, "kind": "command", "argv": [sys.executable, "-c", code, *args]}

    steps = [
        step("first", append, str(first_log), "{to_version}"),
        {**step("slow", slow, str(started), str(scaled(3.0))), "timeout_s": 120},
        step("last", append, str(last_log), "{to_version}"),
    ]
    plan = tmp_path / "plan.yaml"
    plan.write_text(json.dumps({"name": "auto", "steps": steps}))  # JSON is YAML
    env = cli_env(MYTRADER_OPS_USERNAME=USER, MYTRADER_OPS_PASSWORD=PASSWORD)
    state = tmp_path / "state"
    common = ["--target", server.url, "--state-dir", str(state), "--json"]
    rollback = ["--auto-rollback", "--rollback-plan", str(plan), "--rollback-env", "staging"]
    rollback += ["--to", "v1"]
    server.set_faults(error_rate={"/api": 0.5})
    try:
        proc = subprocess.Popen(
            monitor_argv(
                *common, "--interval", "1s", "--duration", "60s", "--rate", "30", *rollback
            ),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(started.exists, 60, "the rollback's step 2 to start")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    finally:
        server.clear_faults()
    audit = state / "rollback-audit.jsonl"
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(r["event"], r.get("step")) for r in records] == [
        ("rollback-start", None),
        ("step-start", 1),
        ("step-end", 1),
        ("step-start", 2),
    ]
    watch_id = records[0]["evidence"]["watch_id"]
    assert records[0]["rollback_id"] == f"rb-{watch_id}"
    _wait(lambda: not env_locked(state, "staging"), 30, "the orphaned step to release the lock")

    done = run_monitor_cli(
        *common,
        "--resume",
        *rollback,
        "--report-dir",
        str(tmp_path / "report"),
        env=env,
        timeout=90,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # fired; rolled back and verified
    assert "Traceback" not in done.stderr
    assert first_log.read_text().splitlines() == ["v1"]  # step 1 was not repeated
    assert last_log.read_text().splitlines() == ["v1"]
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {r["rollback_id"] for r in records} == {f"rb-{watch_id}"}  # one rollback, resumed
    assert records[-1]["event"] == "rollback-end"
    assert records[-1]["outcome"] == "rolled-back"
    rec, _windows = WatchStore(state / "monitor.db").load(str(watch_id))
    assert rec.status == "fired"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["run_id"] == watch_id
