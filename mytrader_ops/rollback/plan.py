"""Pure planning: a loaded plan + environment + version + reason -> a ResolvedPlan.

`plan_rollback` does no I/O: it substitutes the templated values (as data, one argument
each), checks that everything the plan needs was given, and derives the rollback id that
ties the audit log's records together. `format_plan` renders exactly what will run; it is
what `--dry-run` prints.
"""

from __future__ import annotations

import hashlib
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

from mytrader_ops.rollback.errors import RollbackUsageError
from mytrader_ops.rollback.model import (
    CommandStep,
    HttpStep,
    LoadedPlan,
    VerifyStep,
    WaitStep,
)
from mytrader_ops.rollback.template import Text, placeholders, substitute

StepKind = Literal["command", "http", "wait", "verify"]
ResolvedJson = None | bool | int | float | Text | list["ResolvedJson"] | dict[str, "ResolvedJson"]
MAX_REASON = 2000


@dataclass(frozen=True, slots=True)
class ResolvedCommand:
    argv: tuple[Text, ...]
    env: tuple[tuple[str, Text], ...]
    cwd: Text | None
    ok_exit_codes: tuple[int, ...]
    kill_grace_s: float


@dataclass(frozen=True, slots=True)
class ResolvedHttp:
    method: str
    url: Text
    headers: tuple[tuple[str, Text], ...]
    body: ResolvedJson
    expect_status: tuple[int, ...]
    tls_verify: bool


@dataclass(frozen=True, slots=True)
class ResolvedWait:
    seconds: float | None
    until_url: Text | None
    interval_s: float
    tls_verify: bool


@dataclass(frozen=True, slots=True)
class ResolvedVerify:
    target: Text
    suite: str | None
    config: str | None
    validate_env: str | None
    duration_s: float | None
    rate: float | None
    mode: Literal["library", "subprocess"]


Action = ResolvedCommand | ResolvedHttp | ResolvedWait | ResolvedVerify


@dataclass(frozen=True, slots=True)
class ResolvedStep:
    index: int  # 1-based, as shown to operators and in the audit log
    name: str
    kind: StepKind
    timeout_s: float
    action: Action
    description: str = ""
    optional: bool = False

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(sorted({n for t in _texts(self.action) for n in t.secret_names}))


@dataclass(frozen=True, slots=True)
class ResolvedPlan:
    """Everything needed to run (or show) one rollback; no secret values inside."""

    plan_name: str
    plan_file: str
    plan_sha256: str
    env: str
    to_version: str | None
    reason: str
    rollback_id: str
    target: str | None
    steps: tuple[ResolvedStep, ...]

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(sorted({n for s in self.steps for n in s.secret_names}))


def rollback_id_for(plan_sha256: str, env: str, to_version: str | None) -> str:
    """Stable id: the same plan, environment and version is the same rollback (resumable)."""
    key = f"{plan_sha256}\0{env}\0{to_version or ''}".encode()
    return "rb-" + hashlib.sha256(key).hexdigest()[:12]


def _texts(action: Action) -> list[Text]:
    if isinstance(action, ResolvedCommand):
        out = list(action.argv) + [v for _, v in action.env]
        return out + ([action.cwd] if action.cwd else [])
    if isinstance(action, ResolvedHttp):
        return [action.url, *(v for _, v in action.headers), *_json_texts(action.body)]
    if isinstance(action, ResolvedWait):
        return [action.until_url] if action.until_url else []
    return [action.target]


def _json_texts(value: ResolvedJson) -> list[Text]:
    if isinstance(value, Text):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _json_texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _json_texts(v)]
    return []


