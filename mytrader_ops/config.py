"""Configuration models: environments, checks, sampler settings, known issues, sign-offs.

Parsed once from YAML (`yamlsafe`), validated strictly (unknown keys rejected, no number
where text is expected, no `${VAR}` outside credentials) and frozen. Every validation
problem is reported with file, line and key path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from mytrader_ops.errors import ConfigError, ConfigProblem
from mytrader_ops.redaction import Secret
from mytrader_ops.yamlsafe import (
    KeyPath,
    YamlDocument,
    YamlValue,
    format_path,
    read_yaml,
    validation_problems,
)

CheckId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


def _share(value: object) -> object:
    """`20%` -> 0.2; a number stays as it is (a share: 0.2)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage like 20%") from None
    return value


Share = Annotated[float, BeforeValidator(_share), Field(gt=0, le=10)]
UrlPath = Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=2048)]
HttpUrl = Annotated[str, Field(pattern=r"^(?i:https?)://[^\s/@]+(?::[0-9]+)?(?:/[^\s]*)?$")]
Timeout = Annotated[float, Field(gt=0, le=120)]
Component = Literal["backend", "frontend", "hubs"]
_UNION_TAGS = frozenset(
    {
        "http",
        "health",
        "metrics",
        "auth",
        "database",
        "hub",
        "mobile",
        "websocket",
        "frontend",
        "proxy",
        "latency",
        "error-rate",
        "hub-latency",
        "connection-success",
        "error-budget",
        "command",
        "tls",
        "prometheus",
    }
)
CREDENTIAL_KEYS = frozenset({"username", "password", "token", "expired_token"})


class Model(BaseModel):
    """Strict, frozen, no unknown keys: a number is never silently taken for text."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --------------------------------------------------------------------------- environments


class Credentials(Model):
    username: Secret | None = None
    password: Secret | None = None
    expired_token: Secret | None = Field(
        default=None, description="A genuinely expired token for the expired-token check."
    )

    @property
    def complete(self) -> bool:
        return bool(
            self.username and self.username.present and self.password and self.password.present
        )


EnvValue = Annotated[str, Field(max_length=2048, pattern=r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|[^$]*)$")]


class LoginAuth(Model):
    """Post a JSON body to a login route; the token is read from the answer. `credentials:`
    is the shorthand for MyTrader's contract (username and password to /api/auth/login)."""

    type: Literal["login"]
    path: UrlPath = "/api/auth/login"
    body: dict[str, EnvValue] = Field(
        default={"username": "${MYTRADER_OPS_USERNAME}", "password": "${MYTRADER_OPS_PASSWORD}"},
        description="The JSON body; values are literal text or ${VAR} references.",
    )
    token_path: str = Field(
        default="accessToken", pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", max_length=200
    )


class BearerAuth(Model):
    """A token given to the tool: `Authorization: Bearer`, and `access_token` on hub URLs."""

    type: Literal["bearer"]
    token: Secret


class HeaderAuth(Model):
    """An API key sent in a header of its own."""

    type: Literal["header"]
    name: str = Field(pattern=r"^[A-Za-z0-9-]{1,100}$")
    value: Secret


class OAuth2Auth(Model):
    """OAuth2 client credentials (RFC 6749, 4.4): a token fetched once per run, refreshed
    before it expires during a long watch."""

    type: Literal["oauth2"]
    token_url: HttpUrl
    client_id: EnvValue
    client_secret: Secret
    scope: str | None = Field(default=None, max_length=1000)
    audience: str | None = Field(default=None, max_length=1000)


AuthSpec = Annotated[LoginAuth | BearerAuth | HeaderAuth | OAuth2Auth, Field(discriminator="type")]


class PrometheusSource(Model):
    """Where the fleet's metrics can be queried (`kind: prometheus` checks and triggers)."""

    url: HttpUrl
    auth: AuthSpec | None = None


def _source(value: object) -> object:
    return {"url": value} if isinstance(value, str) else value


