"""In-process: lock, verify outcomes through the Verifier protocol, resume via run_rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mytrader_ops.redaction import Redactor
from mytrader_ops.rollback.errors import LockedError
from mytrader_ops.rollback.execute import Runners, make_verify_runner, run_wait
from mytrader_ops.rollback.lock import EnvironmentLock, lock_path
from mytrader_ops.rollback.service import RollbackRequest, resolve, run_rollback
from mytrader_ops.rollback.verify import SubprocessVerifier, VerifyRequest, VerifyResult
from tests.rollback.conftest import audit_records


def test_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    holder = {
        "pid": 1,
        "user": "alice",
        "host": "elsewhere",
        "started_at": "T",
        "rollback_id": "rb-1",
        "plan": "p",
    }
    with EnvironmentLock(tmp_path, "prod/eu", holder):
        assert json.loads(lock_path(tmp_path, "prod/eu").read_text())["user"] == "alice"
        with pytest.raises(LockedError) as info:
            EnvironmentLock(tmp_path, "prod/eu", {}).acquire()
        assert info.value.exit_code == 5
        assert "pid 1 by alice@elsewhere since T (rollback rb-1, plan p)" in str(info.value)
        with EnvironmentLock(tmp_path, "staging", {}):  # other environments are independent
            pass
    assert lock_path(tmp_path, "prod/eu").name == "prod_eu.lock"
    with EnvironmentLock(tmp_path, "prod/eu", {}):  # released
        pass


class FakeVerifier:
    def __init__(self, results: list[VerifyResult]) -> None:
        self.results = results
        self.requests: list[VerifyRequest] = []

    def __call__(self, request: VerifyRequest, redactor: Redactor) -> VerifyResult:
        self.requests.append(request)
        return self.results.pop(0)


NO_GO = VerifyResult(False, False, 1, "validate: NO-GO (5 checks)", "error-rate: FAIL: 23%")
GO = VerifyResult(True, False, 0, "validate: GO (5 checks)")


def _request(tmp_path: Path, plan_text: str) -> RollbackRequest:
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    return RollbackRequest(
        plan, "staging", "v1", "errors", tmp_path / "state", evidence={"trigger": "error-rate"}
    )


PLAN = """name: p
environments:
  staging: {target: "http://127.0.0.1:9"}
steps:
  - {name: work, kind: wait, seconds: 0}
  - {name: verify, kind: verify, suite: smoke, duration_s: 5}
"""


def test_verify_failure_fails_the_rollback_then_a_rerun_only_verifies(tmp_path: Path) -> None:
    request = _request(tmp_path, PLAN)
    verifier = FakeVerifier([NO_GO, GO])
    runners = Runners(verify=make_verify_runner(verifier))
    first = run_rollback(request, resolve(request), redactor=Redactor(), runners=runners)
    assert first.exit_code == 4
    assert "FAILED at step 2 (verify)" in first.message
    assert verifier.requests[0].target == "http://127.0.0.1:9"
    assert verifier.requests[0].suite == "smoke"
    assert verifier.requests[0].duration_s == 5
    second = run_rollback(request, resolve(request), redactor=Redactor(), runners=runners)
    assert second.exit_code == 0
    assert second.mode == "resume"
    records = audit_records(request.audit_file)
    assert records[0]["evidence"] == {"trigger": "error-rate"}
    ends = [(r["attempt"], r["step"], r["outcome"]) for r in records if r["event"] == "step-end"]
    assert ends == [(1, 1, "ok"), (1, 2, "failed"), (2, 1, "skipped"), (2, 2, "ok")]
    assert records[4]["output"] == "error-rate: FAIL: 23%"


def test_subprocess_verifier_reads_validates_exit_code() -> None:
    """Nothing listens on port 9: every check's connection is refused, which is a failure of
    the target seen (FAIL), not a check that could not look (INCONCLUSIVE): NO-GO, exit 1."""
    result = SubprocessVerifier()(
        VerifyRequest("http://127.0.0.1:9", "smoke", None, None, None, None, timeout_s=120),
        Redactor(),
    )
    assert not result.ok
    assert not result.timed_out
    assert result.exit_code == 1, result.output
    assert result.summary == "validate: NO-GO"
    assert "FAIL: backend-live: could not observe: ConnectError" in result.output


def test_a_runner_error_is_a_recorded_failed_step(tmp_path: Path) -> None:
    def broken(step: object, ctx: object) -> object:
        raise RuntimeError("bug in a runner")

    request = _request(tmp_path, PLAN)
    runners = Runners(wait=broken)  # type: ignore[arg-type]
    result = run_rollback(request, resolve(request), redactor=Redactor(), runners=runners)
    assert result.exit_code == 4
    ends = [r for r in audit_records(request.audit_file) if r["event"] == "step-end"]
    assert ends[0]["outcome"] == "failed"
    assert "RuntimeError: bug in a runner" in str(ends[0]["detail"])
    assert audit_records(request.audit_file)[-1]["event"] == "rollback-end"


def test_http_step_with_an_invalid_url_fails_cleanly(tmp_path: Path) -> None:
    request = _request(
        tmp_path,
        "name: p\nsteps:\n  - {name: hook, kind: http, url: 'not a url {env}'}\n",
    )
    result = run_rollback(request, resolve(request), redactor=Redactor())
    assert result.exit_code == 4
    ends = [r for r in audit_records(request.audit_file) if r["event"] == "step-end"]
    assert "request failed" in str(ends[0]["detail"])


def test_an_unfinished_different_rollback_is_pointed_out(tmp_path: Path) -> None:
    request = _request(tmp_path, PLAN)
    request.audit_file.parent.mkdir(parents=True)
    old = {
        "event": "rollback-start",
        "rollback_id": "rb-old",
        "env": "staging",
        "to_version": "v0",
        "attempt": 1,
    }
    request.audit_file.write_text(json.dumps(old) + "\n")
    notes: list[str] = []
    runners = Runners(verify=make_verify_runner(FakeVerifier([GO])))
    result = run_rollback(
        request, resolve(request), redactor=Redactor(), runners=runners, notice=notes.append
    )
    assert result.exit_code == 0
    assert any("rb-old, to v0) never finished" in n for n in notes), notes


def test_sigterm_swallowed_during_a_step_stops_before_the_next(tmp_path: Path) -> None:
    """A SIGTERM that a handler swallows (here a SIGINT handler that does nothing; in life
    asyncio.wait_for inside a verify step) still stops the rollback before its next step."""
    import os
    import signal

    from mytrader_ops.interrupts import sigterm_as_interrupt

    def terminated(step: object, ctx: object) -> object:
        os.kill(os.getpid(), signal.SIGTERM)
        return run_wait(step, ctx)  # type: ignore[arg-type]

    request = _request(
        tmp_path,
        "name: p\nsteps:\n"
        "  - {name: first, kind: wait, seconds: 0}\n"
        "  - {name: second, kind: command, argv: ['false']}\n",
    )
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt):
            run_rollback(
                request, resolve(request), redactor=Redactor(), runners=Runners(wait=terminated)
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    events = [(r["event"], r.get("step")) for r in audit_records(request.audit_file)]
    assert events == [
        ("rollback-start", None),
        ("step-start", 1),
        ("step-end", 1),
        ("rollback-end", None),
    ]
    assert audit_records(request.audit_file)[-1]["outcome"] == "interrupted"
