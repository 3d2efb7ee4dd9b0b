"""The gate service's config file (`mytrader-ops serve --config FILE`).

```yaml
version: 1
suites:                    # the only suites a caller may pick (metadata.suite / ?suite=)
  smoke: ops-smoke.yaml    # a validate config: its environments and checks
  go-live: ops.yaml
default_suite: smoke       # optional when there is one suite
token: ${GATE_TOKEN}       # optional: callers must send Authorization: Bearer <token>
max_concurrent: 1          # validations at once
max_queued: 4              # requests waiting for a slot; beyond that: 429
deadline: 5m               # per request, waiting included: INCONCLUSIVE when it passes
store: runs.db             # run store (default: the CLI's); relative to this file
report_root: reports       # optional: each run's reports in <report_root>/<run id>/
```

A caller chooses an environment and a suite by *name*; both are looked up here (the suite)
and in the suite's config (the environment, its `default_env` otherwise). A URL, a path or
a command never comes from a request. Parsed once at start-up, strictly: unknown keys and
every problem are named with file, line and key (exit 2); each suite file is loaded too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mytrader_ops.config import Config, load_config
from mytrader_ops.errors import ConfigError, ConfigProblem
from mytrader_ops.monitor.settings import MonitorUsageError, parse_duration
from mytrader_ops.redaction import Secret
from mytrader_ops.yamlsafe import read_yaml, validation_problems

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class GateFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    version: Literal[1] = 1
    suites: Annotated[dict[Name, str], Field(min_length=1, max_length=64)]
    default_suite: Name | None = None
    token: Secret | None = None
    max_concurrent: Annotated[int, Field(ge=1, le=16)] = 1
    max_queued: Annotated[int, Field(ge=0, le=256)] = 4
    deadline: Annotated[str, Field(min_length=1, max_length=32)] = "5m"
    store: str | None = None
    report_root: str | None = None

    @model_validator(mode="after")
    def _check(self) -> GateFile:
        try:
            parse_duration(self.deadline)
        except MonitorUsageError as exc:
            raise ValueError(f"deadline: {exc}") from None
        if self.default_suite is not None and self.default_suite not in self.suites:
            raise ValueError(f"default_suite {self.default_suite!r} is not among suites")
        if self.default_suite is None and len(self.suites) > 1:
            raise ValueError("several suites: name the default_suite")
        return self


@dataclass(frozen=True, slots=True)
class GateSettings:
    file: Path
    suites: dict[str, Path]
    default_suite: str
    token: Secret | None
    max_concurrent: int
    max_queued: int
    deadline_s: float
    store: Path | None
    report_root: Path | None
    configs: dict[str, Config]  # loaded at start-up: every suite is valid before serving


def load_gate_settings(path: Path) -> GateSettings:
    doc = read_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError([ConfigProblem(doc.file, 1, "", "the top level must be a mapping")])
    try:
        gate = GateFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc, frozenset())) from None
    base = path.parent
    suites = {name: (base / file).resolve() for name, file in gate.suites.items()}
    configs: dict[str, Config] = {}
    problems: list[ConfigProblem] = []
    for name, file in suites.items():
        try:
            configs[name] = load_config(file)
        except ConfigError as exc:
            problems += exc.problems
            continue
        if not configs[name].environments:
            problems.append(
                ConfigProblem(
                    doc.file,
                    doc.line_of(("suites", name)),
                    f"suites.{name}",
                    f"{file} defines no environments: the gate validates named environments",
                )
            )
    if (token := gate.token) and not token.present:
        problems.append(
            ConfigProblem(
                doc.file, doc.line_of(("token",)), "token", f"${{{token.env_var}}} is unset"
            )
        )
    if problems:
        raise ConfigError(problems)
    return GateSettings(
        file=path,
        suites=suites,
        default_suite=gate.default_suite or next(iter(gate.suites)),
        token=gate.token,
        max_concurrent=gate.max_concurrent,
        max_queued=gate.max_queued,
        deadline_s=parse_duration(gate.deadline),
        store=(base / gate.store).resolve() if gate.store else None,
        report_root=(base / gate.report_root).resolve() if gate.report_root else None,
        configs=configs,
    )
