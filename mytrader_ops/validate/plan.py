"""Pure assembly of a run: configuration + CLI options -> a frozen RunPlan.

`--target URL` alone means: the shipped go-live suite against that MyTrader API, credentials
from MYTRADER_OPS_USERNAME / MYTRADER_OPS_PASSWORD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mytrader_ops.config import (
    Check,
    Config,
    Credentials,
    Environment,
    KnownIssue,
    MonitoringItem,
    RollbackTrigger,
    SamplerSettings,
    SignOff,
    Slo,
    load_config,
)
from mytrader_ops.errors import OpsError
from mytrader_ops.redaction import MIN_SECRET_LEN, Secret
from mytrader_ops.resources import shipped_suites, suite_path

DEFAULT_SUITE = "go-live"
USERNAME_VAR = "MYTRADER_OPS_USERNAME"
PASSWORD_VAR = "MYTRADER_OPS_PASSWORD"  # noqa: S105 - the variable's name, not a secret
_URL = re.compile(r"^https?://[^\s/@]+(:[0-9]+)?(/\S*)?$", re.IGNORECASE)
DEFAULT_SIGN_OFFS = (
    SignOff(role="Release manager"),
    SignOff(role="Engineering lead"),
    SignOff(role="Operations / on-call"),
)


class UsageError(OpsError):
    """A CLI option combination that cannot be run (exit code 2)."""


@dataclass(frozen=True, slots=True)
class RunPlan:
    title: str
    env_name: str
    environment: Environment
    checks: tuple[Check, ...]
    sampler: SamplerSettings
    known_issues: tuple[KnownIssue, ...]
    sign_offs: tuple[SignOff, ...]
    rollback_triggers: tuple[RollbackTrigger, ...]
    monitoring: tuple[MonitoringItem, ...]
    sources: tuple[str, ...]
    compare_to: str | None = None  # another deployment sampled alongside, as the baseline
    slos: tuple[Slo, ...] = ()

    @property
    def components(self) -> frozenset[str]:
        given = {"backend", "hubs"}
        if self.environment.frontend:
            given.add("frontend")
        return frozenset(given)


def check_url(option: str, url: str) -> str:
    if not _URL.match(url):
        raise UsageError(f"{option} must be an http(s) URL like http://127.0.0.1:5002, got {url!r}")
    return url.rstrip("/")


def refuse_short_secrets(*secrets: Secret | None) -> None:
    """A secret too short to mask without masking ordinary text is refused, never printed."""
    for secret in secrets:
        value = secret.reveal() if secret is not None else None
        if secret is not None and value is not None and len(value) < MIN_SECRET_LEN:
            raise UsageError(
                f"${{{secret.env_var}}} is shorter than {MIN_SECRET_LEN} characters: it could "
                "not be kept out of the reports; use a real credential"
            )


def load_suite(name: str) -> Config:
    if name not in shipped_suites():
        raise UsageError(f"unknown suite {name!r}; shipped suites: {', '.join(shipped_suites())}")
    return load_config(suite_path(name))


def _merge(base: Config, top: Config) -> Config:
    checks = {c.id: c for c in base.checks}
    for c in top.checks:
        checks[c.id] = c
    return top.model_copy(
        update={
            "checks": list(checks.values()),
            "sampler": top.sampler or base.sampler,
            "rollback_triggers": top.rollback_triggers or base.rollback_triggers,
            "monitoring": top.monitoring or base.monitoring,
            "slos": top.slos or base.slos,
            "known_issues": [*base.known_issues, *top.known_issues],
            "sign_offs": top.sign_offs or base.sign_offs,
            "title": top.title if top.checks or not base.checks else base.title,
        }
    )


def build_plan(
    *,
    config_file: Path | None,
    env_name: str | None,
    target: str | None,
    frontend: str | None,
    duration_s: float | None,
    rate: float | None,
    until_decisive: bool | None = None,
    max_duration_s: float | None = None,
    compare_to: str | None = None,
) -> RunPlan:
    sources: list[str] = []
    if config_file is None:
        config = load_suite(DEFAULT_SUITE)
        sources.append(f"shipped suite {DEFAULT_SUITE}")
    else:
        config = load_config(config_file)
        sources.append(str(config_file))
        for name in config.include:
            config = _merge(load_suite(name), config)
            sources.append(f"shipped suite {name}")
        if not config.checks:
            config = _merge(load_suite(DEFAULT_SUITE), config)
            sources.append(f"shipped suite {DEFAULT_SUITE}")
    env_name = env_name or config.default_env
    if env_name is not None:
        if env_name not in config.environments:
            known = ", ".join(sorted(config.environments)) or "none defined"
            raise UsageError(f"unknown environment {env_name!r} (available: {known})")
        env = config.environments[env_name]
    elif target is not None:
        env_name = "command line"
        env = Environment(
            backend=check_url("--target", target),
            credentials=Credentials(
                username=Secret.from_reference(f"${{{USERNAME_VAR}}}"),
                password=Secret.from_reference(f"${{{PASSWORD_VAR}}}"),
            ),
        )
    else:
        known = ", ".join(sorted(config.environments))
        hint = f" or --env NAME (available: {known})" if known else ""
        raise UsageError(f"nothing to validate: give --target URL{hint}")
    update: dict[str, object] = {}
    if target is not None:
        update["backend"] = check_url("--target", target)
    if frontend is not None:
        update["frontend"] = check_url("--frontend", frontend)
    if update:
        env = env.model_copy(update=update)
    sampler = config.sampler or SamplerSettings()
    if duration_s is not None:
        if not 0 < duration_s <= 3600:
            raise UsageError("--duration must be between 0 and 3600 seconds")
        sampler = sampler.model_copy(update={"duration_s": duration_s})
    if rate is not None:
        if not 0 < rate <= 2000:
            raise UsageError("--rate must be between 0 and 2000 per second")
        sampler = sampler.model_copy(update={"rate": rate})
    if until_decisive is not None:
        sampler = sampler.model_copy(update={"until_decisive": until_decisive})
    if max_duration_s is not None:
        if not 0 < max_duration_s <= 10800:
            raise UsageError("--max-duration must be between 0 and 10800 seconds")
        sampler = sampler.model_copy(update={"max_duration_s": max_duration_s})
    if sampler.max_duration_s is not None and sampler.max_duration_s < sampler.duration_s:
        raise UsageError(
            f"--max-duration ({sampler.max_duration_s:g} s) is shorter than the planned "
            f"duration ({sampler.duration_s:g} s)"
        )
    if not config.checks:
        raise UsageError("the configuration defines no checks")
    refuse_short_secrets(env.credentials.password, env.credentials.expired_token)
    return RunPlan(
        title=config.title,
        env_name=env_name,
        environment=env,
        checks=tuple(config.checks),
        sampler=sampler,
        known_issues=tuple(config.known_issues),
        sign_offs=tuple(config.sign_offs) or DEFAULT_SIGN_OFFS,
        rollback_triggers=tuple(config.rollback_triggers),
        monitoring=tuple(config.monitoring),
        sources=tuple(sources),
        compare_to=check_url("--compare-to", compare_to) if compare_to is not None else None,
        slos=tuple(config.slos),
    )