class Environment(Model):
    """One deployment: where the backend and (optionally) the frontend answer."""

    backend: HttpUrl
    frontend: HttpUrl | None = None
    credentials: Credentials = Credentials()
    auth: AuthSpec | None = Field(
        default=None, description="How checks with auth: true authenticate (default: login)."
    )
    prometheus: Annotated[PrometheusSource, BeforeValidator(_source)] | None = Field(
        default=None, description="A Prometheus URL (or {url, auth}) for kind: prometheus."
    )
    tls_verify: bool = True
    ca_file: str | None = None
    follow_redirects: bool = False

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> Environment:
        if self.auth is not None and (self.credentials.username or self.credentials.password):
            raise ValueError(
                "give either credentials: (MyTrader's login) or an auth: block, not both"
            )
        return self


# --------------------------------------------------------------------------- checks


class JsonAssertion(Model):
    """An assertion on a JSON body. `path` is dotted with [n] indexes, `*` maps over lists."""

    path: str = Field(default="", max_length=200)
    equals: str | int | float | bool | None = None
    exists: bool | None = None
    min_length: Annotated[int, Field(ge=0)] | None = None
    max_length: Annotated[int, Field(ge=0)] | None = None
    contains: list[str | int] | None = None
    sorted_desc: bool | None = None


class CheckBase(Model):
    id: CheckId
    title: str
    critical: bool = True
    component: Component = "backend"
    timeout_s: Timeout = 5.0
    criterion: str = Field(default="", description="The go-live criterion this check evidences.")


class HttpCheck(CheckBase):
    kind: Literal["http"]
    path: UrlPath
    method: Literal["GET", "HEAD", "POST"] = "GET"
    auth: bool = False
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = [200]
    json_assert: list[JsonAssertion] = Field(default=[], alias="json")
    headers: dict[str, str] = Field(default={}, description="Extra request headers.")
    expect_headers: dict[str, str] = Field(
        default={}, description="Response header name -> text its value must contain."
    )
    max_latency_ms: Annotated[float, Field(gt=0)] | None = None
    max_bytes: Annotated[int, Field(gt=0, le=64 * 1024 * 1024)] = 4 * 1024 * 1024


class HealthCheck(CheckBase):
    kind: Literal["health"]
    path: UrlPath = "/health/ready"
    require_components: list[str] = []
    allow_warn: bool = True
    max_latency_ms: Annotated[float, Field(gt=0)] | None = None


class MetricsCheck(CheckBase):
    kind: Literal["metrics"]
    path: UrlPath = "/metrics"
    require: list[str] = []


class AuthCheck(CheckBase):
    kind: Literal["auth"]
    login_path: UrlPath = "/api/auth/login"
    me_path: UrlPath = "/api/auth/me"


class OrderSpec(Model):
    symbol: str = "AAPL"
    qty: str = "1"
    limit_price: str = "1.00"


class DatabaseCheck(CheckBase):
    kind: Literal["database"]
    health_path: UrlPath = "/health/ready"
    component_prefix: str = "database"
    round_trip: bool = True
    order: OrderSpec = OrderSpec()


class Invocation(Model):
    target: str = Field(min_length=1, max_length=200)
    arguments: list[str | int | float | bool | list[str]] = []


class HubCheck(CheckBase):
    kind: Literal["hub"]
    component: Component = "hubs"
    path: UrlPath
    auth: bool = False
    require_auth: bool = False
    invoke: Invocation | None = None
    expect_message: str | None = None
    first_message_within_ms: Annotated[float, Field(gt=0)] = 2000.0
    wait_ping: bool = False
    max_message_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024


class MobileCheck(HubCheck):
    """A simulated mobile client (access_token in the query, reconnect). Critical like every
    check unless the suite says otherwise: the release plan lists mobile connectivity among
    the success criteria."""

    kind: Literal["mobile"]  # type: ignore[assignment]
    max_reconnect_ms: Annotated[float, Field(gt=0)] = 2000.0


