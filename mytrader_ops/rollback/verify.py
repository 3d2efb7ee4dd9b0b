"""Verify steps: re-run a validate suite against the rolled-back environment.

Two ways, one protocol. `LibraryVerifier` calls validate's library (`plan.build_plan` +
`runner.execute`) in this process, so the audit log records which checks failed and by
how much. `SubprocessVerifier` runs `mytrader-ops validate` as a child process under the
same process-group timeout as command steps and reads its exit code (0 = GO). Anything
other than GO (NO-GO, INCONCLUSIVE, a usage error) fails the rollback: a rollback that
cannot show the service is healthy again is not done.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mytrader_ops.redaction import Redactor

DEFAULT_SUITE = "smoke"


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    target: str
    suite: str | None
    config: str | None
    validate_env: str | None
    duration_s: float | None
    rate: float | None
    timeout_s: float
    grace_s: float = 5.0


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    timed_out: bool
    exit_code: int | None  # validate's exit code: 0 GO, 1 NO-GO, 2 usage, 3 INCONCLUSIVE
    summary: str
    output: str = ""


class Verifier(Protocol):
    def __call__(self, request: VerifyRequest, redactor: Redactor) -> VerifyResult: ...


def _validate_args(request: VerifyRequest) -> list[str]:
    args = ["--target", request.target, "--no-store", "--quiet", "--no-color"]
    if request.config is not None:
        args += ["--config", request.config]
        if request.validate_env is not None:
            args += ["--env", request.validate_env]
    else:
        from mytrader_ops.resources import suite_path

        args += ["--config", str(suite_path(request.suite or DEFAULT_SUITE))]
    if request.duration_s is not None:
        args += ["--duration", f"{request.duration_s:g}"]
    if request.rate is not None:
        args += ["--rate", f"{request.rate:g}"]
    return args


class SubprocessVerifier:
    """`python -m mytrader_ops validate ...` in its own process group; exit code 0 = GO."""

    def __call__(self, request: VerifyRequest, redactor: Redactor) -> VerifyResult:
        from mytrader_ops.rollback.process import run_process

        argv = [sys.executable, "-m", "mytrader_ops", "validate", *_validate_args(request)]
        done = run_process(
            argv, timeout_s=request.timeout_s, grace_s=request.grace_s, env=dict(os.environ)
        )
        if done.timed_out:
            return VerifyResult(False, True, None, "validate did not finish in time", done.output)
        names = {0: "GO", 1: "NO-GO", 2: "usage or configuration error", 3: "INCONCLUSIVE"}
        code = done.exit_code
        label = names.get(code, f"exit code {code}") if code is not None else str(done.error)
        return VerifyResult(code == 0, False, code, f"validate: {label}", done.output)


class LibraryVerifier:
    """validate's library in-process, bounded by the step's timeout."""

    def __call__(self, request: VerifyRequest, redactor: Redactor) -> VerifyResult:
        import asyncio

        from mytrader_ops.errors import OpsError
        from mytrader_ops.resources import suite_path
        from mytrader_ops.validate.plan import build_plan
        from mytrader_ops.validate.runner import execute

        config_file = (
            Path(request.config)
            if request.config is not None
            else suite_path(request.suite or DEFAULT_SUITE)
        )
        try:
            plan = build_plan(
                config_file=config_file,
                env_name=request.validate_env if request.config is not None else None,
                target=request.target,
                frontend=None,
                duration_s=request.duration_s,
                rate=request.rate,
            )
        except OpsError as exc:
            return VerifyResult(False, False, exc.exit_code, f"validate cannot run: {exc}")

        async def bounded() -> object:
            return await asyncio.wait_for(execute(plan, redactor), request.timeout_s)

        try:
            report = asyncio.run(bounded())
        except TimeoutError:
            return VerifyResult(False, True, None, "validate did not finish in time")
        from mytrader_ops.report.model import RunReport

        assert isinstance(report, RunReport)
        failing = [
            f"{v.check_id}: {v.status.value}: {v.summary}"
            for v in report.verdicts
            if v.in_scope and v.status.value in ("FAIL", "INCONCLUSIVE")
        ]
        summary = f"validate: {report.decision.value} ({len(report.verdicts)} checks)"
        return VerifyResult(
            report.exit_code == 0, False, report.exit_code, summary, "\n".join(failing)
        )


def default_verifier(mode: str) -> Verifier:
    return SubprocessVerifier() if mode == "subprocess" else LibraryVerifier()
