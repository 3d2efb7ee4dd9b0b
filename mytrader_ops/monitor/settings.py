"""Monitor settings: durations, thresholds of the phase checks, alert sinks, the rollback plan.

Defaults live here, in one place. An optional YAML file (`--monitor-config`) overrides them;
it is read by the defensive loader and validated strictly (unknown keys rejected, every
problem named with file, line and key path). Its `triggers:` list uses the typed trigger
format of `mytrader_ops.monitor.triggers` (each states `consecutive: N` or `for: DURATION`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mytrader_ops.errors import ConfigError, ConfigProblem, OpsError
from mytrader_ops.monitor.triggers import TriggerSpec
from mytrader_ops.redaction import Secret
from mytrader_ops.yamlsafe import KeyPath, format_path, read_yaml

Phase = Literal["critical", "extended", "all"]
CRITICAL_PHASE_S = 30 * 60.0
EXTENDED_PHASE_S = 24 * 3600.0
DEFAULT_INTERVAL_S = 30.0
DEFAULT_RATE = 2.0  # requests per second per sampled endpoint (see docs/performance-monitor.md)
# Below this share of windows with evidence a trigger that did not fire ends the watch with
# exit 3 (rules in monitor/coverage.py).
DEFAULT_COVERAGE_FLOOR = 0.90
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


class MonitorUsageError(OpsError):
    """A monitor option that cannot be run (exit code 2)."""


def parse_duration(text: str) -> float:
    """`45s`, `30m`, `24h`, `1h30m` or plain seconds -> seconds (> 0)."""
    raw = text.strip().lower()
    try:
        value = float(raw)
    except ValueError:
        m = _DURATION.match(raw)
        if m is None or not raw or not any(m.groups()):
            raise MonitorUsageError(
                f"invalid duration {text!r}: use e.g. 45s, 30m, 24h, 1h30m"
            ) from None
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        value = h * 3600 + mi * 60 + s
    if not 0 < value <= 31 * 86400:
        raise MonitorUsageError(f"duration {text!r} must be above 0 and at most 31 days")
    return value


def format_duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


DurationText = Annotated[str, Field(min_length=1, max_length=32, description="e.g. 45s, 30m, 24h")]


class WebhookSink(_Model):
    """POST `{"text": ...}` (Slack-compatible). The URL is a secret: give `${ENV_VAR}`."""

    kind: Literal["webhook"]
    url: Secret
    timeout_s: Annotated[float, Field(gt=0, le=30)] = 5.0


class CommandSink(_Model):
    """Run a program with the alert as arguments; an argv list, never a shell."""

    kind: Literal["command"]
    argv: Annotated[list[str], Field(min_length=1, max_length=64)]
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0


Retries = Annotated[int, Field(ge=0, le=10, description="Retries after a failed attempt.")]
SinkTimeout = Annotated[float, Field(gt=0, le=30)]
HttpsUrl = Annotated[str, Field(pattern=r"^(?i:https?)://[^\s/@]+(?::[0-9]+)?(?:/[^\s]*)?$")]


class AlertmanagerSink(_Model):
    """POST to Alertmanager's `/api/v2/alerts`; `endsAt` when the trigger clears or the
    rollback is verified. `url` is Alertmanager's base URL, plain or `${ENV_VAR}`."""

    kind: Literal["alertmanager"]
    url: Annotated[str, Field(pattern=r"^(?:\$\{[A-Za-z_][A-Za-z0-9_]*\}|(?i:https?)://\S+)$")]
    severity: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] = "critical"
    hold: DurationText = Field(
        default="1h", description="An open page stays active this long after it was last sent."
    )
    timeout_s: SinkTimeout = 5.0
    retries: Retries = 3


class PagerDutySink(_Model):
    """PagerDuty Events API v2: `trigger` with a dedup_key per watch and trigger, `resolve`."""

    kind: Literal["pagerduty"]
    routing_key: Secret
    url: HttpsUrl = "https://events.pagerduty.com/v2/enqueue"
    severity: Literal["critical", "error", "warning", "info"] = "critical"
    timeout_s: SinkTimeout = 5.0
    retries: Retries = 3