class WebSocketCheck(CheckBase):
    kind: Literal["websocket"]
    url: Annotated[str, Field(pattern=r"^(?i:wss?)://\S+$")] | None = None
    path: UrlPath | None = None
    send: str | None = None
    expect_message: bool = True
    max_message_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024


class FrontendCheck(CheckBase):
    kind: Literal["frontend"]
    component: Component = "frontend"
    path: UrlPath = "/"
    max_load_ms: Annotated[float, Field(gt=0)] = 500.0
    max_assets: Annotated[int, Field(ge=0, le=50)] = 20


class ProxyCheck(CheckBase):
    kind: Literal["proxy"]
    component: Component = "frontend"
    api_path: UrlPath = "/api/symbols"
    identity_path: UrlPath = Field(
        default="/api/account",
        description="An authenticated resource whose `id` identifies the backend's data.",
    )
    hub_path: UrlPath = "/hubs/market-data"


class LatencyCheck(CheckBase):
    """Open-model latency SLA on one endpoint (see `sampler`)."""

    kind: Literal["latency"]
    path: UrlPath
    auth: bool = False
    percentile: Annotated[float, Field(gt=0, lt=100)] = 95.0
    max_ms: Annotated[float, Field(gt=0)]
    min_samples: Annotated[int, Field(ge=1)] | None = None
    max_regression: Share | None = Field(
        default=None,
        description="Against a baseline: how much the percentile may grow (20% or 0.2) before "
        "a significant shift fails; default 20% when a baseline is given.",
    )


class ErrorRateCheck(CheckBase):
    """Error rate over every sampled request, judged on its Wilson 95% interval."""

    kind: Literal["error-rate"]
    max_rate: Annotated[float, Field(gt=0, lt=1)] = 0.05
    min_samples: Annotated[int, Field(ge=1)] = 100
    max_error_rate_increase: Share | None = Field(
        default=None,
        description="Against a baseline: how much the error share may rise (1% or 0.01) "
        "before a significant increase fails; not compared when unset.",
    )


class HubLatencyCheck(CheckBase):
    """Open-model invoke -> completion round trip on a hub."""

    kind: Literal["hub-latency"]
    component: Component = "hubs"
    path: UrlPath
    auth: bool = False
    invoke: Invocation
    rate: Annotated[float, Field(gt=0, le=200)] = 10.0
    percentile: Annotated[float, Field(gt=0, lt=100)] = 95.0
    max_ms: Annotated[float, Field(gt=0)]
    min_samples: Annotated[int, Field(ge=1)] | None = None
    max_error_rate: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=None,
        description="Failed invocations (error completions, timeouts, dropped connections) "
        "must stay below this share; default: the suite's error-rate criterion, else 5%.",
    )
    max_regression: Share | None = Field(
        default=None,
        description="Against a baseline: how much the percentile may grow (20% or 0.2) before "
        "a significant shift fails; default 20% when a baseline is given.",
    )
    max_drops: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=0,
        description="Connections the target may close or lose while sampling; a healthy hub "
        "keeps a client's connection for the whole run.",
    )


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


class CommandCheck(CheckBase):
    """Run a program (never a shell): exit 0 passes; optional JSON `{"value": x}` on its last
    line of output is judged against `max`/`min`. Only the variables named in `env` (and PATH,
    HOME, LANG) reach it; its output is size-capped and redacted."""

    kind: Literal["command"]
    command: list[Annotated[str, Field(max_length=4096)]] = Field(min_length=1, max_length=100)
    env: list[EnvName] = []
    max: float | None = None
    min: float | None = None
    unit: str = Field(default="", max_length=20)


class TlsCheck(CheckBase):
    """The backend's (or `url`'s) certificate chain verifies for the host with the
    environment's `ca_file`, it expires no sooner than `min_days`, and the protocol is TLS 1.2
    or newer."""

    kind: Literal["tls"]
    url: HttpUrl | None = None
    min_days: Annotated[int, Field(ge=0, le=3650)] = 14