def plan_rollback(
    loaded: LoadedPlan,
    env: str,
    to_version: str | None,
    reason: str,
    rollback_id: str | None = None,
    overrides: Mapping[str, str] | None = None,
    python: str = sys.executable,
) -> ResolvedPlan:
    """Resolve a plan for one environment. Pure; raises RollbackUsageError for bad options.

    `overrides` (`--set name=value`) replace declared variables, or the environment's
    `target`; like every templated value they are substituted as data.
    """
    model = loaded.model
    overrides = dict(overrides or {})
    declared = set(model.vars) | {"target"}
    for spec_ in model.environments.values():
        declared |= set(spec_.vars)
    unknown = sorted(set(overrides) - declared)
    if unknown:
        raise RollbackUsageError(
            f"--set {', '.join(unknown)}: not a variable of plan {model.name!r} "
            f"(variables: {', '.join(sorted(declared))})"
        )
    if model.environments and env not in model.environments:
        known = ", ".join(sorted(model.environments))
        raise RollbackUsageError(f"plan {model.name!r} has no environment {env!r} (known: {known})")
    if to_version is not None and (not to_version or to_version.startswith("-")):
        raise RollbackUsageError(
            f"--to {to_version!r}: a version must be non-empty and must not start with '-'"
        )
    reason = reason.strip()
    if not reason:
        raise RollbackUsageError("--reason is required: say why (it goes to the audit log)")
    if len(reason) > MAX_REASON:
        raise RollbackUsageError(f"--reason is longer than {MAX_REASON} characters")
    spec = model.environments.get(env)
    target = spec.target.rstrip("/") if spec is not None and spec.target else None
    if "target" in overrides:
        target = overrides.pop("target").rstrip("/")
        if not target.lower().startswith(("http://", "https://")):
            raise RollbackUsageError(f"--set target={target!r}: an http(s) URL is required")
    rid = rollback_id or rollback_id_for(loaded.sha256, env, to_version)
    values: dict[str, Text] = {
        "env": Text.literal(env),
        "reason": Text.literal(reason),
        "rollback_id": Text.literal(rid),
        "plan": Text.literal(model.name),
        "python": Text.literal(python),
    }
    if to_version is not None:
        values["to_version"] = Text.literal(to_version)
    if target is not None:
        values["target"] = Text.literal(target)
    for table in (model.vars, spec.vars if spec is not None else {}):
        for name, raw in table.items():
            values[name] = substitute(raw, {})  # literal text and ${SECRET} references only
    for name, value in overrides.items():
        values[name] = Text.literal(value)  # operator input: data, never a secret reference
    steps = tuple(_resolve_step(i, step, values) for i, step in enumerate(model.steps, start=1))
    return ResolvedPlan(
        plan_name=model.name,
        plan_file=loaded.file,
        plan_sha256=loaded.sha256,
        env=env,
        to_version=to_version,
        reason=reason,
        rollback_id=rid,
        target=target,
        steps=steps,
    )


def _sub(text: str, values: dict[str, Text], step: str) -> Text:
    missing = [n for n in placeholders(text) if n not in values]
    if missing:
        hint = {
            "to_version": "pass --to VERSION",
            "target": "give the environment a 'target' URL in the plan",
        }
        needs = "; ".join(f"{{{n}}}: {hint.get(n, 'define it in vars')}" for n in missing)
        raise RollbackUsageError(f"step {step!r} needs a value for {needs}")
    return substitute(text, values)


def _sub_json(value: JsonValue, values: dict[str, Text], step: str) -> ResolvedJson:
    if isinstance(value, str):
        return _sub(value, values, step)
    if isinstance(value, list):
        return [_sub_json(v, values, step) for v in value]
    if isinstance(value, dict):
        return {k: _sub_json(v, values, step) for k, v in value.items()}
    return value


