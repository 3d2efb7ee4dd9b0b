"""Execution: run a ResolvedPlan's steps in order, each under its timeout, stop at the first
failure, and write an audit record before and after every step.

Step runners are passed in (`Runners`), so tests can replace any of them; the defaults do
real I/O: `run_command` (new session, process-group timeout), `run_http` (httpx, no
redirects, capped body), `run_wait` (sleep, or poll a URL for 2xx), `run_verify` (validate).
Secret values are filled in only here, and every one is registered with the redactor
before anything that could echo it is recorded or printed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from mytrader_ops.interrupts import stop_requested
from mytrader_ops.redaction import Redactor
from mytrader_ops.rollback.audit import AuditLog, truncate
from mytrader_ops.rollback.plan import (
    ResolvedCommand,
    ResolvedHttp,
    ResolvedJson,
    ResolvedPlan,
    ResolvedStep,
    ResolvedVerify,
    ResolvedWait,
)
from mytrader_ops.rollback.template import Text
from mytrader_ops.rollback.verify import Verifier, VerifyRequest, default_verifier

StepOutcome = Literal["ok", "failed", "timed_out", "skipped"]
MAX_HTTP_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class StepResult:
    outcome: StepOutcome
    detail: str
    exit_code: int | None = None
    output: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a runner may use besides the step: secret values and the redactor."""

    secrets: Mapping[str, str]
    redactor: Redactor
    inherit_fds: tuple[int, ...] = ()  # the environment lock: held while a step runs


StepRunner = Callable[[ResolvedStep, StepContext], StepResult]


def run_command(step: ResolvedStep, ctx: StepContext) -> StepResult:
    from mytrader_ops.rollback.process import run_process

    a = step.action
    assert isinstance(a, ResolvedCommand)
    env = dict(os.environ)
    env.update({k: v.render(ctx.secrets) for k, v in a.env})
    done = run_process(
        [t.render(ctx.secrets) for t in a.argv],
        timeout_s=step.timeout_s,
        grace_s=a.kill_grace_s,
        env=env,
        cwd=a.cwd.render(ctx.secrets) if a.cwd is not None else None,
        pass_fds=ctx.inherit_fds,
    )
    if done.error is not None:
        return StepResult("failed", done.error, None, done.output)
    if done.timed_out:
        return StepResult(
            "timed_out",
            f"no exit within {step.timeout_s:g} s: process group terminated "
            f"(SIGTERM, then SIGKILL after {a.kill_grace_s:g} s)",
            done.exit_code,
            done.output,
        )
    note = "; leftover processes of the step were terminated" if done.leftovers_killed else ""
    if done.exit_code in a.ok_exit_codes:
        return StepResult("ok", f"exit code {done.exit_code}{note}", done.exit_code, done.output)
    return StepResult(
        "failed",
        f"exit code {done.exit_code} (ok: {list(a.ok_exit_codes)}){note}",
        done.exit_code,
        done.output,
    )