class PrometheusCheck(CheckBase):
    """A PromQL query over the fleet, judged against `max` or `min`.

    Instant by default; with `range` (e.g. 5m) every sample of the last `range` at `step`.
    `aggregate: each` (the default) holds every series (and every sample) to the limit;
    `max`/`min`/`avg` judge one figure over all of them. An empty result, NaN, a stale series
    or an unreachable Prometheus is missing evidence (INCONCLUSIVE), never a pass.
    """

    kind: Literal["prometheus"]
    query: str = Field(min_length=1, max_length=4000)
    max: float | None = None
    min: float | None = None
    range: Span | None = None
    step: Span = "15s"
    aggregate: Literal["each", "max", "min", "avg"] = "each"
    min_series: Annotated[int, Field(ge=1)] = 1
    min_samples: Annotated[int, Field(ge=1)] = 1
    unit: str = Field(default="", max_length=20)

    @model_validator(mode="after")
    def _one_limit(self) -> PrometheusCheck:
        if (self.max is None) == (self.min is None):
            raise ValueError("give exactly one of max: or min:")
        return self


class ErrorBudgetCheck(CheckBase):
    """Gate a deploy on an SLO's remaining error budget, read from the monitor's windows."""

    kind: Literal["error-budget"]
    slo: CheckId
    min_remaining: Annotated[float, BeforeValidator(_share), Field(ge=0, lt=1)] = 0.10
    min_samples: Annotated[int, Field(ge=1)] = 1000


class ConnectionSuccessCheck(CheckBase):
    """Share of hub connections (negotiate, connect, handshake) that succeed."""

    kind: Literal["connection-success"]
    component: Component = "hubs"
    path: UrlPath
    auth: bool = False
    attempts: Annotated[int, Field(ge=1, le=1000)] = 80
    concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    min_rate: Annotated[float, Field(gt=0, lt=1)] = 0.95


Check = Annotated[
    HttpCheck
    | HealthCheck
    | MetricsCheck
    | AuthCheck
    | DatabaseCheck
    | HubCheck
    | MobileCheck
    | WebSocketCheck
    | FrontendCheck
    | ProxyCheck
    | LatencyCheck
    | ErrorRateCheck
    | HubLatencyCheck
    | ConnectionSuccessCheck
    | ErrorBudgetCheck
    | CommandCheck
    | TlsCheck
    | PrometheusCheck,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- the rest


class SamplerSettings(Model):
    """Defaults: 20 s at 50 req/s per endpoint = 1000 samples; see docs/validate.md.

    Sampling is sequential (validate.sequential): a critical criterion still undecided at
    `duration_s` keeps its streams sampling up to `max_duration_s` (default 3x the duration);
    with `until_decisive` every stream stops once its criteria are decided, but not before
    `min_decisive_s`.
    """

    duration_s: Annotated[float, Field(gt=0, le=3600)] = 20.0
    max_duration_s: Annotated[float, Field(gt=0, le=10800)] | None = None
    until_decisive: bool = False
    min_decisive_s: Annotated[float, Field(ge=0, le=3600)] = 10.0
    rate: Annotated[float, Field(gt=0, le=2000)] = 50.0
    max_connections: Annotated[int, Field(ge=1, le=512)] = 32
    request_timeout_s: Timeout = 5.0
    late_after_ms: Annotated[float, Field(gt=0)] = 10.0


Waivable = Literal["fail", "inconclusive"]
DEFAULT_KNOWN_ISSUE_MAX_DAYS = 30


class KnownIssue(Model):
    """A known failure accepted for a while: it waives a FAIL of its check (by default only a
    FAIL, and only one whose text matches `match`), never missing evidence unless `waives`
    says so explicitly, and never past `expires`."""

    check: CheckId
    ticket: str = Field(min_length=1)
    mitigation: str = Field(min_length=1)
    expires: Annotated[dt.date, Field(strict=False)]
    owner: str | None = None
    waives: list[Waivable] = Field(
        default=["fail"],
        min_length=1,
        description="What it waives: fail (the default), and inconclusive only when stated.",
    )
    match: str | None = Field(
        default=None,
        max_length=500,
        description="A regular expression the verdict's text must contain (re.search).",
    )

    @model_validator(mode="after")
    def _valid_pattern(self) -> KnownIssue:
        if self.match is not None:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise ValueError(f"match is not a regular expression: {exc}") from None
        return self


class SignOff(Model):
    role: str = Field(min_length=1)
    name: str | None = None


class RollbackTrigger(Model):
    id: CheckId
    condition: str
    action: str


class MonitoringItem(Model):
    signal: str
    threshold: str
    window: str
    source: str


_SPAN = re.compile(r"^(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>s|m|h|d)$")
_SPAN_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def span_seconds(text: str) -> float:
    """`30s`, `5m`, `6h`, `30d` -> seconds (an SLO window or a burn-rate alert window)."""
    match = _SPAN.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r}: write a number with a unit: 5m, 1h, 30d")
    return float(match.group("n")) * _SPAN_S[match.group("unit")]


