"""The real command in subprocesses: C4 canary, C7 lock, C8 dry-run and SIGKILL mid-plan,
idempotent re-runs, confirmation and exit codes."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.rollback.conftest import audit_records, py_step, rollback_argv, run_cli
from tests.support.live import cli_env, scaled
from tests.support.locks import env_locked

PlanWriter = Callable[[dict[str, object]], Path]
APPEND = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
CANARY = "canary-7f3a9c-do-not-leak"


def append_step(name: str, path: Path, text: str = "{to_version}") -> dict[str, object]:
    return {"name": name, "kind": "command", "argv": [*py_step(APPEND), str(path), text]}


def sleep_step(name: str, seconds: float, marker: Path) -> dict[str, object]:
    code = (
        "import sys, time; open(sys.argv[1], 'a').write('started\\n'); "
        "time.sleep(float(sys.argv[2]))"
    )
    return {
        "name": name,
        "kind": "command",
        "argv": [*py_step(code), str(marker), str(seconds)],
        "timeout_s": 120,
    }


def held_step(name: str, marker: Path, release: Path) -> dict[str, object]:
    """A step that says it started, then runs until the test creates ``release``: the test,
    not the clock, decides when it ends."""
    code = (  # ends by itself after 10 minutes should a failed test never release it
        "import os, sys, time; open(sys.argv[1], 'a').write('started\\n')\n"
        "end = time.monotonic() + 600\n"
        "while not os.path.exists(sys.argv[2]) and time.monotonic() < end:\n"
        "    time.sleep(0.02)"
    )
    return {
        "name": name,
        "kind": "command",
        "argv": [*py_step(code), str(marker), str(release)],
        "timeout_s": 120,
    }


def base_args(plan: Path, state: Path, *extra: str) -> list[str]:
    return [
        "--plan",
        str(plan),
        "--env",
        "staging",
        "--to",
        "v1",
        "--state-dir",
        str(state),
        *extra,
    ]


def test_c8_dry_run_has_zero_side_effects(tmp_path: Path, write_plan: PlanWriter) -> None:
    created = tmp_path / "created"
    plan = write_plan({"name": "p", "steps": [append_step("touch", created)]})
    state = tmp_path / "state"
    done = run_cli(*base_args(plan, state, "--dry-run", "--reason", "x; $(touch /tmp/pwned)"))
    assert done.returncode == 0, done.stderr
    assert "'x; $(touch /tmp/pwned)'" in done.stdout  # the exact argument, quoted
    assert "Dry run: nothing was run" in done.stdout
    assert not created.exists()
    assert not state.exists(), "dry run created the state directory (lock or audit log)"


def test_not_a_terminal_without_yes_refuses(tmp_path: Path, write_plan: PlanWriter) -> None:
    created = tmp_path / "created"
    plan = write_plan({"name": "p", "steps": [append_step("touch", created)]})
    done = run_cli(*base_args(plan, tmp_path / "state", "--reason", "r"))
    assert done.returncode == 2
    assert "--yes" in done.stderr
    assert not created.exists()
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "v1", "--yes"], "--reason is required"),
        (["--reason", "r", "--yes"], "pass --to VERSION"),
        (["--reason", "r", "--yes", "--to", "v1", "--set", "nope=1"], "not a variable"),
        (["--reason", "r", "--yes", "--to", "v1", "--set", "novalue"], "NAME=VALUE"),
    ],
)
def test_operator_typos_are_exit_2_without_traceback(
    tmp_path: Path, write_plan: PlanWriter, args: list[str], message: str
) -> None:
    plan = write_plan({"name": "p", "steps": [append_step("a", tmp_path / "f")]})
    done = run_cli("--plan", str(plan), "--env", "e", "--state-dir", str(tmp_path / "s"), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_plan_error_names_file_and_line(tmp_path: Path) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text(
        "name: p\nsteps:\n  - name: a\n    kind: command\n    argv: [x]\n    sudo: yes\n"
    )
    done = run_cli("--plan", str(plan), "--env", "e", "--reason", "r", "--dry-run")
    assert done.returncode == 2
    assert f"{plan}:6" in done.stderr
    assert "Traceback" not in done.stderr


def test_c4_canary_secret_never_in_audit_or_terminal(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    out = tmp_path / "received"
    echo = "import sys; print('token is', sys.argv[1]); open(sys.argv[2], 'w').write(sys.argv[1])"
    plan = write_plan(
        {
            "name": "p",
            "vars": {"token": "${ROLLBACK_CANARY}"},
            "steps": [
                {"name": "use", "kind": "command", "argv": [*py_step(echo), "{token}", str(out)]},
                {
                    "name": "fail",
                    "kind": "command",
                    "argv": [
                        *py_step("import sys; print('again', sys.argv[1]); sys.exit(1)"),
                        "{token}",
                    ],
                },
            ],
        }
    )
    state = tmp_path / "state"
    env = cli_env(ROLLBACK_CANARY=CANARY)
    done = run_cli(*base_args(plan, state, "--reason", "r", "--yes"), env=env)
    assert done.returncode == 4
    assert out.read_text() == CANARY  # the program received the real value
    audit = (state / "rollback-audit.jsonl").read_text()
    assert "token is ***" in audit
    for text in (audit, done.stdout, done.stderr):
        assert CANARY not in text
    dry = run_cli(*base_args(plan, state, "--reason", "r", "--dry-run"), env=env)
    assert "${ROLLBACK_CANARY}" in dry.stdout
    assert CANARY not in dry.stdout


def test_missing_secret_is_a_usage_error_before_anything_runs(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    plan = write_plan(
        {"name": "p", "steps": [{"name": "a", "kind": "command", "argv": ["echo", "${NOPE_X}"]}]}
    )
    done = run_cli(*base_args(plan, tmp_path / "s", "--reason", "r", "--yes"))
    assert done.returncode == 2
    assert "${NOPE_X}" in done.stderr
    assert not (tmp_path / "s").exists()


def test_failed_step_stops_the_plan_and_exits_4(tmp_path: Path, write_plan: PlanWriter) -> None:
    after = tmp_path / "after"
    plan = write_plan(
        {
            "name": "p",
            "steps": [
                {
                    "name": "notify",
                    "kind": "command",
                    "optional": True,
                    "argv": [*py_step("import sys; sys.exit(7)")],
                },
                {"name": "boom", "kind": "command", "argv": [*py_step("import sys; sys.exit(3)")]},
                append_step("after", after),
            ],
        }
    )
    state = tmp_path / "state"
    done = run_cli(*base_args(plan, state, "--reason", "r", "--yes"))
    assert done.returncode == 4, done.stdout + done.stderr
    assert "FAILED at step 2 (boom)" in done.stdout
    assert not after.exists()
    ends = [r for r in audit_records(state / "rollback-audit.jsonl") if r["event"] == "step-end"]
    assert [(r["step"], r["outcome"]) for r in ends] == [(1, "failed"), (2, "failed")]
    assert ends[1]["exit_code"] == 3


def test_step_timeout_is_timed_out_and_exit_4(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = write_plan(
        {
            "name": "p",
            "steps": [
                {
                    "name": "hang",
                    "kind": "command",
                    "timeout_s": scaled(0.5),
                    "kill_grace_s": 0.2,
                    "argv": [*py_step("import time; time.sleep(60)")],
                }
            ],
        }
    )
    state = tmp_path / "state"
    done = run_cli(*base_args(plan, state, "--reason", "r", "--yes"))
    assert done.returncode == 4
    assert "timed_out" in done.stdout
    end = [r for r in audit_records(state / "rollback-audit.jsonl") if r["event"] == "step-end"]
    assert end[0]["outcome"] == "timed_out"


def test_rerun_of_completed_rollback_is_safe(tmp_path: Path, write_plan: PlanWriter) -> None:
    log = tmp_path / "runs"
    plan = write_plan({"name": "p", "steps": [append_step("a", log), append_step("b", log)]})
    state = tmp_path / "state"
    first = run_cli(*base_args(plan, state, "--reason", "r", "--yes"))
    assert first.returncode == 0, first.stderr
    preview = run_cli(*base_args(plan, state, "--dry-run"))
    assert "A real run now: Already rolled back to v1" in preview.stdout
    second = run_cli(*base_args(plan, state, "--reason", "again", "--yes"))
    assert second.returncode == 0, second.stderr
    assert "Already rolled back to v1" in second.stdout
    assert log.read_text().splitlines() == ["v1", "v1"]  # each step ran once
    fresh = run_cli(*base_args(plan, state, "--reason", "newer deploy", "--yes", "--new"))
    assert fresh.returncode == 0
    assert len(log.read_text().splitlines()) == 4


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_c8_sigkill_mid_plan_then_rerun_resumes(tmp_path: Path, write_plan: PlanWriter) -> None:
    first_log = tmp_path / "first"
    started = tmp_path / "step-started"
    release = tmp_path / "release"
    last_log = tmp_path / "last"
    plan = write_plan(
        {
            "name": "p",
            "steps": [
                append_step("first", first_log),
                held_step("slow", started, release),
                append_step("last", last_log),
            ],
        }
    )
    state = tmp_path / "state"
    audit = state / "rollback-audit.jsonl"
    proc = subprocess.Popen(
        rollback_argv(*base_args(plan, state, "--reason", "errors 30%", "--yes")),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: started.exists(), 30, "step 2 to start")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        records = audit_records(audit)
        events = [(r["event"], r.get("step"), r.get("outcome")) for r in records]
        assert events == [
            ("rollback-start", None, None),
            ("step-start", 1, None),
            ("step-end", 1, "ok"),
            ("step-start", 2, None),
        ]
        assert records[0]["reason"] == "errors 30%"
        assert records[0]["who"] == {
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "pid": proc.pid,
        }
        # The orphaned step still holds the environment's lock (it runs until released): a
        # re-run cannot race it, and says why.
        blocked = run_cli(*base_args(plan, state, "--reason", "resume", "--yes"))
        assert blocked.returncode == 5, blocked.stdout + blocked.stderr
        assert "that process is gone, but a step it started is still running" in blocked.stderr
        assert last_log.exists() is False
    finally:
        release.touch()  # the orphaned step ends (also when an assertion failed)
    # Once the orphan is done, the re-run resumes at the interrupted step.
    _wait_for(
        lambda: (
            run_cli(*base_args(plan, state, "--dry-run")).returncode == 0
            and not env_locked(state, "staging")
        ),
        30,
        "the orphaned step to finish",
    )
    again = run_cli(*base_args(plan, state, "--reason", "resume", "--yes"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "step 2 was interrupted" in again.stdout
    assert first_log.read_text().splitlines() == ["v1"]  # step 1 not repeated
    assert last_log.read_text().splitlines() == ["v1"]
    ends = [r for r in audit_records(audit) if r["event"] == "rollback-end"]
    assert ends[-1]["outcome"] == "rolled-back"


@pytest.mark.slow
def test_c7_two_rollbacks_at_once_exactly_one_runs(tmp_path: Path, write_plan: PlanWriter) -> None:
    runs = tmp_path / "runs"
    plan = write_plan({"name": "p", "steps": [sleep_step("slow", scaled(2.0), runs)]})
    state = tmp_path / "state"
    argv = rollback_argv(*base_args(plan, state, "--reason", "r", "--yes"))
    procs = [
        subprocess.Popen(
            argv, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=scaled(60)) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 5], results
    loser = next(err for p, (_out, err) in zip(procs, results, strict=True) if p.returncode == 5)
    assert "another rollback of 'staging' is running: pid" in loser
    assert runs.read_text().splitlines() == ["started"]  # exactly one ran the step


@pytest.mark.slow
def test_sigterm_mid_step_ends_the_step_and_records_it(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    started = tmp_path / "started"
    plan = write_plan({"name": "p", "steps": [sleep_step("slow", 60, started)]})
    state = tmp_path / "state"
    proc = subprocess.Popen(
        rollback_argv(*base_args(plan, state, "--reason", "r", "--yes")),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: started.exists(), 30, "the step to start")
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=scaled(30))
    assert proc.returncode == 4
    assert "Re-run the same command to resume" in err
    assert not env_locked(state, "staging")  # the step's process group is gone with it
    records = audit_records(state / "rollback-audit.jsonl")
    assert [(r["event"], r.get("outcome")) for r in records][-2:] == [
        ("step-end", "failed"),
        ("rollback-end", "interrupted"),
    ]
    assert "interrupted by the operator" in str(records[-2]["detail"])


def test_unset_secret_of_an_optional_step_only_fails_that_step(
    tmp_path: Path, write_plan: PlanWriter
) -> None:
    ran = tmp_path / "ran"
    plan = write_plan(
        {
            "name": "p",
            "steps": [
                {"name": "notify", "kind": "http", "optional": True, "url": "${NOPE_HOOK}"},
                append_step("work", ran),
            ],
        }
    )
    state = tmp_path / "state"
    done = run_cli(*base_args(plan, state, "--reason", "r", "--yes"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning: ${NOPE_HOOK} is not set" in done.stdout
    assert ran.read_text() == "v1\n"
    ends = [r for r in audit_records(state / "rollback-audit.jsonl") if r["event"] == "step-end"]
    assert ends[0]["outcome"] == "failed"
    assert "unset ${NOPE_HOOK}" in str(ends[0]["detail"])


@pytest.mark.parametrize(("answer", "code"), [("n", 2), ("y", 0)])
def test_confirmation_is_asked_on_a_terminal(
    tmp_path: Path, write_plan: PlanWriter, answer: str, code: int
) -> None:
    import pty

    ran = tmp_path / "ran"
    plan = write_plan({"name": "p", "steps": [append_step("work", ran)]})
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        rollback_argv(*base_args(plan, tmp_path / "state", "--reason", "r")),
        env=cli_env(),
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(secondary)
    os.write(primary, f"{answer}\n".encode())
    out, err = proc.communicate(timeout=scaled(60))
    os.close(primary)
    assert proc.returncode == code, out + err
    assert "Roll back 'staging' now?" in out
    assert "[1] command work" in out  # the plan is shown before the question
    assert ran.exists() == (answer == "y")


def test_plan_is_never_silently_defaulted(tmp_path: Path) -> None:
    done = run_cli("--env", "staging", "--reason", "r", "--dry-run")
    assert done.returncode == 2
    assert "no plan" in done.stderr
    assert "kubernetes" in done.stderr  # the shipped plans are listed
    by_name = run_cli("--plan", "kubernetes", "--env", "staging", "--to", "41", "--dry-run")
    assert by_name.returncode == 0, by_name.stderr
    assert "--to-revision=41" in by_name.stdout
    from_env = run_cli(
        "--env",
        "staging",
        "--to",
        "41",
        "--dry-run",
        env=cli_env(MYTRADER_OPS_ROLLBACK_PLAN="kubernetes"),
    )
    assert from_env.returncode == 0, from_env.stderr
    missing = run_cli("--plan", str(tmp_path / "nope.yaml"), "--reason", "r", "--dry-run")
    assert missing.returncode == 2
    assert "not found" in missing.stderr