def _json_render(value: ResolvedJson, secrets: Mapping[str, str]) -> object:
    if isinstance(value, Text):
        return value.render(secrets)
    if isinstance(value, list):
        return [_json_render(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _json_render(v, secrets) for k, v in value.items()}
    return value


def run_http(step: ResolvedStep, ctx: StepContext) -> StepResult:
    import httpx

    a = step.action
    assert isinstance(a, ResolvedHttp)
    headers = {k: v.render(ctx.secrets) for k, v in a.headers}
    content: bytes | None = None
    if a.body is not None:
        content = json.dumps(_json_render(a.body, ctx.secrets)).encode()
        headers.setdefault("content-type", "application/json")
    deadline = time.monotonic() + step.timeout_s
    try:
        with (
            httpx.Client(
                timeout=step.timeout_s, verify=a.tls_verify, follow_redirects=False
            ) as client,
            client.stream(
                a.method, a.url.render(ctx.secrets), headers=headers, content=content
            ) as resp,
        ):
            body = b""
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_HTTP_BODY or time.monotonic() > deadline:
                    break
            status = resp.status_code
    except httpx.TimeoutException:
        return StepResult("timed_out", f"no answer within {step.timeout_s:g} s")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return StepResult("failed", f"request failed: {type(exc).__name__}: {exc}")
    text = body[:MAX_HTTP_BODY].decode("utf-8", "replace")
    if status in a.expect_status:
        return StepResult("ok", f"HTTP {status}", None, text)
    return StepResult("failed", f"HTTP {status} (expected {list(a.expect_status)})", None, text)


def run_wait(step: ResolvedStep, ctx: StepContext) -> StepResult:
    a = step.action
    assert isinstance(a, ResolvedWait)
    if a.seconds is not None:
        time.sleep(a.seconds)
        return StepResult("ok", f"waited {a.seconds:g} s")
    assert a.until_url is not None
    import httpx

    url = a.until_url.render(ctx.secrets)
    deadline = time.monotonic() + step.timeout_s
    last = "no attempt"
    tries = 0
    with httpx.Client(verify=a.tls_verify, follow_redirects=False) as client:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            tries += 1
            try:
                resp = client.get(url, timeout=max(0.1, min(remaining, 5.0)))
                if 200 <= resp.status_code < 300:
                    return StepResult("ok", f"HTTP {resp.status_code} after {tries} tries")
                last = f"HTTP {resp.status_code}"
            except httpx.InvalidURL as exc:
                return StepResult("failed", f"invalid URL: {exc}")
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            time.sleep(max(0.0, min(a.interval_s, deadline - time.monotonic())))
    return StepResult(
        "timed_out", f"no 2xx within {step.timeout_s:g} s ({tries} tries, last: {last})"
    )


def make_verify_runner(verifier: Verifier | None = None) -> StepRunner:
    def run_verify(step: ResolvedStep, ctx: StepContext) -> StepResult:
        a = step.action
        assert isinstance(a, ResolvedVerify)
        chosen = verifier or default_verifier(a.mode)
        request = VerifyRequest(
            target=a.target.render(ctx.secrets),
            suite=a.suite,
            config=a.config,
            validate_env=a.validate_env,
            duration_s=a.duration_s,
            rate=a.rate,
            timeout_s=step.timeout_s,
        )
        res = chosen(request, ctx.redactor)
        if res.timed_out:
            return StepResult("timed_out", res.summary, res.exit_code, res.output)
        return StepResult("ok" if res.ok else "failed", res.summary, res.exit_code, res.output)

    return run_verify


@dataclass(frozen=True, slots=True)
class Runners:
    command: StepRunner = run_command
    http: StepRunner = run_http
    wait: StepRunner = run_wait
    verify: StepRunner = field(default_factory=make_verify_runner)

    def for_step(self, step: ResolvedStep) -> StepRunner:
        return {
            "command": self.command,
            "http": self.http,
            "wait": self.wait,
            "verify": self.verify,
        }[step.kind]


def _guarded(runner: StepRunner, step: ResolvedStep, ctx: StepContext) -> StepResult:
    """A bug or an unexpected error in a runner is a failed step, recorded, never a crash
    that leaves the audit log without the step's end."""
    try:
        return runner(step, ctx)
    except Exception as exc:  # recorded as the step's failure
        return StepResult("failed", f"error in the {step.kind} step: {type(exc).__name__}: {exc}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one execution: rolled back (all steps ok or skipped) or failed."""

    rolled_back: bool
    results: tuple[tuple[ResolvedStep, StepResult], ...]
    failed_step: ResolvedStep | None = None

    @property
    def exit_code(self) -> int:
        from mytrader_ops.rollback.errors import EXIT_ROLLBACK_FAILED, EXIT_ROLLED_BACK

        return EXIT_ROLLED_BACK if self.rolled_back else EXIT_ROLLBACK_FAILED


Progress = Callable[[ResolvedStep, StepResult | None], None]


def execute(
    plan: ResolvedPlan,
    runners: Runners,
    audit: AuditLog,
    *,
    secrets: Mapping[str, str],
    attempt: int = 1,
    skip: Mapping[int, str] | None = None,
    progress: Progress | None = None,
    inherit_fds: tuple[int, ...] = (),
) -> Outcome:
    """Run the steps in order; `skip` maps step index -> why it is not run this time."""
    skip = skip or {}
    ctx = StepContext(secrets, audit.redactor, inherit_fds)
    for value in secrets.values():
        audit.redactor.add(value)
    done: list[tuple[ResolvedStep, StepResult]] = []
    base = {"rollback_id": plan.rollback_id, "attempt": attempt, "env": plan.env}
    for step in plan.steps:
        ids = {**base, "step": step.index, "name": step.name, "kind": step.kind}
        if step.index in skip:
            result = StepResult("skipped", skip[step.index])
            audit.append("step-end", **ids, outcome="skipped", detail=result.detail)
            done.append((step, result))
            if progress:
                progress(step, result)
            continue
        if stop_requested():  # SIGTERM during the previous step, swallowed before it ended
            raise KeyboardInterrupt
        audit.append("step-start", **ids, timeout_s=step.timeout_s)
        if progress:
            progress(step, None)
        started = time.monotonic()
        unset = [n for n in step.secret_names if n not in secrets]
        try:
            raw = (
                StepResult("failed", "not run: unset " + ", ".join(f"${{{n}}}" for n in unset))
                if unset
                else _guarded(runners.for_step(step), step, ctx)
            )
        except KeyboardInterrupt:
            audit.append(
                "step-end",
                **ids,
                outcome="failed",
                detail="interrupted by the operator (SIGINT/SIGTERM); step's processes ended",
                duration_s=round(time.monotonic() - started, 3),
            )
            raise
        result = StepResult(
            raw.outcome,
            raw.detail,
            raw.exit_code,
            truncate(audit.redactor.redact(raw.output)),
            round(time.monotonic() - started, 3),
        )
        audit.append(
            "step-end",
            **ids,
            outcome=result.outcome,
            detail=result.detail,
            exit_code=result.exit_code,
            duration_s=result.duration_s,
            output=result.output,
            optional=step.optional,
        )
        done.append((step, result))
        if progress:
            progress(step, result)
        if result.outcome != "ok" and not step.optional:
            return Outcome(False, tuple(done), step)
    return Outcome(True, tuple(done))