def _span(value: object) -> object:
    if isinstance(value, str):
        span_seconds(value)  # raises with the reason
    return value


Span = Annotated[str, BeforeValidator(_span)]


class BurnAlert(Model):
    """Fire when the budget burns at `factor` x the sustainable rate over both windows (the
    SRE workbook's multiwindow, multi-burn-rate alert)."""

    long: Span
    short: Span
    factor: Annotated[float, Field(gt=0, le=1000)]

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnAlert:
        if span_seconds(self.short) >= span_seconds(self.long):
            raise ValueError("the short window must be shorter than the long one")
        return self


# The workbook's defaults for a 30-day budget: a page at 14.4x over 1 h and 5 m (2% of the
# budget in an hour), and at 6x over 6 h and 30 m (5% in six hours).
DEFAULT_BURN_ALERTS = (
    BurnAlert(long="1h", short="5m", factor=14.4),
    BurnAlert(long="6h", short="30m", factor=6.0),
)


class Slo(Model):
    """A service level objective, over the monitor's own sampled signal or the fleet's.

    `availability`: the sampled API requests that did not fail are good events.
    `latency`: the sampled requests answered within `threshold_ms` are good events.
    `promql`: `good` and `total` are PromQL rates of good and of all events across the fleet,
    with `$window` where the span goes, e.g. `sum(rate(requests_total{code!~"5.."}[$window]))`;
    the environment's `prometheus:` answers them.
    """

    id: CheckId
    objective: Annotated[float, BeforeValidator(_share), Field(gt=0, lt=1)]
    window: Span = "30d"
    signal: Literal["availability", "latency", "promql"] = "availability"
    threshold_ms: Annotated[float, Field(gt=0)] | None = None
    good: str | None = Field(default=None, max_length=4000)
    total: str | None = Field(default=None, max_length=4000)
    burn_alerts: list[BurnAlert] = Field(default=list(DEFAULT_BURN_ALERTS), min_length=1)

    @model_validator(mode="after")
    def _threshold(self) -> Slo:
        if (self.signal == "latency") != (self.threshold_ms is not None):
            raise ValueError("threshold_ms is required for a latency SLO and only for one")
        promql = self.good is not None and self.total is not None
        if (self.signal == "promql") != promql or (self.good is None) != (self.total is None):
            raise ValueError("signal: promql takes both good: and total: (and only it does)")
        if promql and not ("$window" in (self.good or "") and "$window" in (self.total or "")):
            raise ValueError("good: and total: must each say [$window] where the span goes")
        return self

    def ratio_query(self, span: str) -> str:
        """PromQL for the good share over `span` (signal: promql)."""
        assert self.good is not None
        assert self.total is not None
        good = self.good.replace("$window", span)
        total = self.total.replace("$window", span)
        return f"({good}) / ({total})"

    @property
    def window_s(self) -> float:
        return span_seconds(self.window)


