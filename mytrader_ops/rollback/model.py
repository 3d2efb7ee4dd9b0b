"""The rollback plan file format: strict, frozen models loaded with line-numbered errors.

A plan is YAML read by the defensive loader (`mytrader_ops.yamlsafe`: no unsafe tags,
duplicate keys, alias bombs or YAML 1.1 booleans), then validated here with unknown keys
rejected. Every problem names file, line and key path. See rollback/README.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from mytrader_ops.errors import ConfigError, ConfigProblem
from mytrader_ops.rollback.template import placeholders
from mytrader_ops.yamlsafe import (
    KeyPath,
    YamlDocument,
    format_path,
    parse_yaml,
    validation_problems,
)

BUILTINS = frozenset({"env", "to_version", "reason", "rollback_id", "target", "plan", "python"})
StepName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
VarName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
TimeoutS = Annotated[float, Field(gt=0, le=6 * 3600)]
GraceS = Annotated[float, Field(ge=0, le=300)]
_STEP_TAGS = frozenset({"command", "http", "wait", "verify"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StepBase(_Model):
    name: StepName
    description: str = ""
    timeout_s: TimeoutS = 60.0
    optional: bool = Field(
        default=False,
        description="A failure is recorded but does not stop the rollback (notifications).",
    )


class CommandStep(StepBase):
    """Run a program: an argv list, never a shell. Each element is one argument."""

    kind: Literal["command"]
    argv: Annotated[list[str], Field(min_length=1, max_length=256)]
    env: dict[str, str] = Field(default={}, description="Extra environment variables.")
    cwd: str | None = None
    ok_exit_codes: list[int] = [0]
    kill_grace_s: GraceS = 5.0


class HttpStep(StepBase):
    """Call a webhook (Slack-compatible JSON, a deploy API, a load balancer)."""

    kind: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str = Field(min_length=1, max_length=4096)
    headers: dict[str, str] = {}
    body: JsonValue = Field(default=None, alias="json")
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = [200, 201, 202, 204]
    timeout_s: TimeoutS = 10.0
    tls_verify: bool = True


class WaitStep(StepBase):
    """Wait a fixed time, or until a URL answers 2xx (then `timeout_s` bounds the wait)."""

    kind: Literal["wait"]
    seconds: Annotated[float, Field(ge=0, le=6 * 3600)] | None = None
    until_url: str | None = Field(default=None, max_length=4096)
    interval_s: Annotated[float, Field(gt=0, le=300)] = 1.0
    tls_verify: bool = True

    @model_validator(mode="after")
    def _one_of(self) -> WaitStep:
        if (self.seconds is None) == (self.until_url is None):
            raise ValueError("give exactly one of 'seconds' or 'until_url'")
        if self.seconds is not None and self.seconds > self.timeout_s:
            raise ValueError(f"seconds ({self.seconds:g}) exceeds timeout_s ({self.timeout_s:g})")
        return self


class VerifyStep(StepBase):
    """Re-run a validate suite against the environment; anything but GO fails the rollback."""

    kind: Literal["verify"]
    target: str = Field(default="{target}", min_length=1, max_length=4096)
    suite: str | None = Field(default=None, description="A shipped suite, e.g. smoke or go-live.")
    config: str | None = Field(default=None, description="A validate config file.")
    validate_env: str | None = Field(default=None, description="Environment in that config.")
    duration_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    rate: Annotated[float, Field(gt=0, le=2000)] | None = None
    mode: Literal["library", "subprocess"] = "library"
    timeout_s: TimeoutS = 300.0

    @model_validator(mode="after")
    def _suite_or_config(self) -> VerifyStep:
        if self.suite is not None and self.config is not None:
            raise ValueError("give 'suite' or 'config', not both")
        return self


Step = Annotated[CommandStep | HttpStep | WaitStep | VerifyStep, Field(discriminator="kind")]


class EnvironmentSpec(_Model):
    """Per-environment values: the target URL for verify/wait, and variables for templates."""

    target: str | None = Field(default=None, pattern=r"^(?i:https?)://\S+$")
    vars: dict[VarName, str] = {}


class PlanModel(_Model):
    """A rollback plan: ordered steps, each with a timeout."""

    version: Literal[1] = 1
    name: StepName
    description: str = ""
    vars: dict[VarName, str] = {}
    environments: dict[EnvName, EnvironmentSpec] = {}
    steps: Annotated[list[Step], Field(min_length=1, max_length=100)]


@dataclass(frozen=True, slots=True)
class LoadedPlan:
    """A validated plan and where it came from (its hash identifies it in the audit log)."""

    model: PlanModel
    file: str
    sha256: str


def _templated_fields(
    step: CommandStep | HttpStep | WaitStep | VerifyStep,
) -> list[tuple[KeyPath, str]]:
    out: list[tuple[KeyPath, str]] = []
    if isinstance(step, CommandStep):
        out += [(("argv", i), a) for i, a in enumerate(step.argv)]
        out += [(("env", k), v) for k, v in step.env.items()]
        if step.cwd is not None:
            out.append((("cwd",), step.cwd))
    elif isinstance(step, HttpStep):
        out.append((("url",), step.url))
        out += [(("headers", k), v) for k, v in step.headers.items()]
        out += _json_strings(step.body, ("json",))
    elif isinstance(step, WaitStep):
        if step.until_url is not None:
            out.append((("until_url",), step.until_url))
    else:
        out.append((("target",), step.target))
    return out


def _json_strings(value: JsonValue, path: KeyPath) -> list[tuple[KeyPath, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _json_strings(v, (*path, i))]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _json_strings(v, (*path, k))]
    return []


def _structure_problems(doc: YamlDocument, plan: PlanModel) -> list[ConfigProblem]:
    """Duplicate step names and variables shadowing built-ins, each at its own line."""
    problems: list[ConfigProblem] = []

    def add(path: KeyPath, message: str) -> None:
        problems.append(ConfigProblem(doc.file, doc.line_of(path), format_path(path), message))

    first: dict[str, int] = {}
    for i, step in enumerate(plan.steps):
        if step.name in first:
            add(
                ("steps", i, "name"),
                f"duplicate step name {step.name!r} (also step {first[step.name] + 1})",
            )
        first.setdefault(step.name, i)
    tables: list[tuple[KeyPath, Mapping[str, str]]] = [(("vars",), plan.vars)]
    tables += [(("environments", n, "vars"), e.vars) for n, e in plan.environments.items()]
    for base, table in tables:
        for key in table:
            if key in BUILTINS:
                add(
                    (*base, key),
                    f"variable {key!r} shadows a built-in ({', '.join(sorted(BUILTINS))})",
                )
    return problems


def _placeholder_problems(doc: YamlDocument, plan: PlanModel) -> list[ConfigProblem]:
    """Every `{name}` must be a built-in or a variable; vars may hold only literals/secrets."""
    problems: list[ConfigProblem] = _structure_problems(doc, plan)
    env_vars = [set(e.vars) for e in plan.environments.values()]
    # A name is known if the plan defines it, or every environment does.
    known = BUILTINS | set(plan.vars)
    if env_vars:
        known |= set.intersection(*env_vars)
    for i, step in enumerate(plan.steps):
        for sub, text in _templated_fields(step):
            path: KeyPath = ("steps", i, *sub)
            for name in placeholders(text):
                if name not in known:
                    problems.append(
                        ConfigProblem(
                            doc.file,
                            doc.line_of(path),
                            format_path(path),
                            f"unknown placeholder {{{name}}} (known: {', '.join(sorted(known))}; "
                            f"write {{{{{name}}}}} for a literal)",
                        )
                    )
    var_sources: list[tuple[KeyPath, Mapping[str, str]]] = [(("vars",), plan.vars)]
    var_sources += [(("environments", n, "vars"), e.vars) for n, e in plan.environments.items()]
    for base, table in var_sources:
        for key, value in table.items():
            if placeholders(value):
                path = (*base, key)
                problems.append(
                    ConfigProblem(
                        doc.file,
                        doc.line_of(path),
                        format_path(path),
                        "variables hold literal text or ${ENV_VAR} secrets, not {placeholders}",
                    )
                )
    return problems


def parse_plan(text: str, file: str = "<string>") -> LoadedPlan:
    """Parse and validate plan text; raise ConfigError naming every problem's line."""
    doc = parse_yaml(text, file)
    if not isinstance(doc.data, dict):
        raise ConfigError([ConfigProblem(file, 1, "", "a plan must be a mapping")])
    try:
        model = PlanModel.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc, _STEP_TAGS)) from None
    problems = _placeholder_problems(doc, model)
    if problems:
        raise ConfigError(problems)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedPlan(model, file, digest)


def load_plan(path: Path) -> LoadedPlan:
    """Read a plan file (size-capped) and validate it."""
    from mytrader_ops.yamlsafe import read_text

    return parse_plan(read_text(path), str(path))
