"""A whole rollback as the CLI (and `monitor --auto-rollback`) runs it.

    load plan -> plan_rollback (pure) -> secrets present? -> lock the environment (exit 5)
    -> read the audit log -> decide_resume (pure: fresh, resume, re-verify) -> execute
    -> rollback-end record -> release the lock

The rollback id is derived from the plan's hash, the environment and the target version,
so re-running the same command after a crash finds the earlier attempt in the audit log:
steps that completed are skipped and the run continues from the first one that did not
(an interrupted step is run again, so steps must be idempotent). Re-running a rollback
that already completed runs only its verify steps. `new=True` starts a fresh rollback.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mytrader_ops.redaction import Redactor
from mytrader_ops.rollback.audit import (
    AuditLog,
    PriorState,
    latest_rollback_id,
    prior_state,
    read_log,
    utc_now,
    who,
)
from mytrader_ops.rollback.errors import (
    EXIT_ROLLBACK_FAILED,
    EXIT_ROLLED_BACK,
    RollbackUsageError,
)
from mytrader_ops.rollback.execute import Outcome, Progress, Runners, execute
from mytrader_ops.rollback.lock import EnvironmentLock
from mytrader_ops.rollback.model import load_plan
from mytrader_ops.rollback.plan import ResolvedPlan, describe_step, plan_rollback, rollback_id_for

Mode = Literal["fresh", "resume", "reverify", "noop"]
STATE_DIR_VAR = "MYTRADER_OPS_STATE_DIR"


def default_state_dir() -> Path:
    """$MYTRADER_OPS_STATE_DIR, else $XDG_STATE_HOME/mytrader-ops, else ~/.local/state/..."""
    explicit = os.environ.get(STATE_DIR_VAR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mytrader-ops"


@dataclass(frozen=True, slots=True)
class RollbackRequest:
    plan_file: Path
    env: str | None  # None: the plan's only environment
    to_version: str | None
    reason: str
    state_dir: Path
    audit_path: Path | None = None  # default: <state_dir>/rollback-audit.jsonl
    evidence: Mapping[str, object] | None = None  # e.g. the trigger that fired
    new: bool = False
    overrides: Mapping[str, str] | None = None  # --set name=value
    rollback_id: str | None = None  # pin an id (a monitor resuming its own rollback)

    @property
    def audit_file(self) -> Path:
        return self.audit_path or self.state_dir / "rollback-audit.jsonl"


def resolve(request: RollbackRequest) -> ResolvedPlan:
    """Load and resolve the plan (reads the plan file only; no other side effect)."""
    loaded = load_plan(request.plan_file)
    env = request.env
    if env is None:
        known = sorted(loaded.model.environments)
        if len(known) != 1:
            listed = ", ".join(known) or "none defined in the plan"
            raise RollbackUsageError(f"--env NAME is required (environments: {listed})")
        env = known[0]
    rid = request.rollback_id
    if request.new and rid is None:
        base = rollback_id_for(loaded.sha256, env, request.to_version)
        rid = f"{base}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    return plan_rollback(loaded, env, request.to_version, request.reason, rid, request.overrides)


@dataclass(frozen=True, slots=True)
class ResumeDecision:
    mode: Mode
    skip: dict[int, str] = field(default_factory=dict)
    message: str = ""


def decide_resume(plan: ResolvedPlan, prior: PriorState) -> ResumeDecision:
    """What to run given the audit log's record of this rollback id (pure)."""
    if prior.attempts == 0:
        return ResumeDecision("fresh", {}, "")
    version = prior.to_version or plan.to_version or "the previous release"
    if prior.finished_ok:
        why = f"already done: rolled back to {version} at {prior.finished_at}"
        skip = {s.index: why for s in plan.steps if s.kind != "verify"}
        if len(skip) == len(plan.steps):
            return ResumeDecision(
                "noop",
                skip,
                f"Already rolled back to {version} "
                f"(at {prior.finished_at}); the plan has no verify step.",
            )
        return ResumeDecision(
            "reverify",
            skip,
            f"Already rolled back to {version} (at {prior.finished_at}); re-running only the "
            "verify steps. Use --new for a new rollback after a newer deployment.",
        )
    first = next((s.index for s in plan.steps if s.index not in prior.completed_steps), None)
    if first is None:  # every step ok but no end record: crashed before writing it
        skip = {
            s.index: "completed in an earlier attempt" for s in plan.steps if s.kind != "verify"
        }
        return ResumeDecision("resume", skip, "Every step completed earlier; re-verifying.")
    skip = {s.index: "completed in an earlier attempt" for s in plan.steps if s.index < first}
    where = (
        f"step {prior.interrupted_step} was interrupted"
        if prior.interrupted_step is not None
        else f"attempt {prior.attempts} stopped at step {first}"
    )
    return ResumeDecision(
        "resume",
        skip,
        f"Resuming rollback {plan.rollback_id} (attempt {prior.attempts + 1}): {where}; "
        f"continuing from step {first}.",
    )