class Config(Model):
    """A configuration or shipped suite file."""

    version: Literal[1] = 1
    title: str = "MyTrader go-live validation"
    include: list[str] = Field(
        default=[], description="Shipped suites to start from, e.g. go-live."
    )
    environments: dict[str, Environment] = {}
    default_env: str | None = None
    sampler: SamplerSettings | None = None
    checks: list[Check] = []
    known_issues: list[KnownIssue] = []
    known_issue_max_days: Annotated[int, Field(ge=1, le=365)] = Field(
        default=DEFAULT_KNOWN_ISSUE_MAX_DAYS,
        description="The furthest a known issue of this file may expire, in days from today.",
    )
    sign_offs: list[SignOff] = []
    rollback_triggers: list[RollbackTrigger] = []
    monitoring: list[MonitoringItem] = []
    slos: list[Slo] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> Config:
        slo_ids = [o.id for o in self.slos]
        if len(set(slo_ids)) != len(slo_ids):
            raise ValueError("duplicate SLO id")
        for check in self.checks:
            if isinstance(check, ErrorBudgetCheck) and check.slo not in slo_ids:
                raise ValueError(f"check {check.id!r}: no SLO {check.slo!r} under slos")
        seen: set[str] = set()
        for check in self.checks:
            if check.id in seen:
                raise ValueError(f"duplicate check id {check.id!r}")
            seen.add(check.id)
        if self.default_env is not None and self.default_env not in self.environments:
            raise ValueError(f"default_env {self.default_env!r} is not among environments")
        return self


# --------------------------------------------------------------------------- loading


def _env_reference_problems(doc: YamlDocument) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []

    def walk(value: YamlValue, path: KeyPath) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))
        elif isinstance(value, str) and "${" in value:
            key = path[-1] if path else ""
            if key not in CREDENTIAL_KEYS and "auth" not in path:
                problems.append(
                    ConfigProblem(
                        doc.file,
                        doc.line_of(path),
                        format_path(path),
                        "${...} environment references are allowed only for credentials "
                        "and in an auth: block",
                    )
                )

    walk(doc.data, ())
    return problems


def _expiry_problems(doc: YamlDocument, config: Config, today: dt.date) -> list[ConfigProblem]:
    """A waiver may not reach further than the file's ceiling: an open-ended known issue is a
    permanent exception nobody reviews."""
    ceiling = today + dt.timedelta(days=config.known_issue_max_days)
    return [
        ConfigProblem(
            doc.file,
            doc.line_of(("known_issues", i, "expires")),
            format_path(("known_issues", i, "expires")),
            f"{k.expires.isoformat()} is more than {config.known_issue_max_days} days ahead "
            f"(latest allowed {ceiling.isoformat()}; raise known_issue_max_days, at most 365, "
            "to allow more)",
        )
        for i, k in enumerate(config.known_issues)
        if k.expires > ceiling
    ]


def parse_config(doc: YamlDocument, today: dt.date | None = None) -> Config:
    """Validate a parsed document into a frozen Config, or raise ConfigError."""
    problems = _env_reference_problems(doc)
    if problems:
        raise ConfigError(problems)
    if not isinstance(doc.data, Mapping):
        raise ConfigError([ConfigProblem(doc.file, 1, "", "the top level must be a mapping")])
    try:
        config = Config.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc, _UNION_TAGS)) from None
    problems = _expiry_problems(doc, config, today or dt.datetime.now(dt.UTC).date())
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: Path, today: dt.date | None = None) -> Config:
    """Read, parse and validate a configuration file."""
    return parse_config(read_yaml(path), today)


def config_schema() -> dict[str, object]:
    """The JSON Schema of the configuration format, for editors."""
    schema = Config.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mytrader.example/schemas/mytrader-ops-config-v1.json"
    return schema