def _resolve_step(
    index: int, step: CommandStep | HttpStep | WaitStep | VerifyStep, values: dict[str, Text]
) -> ResolvedStep:
    n = step.name
    action: Action
    if isinstance(step, CommandStep):
        action = ResolvedCommand(
            argv=tuple(_sub(a, values, n) for a in step.argv),
            env=tuple((k, _sub(v, values, n)) for k, v in step.env.items()),
            cwd=_sub(step.cwd, values, n) if step.cwd is not None else None,
            ok_exit_codes=tuple(step.ok_exit_codes),
            kill_grace_s=step.kill_grace_s,
        )
    elif isinstance(step, HttpStep):
        action = ResolvedHttp(
            method=step.method,
            url=_sub(step.url, values, n),
            headers=tuple((k, _sub(v, values, n)) for k, v in step.headers.items()),
            body=_sub_json(step.body, values, n),
            expect_status=tuple(step.expect_status),
            tls_verify=step.tls_verify,
        )
    elif isinstance(step, WaitStep):
        action = ResolvedWait(
            seconds=step.seconds,
            until_url=_sub(step.until_url, values, n) if step.until_url is not None else None,
            interval_s=step.interval_s,
            tls_verify=step.tls_verify,
        )
    else:
        action = ResolvedVerify(
            target=_sub(step.target, values, n),
            suite=step.suite,
            config=step.config,
            validate_env=step.validate_env,
            duration_s=step.duration_s,
            rate=step.rate,
            mode=step.mode,
        )
    return ResolvedStep(
        index, n, step.kind, step.timeout_s, action, step.description, step.optional
    )


# --------------------------------------------------------------------------- rendering


def _q(text: Text) -> str:
    return shlex.quote(text.display())


def _json_display(value: ResolvedJson) -> object:
    if isinstance(value, Text):
        return value.display()
    if isinstance(value, list):
        return [_json_display(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_display(v) for k, v in value.items()}
    return value


def describe_step(step: ResolvedStep) -> list[str]:
    """Lines describing one step exactly as it will run (argv shell-quoted, secrets symbolic)."""
    import json

    a = step.action
    optional = ", optional: a failure does not stop the rollback" if step.optional else ""
    head = f"[{step.index}] {step.kind:<7} {step.name}  (timeout {step.timeout_s:g} s{optional})"
    lines = [head]
    if step.description:
        lines.append(f"      # {step.description}")
    if isinstance(a, ResolvedCommand):
        lines.append("      argv: " + " ".join(_q(t) for t in a.argv))
        lines.append(
            f"      argv list ({len(a.argv)} arguments, no shell): "
            + json.dumps([t.display() for t in a.argv])
        )
        for k, v in a.env:
            lines.append(f"      env: {k}={_q(v)}")
        if a.cwd is not None:
            lines.append(f"      cwd: {_q(a.cwd)}")
        if a.ok_exit_codes != (0,):
            lines.append(f"      ok exit codes: {list(a.ok_exit_codes)}")
    elif isinstance(a, ResolvedHttp):
        lines.append(f"      {a.method} {a.url.display()}  expect {list(a.expect_status)}")
        for k, v in a.headers:
            lines.append(f"      header: {k}: {v.display()}")
        if a.body is not None:
            lines.append("      json: " + json.dumps(_json_display(a.body), ensure_ascii=False))
    elif isinstance(a, ResolvedWait):
        if a.seconds is not None:
            lines.append(f"      sleep {a.seconds:g} s")
        elif a.until_url is not None:
            lines.append(
                f"      until GET {a.until_url.display()} answers 2xx (every {a.interval_s:g} s)"
            )
    else:
        what = (
            f"suite {a.suite}" if a.suite else (f"config {a.config}" if a.config else "suite smoke")
        )
        extra = f" env {a.validate_env}" if a.validate_env else ""
        lines.append(
            f"      validate --target {a.target.display()} with {what}{extra}; "
            "anything but GO fails the rollback"
        )
    return lines


def format_plan(plan: ResolvedPlan) -> str:
    """The dry-run text: header, then every step exactly as it would run."""
    lines = [
        f"Rollback plan {plan.plan_name!r} from {plan.plan_file}",
        f"  plan sha256: {plan.plan_sha256}",
        f"  environment: {plan.env}",
        f"  to version:  {plan.to_version if plan.to_version is not None else '(not given)'}",
        f"  reason:      {plan.reason!r}",
        f"  rollback id: {plan.rollback_id}",
    ]
    if plan.target:
        lines.append(f"  target:      {plan.target}")
    if plan.secret_names:
        lines.append(
            "  secrets read at run time: " + ", ".join(f"${{{n}}}" for n in plan.secret_names)
        )
    lines.append(f"Steps ({len(plan.steps)}, run in order, stop at the first failure):")
    for step in plan.steps:
        lines.extend(describe_step(step))
    return "\n".join(lines) + "\n"