def preview_resume(request: RollbackRequest, plan: ResolvedPlan) -> ResumeDecision:
    """What a real run would do now, from the audit log (read-only: for --dry-run)."""
    if not request.audit_file.exists():
        return ResumeDecision("fresh")
    return decide_resume(plan, prior_state(read_log(request.audit_file).records, plan.rollback_id))


def read_secrets(plan: ResolvedPlan) -> dict[str, str]:
    """Values of the plan's `${NAME}` references that are set.

    A reference used by a required step must be set (else a usage error, before anything
    runs); one used only by optional steps (notifications) may be missing: those steps
    then fail on their own and the rollback goes on.
    """
    required = sorted({n for s in plan.steps if not s.optional for n in s.secret_names})
    missing = [n for n in required if not os.environ.get(n)]
    if missing:
        raise RollbackUsageError(
            "the plan needs these environment variables, which are unset or empty: "
            + ", ".join(f"${{{n}}}" for n in missing)
        )
    return {n: os.environ[n] for n in plan.secret_names if os.environ.get(n)}


def missing_optional_secrets(plan: ResolvedPlan) -> list[str]:
    return [n for n in plan.secret_names if not os.environ.get(n)]


@dataclass(frozen=True, slots=True)
class RollbackResult:
    mode: Mode
    message: str
    outcome: Outcome | None
    exit_code: int


def run_rollback(
    request: RollbackRequest,
    plan: ResolvedPlan,
    *,
    redactor: Redactor,
    runners: Runners | None = None,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> RollbackResult:
    """Lock, consult the audit log, execute and record. Raises LockedError (exit 5)."""
    say = notice or (lambda _m: None)
    secrets = read_secrets(plan)
    for value in secrets.values():
        redactor.add(value)
    holder = {
        **who(),
        "started_at": utc_now(),
        "rollback_id": plan.rollback_id,
        "plan": plan.plan_name,
    }
    audit = AuditLog(request.audit_file, redactor)
    with EnvironmentLock(request.state_dir, plan.env, holder) as lock:
        log = read_log(request.audit_file)
        if log.bad_lines:
            say(
                f"note: audit log {request.audit_file} has unreadable line(s) "
                f"{', '.join(map(str, log.bad_lines))} (a torn write from a crash?); ignored"
            )
        prior = prior_state(log.records, plan.rollback_id)
        decision = decide_resume(plan, prior)
        if decision.message:
            say(decision.message)
        last = latest_rollback_id(log.records, plan.env)
        if last is not None and last != plan.rollback_id:
            earlier = prior_state(log.records, last)
            if not earlier.finished:
                say(
                    f"note: the previous rollback of {plan.env!r} ({last}, to "
                    f"{earlier.to_version or 'unknown'}) never finished; this one is a "
                    "different rollback (plan, version or --new changed) and starts fresh."
                )
        attempt = prior.attempts + 1
        base = {"rollback_id": plan.rollback_id, "attempt": attempt, "env": plan.env}
        audit.append(
            "rollback-start",
            **base,
            who={k: holder[k] for k in ("user", "host", "pid")},
            reason=plan.reason,
            evidence=dict(request.evidence) if request.evidence else None,
            plan={"name": plan.plan_name, "file": plan.plan_file, "sha256": plan.plan_sha256},
            to_version=plan.to_version,
            target=plan.target,
            mode=decision.mode,
            skip=sorted(decision.skip),
            steps=[describe_step(s) for s in plan.steps],
        )
        try:
            outcome = execute(
                plan,
                runners or Runners(),
                audit,
                secrets=secrets,
                attempt=attempt,
                skip=decision.skip,
                progress=progress,
                inherit_fds=lock.inheritable_fds,
            )
        except KeyboardInterrupt:
            audit.append(
                "rollback-end", **base, outcome="interrupted", exit_code=EXIT_ROLLBACK_FAILED
            )
            raise
        message = _message(plan, prior, decision, outcome)
        audit.append(
            "rollback-end",
            **base,
            outcome="rolled-back" if outcome.rolled_back else "failed",
            exit_code=outcome.exit_code,
            failed_step=outcome.failed_step.index if outcome.failed_step else None,
            message=message,
        )
    code = outcome.exit_code if not outcome.rolled_back else EXIT_ROLLED_BACK
    return RollbackResult(decision.mode, message, outcome, code)


def _message(
    plan: ResolvedPlan, prior: PriorState, decision: ResumeDecision, outcome: Outcome
) -> str:
    failed = outcome.failed_step
    if not outcome.rolled_back:
        if failed is None:
            return "Rollback FAILED."
        return f"Rollback FAILED at step {failed.index} ({failed.name}); see the audit log."
    verified = any(s.kind == "verify" and r.outcome == "ok" for s, r in outcome.results)
    check = "verified" if verified else "NOT verified (the plan has no verify step)"
    if decision.mode == "noop":
        return decision.message
    if decision.mode == "reverify":
        version = prior.to_version or plan.to_version or "the previous release"
        return f"Already rolled back to {version} (at {prior.finished_at}); {check} again."
    version = f" to {plan.to_version}" if plan.to_version else ""
    return f"Rolled back {plan.env}{version}; {check}."