class OpsgenieSink(_Model):
    """Opsgenie Alert API: create with an `alias` per watch and trigger, close by alias."""

    kind: Literal["opsgenie"]
    api_key: Secret
    url: HttpsUrl = "https://api.opsgenie.com"
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P1"
    timeout_s: SinkTimeout = 5.0
    retries: Retries = 3


class SlackSink(_Model):
    """A Slack incoming webhook with Block Kit blocks. The URL is a secret: `${ENV_VAR}`."""

    kind: Literal["slack"]
    url: Secret
    timeout_s: SinkTimeout = 5.0
    retries: Retries = 3


PagerSink = AlertmanagerSink | PagerDutySink | OpsgenieSink | SlackSink
Sink = Annotated[
    WebhookSink | CommandSink | AlertmanagerSink | PagerDutySink | OpsgenieSink | SlackSink,
    Field(discriminator="kind"),
]


class RollbackSettings(_Model):
    plan: str
    env: str | None = None
    to_version: str | None = None


class Thresholds(_Model):
    """Phase checks (not triggers): what the report judges over the watch."""

    api_p95_ms: Annotated[float, Field(gt=0)] = 100.0
    max_error_rate: Annotated[float, Field(gt=0, lt=1)] = 0.05
    min_connectivity: Annotated[float, Field(gt=0, lt=1)] = 0.90
    min_hub_success: Annotated[float, Field(gt=0, lt=1)] = 0.95
    max_stream_gap_s: Annotated[float, Field(gt=0)] = 5.0
    db_p95_ms: Annotated[float, Field(gt=0)] = 100.0
    leak_mb_per_hour: Annotated[float, Field(gt=0)] = 20.0
    leak_share_per_hour: Annotated[float, Field(gt=0)] = 0.10
    cpu_slope_per_hour: Annotated[float, Field(gt=0)] = 0.10
    max_cpu_share: Annotated[float, Field(gt=0)] = 0.90


class MonitorFile(_Model):
    """The optional `--monitor-config` file."""

    version: Literal[1] = 1
    interval: DurationText | None = None
    rate: Annotated[float, Field(gt=0, le=200)] | None = None
    coverage_floor: Annotated[float, Field(gt=0, le=1)] = DEFAULT_COVERAGE_FLOOR
    paths: list[Annotated[str, Field(pattern=r"^/\S*$")]] | None = None
    triggers: list[TriggerSpec] | None = Field(
        default=None,
        description="mytrader_ops.monitor.triggers format; default: its five triggers.",
    )
    thresholds: Thresholds = Thresholds()
    sinks: list[Sink] = []
    runbook_url: HttpsUrl | None = Field(
        default=None,
        description="Where runbooks/ is published; pages link <runbook_url>/rollback-<id>.md.",
    )
    on_fire: Literal["stop", "keep-watching"] = Field(
        default="stop",
        description="keep-watching: without --auto-rollback, watch on after a trigger fires "
        "so that its page resolves when it clears.",
    )
    rollback: RollbackSettings | None = None

    @model_validator(mode="after")
    def _unique(self) -> MonitorFile:
        if self.interval is not None:
            try:
                parse_duration(self.interval)
            except MonitorUsageError as exc:
                raise ValueError(str(exc)) from None
        for sink in self.sinks:
            if isinstance(sink, AlertmanagerSink):
                try:
                    parse_duration(sink.hold)
                except MonitorUsageError as exc:
                    raise ValueError(f"alertmanager hold: {exc}") from None
        ids = [t.id for t in self.triggers or []]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate trigger ids: {', '.join(dupes)}")
        return self


_SINK_KINDS = ("webhook", "command", "alertmanager", "pagerduty", "opsgenie", "slack")


def load_monitor_file(path: Path) -> MonitorFile:
    doc = read_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError([ConfigProblem(doc.file, 1, "", "the top level must be a mapping")])
    try:
        return MonitorFile.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc: KeyPath = tuple(
                p for p in err["loc"] if p not in _SINK_KINDS or isinstance(p, int)
            )
            problems.append(ConfigProblem(doc.file, doc.line_of(loc), format_path(loc), err["msg"]))
        raise ConfigError(problems) from None


def phase_span(phase: Phase) -> float:
    return CRITICAL_PHASE_S if phase == "critical" else EXTENDED_PHASE_S
