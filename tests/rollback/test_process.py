"""Step processes: C5 (argv, no shell) and C6 (timeout kills the whole process group)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mytrader_ops.rollback.process import group_alive, run_process
from tests.rollback.conftest import PY, py_step
from tests.support.live import scaled


def _gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for a reaper (it runs no code)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] in ("Z", "X")


def _wait_for_file(path: Path, timeout: float) -> str:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


GRANDCHILD = """
import os, signal, subprocess, sys, time
pidfile = sys.argv[1]
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
open(pidfile, "w").write(str(child.pid))
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(600)
"""


def test_c6_timeout_kills_grandchild_that_ignores_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    result = run_process(
        [*py_step(GRANDCHILD), str(pidfile)], timeout_s=scaled(1.5), grace_s=scaled(0.5)
    )
    elapsed = time.monotonic() - started
    assert result.timed_out
    grandchild = int(_wait_for_file(pidfile, 1))
    deadline = time.monotonic() + scaled(3)
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(grandchild), "the grandchild survived the step's timeout"
    assert elapsed < scaled(1.5) + scaled(0.5) + scaled(3)


def test_leftover_background_process_is_ended_after_a_normal_exit(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    code = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(str(child.pid))
print("launched")
"""
    result = run_process([*py_step(code), str(pidfile)], timeout_s=scaled(10), grace_s=1)
    assert result.exit_code == 0
    assert result.leftovers_killed
    assert "launched" in result.output
    assert _gone(int(pidfile.read_text()))


def test_c5_shell_metacharacters_reach_the_program_as_one_argument(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"x; $(touch {marker}) `touch {marker}` && touch {marker}"
    code = "import json, sys; print(json.dumps(sys.argv[1:]))"
    result = run_process([*py_step(code), hostile, "${HOME}"], timeout_s=scaled(10), grace_s=1)
    assert result.exit_code == 0
    import json

    assert json.loads(result.output) == [hostile, "${HOME}"]
    assert not marker.exists()


def test_missing_program_is_a_failed_start_not_a_crash() -> None:
    result = run_process(["/nonexistent/deployctl", "x"], timeout_s=1, grace_s=0)
    assert result.exit_code is None
    assert result.error is not None
    assert "not found" in result.error


def test_exit_code_and_output_are_kept(tmp_path: Path) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = run_process(py_step(code), timeout_s=scaled(10), grace_s=1)
    assert result.exit_code == 3
    # both streams, one line each (their order is the child's buffering, not ours)
    assert sorted(result.output.splitlines()) == ["err", "out"], result.output
    assert not result.timed_out


def test_group_alive_sees_only_live_members() -> None:
    assert group_alive(os.getpgrp())
    assert not group_alive(2**22 + 12345)


def test_argv0_is_run_as_given() -> None:
    """The step's program is the path it names (no shell, no PATH search for an absolute one):
    the interpreter the tests pass is the one that runs."""
    result = run_process(
        py_step("import sys; print(sys.executable)"), timeout_s=scaled(10), grace_s=1
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == PY
